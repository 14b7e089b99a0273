// The monitor and QMP through the real CLI, booting the shared guest: QMP on a unix socket (stop and
// cont with one hart and with two, the guest's output held while paused, HMP through
// human-monitor-command, quit with its SHUTDOWN event), the monitor on the console's mux through a
// pipe (Ctrl-A c), and the monitor on a TCP socket.
import { describe, it, expect } from 'vitest';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { SHARED_GUEST, WKVM, REPO } from '../helpers/wkvm_cli.js';
import { QmpClient } from '../helpers/qmp_client.js';

const scratch = mkdtempSync(join(tmpdir(), 'wkvm-monitor-'));
const GUEST = ['-m', '256M', '-kernel', `${SHARED_GUEST}Image`, '-initrd', `${SHARED_GUEST}initramfs.cpio.gz`];

/** A running wkvm whose stdout the test watches. */
class Vmm {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcessWithoutNullStreams;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [WKVM, 'run', ...args], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (chunk: Buffer) => (this.stdout += chunk.toString('latin1')));
    this.child.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString('latin1')));
    this.child.stdin.on('error', () => {});
    this.exited = once(this.child, 'close').then(([status]) => status as number | null);
  }

  type(text: string): void {
    this.child.stdin.write(text);
  }

  /** Waits until stdout holds `marker` `count` times (after `from`); fails the test after 60 s. */
  async waitFor(marker: string | RegExp, from = 0): Promise<void> {
    const until = Date.now() + 60_000;
    const seen = () => (typeof marker === 'string' ? this.stdout.indexOf(marker, from) >= 0 : marker.test(this.stdout.slice(from)));
    while (!seen()) {
      if (Date.now() > until) throw new Error(`no ${marker} on stdout; it ends:\n${this.stdout.slice(-2000)}\nstderr:\n${this.stderr}`);
      if (this.child.exitCode !== null) throw new Error(`wkvm exited (${this.child.exitCode}) before ${marker}; stderr:\n${this.stderr}`);
      await sleep(50);
    }
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Starts a shell loop that prints tick1, tick2, ... in the guest and waits until it runs. */
async function startTicking(vmm: Vmm): Promise<void> {
  vmm.type('i=0; while :; do i=$((i+1)); echo tick$i; sleep 0.1; done\n');
  await vmm.waitFor(/tick3\r?\n/);
}

/** stop: the guest's output stops and its harts stay where they are; cont: it goes on. */
async function checkStopAndCont(vmm: Vmm, qmp: QmpClient, harts: number): Promise<void> {
  expect(await qmp.execute('query-status')).toEqual({ return: { status: 'running', singlestep: false, running: true } });
  expect(await qmp.execute('stop', undefined, 'stop-1')).toEqual({ return: {}, id: 'stop-1' });
  const stopEvent = await qmp.waitForEvent('STOP');
  expect(stopEvent.timestamp).toEqual({ seconds: expect.any(Number), microseconds: expect.any(Number) });
  expect(await qmp.execute('query-status')).toEqual({ return: { status: 'paused', singlestep: false, running: false } });
  const registers = await qmp.hmp('info registers -a');
  expect(registers.match(/CPU#\d/g)).toEqual(Array.from({ length: harts }, (_, i) => `CPU#${i}`));
  expect(registers).toMatch(/\r\n pc       [0-9a-f]{16}\r\n/);
  expect(registers).toMatch(/ x0\/zero  0000000000000000 x1\/ra    [0-9a-f]{16}/);
  // Let the pipe deliver what the guest printed before it stopped, then nothing more may come.
  await sleep(300);
  const held = vmm.stdout.length;
  await sleep(1000);
  expect(vmm.stdout.length).toBe(held);
  // Nothing ran in between. (mip's timer bits are left out: the monitor reads them against mtime, which
  // wkvm rewinds on cont rather than stopping, so a deadline may look passed while paused.)
  const withoutMip = (dump: string) => dump.replace(/ mip {6}[0-9a-f]{16}\r\n/g, '');
  expect(withoutMip(await qmp.hmp('info registers -a'))).toBe(withoutMip(registers));
  expect(await qmp.hmp('info status')).toBe('VM status: paused\r\n');
  expect(await qmp.execute('cont')).toEqual({ return: {} });
  await qmp.waitForEvent('RESUME');
  const lastTick = Math.max(...[...vmm.stdout.matchAll(/tick(\d+)/g)].map((m) => Number(m[1])));
  await vmm.waitFor(`tick${lastTick + 2}`);
}

async function quitWithShutdownEvent(vmm: Vmm, qmp: QmpClient): Promise<void> {
  expect(await qmp.execute('quit', undefined, 'bye')).toEqual({ return: {}, id: 'bye' });
  expect((await qmp.waitForEvent('SHUTDOWN')).data).toEqual({ guest: false, reason: 'host-qmp-quit' });
  await qmp.waitForClose();
  expect(await vmm.exited).toBe(0);
}

describe('QMP (-qmp unix:PATH,server=on,wait=off)', () => {
  it('negotiates, stops and continues the guest, runs HMP commands, and quits', async () => {
    const socket = join(scratch, 'qmp-1.sock');
    const vmm = new Vmm([...GUEST, '-append', 'console=ttyS0 guest.mode=shell', '-nographic', '-name', 'monitor-test',
      '-qmp', `unix:${socket},server=on,wait=off`]);
    try {
      await vmm.waitFor('GUEST-READY');
      const qmp = await QmpClient.connect(socket);
      const greeting = await qmp.reply();
      expect(greeting).toEqual({ QMP: { version: { qemu: { micro: 0, minor: 2, major: 7 }, package: expect.stringMatching(/^wkvm /) }, capabilities: ['oob'] } });
      expect(await qmp.execute('query-status', undefined, 1)).toEqual({ id: 1, error: { class: 'CommandNotFound', desc: "Expecting capabilities negotiation with 'qmp_capabilities'" } });
      expect(await qmp.execute('qmp_capabilities')).toEqual({ return: {} });
      expect(await qmp.execute('query-name')).toEqual({ return: { name: 'monitor-test' } });
      await startTicking(vmm);
      await checkStopAndCont(vmm, qmp, 1);
      expect(await qmp.hmp('xp /4xw 0x80200000')).toBe('0000000080200000: 0x106f5a4d 0x00010c60 0x00200000 0x00000000\r\n'); // the Image's header
      expect(await qmp.hmp('x /2xg 0xffffffff80000000')).toBe('ffffffff80000000: 0x00010c60106f5a4d 0x0000000000200000\r\n'); // the same, through the kernel's page table
      expect((await qmp.execute('human-monitor-command', { 'command-line': 5 })).error).toEqual({ class: 'GenericError', desc: "Invalid parameter type for 'command-line', expected: string" });
      await quitWithShutdownEvent(vmm, qmp);
    } finally {
      vmm.kill();
    }
  });

  it('holds and resumes both harts with -smp 2', async () => {
    const socket = join(scratch, 'qmp-smp.sock');
    const vmm = new Vmm([...GUEST, '-smp', '2', '-append', 'console=ttyS0 guest.mode=shell', '-nographic', '-qmp', `unix:${socket},server,nowait`]);
    try {
      await vmm.waitFor('GUEST-READY');
      const qmp = await QmpClient.connect(socket);
      await qmp.reply();
      await qmp.execute('qmp_capabilities');
      expect(((await qmp.execute('query-cpus-fast')).return as unknown[]).length).toBe(2);
      await startTicking(vmm);
      await checkStopAndCont(vmm, qmp, 2);
      await quitWithShutdownEvent(vmm, qmp);
    } finally {
      vmm.kill();
    }
  });

  it('reports the guest\'s own power-off as SHUTDOWN guest-shutdown', async () => {
    const socket = join(scratch, 'qmp-poweroff.sock');
    // -S: nothing runs before the client has negotiated and sent cont, so no event can be missed.
    const vmm = new Vmm([...GUEST, '-append', 'console=ttyS0 guest.mode=poweroff', '-nographic', '-S', '-qmp', `unix:${socket},server=on,wait=off`]);
    try {
      const qmp = await QmpClient.connect(socket);
      await qmp.reply();
      await qmp.execute('qmp_capabilities');
      expect(await qmp.execute('query-status')).toEqual({ return: { status: 'prelaunch', singlestep: false, running: false } });
      await qmp.execute('cont');
      expect((await qmp.waitForEvent('SHUTDOWN')).data).toEqual({ guest: true, reason: 'guest-shutdown' });
      expect(await vmm.exited).toBe(0);
      expect(vmm.stdout).toContain('GUEST-POWEROFF');
    } finally {
      vmm.kill();
    }
  });
});

describe('the monitor', () => {
  it('Ctrl-A c switches the stdio console (a pipe too) to the monitor and back', async () => {
    const vmm = new Vmm([...GUEST, '-append', 'console=ttyS0 guest.mode=shell', '-nographic']);
    try {
      await vmm.waitFor('GUEST-READY');
      await vmm.waitFor('# ');
      let mark = vmm.stdout.length;
      vmm.type('\x01c');
      await vmm.waitFor("QEMU 7.2.0 monitor - type 'help' for more information\r\n(qemu) ", mark);
      vmm.type('info status\n');
      await vmm.waitFor('VM status: running\r\n(qemu) ', mark);
      vmm.type('stop\ninfo status\n');
      await vmm.waitFor('VM status: paused\r\n(qemu) ', mark);
      vmm.type('cont\nfoo\n');
      await vmm.waitFor("unknown command: 'foo'\r\n(qemu) ", mark);
      mark = vmm.stdout.length;
      vmm.type('\x01cecho answer-$((6*7))\n');
      await vmm.waitFor('answer-42', mark);
      // A reset while stopped comes back held (prelaunch), the mux still on the monitor, until cont.
      mark = vmm.stdout.length;
      vmm.type('\x01cstop\nsystem_reset\ninfo status\n');
      await vmm.waitFor('VM status: paused (prelaunch)\r\n(qemu) ', mark);
      vmm.type('cont\n\x01c');
      await vmm.waitFor('GUEST-READY', mark);
      vmm.type('\x01cquit\n');
      expect(await vmm.exited).toBe(0);
    } finally {
      vmm.kill();
    }
  });

  it('-monitor tcp:HOST:PORT,server=on,wait=off serves the banner, the prompt and commands', async () => {
    const server = createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    const vmm = new Vmm([...GUEST, '-append', 'console=ttyS0 guest.mode=shell', '-serial', 'null', '-monitor', `tcp:127.0.0.1:${port},server=on,wait=off`]);
    try {
      const socket = await new Promise<import('node:net').Socket>((resolve, reject) => {
        const until = Date.now() + 30_000;
        const attempt = () => {
          const s = createConnection(port, '127.0.0.1');
          s.once('connect', () => resolve(s));
          s.once('error', () => (Date.now() > until ? reject(new Error('no monitor')) : setTimeout(attempt, 100)));
        };
        attempt();
      });
      let text = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => (text += chunk));
      const waitText = async (marker: string) => {
        for (const until = Date.now() + 30_000; !text.includes(marker);) {
          if (Date.now() > until) throw new Error(`no ${marker} from the monitor; got:\n${text}`);
          await sleep(50);
        }
      };
      await waitText('(qemu) ');
      expect(text).toBe("QEMU 7.2.0 monitor - type 'help' for more information\r\n(qemu) ");
      socket.write('info status\r\n');
      await waitText('VM status: running\r\n(qemu) ');
      socket.write('info mtree\r\n');
      await waitText('riscv_virt_board.ram\r\n');
      expect(text).toContain('    0000000080000000-000000008fffffff (prio 0, ram): riscv_virt_board.ram\r\n');
      socket.write('quit\r\n');
      expect(await vmm.exited).toBe(0);
      socket.destroy();
    } finally {
      vmm.kill();
    }
  });
});
