// Reading what the guest printed: the shared guest's bench mode (whose results must be the known values
// before its time counts), busybox dd's summary lines, and the smp-litmus program's report.
import { BenchGuestError } from './errors.js';

/**
 * The results of the shared guest's `guest.mode=bench` steps (../shared/guest/README.md): deterministic,
 * checked there against host-side commands and identical with -smp 1 and 2.
 */
export const GUEST_BENCH_EXPECTED: Readonly<Record<string, string>> = {
  'zero-sha256': '83ee47245398adee79bd9c0a8bc57b821e92aba10f5f9ade8a5d1fae4d8c4302',
  'seq-gzip': 'bytes=168894 gz=62543 md5=5c22e3e4c02d57e3ba80daa3772219f2',
  'gunzip-check': 'ok md5=0a61f0919f546ce04fc119b028b88a2e',
  'sort': '0682c0cc4861f22634f26bef4dd9dd3a',
  'tr-mem': 'de89461b64701958984c95d1bfb0065a',
  'shell-loop': 'n=5000 s=877942',
  'awk-loop': 'n=50000 s=505398',
};

export interface GuestBenchStep {
  readonly name: string;
  readonly result: string;
  /** The guest's own timing, from /proc/uptime (10 ms resolution). */
  readonly seconds: number;
}

export interface GuestBenchReport {
  readonly steps: readonly GuestBenchStep[];
  readonly totalSeconds: number;
}

const STEP_LINE = /^GUEST-BENCH (\S+) result=\[(.*)\] seconds=(\d+\.\d+)$/;
const TOTAL_LINE = /^GUEST-BENCH total seconds=(\d+\.\d+)$/;

/**
 * The console's lines without the kernel's messages, which can land in the middle of a program's line
 * ("...and=a5[    7.430331] random: crng init done" and the rest after it): each runs from its
 * timestamp to its newline, and taking it out joins the program's line again.
 */
function lines(output: string): string[] {
  return output.replace(KERNEL_MESSAGE, '').split('\n').map((line) => line.replace(/\r$/, ''));
}
const KERNEL_MESSAGE = /\[ *\d+\.\d{6}\] [^\r\n]*\r?\n/g;

/**
 * The bench-mode report, checked: every expected step present once with its known result, the total
 * line and GUEST-BENCH-DONE. Throws BenchGuestError naming the first thing that is wrong.
 */
export function parseGuestBench(subject: string, output: string): GuestBenchReport {
  const steps: GuestBenchStep[] = [];
  let totalSeconds: number | null = null;
  let done = false;
  for (const line of lines(output)) {
    const step = STEP_LINE.exec(line);
    if (step) {
      steps.push({ name: step[1]!, result: step[2]!, seconds: Number(step[3]) });
      continue;
    }
    const total = TOTAL_LINE.exec(line);
    if (total) totalSeconds = Number(total[1]);
    else if (line === 'GUEST-BENCH-DONE') done = true;
  }
  for (const [name, expected] of Object.entries(GUEST_BENCH_EXPECTED)) {
    const found = steps.filter((s) => s.name === name);
    if (found.length !== 1) throw new BenchGuestError(subject, `guest bench step ${name} printed ${found.length} times (expected once)`, output);
    if (found[0]!.result !== expected) {
      throw new BenchGuestError(subject, `guest bench step ${name} gave [${found[0]!.result}], expected [${expected}]`, output);
    }
  }
  const unknown = steps.find((s) => GUEST_BENCH_EXPECTED[s.name] === undefined);
  if (unknown !== undefined) throw new BenchGuestError(subject, `guest bench printed an unknown step ${unknown.name}`, output);
  if (totalSeconds === null) throw new BenchGuestError(subject, 'guest bench printed no total line', output);
  if (!done) throw new BenchGuestError(subject, 'guest bench did not print GUEST-BENCH-DONE', output);
  return { steps, totalSeconds };
}

