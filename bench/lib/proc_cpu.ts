// CPU time a child process has used, from /proc/PID/stat (Linux): utime + stime cover all its threads, so
// for wkvm they include every vCPU worker, and for QEMU every vCPU and I/O thread.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { BenchError } from './errors.js';

export class ProcStatError extends BenchError {
  constructor(readonly pid: number, readonly reason: string) {
    super(`/proc/${pid}/stat: ${reason}`);
  }
}

export interface CpuTicks {
  readonly userTicks: number;
  readonly systemTicks: number;
}

/**
 * utime and stime (fields 14 and 15 of proc(5)) from one /proc/PID/stat line. The command name (field 2)
 * is in parentheses and may itself hold spaces and parentheses, so fields are counted after the last ')'.
 */
export function parseProcStat(pid: number, line: string): CpuTicks {
  const close = line.lastIndexOf(')');
  if (close < 0) throw new ProcStatError(pid, `no command name in "${line.slice(0, 80)}"`);
  // After ")": field 3 (state) is index 0, so field N is index N - 3.
  const fields = line.slice(close + 1).trim().split(/\s+/);
  const userTicks = Number(fields[14 - 3]);
  const systemTicks = Number(fields[15 - 3]);
  if (!Number.isInteger(userTicks) || !Number.isInteger(systemTicks) || userTicks < 0 || systemTicks < 0) {
    throw new ProcStatError(pid, `utime/stime are not tick counts in "${line.slice(0, 200)}"`);
  }
  return { userTicks, systemTicks };
}

let ticksPerSecond: number | null = null;

/** sysconf(_SC_CLK_TCK), the unit of utime/stime (100 on Linux almost everywhere). */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === null) {
    let value = NaN;
    try {
      value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    } catch {
      // no getconf: fall through to Linux's usual value
    }
    ticksPerSecond = Number.isInteger(value) && value > 0 ? value : 100;
  }
  return ticksPerSecond;
}

/** User + system CPU seconds of process `pid` so far. */
export function processCpuSeconds(pid: number): number {
  let line: string;
  try {
    line = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (error) {
    throw new ProcStatError(pid, `cannot read it (${error instanceof Error ? error.message : String(error)}); the CPU-use benchmark needs Linux's /proc and a running process`);
  }
  const ticks = parseProcStat(pid, line);
  return (ticks.userTicks + ticks.systemTicks) / clockTicksPerSecond();
}
