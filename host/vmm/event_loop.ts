// Letting the event loop in, in Node and in a browser alike.

/**
 * Resolves after the event loop has run (I/O callbacks, timers, messages). Node's setImmediate; where
 * there is none (a browser), a MessageChannel message, which unlike setTimeout(0) is not clamped to 4 ms.
 */
export function yieldToEventLoop(): Promise<void> {
  if (typeof setImmediate === 'function') return new Promise<void>((resolve) => setImmediate(resolve));
  return new Promise<void>((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}
