// A guest's serial console driven live, for tests where two VMs take turns (the scripted input of
// runWkvm cannot wait for another process's output): waits for text on stdout, types commands.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

export class GuestConsole {
  private output = '';
  private errors = '';
  private readonly child: ChildProcessWithoutNullStreams;
  private waiters: Array<() => void> = [];
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    command: string,
    args: readonly string[],
    options: { cwd?: string } = {},
  ) {
    this.child = spawn(command, args, { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (chunk: Buffer) => this.heard(() => {
      this.output += chunk.toString('latin1');
    }));
    this.child.stderr.on('data', (chunk: Buffer) => this.heard(() => {
      this.errors += chunk.toString('latin1');
    }));
    this.child.stdin.on('error', () => {});
    this.exited = new Promise((resolve, reject) => {
      this.child.on('error', reject);
      this.child.on('close', (status) => this.heard(() => resolve(status)));
    });
  }

  get stdout(): string {
    return this.output;
  }

  get stderr(): string {
    return this.errors;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves once stdout holds `occurrence` copies of `marker`; rejects if the process ends first or after `timeoutMs`. */
  async waitFor(marker: string | RegExp, timeoutMs = 45_000, occurrence = 1): Promise<void> {
    const count = (): number => (typeof marker === 'string'
      ? this.output.split(marker).length - 1
      : [...this.output.matchAll(new RegExp(marker.source, `${marker.flags.replace('g', '')}g`))].length);
    const deadline = Date.now() + timeoutMs;
    while (count() < occurrence) {
      if (!this.running) throw new Error(`${this.name} ended before printing ${String(marker)}; stdout:\n${this.output.slice(-3000)}\nstderr:\n${this.errors}`);
      if (Date.now() > deadline) throw new Error(`${this.name} never printed ${String(marker)}; stdout:\n${this.output.slice(-3000)}\nstderr:\n${this.errors}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 500);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  type(text: string): void {
    this.child.stdin.write(text);
  }

  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }

  private heard(update: () => void): void {
    update();
    for (const wake of this.waiters.splice(0)) wake();
  }
}
