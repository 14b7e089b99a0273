// The user network's NAT sockets in Node: node:dgram for UDP flows, node:net for TCP, the first nameserver
// of /etc/resolv.conf for DNS. Every socket and server is unref'd, so a finished VM whose backend was not
// closed still lets the process exit; the backend closes them all on close().
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { ipv4 } from './packet.js';
import type { NatDatagramSocket, NatListener, NatSockets, NatStream, NatStreamEvents } from './nat.js';

/** The first IPv4 nameserver in a resolv.conf text, else 127.0.0.1. */
export function nameserverOf(resolvConf: string): string {
  for (const line of resolvConf.split('\n')) {
    const match = /^\s*nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/.exec(line);
    if (match !== null) return match[1]!;
  }
  return '127.0.0.1';
}

function hostNameserver(): string {
  try {
    return nameserverOf(readFileSync('/etc/resolv.conf', 'utf8'));
  } catch {
    return '127.0.0.1';
  }
}

function wrap(socket: Socket): NatStream {
  return {
    write: (bytes) => {
      if (!socket.destroyed && socket.writable) socket.write(bytes);
    },
    end: () => {
      if (!socket.destroyed) socket.end();
    },
    destroy: () => {
      socket.resetAndDestroy();
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    get bufferedBytes() {
      return socket.writableLength;
    },
  };
}

function listenTo(socket: Socket, events: NatStreamEvents): void {
  socket.on('data', (chunk: Buffer) => events.data(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
  socket.on('end', () => events.end());
  socket.on('drain', () => events.drained());
  socket.on('error', (error: Error) => events.failed(error.message));
}

export class NodeNatSockets implements NatSockets {
  readonly dnsServer: string;

  constructor(options: { dnsServer?: string } = {}) {
    this.dnsServer = options.dnsServer ?? hostNameserver();
  }

  async lookup(name: string): Promise<number[]> {
    try {
      const found = await lookup(name, { family: 4, all: true });
      return found.map(({ address }) => {
        const [a = 0, b = 0, c = 0, d = 0] = address.split('.').map(Number);
        return ipv4(a, b, c, d);
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOTFOUND' || (error as NodeJS.ErrnoException).code === 'ENODATA') return [];
      throw error;
    }
  }

  udp(receive: (data: Uint8Array, host: string, port: number) => void): NatDatagramSocket {
    const socket = createSocket('udp4');
    socket.on('message', (message, from) => receive(new Uint8Array(message), from.address, from.port));
    socket.on('error', () => {}); // ICMP errors and the like: the guest times out, as it would
    socket.bind(0);
    socket.unref();
    let closed = false;
    return {
      send: (data, host, port) => {
        if (!closed) socket.send(data, port, host);
      },
      close: () => {
        if (closed) return;
        closed = true;
        socket.close();
      },
    };
  }

  bindUdp(address: string, port: number, receive: (data: Uint8Array, host: string, port: number) => void): NatDatagramSocket & NatListener {
    const socket = createSocket('udp4');
    socket.on('message', (message, from) => receive(new Uint8Array(message), from.address, from.port));
    const ready = new Promise<number>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, address === '' ? undefined : address, () => {
        socket.off('error', reject);
        socket.on('error', () => {});
        resolve(socket.address().port);
      });
    });
    ready.catch(() => {}); // a caller that never asks is not an unhandled rejection
    socket.unref();
    let closed = false;
    return {
      ready,
      send: (data, host, to) => {
        if (!closed) socket.send(data, to, host);
      },
      close: () => {
        if (closed) return;
        closed = true;
        try {
          socket.close();
        } catch {
          // never bound, or already closed
        }
      },
    };
  }

  connect(host: string, port: number, events: NatStreamEvents): NatStream {
    const socket = createConnection({ host, port, allowHalfOpen: true });
    socket.setNoDelay(true);
    socket.unref();
    socket.once('connect', () => events.connected());
    listenTo(socket, events);
    return wrap(socket);
  }

  listen(address: string, port: number, accept: (stream: NatStream) => NatStreamEvents | null): NatListener {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
      socket.setNoDelay(true);
      socket.unref();
      const events = accept(wrap(socket));
      if (events === null) socket.destroy();
      else listenTo(socket, events);
    });
    server.unref();
    const ready = new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, address === '' ? undefined : address, () => {
        const bound = server.address();
        resolve(typeof bound === 'object' && bound !== null ? bound.port : port);
      });
    });
    ready.catch(() => {}); // a caller that never asks is not an unhandled rejection
    return { ready, close: () => server.close() };
  }
}
