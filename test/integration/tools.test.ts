// Some tests compare against real tools and skip when one is missing on a developer's machine. CI must
// have them all (.ci/run installs them), or those tests would silently never run.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const TOOLS = ['dtc', 'qemu-img', 'qemu-io', 'qemu-system-riscv64', 'riscv64-unknown-elf-as', 'riscv64-unknown-elf-objcopy', 'chromium', 'gdb-multiarch', 'virt-xml-validate', 'xmllint'];

/** Files of Debian packages the tests use (u-boot-qemu). */
const FILES = ['/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin', '/usr/lib/u-boot/qemu-riscv64/u-boot.bin'];

describe.runIf(process.env.CI === 'true')('CI machine', () => {
  for (const tool of TOOLS) {
    it(`has ${tool}`, () => {
      const found = spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
      expect(found, `${tool} is missing: .ci/run must install it`).toBe(true);
    });
  }
  it('has mke2fs (it may live in /usr/sbin, off a user PATH)', () => {
    const found = spawnSync('sh', ['-c', 'command -v mke2fs || test -x /usr/sbin/mke2fs || test -x /sbin/mke2fs']).status === 0;
    expect(found, 'mke2fs is missing: .ci/run must install e2fsprogs').toBe(true);
  });
  for (const file of FILES) {
    it(`has ${file}`, () => {
      expect(existsSync(file), `${file} is missing: .ci/run must install u-boot-qemu`).toBe(true);
    });
  }
});
