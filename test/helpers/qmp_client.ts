// A QMP client for tests: connects (retrying while the VMM starts), reads CRLF-terminated JSON, keeps
// events apart from replies.
import { createConnection, type Socket } from 'node:net';

export type QmpMessage = Record<string, unknown>;

export class QmpClient {
  readonly events: QmpMessage[] = [];
  private readonly replies: QmpMessage[] = [];
  private buffer = '';
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      this.buffer += text;
      for (let end = this.buffer.indexOf('\r\n'); end >= 0; end = this.buffer.indexOf('\r\n')) {
        const message = JSON.parse(this.buffer.slice(0, end)) as QmpMessage;
        this.buffer = this.buffer.slice(end + 2);
        (message.event !== undefined ? this.events : this.replies).push(message);
      }
      this.notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
    socket.on('error', () => {});
  }

  /** Connects to a unix socket path or a tcp port, retrying until the VMM listens (up to `timeoutMs`). */
  static async connect(where: string | number, timeoutMs = 30_000): Promise<QmpClient> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = typeof where === 'number' ? createConnection(where, '127.0.0.1') : createConnection(where);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        return new QmpClient(socket);
      } catch (error) {
        if (Date.now() > until) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /** The next reply (the greeting first). */
  async reply(): Promise<QmpMessage> {
    await this.until(() => this.replies.length > 0);
    return this.replies.shift()!;
  }

  async execute(command: string, args?: Record<string, unknown>, id?: unknown): Promise<QmpMessage> {
    this.socket.write(`${JSON.stringify({ execute: command, ...(args === undefined ? {} : { arguments: args }), ...(id === undefined ? {} : { id }) })}\n`);
    return this.reply();
  }

  async hmp(commandLine: string): Promise<string> {
    const reply = await this.execute('human-monitor-command', { 'command-line': commandLine });
    return reply.return as string;
  }

  async waitForEvent(name: string): Promise<QmpMessage> {
    await this.until(() => this.events.some((e) => e.event === name));
    return this.events.find((e) => e.event === name)!;
  }

  async waitForClose(): Promise<void> {
    await this.until(() => this.closed);
  }

  close(): void {
    this.socket.destroy();
  }

  private until(done: () => boolean): Promise<void> {
    if (done()) return Promise.resolve();
    if (this.closed) return Promise.reject(new Error('the QMP connection closed'));
    return new Promise((resolve, reject) => {
      const check = () => {
        if (done()) resolve();
        else if (this.closed) reject(new Error('the QMP connection closed'));
        else this.waiters.push(check);
      };
      this.waiters.push(check);
    });
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }
}
