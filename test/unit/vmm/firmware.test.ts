import { describe, it, expect } from 'vitest';
import { defaultFirmwareCandidates, findDefaultFirmware } from '../../../host/vmm/firmware.js';

describe('-bios default', () => {
  it('tries $WKVM_FIRMWARE first, then QEMU’s data files, then Debian’s opensbi package', () => {
    const candidates = defaultFirmwareCandidates({ WKVM_FIRMWARE: '/fw/mine.bin' });
    expect(candidates[0]).toBe('/fw/mine.bin');
    expect(candidates).toContain('/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin');
    expect(candidates.at(-1)).toBe('/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin');
    expect(defaultFirmwareCandidates({})).not.toContain(undefined);
  });

  it('picks the first that exists, or none', () => {
    const present = new Set(['/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin']);
    expect(findDefaultFirmware({ WKVM_FIRMWARE: '/missing.bin' }, (p) => present.has(p))).toBe('/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin');
    expect(findDefaultFirmware({}, () => false)).toBeNull();
  });
});
