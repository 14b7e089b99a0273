// SMP: the shared guest with several harts, each on its own worker thread.
import { describe, it, expect } from 'vitest';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runWkvm, SHARED_GUEST } from '../helpers/wkvm_cli.js';
import { asm, li, program } from '../helpers/asm.js';

const KERNEL = `${SHARED_GUEST}Image`;
const INITRD = `${SHARED_GUEST}initramfs.cpio.gz`;

function bootArgs(smp: number, bios: string, mode: string): string[] {
  return ['run', '-M', 'virt', '-m', '256M', '-smp', String(smp), '-bios', bios, '-kernel', KERNEL, '-initrd', INITRD,
    '-append', `console=ttyS0 guest.mode=${mode}`, '-nographic'];
}

describe('SMP Linux guest', () => {
  for (const smp of [2, 4]) {
    for (const [name, bios] of [['firmware-less', 'none'], ['OpenSBI fw_jump', `${SHARED_GUEST}opensbi/fw_jump.bin`]] as const) {
      it(`boots with -smp ${smp} (${name}) and brings every hart online`, async () => {
        const result = await runWkvm(bootArgs(smp, bios, 'poweroff'), { timeoutMs: 120_000 });
        expect(result.stdout).toContain(`cpus=${smp} mode=poweroff`);
        expect(result.stdout).toContain('GUEST-POWEROFF');
        expect(result.status, result.stderr).toBe(0);
      }, 150_000);
    }
  }

  it('runs a parallel shell workload on 4 harts with the right results', async () => {
    const prompt = 'root@rvguest:/# ';
    const expected = createHash('sha256').update(Buffer.alloc(2 * 1024 * 1024)).digest('hex');
    const result = await runWkvm(bootArgs(4, 'none', 'shell'), {
      timeoutMs: 120_000,
      input: [
        // Markers are computed ($((…))) so the terminal's echo of the command cannot match them.
        { after: prompt, send: 'echo NPROC=$(nproc) CPUINFO=$(grep -c ^processor /proc/cpuinfo) STEP-$((1+1))\n' },
        {
          after: 'STEP-2',
          send: 'for i in 1 2 3 4; do (dd if=/dev/zero bs=1M count=2 2>/dev/null | sha256sum > /tmp/s$i) & done; wait; echo SUMS $(cat /tmp/s1 /tmp/s2 /tmp/s3 /tmp/s4 | cut -c1-64) STEP-$((2+1))\n',
        },
        { after: 'STEP-3', send: 'exit\n' },
      ],
    });
    expect(result.stdout).toMatch(/NPROC=4 CPUINFO=4/);
    const sums = /SUMS ([0-9a-f ]+) STEP-3/.exec(result.stdout)?.[1]?.trim().split(' ');
    expect(sums).toEqual([expected, expected, expected, expected]);
    expect(result.status).toBe(0);
  }, 150_000);
});

describe('SMP with a virtio disk', () => {
  it('passes guest.mode=disk on 2 harts (exits cross from the vCPU threads to the VMM and back)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wkvm-smp-disk-'));
    try {
      const disk = join(dir, 'disk.img');
      copyFileSync(`${SHARED_GUEST}rootfs.ext4`, disk);
      const result = await runWkvm([...bootArgs(2, 'none', 'disk'), '-drive', `file=${disk},format=raw,if=none,id=d0`,
        '-device', 'virtio-blk-device,drive=d0'], { timeoutMs: 120_000 });
      expect(result.stdout).toContain('GUEST-DISK-OK');
      expect(result.status, result.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);
});

describe('SMP bare-metal litmus (test/guest/smp-litmus)', () => {
  for (const smp of [2, 4]) {
    it(`gets exact totals and no stale messages with ${smp} harts`, async () => {
      const result = await runWkvm(['run', '-M', 'virt', '-m', '128M', '-smp', String(smp), '-bios', 'none',
        '-kernel', 'test/guest/smp-litmus/smp-litmus.elf', '-nographic'], { timeoutMs: 150_000 });
      const total = smp * 1_000_000;
      expect(result.stdout).toContain(`smp-litmus: harts=${smp} amoadd=${total} lrsc=${total} spinlock=${total} mp-rounds=10000 mp-errors=0`);
      expect(result.stdout).toContain('smp-litmus: PASS');
      expect(result.status).toBe(0);
    }, 180_000);
  }
});

describe('SMP exits', () => {
  it('echoes console input from a hart that polls the UART, an exit per poll', async () => {
    // Bare metal, -smp 2: hart 0 reads the 16550's LSR in a loop until a byte is ready and echoes it, until
    // "q", then powers off through the test device; hart 1 parks in WFI. The VMM thread handles hart 0's
    // back-to-back exits (looking for the next one before it sleeps) and must still let the event loop
    // read stdin.
    const [t0, t1, t2, s0, s1, s2] = [5, 6, 7, 8, 9, 18];
    const words = [
      asm.csrrs(t0, 0xf14, 0), // mhartid
      asm.bne(t0, 0, 4 * 14), // -> park
      asm.lui(s0, 0x10000), // UART0
      asm.addi(s2, 0, 'q'.charCodeAt(0)),
      asm.lbu(t1, s0, 5), // poll: LSR
      asm.andi(t1, t1, 1), // data ready
      asm.beq(t1, 0, -8),
      asm.lbu(t2, s0, 0), // RBR
      asm.beq(t2, s2, 4 * 3), // -> done
      asm.sb(t2, s0, 0), // THR
      asm.jal(0, -4 * 6), // -> poll
      asm.lui(s1, 0x100), // done: the test device
      ...li(t0, 0x5555),
      asm.sw(t0, s1, 0), // pass: power off
      asm.wfi(), // park
      asm.jal(0, -4),
    ];
    const dir = mkdtempSync(join(tmpdir(), 'wkvm-smp-uart-'));
    try {
      const file = join(dir, 'echo.bin');
      writeFileSync(file, program(words));
      const result = await runWkvm(['run', '-M', 'virt', '-m', '128M', '-smp', '2', '-bios', 'none', '-kernel', file, '-nographic'], {
        timeoutMs: 30_000,
        input: [{ send: 'echo1' }, { after: 'echo1', send: 'xyzq' }],
      });
      expect(result.stdout).toBe('echo1xyz');
      expect(result.status, result.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
