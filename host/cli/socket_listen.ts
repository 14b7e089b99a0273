// Listening as QEMU's server chardevs do, for the monitors and the serial console: on a TCP port, or on a
// unix socket whose stale file is replaced first (and removed again on close). Node-only.
import { createServer, type Server } from 'node:net';
import { unlinkSync } from 'node:fs';
import type { MonitorEndpoint } from './args.js';

export type ListenEndpoint = Extract<MonitorEndpoint, { kind: 'tcp' | 'unix' }>;

/** A server listening on `endpoint`; failures reject with `error(message)` (the option's own error type). */
export async function listenOn(endpoint: ListenEndpoint, option: string, error: (message: string) => Error): Promise<Server> {
  if (endpoint.kind === 'unix') {
    try {
      unlinkSync(endpoint.path);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') throw error(`${option}: cannot replace ${endpoint.path}: ${(cause as Error).message}`);
    }
  }
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (cause) => reject(error(`${option}: ${cause.message}`)));
    if (endpoint.kind === 'unix') server.listen(endpoint.path, () => resolve());
    else server.listen(endpoint.port, endpoint.host, () => resolve());
  });
  return server;
}

/** Removes a unix endpoint's socket file once its server is closed. */
export function removeSocketFile(endpoint: ListenEndpoint): void {
  if (endpoint.kind !== 'unix') return;
  try {
    unlinkSync(endpoint.path);
  } catch {
    // already gone
  }
}
