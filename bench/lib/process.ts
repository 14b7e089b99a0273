// Running a benchmark subject as a child process and timing it from spawn to exit, and optionally to
// markers in its output (a boot benchmark's "login:" or "GUEST-POWEROFF").
import { spawn } from 'node:child_process';
import { BenchGuestError } from './errors.js';

export interface ProcessRun {
  readonly wallMs: number;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** ms from spawn to the first appearance of each marker in stdout; absent markers are missing. */
  readonly markerMs: Readonly<Record<string, number>>;
  /** The child was killed because the last marker appeared (ProcessOptions.stopAtLastMarker). */
  readonly stoppedAtMarker: boolean;
}

export interface ProcessOptions {
  /** Strings to time in stdout. */
  readonly markers?: readonly string[];
  /** Kill the child (SIGKILL) once every marker has appeared, instead of waiting for it to exit. */
  readonly stopAtLastMarker?: boolean;
}

/**
 * Runs `command args` with stdin closed, collecting its output. A child still running after `timeoutMs`
 * is killed and reported as a BenchGuestError (a guest that never powers off must not hang the runner).
 */
export function runProcess(
  benchmark: string,
  command: string,
  args: readonly string[],
  timeoutMs: number,
  options: ProcessOptions = {},
): Promise<ProcessRun> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const markers = options.markers ?? [];
    const markerMs: Record<string, number> = {};
    // Markers are searched in the decoded text so far, so one split across chunks is still found.
    let text = '';
    let stoppedAtMarker = false;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout.push(chunk);
      if (markers.length === 0) return;
      const now = performance.now() - start;
      text += chunk.toString('utf8');
      for (const marker of markers) if (markerMs[marker] === undefined && text.includes(marker)) markerMs[marker] = now;
      if (options.stopAtLastMarker && !stoppedAtMarker && markers.every((m) => markerMs[m] !== undefined)) {
        stoppedAtMarker = true;
        child.kill('SIGKILL');
      }
    });
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
      if (timedOut && !stoppedAtMarker) {
        reject(new BenchGuestError(benchmark, `${command} did not finish within ${timeoutMs / 1000} s (killed)`, out + err));
        return;
      }
      resolve({ wallMs, exitCode, signal, stdout: out, stderr: err, markerMs, stoppedAtMarker });
    });
  });
}