/** One busybox dd summary: "64+0 records in", "64+0 records out", "67108864 bytes (64.0MB) copied, 0.30 seconds, 210.8MB/s". */
export interface DdSummary {
  readonly fullRecordsIn: number;
  readonly partialRecordsIn: number;
  readonly fullRecordsOut: number;
  readonly partialRecordsOut: number;
  readonly bytes: number;
  /** dd's own measurement (the guest's monotonic clock), from before the first read to after the last write. */
  readonly seconds: number;
}

const RECORDS_LINE = /^(\d+)\+(\d+) records (in|out)$/;
const COPIED_LINE = /^(\d+) bytes \([^)]*\) copied, (\d+(?:\.\d+)?) seconds, .*$/;

/** Every dd summary in `text`, in order. A "copied" line without its two records lines is an error. */
export function parseBusyboxDd(subject: string, text: string): DdSummary[] {
  const summaries: DdSummary[] = [];
  let recordsIn: [number, number] | null = null;
  let recordsOut: [number, number] | null = null;
  for (const line of lines(text)) {
    const records = RECORDS_LINE.exec(line);
    if (records) {
      const counts: [number, number] = [Number(records[1]), Number(records[2])];
      if (records[3] === 'in') recordsIn = counts;
      else recordsOut = counts;
      continue;
    }
    const copied = COPIED_LINE.exec(line);
    if (copied === null) continue;
    if (recordsIn === null || recordsOut === null) throw new BenchGuestError(subject, `dd printed "${line}" without its records lines`, text);
    summaries.push({
      fullRecordsIn: recordsIn[0], partialRecordsIn: recordsIn[1],
      fullRecordsOut: recordsOut[0], partialRecordsOut: recordsOut[1],
      bytes: Number(copied[1]), seconds: Number(copied[2]),
    });
    recordsIn = recordsOut = null;
  }
  return summaries;
}

/**
 * The one dd summary of a step, which must have moved exactly `bytes` in full records. A short transfer
 * (a disk smaller than expected, an I/O error) is an error, not a fast figure.
 */
export function expectDdTransfer(subject: string, text: string, bytes: number, blockSize: number): DdSummary {
  const summaries = parseBusyboxDd(subject, text);
  if (summaries.length !== 1) throw new BenchGuestError(subject, `expected one dd summary, found ${summaries.length}`, text);
  const dd = summaries[0]!;
  const records = bytes / blockSize;
  if (dd.bytes !== bytes || dd.fullRecordsIn !== records || dd.fullRecordsOut !== records || dd.partialRecordsIn !== 0 || dd.partialRecordsOut !== 0) {
    throw new BenchGuestError(subject, `dd moved ${dd.bytes} bytes (${dd.fullRecordsIn}+${dd.partialRecordsIn} in, ${dd.fullRecordsOut}+${dd.partialRecordsOut} out), expected ${bytes} bytes in ${records} full records`, text);
  }
  if (!(dd.seconds > 0)) throw new BenchGuestError(subject, `dd reported ${dd.seconds} seconds`, text);
  return dd;
}

/** randio's report (test/guest/linux/randio): random-offset O_DIRECT requests, timed by the guest. */
export interface RandioReport {
  readonly operation: 'read' | 'write';
  readonly block: number;
  readonly count: number;
  readonly seconds: number;
  /** For reads: the OR and AND of every byte read. */
  readonly or: number | null;
  readonly and: number | null;
}

const RANDIO_LINE = /^randio: op=(read|write) block=(\d+) count=(\d+) ns=(\d+)(?: or=([0-9a-f]+) and=([0-9a-f]+))?$/;

/**
 * The one randio line in `text`, checked: the operation, block size and count asked for, a positive time,
 * and for reads of a range that holds only `fill`, OR = AND = fill (every byte read was the fill byte).
 */
