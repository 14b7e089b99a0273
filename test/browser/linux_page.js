// Boots the shared Linux guest in a Web Worker (linux_worker.js) and posts what it reports to /result.
// A worker, as an embedding app would use one: the guest runs without holding the page's main thread.
const worker = new Worker(new URL('./linux_worker.js', import.meta.url), { type: 'module' });
const result = await new Promise((resolve) => {
  worker.onmessage = (event) => resolve(event.data);
  worker.onerror = (event) => resolve({ error: `worker error: ${event.message}` });
});
document.getElementById('console').textContent = result.output ?? result.error;
await fetch('/result', { method: 'POST', body: JSON.stringify({ ...result, crossOriginIsolated }) });
