// Some tests compare against real tools and skip when one is missing on a developer's machine. CI must
// have them all (.ci/run installs them), or those tests would silently never run.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';

const TOOLS = ['dtc', 'qemu-img', 'qemu-io', 'qemu-system-riscv64', 'riscv64-unknown-elf-as', 'riscv64-unknown-elf-objcopy'];

describe.runIf(process.env.CI === 'true')('CI machine', () => {
  for (const tool of TOOLS) {
    it(`has ${tool}`, () => {
      const found = spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
      expect(found, `${tool} is missing: .ci/run must install it`).toBe(true);
    });
  }
});
