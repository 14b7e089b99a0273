// The serial console on a socket, as QEMU's -serial tcp:[HOST]:PORT,server=on[,wait=off] and
// unix:PATH,server=on[,wait=off]: wkvm listens, one client at a time is the terminal (what it sends is the
// guest's input, the guest's output goes to it), and with no client connected the output is dropped, as
// QEMU's socket chardev drops it. With wait (QEMU's default for a server) the guest starts once the first
// client is there. Node-only, like the rest of the CLI.
import type { AddressInfo, Server, Socket } from 'node:net';
import { listenOn, removeSocketFile, type ListenEndpoint as SocketEndpoint } from './socket_listen.js';

export class SerialSocketError extends Error {
  override readonly name = 'SerialSocketError';
}

export class SerialSocket {
  private client: Socket | null = null;
  private resolveFirstClient: () => void = () => {};
  /** Settles when the first client connects. */
  readonly firstClient: Promise<void>;

  private constructor(private readonly server: Server, private readonly endpoint: SocketEndpoint, private readonly input: (bytes: Uint8Array) => void) {
    this.firstClient = new Promise((resolve) => (this.resolveFirstClient = resolve));
    server.on('connection', (socket) => this.accept(socket));
  }

  /** Listens on `endpoint` (a unix socket's stale file is replaced); `input` receives what the client types. */
  static async listen(endpoint: SocketEndpoint, input: (bytes: Uint8Array) => void): Promise<SerialSocket> {
    const option = `-serial ${endpoint.kind === 'unix' ? `unix:${endpoint.path}` : `tcp:${endpoint.host}:${endpoint.port}`}`;
    return new SerialSocket(await listenOn(endpoint, option, (message) => new SerialSocketError(message)), endpoint, input);
  }

  /** Where it listens (a tcp port 0 has become a real one). */
  get address(): string {
    if (this.endpoint.kind === 'unix') return `unix:${this.endpoint.path}`;
    const { address, port } = this.server.address() as AddressInfo;
    return `tcp:${address}:${port}`;
  }

  // The machine's console.
  start(): void {}
  stop(): void {}
  write(bytes: Uint8Array): void {
    const client = this.client;
    if (client !== null && !client.destroyed && client.writable) client.write(bytes);
  }

  close(): void {
    this.client?.destroy();
    this.server.close();
    removeSocketFile(this.endpoint);
  }

  private accept(socket: Socket): void {
    if (this.client !== null) {
      socket.destroy(); // one terminal at a time, as QEMU's socket chardev
      return;
    }
    this.client = socket;
    this.resolveFirstClient();
    socket.setNoDelay?.(true);
    socket.on('data', (bytes: Buffer) => this.input(new Uint8Array(bytes)));
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.client === socket) this.client = null;
    });
  }
}