export function expectRandio(subject: string, text: string, expected: { operation: 'read' | 'write'; block: number; count: number; fill?: number }): RandioReport {
  const error = lines(text).find((line) => line.startsWith('randio: error') || line.startsWith('usage: randio'));
  if (error !== undefined) throw new BenchGuestError(subject, error, text);
  const found = lines(text).map((line) => RANDIO_LINE.exec(line)).filter((m): m is RegExpExecArray => m !== null);
  if (found.length !== 1) throw new BenchGuestError(subject, `expected one randio report, found ${found.length}`, text);
  const m = found[0]!;
  const report: RandioReport = {
    operation: m[1] as 'read' | 'write', block: Number(m[2]), count: Number(m[3]), seconds: Number(m[4]) / 1e9,
    or: m[5] === undefined ? null : parseInt(m[5], 16), and: m[6] === undefined ? null : parseInt(m[6], 16),
  };
  if (report.operation !== expected.operation || report.block !== expected.block || report.count !== expected.count) {
    throw new BenchGuestError(subject, `randio did ${report.operation} ${report.count} × ${report.block}, expected ${expected.operation} ${expected.count} × ${expected.block}`, text);
  }
  if (!(report.seconds > 0)) throw new BenchGuestError(subject, `randio reported ${report.seconds} seconds`, text);
  if (expected.fill !== undefined && (report.or !== expected.fill || report.and !== expected.fill)) {
    throw new BenchGuestError(subject, `randio read bytes other than 0x${expected.fill.toString(16)} (or=${m[5]} and=${m[6]})`, text);
  }
  return report;
}

export interface LitmusReport {
  readonly harts: number;
  /** Per phase (amoadd, lrsc, spinlock, mp-rounds), the guest's own ms. */
  readonly phaseMs: Readonly<Record<string, number>>;
}

const LITMUS_SUMMARY = /^smp-litmus: harts=(\d+) amoadd=(\d+) lrsc=(\d+) spinlock=(\d+) mp-rounds=(\d+) mp-errors=(\d+)$/;
const LITMUS_PHASE = /^smp-litmus: (amoadd|lrsc|spinlock|mp-rounds)=.* in (\d+) ms/;
const LITMUS_ITERATIONS = /^smp-litmus: iterations=(\d+) per hart, mp-rounds=(\d+)/;

/**
 * smp-litmus's report (test/guest/smp-litmus/README.md), checked: PASS, the expected hart count, and
 * totals of exactly harts × iterations with no message-passing errors.
 */
export function parseLitmus(subject: string, output: string, expectedHarts: number): LitmusReport {
  const all = lines(output);
  if (!all.includes('smp-litmus: PASS')) {
    const failure = all.find((line) => line.startsWith('smp-litmus: FAIL'));
    throw new BenchGuestError(subject, failure ?? 'smp-litmus did not print PASS', output);
  }
  const iterations = all.map((line) => LITMUS_ITERATIONS.exec(line)).find((m) => m !== null);
  const summary = all.map((line) => LITMUS_SUMMARY.exec(line)).find((m) => m !== null);
  if (!iterations || !summary) throw new BenchGuestError(subject, 'smp-litmus printed no iterations or summary line', output);
  const harts = Number(summary[1]);
  const expectedTotal = harts * Number(iterations[1]);
  if (harts !== expectedHarts) throw new BenchGuestError(subject, `smp-litmus found ${harts} harts, expected ${expectedHarts}`, output);
  const totals = [Number(summary[2]), Number(summary[3]), Number(summary[4])];
  if (totals.some((t) => t !== expectedTotal) || Number(summary[5]) !== Number(iterations[2]) || summary[6] !== '0') {
    throw new BenchGuestError(subject, `smp-litmus summary "${summary[0]}" is not exact (expected ${expectedTotal} per counter, ${iterations[2]} rounds, 0 errors)`, output);
  }
  const phaseMs: Record<string, number> = {};
  for (const line of all) {
    const phase = LITMUS_PHASE.exec(line);
    if (phase) phaseMs[phase[1]!] = Number(phase[2]);
  }
  return { harts, phaseMs };
}
