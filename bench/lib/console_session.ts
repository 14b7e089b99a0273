// A guest driven through its serial console: a child VMM process whose stdin is piped, so a benchmark can
// wait for the shell prompt, type commands and time the markers they print, as a person at the console
// would. Output is searched forwards only: each wait starts where the previous one matched, so a marker
// printed by an earlier command (or echoed with the typed line) is never taken for a later one.
import { spawn, type ChildProcess } from 'node:child_process';
import { BenchGuestError } from './errors.js';

export interface SessionExit {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** ms from spawn. */
  readonly atMs: number;
}

export interface WaitResult {
  /** ms from spawn to the arrival of the chunk that completed `text`. */
  readonly atMs: number;
  /** The output between the previous match and the start of this one. */
  readonly before: string;
}

export class ConsoleSession {
  private readonly child: ChildProcess;
  private readonly start = performance.now();
  private output = '';
  /** Where the next wait starts searching. */
  private cursor = 0;
  private exit: SessionExit | null = null;
  private waiter: { text: string; resolve: (result: WaitResult) => void; reject: (error: Error) => void; timer: NodeJS.Timeout } | null = null;
  private readonly exited: Promise<SessionExit>;
  private readonly overallTimer: NodeJS.Timeout;
  private killedForTimeout = false;

  /**
   * Spawns `command args` with piped stdio. The child is killed (SIGKILL) if it is still running after
   * `timeoutMs`, and any wait then fails with the output so far.
   */
  constructor(readonly benchmark: string, command: string, args: readonly string[], readonly timeoutMs: number) {
    this.child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    // A guest that exits while we still type must not crash the runner with EPIPE.
    this.child.stdin!.on('error', () => {});
    this.child.stdout!.on('data', (chunk: Buffer) => {
      this.output += chunk.toString('latin1');
      this.checkWaiter();
    });
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.output += chunk.toString('latin1');
      this.checkWaiter();
    });
    this.overallTimer = setTimeout(() => {
      this.killedForTimeout = true;
      this.child.kill('SIGKILL');
    }, timeoutMs);
    this.exited = new Promise((resolve) => {
      this.child.on('error', (error) => {
        this.output += `\n[cannot start ${command}: ${error.message}]\n`;
        this.finish({ exitCode: null, signal: null, atMs: this.now() }, resolve);
      });
      this.child.on('close', (exitCode, signal) => this.finish({ exitCode, signal, atMs: this.now() }, resolve));
    });
  }

  /** The child's pid (for reading its CPU time from /proc), or undefined if it could not start. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** ms since spawn. */
  now(): number {
    return performance.now() - this.start;
  }

  /** Everything the child printed so far (stdout and stderr interleaved by arrival). */
  get text(): string {
    return this.output;
  }

  send(text: string): void {
    if (this.exit === null) this.child.stdin!.write(text);
  }

  /** Resolves when `text` appears after the previous match; rejects if the child exits or times out first. */
  waitFor(text: string): Promise<WaitResult> {
    if (this.waiter !== null) throw new Error(`ConsoleSession.waitFor("${text}") while waiting for "${this.waiter.text}"`);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.failWaiter(`"${text}" did not appear within ${this.timeoutMs / 1000} s`), this.timeoutMs);
      this.waiter = { text, resolve, reject, timer };
      this.checkWaiter();
    });
  }

  /** Waits for the child to exit; kills it if it has not within `graceMs`. */
  async finished(graceMs: number): Promise<SessionExit> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends the child now (SIGKILL) and waits for it: for error paths, so no guest outlives its benchmark. */
  async kill(): Promise<void> {
    if (this.exit === null) this.child.kill('SIGKILL');
    await this.exited;
  }

  private checkWaiter(): void {
    const waiter = this.waiter;
    if (waiter === null) return;
    const index = this.output.indexOf(waiter.text, this.cursor);
    if (index < 0) {
      if (this.exit !== null) this.failWaiter(`exited (status ${this.exit.exitCode ?? this.exit.signal}) before printing "${waiter.text}"`);
      return;
    }
    const before = this.output.slice(this.cursor, index);
    this.cursor = index + waiter.text.length;
    clearTimeout(waiter.timer);
    this.waiter = null;
    waiter.resolve({ atMs: this.now(), before });
  }

  private failWaiter(reason: string): void {
    const waiter = this.waiter;
    if (waiter === null) return;
    clearTimeout(waiter.timer);
    this.waiter = null;
    const why = this.killedForTimeout ? `was killed after ${this.timeoutMs / 1000} s; ${reason}` : reason;
    waiter.reject(new BenchGuestError(this.benchmark, why, this.output.slice(-4000)));
  }

  private finish(exit: SessionExit, resolve: (exit: SessionExit) => void): void {
    if (this.exit !== null) return;
    this.exit = exit;
    clearTimeout(this.overallTimer);
    this.checkWaiter();
    resolve(exit);
  }
}

/** The prompt of the shared guest's root shell. */
export const GUEST_PROMPT = 'root@rvguest:/# ';

/**
 * A marker line a shell command prints when it reaches a point, written so that the typed command (which
 * the terminal echoes) does not contain it: `echo WKVM-MARK-name-$((40+2))` prints `WKVM-MARK-name-42`.
 */
export function shellMarker(name: string): { readonly command: string; readonly printed: string } {
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`shell marker name "${name}" must be letters, digits, - and _`);
  return { command: `echo WKVM-MARK-${name}-$((40+2))`, printed: `WKVM-MARK-${name}-42` };
}

export interface TimedCommand {
  /** Host ms between the begin and end markers printed around the command. */
  readonly hostMs: number;
  /** What the command printed (between the markers). */
  readonly output: string;
}

/**
 * Types `command` at the shell prompt between a begin and an end marker and waits for both, then for the
 * next prompt. The host-side interval includes one console line of latency at each end.
 */
export async function runTimedShellCommand(session: ConsoleSession, name: string, command: string): Promise<TimedCommand> {
  const begin = shellMarker(`${name}-begin`);
  const end = shellMarker(`${name}-end`);
  session.send(`${begin.command}; ${command}; ${end.command}\n`);
  const started = await session.waitFor(begin.printed);
  const ended = await session.waitFor(end.printed);
  await session.waitFor(GUEST_PROMPT);
  return { hostMs: ended.atMs - started.atMs, output: ended.before };
}
