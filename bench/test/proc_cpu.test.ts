// Reading a process's CPU time from /proc/PID/stat, for the idle-guest benchmark.
import { describe, expect, it } from 'vitest';
import { ProcStatError, clockTicksPerSecond, parseProcStat, processCpuSeconds } from '../lib/proc_cpu.js';

describe('parseProcStat', () => {
  it('takes utime and stime (fields 14 and 15)', () => {
    const line = '4242 (node) S 1 4242 4242 0 -1 4194560 9000 0 0 0 1234 56 0 0 20 0 11 0 100 1000000 5000 18446744073709551615';
    expect(parseProcStat(4242, line)).toEqual({ userTicks: 1234, systemTicks: 56 });
  });

  it('counts fields after the last parenthesis, so a command name with spaces and ")" does not shift them', () => {
    const line = '7 (qemu) sys (x)) R 1 7 7 0 -1 0 0 0 0 0 300 20 0 0 20 0 3 0 100 1 1 1';
    expect(parseProcStat(7, line)).toEqual({ userTicks: 300, systemTicks: 20 });
  });

  it('refuses a line that is not a stat line', () => {
    expect(() => parseProcStat(1, 'garbage')).toThrow(ProcStatError);
    expect(() => parseProcStat(1, '1 (x) S 1 2 3')).toThrow(/utime\/stime are not tick counts/);
  });
});

describe('processCpuSeconds', () => {
  it('reads this process, and grows as it computes', () => {
    const before = processCpuSeconds(process.pid);
    const until = process.cpuUsage().user + 300_000;
    while (process.cpuUsage().user < until) Math.sqrt(Math.random());
    expect(processCpuSeconds(process.pid)).toBeGreaterThan(before);
    expect(clockTicksPerSecond()).toBeGreaterThan(0);
  });

  it('says which pid it could not read', () => {
    expect(() => processCpuSeconds(2 ** 30)).toThrow(/\/proc\/1073741824\/stat: cannot read it/);
  });
});
