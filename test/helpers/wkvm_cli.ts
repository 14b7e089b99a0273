// Runs the real `wkvm` command (bin/wkvm.js over the built dist/) as a user would.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const WKVM = `${REPO}bin/wkvm.js`;
export const SHARED_GUEST = fileURLToPath(new URL('../../../shared/guest/', import.meta.url));

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Text written to the guest's console (stdin), optionally after waiting for a marker on stdout. */
  input?: Array<{ after?: string; send: string; /** wait for this many occurrences of `after` (default 1) */ occurrence?: number }>;
  timeoutMs?: number;
  /** Stop the process once stderr matches this (the result then has status null). */
  stopWhenStderr?: RegExp;
  /** Extra environment variables for the child. */
  env?: Record<string, string>;
}

export function runWkvm(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WKVM, ...args], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
    let stdout = '';
    let stderr = '';
    const pending = [...(options.input ?? [])];
    const feed = () => {
      const seen = (marker: string) => stdout.split(marker).length - 1;
      while (pending.length > 0 && (pending[0]!.after === undefined || seen(pending[0]!.after) >= (pending[0]!.occurrence ?? 1))) {
        child.stdin.write(pending.shift()!.send);
      }
    };
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('latin1');
      feed();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('latin1');
      if (options.stopWhenStderr?.test(stderr)) child.kill('SIGTERM');
    });
    child.stdin.on('error', () => {});
    feed();
    if (pending.length === 0 && options.input === undefined) child.stdin.end();
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`wkvm ${args.join(' ')} timed out; stdout so far:\n${stdout.slice(-3000)}\nstderr:\n${stderr}`));
    }, options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}
