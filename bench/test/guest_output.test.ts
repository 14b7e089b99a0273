// The gates on guest output: a boot-suite figure counts only with the guest bench's known results, a disk
// figure only with a complete dd transfer, a litmus time only with PASS and exact totals.
import { describe, expect, it } from 'vitest';
import { BenchGuestError } from '../lib/errors.js';
import { GUEST_BENCH_EXPECTED, expectDdTransfer, expectRandio, parseBusyboxDd, parseGuestBench, parseLitmus } from '../lib/guest_output.js';

function benchOutput(overrides: Record<string, string> = {}, { total = true, done = true } = {}): string {
  const lines = ['[    0.5] Run /init as init process', 'GUEST-READY', 'guest: bench scale=1 cpus=1'];
  for (const [name, result] of Object.entries({ ...GUEST_BENCH_EXPECTED, ...overrides })) {
    lines.push(`GUEST-BENCH ${name} result=[${result}] seconds=1.25`);
  }
  if (total) lines.push('GUEST-BENCH total seconds=8.75');
  if (done) lines.push('GUEST-BENCH-DONE');
  lines.push('GUEST-POWEROFF');
  return lines.map((l) => `${l}\r\n`).join('');
}

describe('parseGuestBench', () => {
  it('reads every step and the total when the results are the known ones', () => {
    const report = parseGuestBench('t', benchOutput());
    expect(report.steps.map((s) => s.name)).toEqual(Object.keys(GUEST_BENCH_EXPECTED));
    expect(report.steps[0]!.seconds).toBe(1.25);
    expect(report.totalSeconds).toBe(8.75);
  });

  it('refuses a wrong result, naming the step', () => {
    expect(() => parseGuestBench('t', benchOutput({ 'zero-sha256': '0'.repeat(64) }))).toThrow(/zero-sha256 gave \[0{64}\], expected \[83ee4724/);
  });

  it('refuses a missing step, a missing total and a missing GUEST-BENCH-DONE', () => {
    const withoutSort = benchOutput().split('\n').filter((l) => !l.includes('GUEST-BENCH sort ')).join('\n');
    expect(() => parseGuestBench('t', withoutSort)).toThrow(/sort printed 0 times/);
    expect(() => parseGuestBench('t', benchOutput({}, { total: false }))).toThrow(/no total line/);
    expect(() => parseGuestBench('t', benchOutput({}, { done: false }))).toThrow(BenchGuestError);
  });

  it('refuses a step printed twice and an unknown step', () => {
    expect(() => parseGuestBench('t', benchOutput() + 'GUEST-BENCH sort result=[x] seconds=0.01\n')).toThrow(/sort printed 2 times/);
    expect(() => parseGuestBench('t', benchOutput() + 'GUEST-BENCH extra result=[x] seconds=0.01\n')).toThrow(/unknown step extra/);
  });
});

// Busybox 1.35 dd, as the shared guest prints it over the serial console.
const DD_1M = '64+0 records in\r\n64+0 records out\r\n67108864 bytes (64.0MB) copied, 0.303611 seconds, 210.8MB/s\r\n';

describe('busybox dd output', () => {
  it('reads records, bytes and seconds', () => {
    expect(parseBusyboxDd('t', `echoed command\r\n${DD_1M}`)).toEqual([
      { fullRecordsIn: 64, partialRecordsIn: 0, fullRecordsOut: 64, partialRecordsOut: 0, bytes: 67108864, seconds: 0.303611 },
    ]);
  });

  it('reads several summaries in order', () => {
    const small = '4096+0 records in\n4096+0 records out\n16777216 bytes (16.0MB) copied, 1.271639 seconds, 12.6MB/s\n';
    expect(parseBusyboxDd('t', DD_1M + small).map((d) => d.bytes)).toEqual([67108864, 16777216]);
  });

  it('accepts exactly the transfer asked for', () => {
    expect(expectDdTransfer('t', DD_1M, 64 * 1024 * 1024, 1024 * 1024).seconds).toBe(0.303611);
  });

  it('refuses a short transfer, partial records, no summary, and a copied line without its records', () => {
    const short = '3+1 records in\r\n3+1 records out\r\n3500000 bytes (3.3MB) copied, 0.01 seconds, 300MB/s\r\n';
    expect(() => expectDdTransfer('t', short, 64 * 1024 * 1024, 1024 * 1024)).toThrow(/dd moved 3500000 bytes \(3\+1 in, 3\+1 out\)/);
    expect(() => expectDdTransfer('t', "dd: can't open '/dev/vda': No such file or directory\r\n", 4096, 4096)).toThrow(/found 0/);
    expect(() => parseBusyboxDd('t', '67108864 bytes (64.0MB) copied, 0.3 seconds, 210.8MB/s\n')).toThrow(/without its records lines/);
  });
});

function litmusOutput(harts: number, { total = harts * 1_000_000, errors = 0, verdict = 'PASS' } = {}): string {
  return [
    `smp-litmus: harts=${harts} (device tree), timebase=10000000 Hz`,
    'smp-litmus: iterations=1000000 per hart, mp-rounds=10000, payload=16 words',
    `smp-litmus: amoadd=${total} (expected ${harts * 1_000_000}) in 124 ms, overlap 98%`,
    `smp-litmus: lrsc=${total} (expected ${harts * 1_000_000}, sc failures 12) in 279 ms, overlap 97%`,
    `smp-litmus: spinlock=${total} (expected ${harts * 1_000_000}, contended acquisitions 5) in 548 ms, overlap 90%`,
    `smp-litmus: mp-rounds=10000 consumers=${harts - 1} messages-checked=${(harts - 1) * 10000} mp-errors=${errors} in 26 ms`,
    'smp-litmus: waits: sleeps=578 ipi-wakeups=535 timer-wakeups=0 other-wakeups=43',
    `smp-litmus: harts=${harts} amoadd=${total} lrsc=${total} spinlock=${total} mp-rounds=10000 mp-errors=${errors}`,
    `smp-litmus: ${verdict}`,
  ].join('\n');
}

describe('parseLitmus', () => {
  it('reads the hart count and phase times of a passing run', () => {
    const report = parseLitmus('t', litmusOutput(2), 2);
    expect(report.harts).toBe(2);
    expect(report.phaseMs).toEqual({ amoadd: 124, lrsc: 279, spinlock: 548, 'mp-rounds': 26 });
  });

  it('refuses a FAIL, the wrong hart count, inexact totals and message errors', () => {
    const failed = litmusOutput(2, { verdict: 'FAIL amoadd=1007590, expected 2000000 (lost 992410 updates)' });
    expect(() => parseLitmus('t', failed, 2)).toThrow(/FAIL amoadd=1007590/);
    expect(() => parseLitmus('t', litmusOutput(2), 4)).toThrow(/found 2 harts, expected 4/);
    expect(() => parseLitmus('t', litmusOutput(2, { total: 1_999_999 }), 2)).toThrow(/not exact/);
    expect(() => parseLitmus('t', litmusOutput(2, { errors: 3 }), 2)).toThrow(/not exact/);
  });
});

describe('randio output', () => {
  const READ = 'randio: op=read block=4096 count=4096 ns=1644159900 or=a5 and=a5\r\n';
  it('reads the operation, size, count and the guest-clock time', () => {
    const report = expectRandio('t', `typed line\r\n${READ}`, { operation: 'read', block: 4096, count: 4096, fill: 0xa5 });
    expect(report).toEqual({ operation: 'read', block: 4096, count: 4096, seconds: 1.6441599, or: 0xa5, and: 0xa5 });
    const write = expectRandio('t', 'randio: op=write block=4096 count=2048 ns=721923600\n', { operation: 'write', block: 4096, count: 2048 });
    expect(write.or).toBeNull();
  });

  it('refuses bytes other than the fill, another request count, errors and missing reports', () => {
    expect(() => expectRandio('t', READ.replace('and=a5', 'and=00'), { operation: 'read', block: 4096, count: 4096, fill: 0xa5 })).toThrow(/other than 0xa5/);
    expect(() => expectRandio('t', READ, { operation: 'read', block: 4096, count: 100 })).toThrow(/expected read 100/);
    expect(() => expectRandio('t', 'randio: error: pread (errno 5)\n', { operation: 'read', block: 4096, count: 1 })).toThrow(/errno 5/);
    expect(() => expectRandio('t', 'nothing\n', { operation: 'read', block: 4096, count: 1 })).toThrow(/found 0/);
    expect(() => expectRandio('t', READ + READ, { operation: 'read', block: 4096, count: 4096 })).toThrow(/found 2/);
  });

  it('reads a report that a kernel message landed in the middle of', () => {
    // Seen with QEMU: "random: crng init done" printed before randio's newline.
    const interrupted = 'randio: op=read block=4096 count=4096 ns=673919300 or=a5 and=a5[    7.430331] random: crng init done\r\n\r\n';
    expect(expectRandio('t', interrupted, { operation: 'read', block: 4096, count: 4096, fill: 0xa5 }).seconds).toBeCloseTo(0.6739193);
    const split = 'randio: op=read block=4096 co[   12.000001] virtio_blk virtio0: [vda] 262144 512-byte logical blocks\r\nunt=4096 ns=5 or=a5 and=a5\r\n';
    expect(expectRandio('t', split, { operation: 'read', block: 4096, count: 4096, fill: 0xa5 }).count).toBe(4096);
  });
});
