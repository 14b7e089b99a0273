// Whole boots of the shared Linux guest as child processes, timed from spawn: to GUEST-READY (the guest's
// /init is up) and to the VMM's exit after the guest powers off. A run counts only if it printed both
// markers and exited with status 0; bench mode also needs its known results.
import { BenchGuestError } from './errors.js';
import { parseGuestBench, type GuestBenchReport } from './guest_output.js';
import type { LinuxCommand } from './linux_guest.js';
import { runProcess } from './process.js';

export interface BootRun {
  /** ms from spawn to GUEST-READY on the console. */
  readonly readyMs: number;
  /** ms from spawn to the VMM's exit (after GUEST-POWEROFF). */
  readonly exitMs: number;
}

export interface BenchModeRun extends BootRun {
  readonly report: GuestBenchReport;
}

async function bootToPoweroff(subject: string, command: LinuxCommand, timeoutMs: number): Promise<BootRun & { stdout: string }> {
  const run = await runProcess(subject, command.command, command.args, timeoutMs, { markers: ['GUEST-READY', 'GUEST-POWEROFF'] });
  const output = run.stdout + run.stderr;
  if (run.exitCode !== 0) throw new BenchGuestError(subject, `exited with ${run.exitCode ?? run.signal} (expected status 0 after power-off)`, output);
  const readyMs = run.markerMs['GUEST-READY'];
  if (readyMs === undefined) throw new BenchGuestError(subject, 'the guest never printed GUEST-READY', output);
  if (run.markerMs['GUEST-POWEROFF'] === undefined) throw new BenchGuestError(subject, 'the guest exited without printing GUEST-POWEROFF', output);
  return { readyMs, exitMs: run.wallMs, stdout: run.stdout };
}

/** `guest.mode=poweroff`: boot, print GUEST-READY, power off. */
export async function timePoweroffBoot(command: LinuxCommand, timeoutMs: number): Promise<BootRun> {
  const { readyMs, exitMs } = await bootToPoweroff(`boot (${command.label})`, command, timeoutMs);
  return { readyMs, exitMs };
}

/** `guest.mode=bench`: boot, run the guest's seven-step workload (results checked), power off. */
export async function timeBenchMode(command: LinuxCommand, timeoutMs: number): Promise<BenchModeRun> {
  const subject = `guest bench mode (${command.label})`;
  const run = await bootToPoweroff(subject, command, timeoutMs);
  return { readyMs: run.readyMs, exitMs: run.exitMs, report: parseGuestBench(subject, run.stdout) };
}
