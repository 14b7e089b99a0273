// The gdb stub (-gdb/-s, -S) driven by the real debugger: gdb-multiarch connects to a frozen hart, reads
// registers and memory, stops at a breakpoint, steps, and sees the program exit.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { runWkvm } from '../helpers/wkvm_cli.js';

const hasGdb = spawnSync('sh', ['-c', 'command -v gdb-multiarch']).status === 0;
const HELLO = 'test/guest/hello/hello.elf';

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Runs gdb in batch mode against the stub, retrying the connection until the VMM listens. */
function runGdb(port: number, commands: string[], program = HELLO): Promise<string> {
  return new Promise((resolve) => {
    const args = ['-q', '-batch', '-ex', 'set architecture riscv:rv64', '-ex', 'set tcp connect-timeout 20',
      '-ex', `target remote 127.0.0.1:${port}`, ...commands.flatMap((command) => ['-ex', command]), program];
    const result = spawnSync('gdb-multiarch', args, { encoding: 'utf8', timeout: 60_000 });
    resolve(`${result.stdout}${result.stderr}`);
  });
}

describe.skipIf(!hasGdb)('the gdb stub', () => {
  it('lets gdb stop a frozen hart at a breakpoint, read it, step it and run it to the end', async () => {
    const port = await freePort();
    const vmm = runWkvm(['run', '-m', '64M', '-kernel', HELLO, '-nographic', '-gdb', `tcp:127.0.0.1:${port}`, '-S']);
    const gdb = await runGdb(port, ['info registers pc', 'x/1i $pc', 'break main', 'continue', 'info symbol $pc',
      "x/s (char *)&'greeting.0'", 'stepi', 'info symbol $pc', 'continue']);
    const result = await vmm;
    expect(gdb).toMatch(/pc\s+0x80000000/); // frozen at the reset vector
    expect(gdb).toMatch(/<_start>:\s+csrr\s+t0,\s*mhartid/);
    expect(gdb).toMatch(/Breakpoint 1, 0x[0-9a-f]+ in main \(\)/);
    expect(gdb).toMatch(/"Hello from wkvm bare metal!\\n"/); // memory read through the stub
    // Where the breakpoint stopped, then where one stepi took the hart.
    const [atBreak, afterStep] = [...gdb.matchAll(/^(\S+(?: \+ \d+)?) in section \.text$/gm)].map((m) => m[1]);
    expect(atBreak).toMatch(/^main \+ \d+$/);
    expect(afterStep).toBeDefined();
    expect(afterStep).not.toBe(atBreak);
    expect(gdb).toMatch(/exited normally/);
    expect(result.stdout).toContain('hello: done');
    expect(result.status).toBe(0);
  });

  it('stops at hardware breakpoints (hbreak) and watchpoints (watch, rwatch) with gdb\'s old and new values', async () => {
    const port = await freePort();
    const program = 'test/guest/isa/counters.elf'; // checks_passed: incremented by each passing check
    const vmm = runWkvm(['run', '-m', '64M', '-kernel', program, '-nographic', '-gdb', `tcp:127.0.0.1:${port}`, '-S']);
    const gdb = await runGdb(port, ['hbreak main', 'continue', 'info symbol $pc', 'delete', 'watch *(int *)&checks_passed', 'continue', 'continue',
      'delete', 'rwatch *(int *)&checks_passed', 'continue', 'delete', 'continue'], program);
    const result = await vmm;
    expect(gdb).toMatch(/Hardware assisted breakpoint 1 at 0x[0-9a-f]+/);
    expect(gdb).toMatch(/Breakpoint 1, 0x[0-9a-f]+ in main \(\)/);
    expect(gdb).toMatch(/Old value = 0\s+New value = 1\s+0x[0-9a-f]+ in check_true \(\)/);
    expect(gdb).toMatch(/Old value = 1\s+New value = 2/);
    expect(gdb).toMatch(/Hardware read watchpoint 3: \*\(int \*\)&checks_passed\s+Value = 2/);
    expect(gdb).toMatch(/exited normally/);
    expect(result.stdout).toContain('counters: PASS');
    expect(result.status).toBe(0);
  });

  it('refuses -S without a debugger to start the hart, and a bad -gdb device', async () => {
    const frozen = await runWkvm(['run', '-kernel', HELLO, '-S']);
    expect(frozen.status).not.toBe(0);
    expect(frozen.stderr).toMatch(/-S: nothing would start the hart without a debugger/);
    const bad = await runWkvm(['run', '-kernel', HELLO, '-gdb', 'unix:/tmp/sock']);
    expect(bad.stderr).toMatch(/-gdb unix:\/tmp\/sock: expected tcp:\[HOST\]:PORT/);
  });
});
