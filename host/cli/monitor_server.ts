// The monitor and QMP on sockets: -monitor/-qmp tcp:HOST:PORT,server=on[,wait=off] and
// unix:PATH,server=on[,wait=off]. Each client gets its own HMP terminal (banner and prompt) or QMP
// session (greeting first); the protocols themselves are node-free (host/vmm/monitor). Node-only, like
// the rest of the CLI.
import type { AddressInfo, Server, Socket } from 'node:net';
import { listenOn, removeSocketFile } from './socket_listen.js';
import type { MonitorEndpoint } from './args.js';
import { HmpTerminal } from '../vmm/monitor/hmp_terminal.js';
import { QmpSession } from '../vmm/monitor/qmp.js';
import type { MonitorTarget } from '../vmm/monitor/target.js';

export class MonitorServerError extends Error {
  override readonly name = 'MonitorServerError';
}

/** How long close() lets clients read what was written to them (a quit's reply) before it drops them. */
const FLUSH_TIMEOUT_MS = 1000;

export type MonitorProtocol = 'hmp' | 'qmp';

export class MonitorServer {
  private readonly clients = new Set<Socket>();
  private resolveFirstClient: () => void = () => {};
  /** Settles when the first client connects (QEMU's wait=on holds the guest until then). */
  readonly firstClient: Promise<void>;

  private constructor(
    private readonly server: Server,
    private readonly endpoint: Extract<MonitorEndpoint, { kind: 'tcp' | 'unix' }>,
    private readonly protocol: MonitorProtocol,
    private readonly target: MonitorTarget,
  ) {
    this.firstClient = new Promise((resolve) => (this.resolveFirstClient = resolve));
    server.on('connection', (socket) => this.accept(socket));
  }

  /** Listens on `endpoint`; a unix socket's stale file is replaced, as QEMU replaces it. */
  static async listen(endpoint: Extract<MonitorEndpoint, { kind: 'tcp' | 'unix' }>, protocol: MonitorProtocol, target: MonitorTarget): Promise<MonitorServer> {
    const option = `-${protocol === 'qmp' ? 'qmp' : 'monitor'} ${describeEndpoint(endpoint)}`;
    const server = await listenOn(endpoint, option, (message) => new MonitorServerError(message));
    return new MonitorServer(server, endpoint, protocol, target);
  }

  /** Where it listens (a tcp port 0 has become a real one). */
  get address(): string {
    if (this.endpoint.kind === 'unix') return `unix:${this.endpoint.path}`;
    const { address, port } = this.server.address() as AddressInfo;
    return `tcp:${address}:${port}`;
  }

  /** Stops listening and ends every client, after letting each read what it was sent. */
  async close(): Promise<void> {
    this.server.close();
    await Promise.all([...this.clients].map((socket) => endGracefully(socket)));
    removeSocketFile(this.endpoint);
  }

  private accept(socket: Socket): void {
    this.clients.add(socket);
    this.resolveFirstClient();
    socket.setNoDelay?.(true);
    socket.on('error', () => {});
    const write = (text: string) => {
      if (!socket.destroyed && socket.writable) socket.write(text);
    };
    if (this.protocol === 'qmp') {
      const session = new QmpSession(this.target, { write });
      socket.setEncoding('utf8');
      write(session.greeting());
      socket.on('data', (text: string) => void session.receive(text));
      socket.on('close', () => {
        session.close();
        this.clients.delete(socket);
      });
    } else {
      const terminal = new HmpTerminal(this.target, write);
      terminal.focus();
      socket.on('data', (bytes: Buffer) => void terminal.input(bytes));
      socket.on('close', () => this.clients.delete(socket));
    }
  }
}

/** QEMU's spelling of an endpoint, for messages. */
export function describeEndpoint(endpoint: MonitorEndpoint): string {
  if (endpoint.kind === 'stdio') return 'stdio';
  const where = endpoint.kind === 'unix' ? `unix:${endpoint.path}` : `tcp:${endpoint.host}:${endpoint.port}`;
  return `${where},server=on${endpoint.wait ? '' : ',wait=off'}`;
}

function endGracefully(socket: Socket): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve();
    }, FLUSH_TIMEOUT_MS);
    timer.unref();
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.end();
  });
}
