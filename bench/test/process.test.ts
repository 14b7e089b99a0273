// The child-process timer that whole-run and boot benchmarks rely on, against real child processes.
import { describe, expect, it } from 'vitest';
import { runProcess } from '../lib/process.js';
import { BenchGuestError } from '../lib/errors.js';

const node = process.execPath;
// Prints "booting", then "login:" 200 ms later, then waits 30 s (a guest that never powers off).
const SLOW_GUEST = "process.stdout.write('booting\\n'); setTimeout(() => process.stdout.write('log'), 150); " +
  "setTimeout(() => process.stdout.write('in:\\n'), 200); setTimeout(() => {}, 30000);";

describe('runProcess', () => {
  it('collects output and exit status', async () => {
    const run = await runProcess('t', node, ['-e', 'console.log("out"); console.error("err"); process.exit(3)'], 10_000);
    expect(run.stdout).toBe('out\n');
    expect(run.stderr).toBe('err\n');
    expect(run.exitCode).toBe(3);
    expect(run.wallMs).toBeGreaterThan(0);
  });

  it('times markers (also one split across writes) and stops at the last one', async () => {
    const run = await runProcess('t', node, ['-e', SLOW_GUEST], 20_000, { markers: ['booting', 'login:'], stopAtLastMarker: true });
    expect(run.stoppedAtMarker).toBe(true);
    expect(run.signal).toBe('SIGKILL');
    expect(run.markerMs['login:']!).toBeGreaterThan(run.markerMs['booting']!);
    expect(run.markerMs['login:']! - run.markerMs['booting']!).toBeGreaterThanOrEqual(150);
    expect(run.wallMs).toBeLessThan(20_000);
  });

  it('leaves a marker that never appears out of markerMs', async () => {
    const run = await runProcess('t', node, ['-e', 'console.log("booting")'], 10_000, { markers: ['booting', 'login:'] });
    expect(Object.keys(run.markerMs)).toEqual(['booting']);
    expect(run.stoppedAtMarker).toBe(false);
  });

  it('kills a child that outlives its timeout and reports it with its output', async () => {
    await expect(runProcess('slow guest', node, ['-e', SLOW_GUEST], 500)).rejects.toThrow(/slow guest: .* did not finish within 0.5 s[\s\S]*booting/);
  });

  it('reports a command that cannot start', async () => {
    await expect(runProcess('t', '/nonexistent/qemu', [], 5000)).rejects.toThrow(BenchGuestError);
  });
});
