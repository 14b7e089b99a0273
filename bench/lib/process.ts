// Running a benchmark subject as a child process and timing it from spawn to exit.
import { spawn } from 'node:child_process';
import { BenchGuestError } from './errors.js';

export interface ProcessRun {
  readonly wallMs: number;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `command args` with stdin closed, collecting its output. A child still running after `timeoutMs`
 * is killed and reported as a BenchGuestError (a guest that never powers off must not hang the runner).
 */
export function runProcess(benchmark: string, command: string, args: readonly string[], timeoutMs: number): Promise<ProcessRun> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new BenchGuestError(benchmark, `cannot start ${command}: ${error.message}`));
    });
    child.on('close', (exitCode, signal) => {
      const wallMs = performance.now() - start;
      clearTimeout(timer);
      const out = Buffer.concat(stdout).toString('utf8');
      const err = Buffer.concat(stderr).toString('utf8');
      if (timedOut) {
        reject(new BenchGuestError(benchmark, `${command} did not finish within ${timeoutMs / 1000} s (killed)`, out + err));
        return;
      }
      resolve({ wallMs, exitCode, signal, stdout: out, stderr: err });
    });
  });
}
