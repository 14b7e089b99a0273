// The whole-run benchmark: intbench.elf (about 298.6 M instructions of integer kernels) booted through the
// virt machine, in this process, through the wkvm CLI, or under QEMU. Every run must print the expected
// checksum line, so a fast but wrong core never produces a figure.
import { VirtMachine } from '../../host/vmm/virt_machine.js';
import type { Hypervisor } from '../../host/kvm/hypervisor.js';
import type { VcpuExit } from '../../host/kvm/exits.js';
import { VIRT_MEMMAP } from '../../host/vmm/memmap.js';
import { BenchGuestError } from './errors.js';
import { runProcess } from './process.js';

/** The checksum intbench.c computes; the guest prints it with `ok` when its own check agrees. */
export const INTBENCH_CHECKSUM = '0x2263cca8';

export interface KernelLine {
  readonly name: string;
  readonly rounds: number;
  readonly result: string;
  readonly instructions: number;
}

export interface IntbenchReport {
  readonly kernels: readonly KernelLine[];
  readonly checksum: string;
  /** Instructions the kernels retired (the guest's own minstret difference). */
  readonly kernelInstructions: number;
}

const KERNEL_LINE = /^intbench: (\S+) rounds=(\d+) result=(0x[0-9a-f]+) insns=(\d+)$/;
const SUMMARY_LINE = /^intbench: checksum=(0x[0-9a-f]+) insns=(\d+) (ok|FAIL)$/;

/**
 * Reads intbench's console output. Throws BenchGuestError unless the summary line is there, says `ok`
 * and carries the expected checksum.
 */
export function parseIntbenchOutput(subject: string, output: string): IntbenchReport {
  const kernels: KernelLine[] = [];
  let summary: RegExpExecArray | null = null;
  for (const raw of output.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const kernel = KERNEL_LINE.exec(line);
    if (kernel) {
      kernels.push({ name: kernel[1]!, rounds: Number(kernel[2]), result: kernel[3]!, instructions: Number(kernel[4]) });
      continue;
    }
    summary ??= SUMMARY_LINE.exec(line);
  }
  if (summary === null) throw new BenchGuestError(subject, 'intbench printed no checksum line', output);
  const [, checksum, insns, verdict] = summary;
  if (verdict !== 'ok' || checksum !== INTBENCH_CHECKSUM) {
    throw new BenchGuestError(subject, `intbench checksum ${checksum} ${verdict} (expected ${INTBENCH_CHECKSUM} ok)`, output);
  }
  return { kernels, checksum: checksum!, kernelInstructions: Number(insns) };
}

export interface WkvmIntbenchRun {
  /** VirtMachine.create (ELF load, VM setup) plus run, in ms. */
  readonly wallMs: number;
  readonly runMs: number;
  /** minstret of hart 0 at power-off: every instruction of the run, boot code included. */
  readonly instructions: number;
  readonly mips: number;
  readonly report: IntbenchReport;
  /** When the guest stored each kernel line's newline into the UART, ms after run() began. */
  readonly kernelLineAtMs: readonly number[];
}

export interface WkvmIntbenchOptions {
  readonly elf: string;
  readonly hypervisor?: Hypervisor;
  readonly sliceInstructions?: number;
  readonly timeoutMs: number;
}

/** Boots intbench.elf in this process and times it. */
export async function runIntbenchInProcess(options: WkvmIntbenchOptions): Promise<WkvmIntbenchRun> {
  const subject = `wkvm (slice ${options.sliceInstructions ?? 'default'})`;
  let output = '';
  const lineTimes: number[] = [];
  let runStart = 0;
  const decoder = new TextDecoder();
  const start = performance.now();
  const machine = await VirtMachine.create({
    memoryBytes: 128 * 1024 * 1024,
    bios: 'none',
    kernel: options.elf,
    hypervisor: options.hypervisor,
    sliceInstructions: options.sliceInstructions,
    console: {
      write: (bytes) => {
        output += decoder.decode(bytes, { stream: true });
      },
    },
  });
  // The console backend sees output only when the VMM flushes it (at its event-loop yields, up to a whole
  // slice late), so lines are timed where the guest writes them: the UART store's MMIO exit.
  const vcpu = machine.vcpu;
  const runSlice = vcpu.run.bind(vcpu);
  const uartData = VIRT_MEMMAP.uart0.base;
  vcpu.run = (budget?: number): VcpuExit => {
    const exit = runSlice(budget);
    if (exit.reason === 'mmio' && exit.isWrite && exit.addr === uartData && exit.data === 0x0an) lineTimes.push(performance.now() - runStart);
    return exit;
  };
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    machine.stop(124);
  }, options.timeoutMs);
  runStart = performance.now();
  let outcome;
  try {
    outcome = await machine.run();
  } finally {
    clearTimeout(timer);
  }
  const end = performance.now();
  if (timedOut) throw new BenchGuestError(subject, `did not power off within ${options.timeoutMs / 1000} s`, output);
  if (outcome.kind !== 'poweroff' || outcome.status !== 0) {
    throw new BenchGuestError(subject, `guest ended with ${outcome.kind === 'poweroff' ? `status ${outcome.status}` : 'a reset'}`, output);
  }
  const report = parseIntbenchOutput(subject, output);
  const instructions = Number(vcpu.instructionsRetired);
  const runMs = end - runStart;
  return {
    wallMs: end - start,
    runMs,
    instructions,
    mips: instructions / (runMs * 1000),
    report,
    kernelLineAtMs: lineTimes.slice(0, report.kernels.length),
  };
}

export interface ProcessIntbenchRun {
  readonly wallMs: number;
  readonly report: IntbenchReport;
}

/** Runs intbench as a child process (QEMU, or the wkvm CLI) and times it from spawn to exit. */
export async function runIntbenchProcess(subject: string, command: string, args: readonly string[], timeoutMs: number): Promise<ProcessIntbenchRun> {
  const run = await runProcess(subject, command, args, timeoutMs);
  if (run.exitCode !== 0) {
    throw new BenchGuestError(subject, `exited with ${run.exitCode ?? run.signal}`, run.stdout + run.stderr);
  }
  return { wallMs: run.wallMs, report: parseIntbenchOutput(subject, run.stdout) };
}

export function qemuIntbenchArgs(elf: string): string[] {
  return ['-M', 'virt', '-m', '128M', '-bios', 'none', '-nographic', '-kernel', elf];
}

export function wkvmCliIntbenchArgs(cli: string, elf: string): string[] {
  return [cli, 'run', '-M', 'virt', '-m', '128M', '-bios', 'none', '-kernel', elf, '-nographic'];
}
