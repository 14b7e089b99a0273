// The virt memory map (host/vmm/memmap.ts). It lives with the FDT tests because the device tree is
// its main consumer; the tree tests check the same addresses again as the guest sees them.

import { describe, expect, it } from 'vitest';
import { CLINT_BASE, CLINT_SIZE, MAX_HARTS, PLIC_BASE, PLIC_SIZE } from '../../../assembly/abi/layout.js';
import {
  DRAM_BASE,
  dramRegion,
  KERNEL_LOAD_OFFSET,
  MemmapError,
  QEMU_VIRT_CPUS_MAX,
  VIRT_IRQ,
  VIRT_MAX_HARTS,
  VIRT_MEMMAP,
  VIRT_PLIC_NUM_SOURCES,
  VIRT_VIRTIO_COUNT,
  virtioMmioSlot,
  virtPlicContext,
  virtPlicSize,
  type MemoryRegion,
} from '../../../host/vmm/memmap.js';

describe('virt memory map', () => {
  it('has QEMU 7.2\'s addresses', () => {
    expect(VIRT_MEMMAP.test).toEqual({ base: 0x10_0000, size: 0x1000 });
    expect(VIRT_MEMMAP.rtc).toEqual({ base: 0x10_1000, size: 0x1000 });
    expect(VIRT_MEMMAP.clint).toEqual({ base: 0x200_0000, size: 0x1_0000 });
    expect(VIRT_MEMMAP.plic).toEqual({ base: 0xc00_0000, size: 0x60_0000 });
    expect(VIRT_MEMMAP.uart0).toEqual({ base: 0x1000_0000, size: 0x100 });
    expect(virtioMmioSlot(7)).toEqual({ index: 7, base: 0x1000_8000, size: 0x1000, irq: 8 });
    expect(DRAM_BASE + KERNEL_LOAD_OFFSET).toBe(0x8020_0000);
  });

  it('agrees with the core\'s layout module on the devices the core emulates', () => {
    expect(VIRT_MEMMAP.clint).toEqual({ base: CLINT_BASE, size: CLINT_SIZE });
    expect(VIRT_MEMMAP.plic).toEqual({ base: PLIC_BASE, size: PLIC_SIZE });
    expect(VIRT_MAX_HARTS).toBe(MAX_HARTS);
  });

  it('sizes the PLIC window with QEMU\'s formula for its maximum hart count', () => {
    expect(virtPlicSize(QEMU_VIRT_CPUS_MAX * 2)).toBe(VIRT_MEMMAP.plic.size);
    // Our harts' contexts all fall inside the window.
    const lastContext = virtPlicContext(VIRT_MAX_HARTS - 1, 'S');
    expect(virtPlicSize(lastContext + 1)).toBeLessThanOrEqual(VIRT_MEMMAP.plic.size);
    expect(virtPlicContext(0, 'M')).toBe(0);
    expect(virtPlicContext(3, 'S')).toBe(7);
  });

  it('has no overlapping windows, and all but the 64-bit PCIe window sit below RAM', () => {
    const regions: [string, MemoryRegion][] = [
      ...Object.entries(VIRT_MEMMAP).filter(([name]) => name !== 'virtio'),
      ...Array.from({ length: VIRT_VIRTIO_COUNT }, (_, n): [string, MemoryRegion] => [`virtio${n}`, virtioMmioSlot(n)]),
    ];
    regions.sort(([, a], [, b]) => a.base - b.base);
    for (let i = 1; i < regions.length; i++) {
      const [previousName, previous] = regions[i - 1];
      const [name, region] = regions[i];
      expect(previous.base + previous.size, `${previousName} overlaps ${name}`).toBeLessThanOrEqual(region.base);
    }
    const [lastName, last] = regions.at(-1)!;
    expect(lastName).toBe('pcieMmioHigh');
    const [belowName, below] = regions.at(-2)!;
    expect(below.base + below.size, belowName).toBeLessThanOrEqual(DRAM_BASE);
    // QEMU puts it at the end of RAM rounded up to its 16 GiB size: 16 GiB for any RAM wkvm can give (< 4 GiB).
    expect(VIRT_MEMMAP.pcieMmioHigh).toEqual({ base: 16 * 2 ** 30, size: 16 * 2 ** 30 });
  });

  it('gives every device its own PLIC source inside the PLIC\'s range', () => {
    const sources = [
      VIRT_IRQ.uart0, VIRT_IRQ.rtc, ...Array.from({ length: VIRT_VIRTIO_COUNT }, (_, n) => virtioMmioSlot(n).irq),
      ...[0, 1, 2, 3].map((line) => VIRT_IRQ.pcie0 + line),
    ];
    expect(new Set(sources).size).toBe(sources.length);
    for (const source of sources) {
      expect(source).toBeGreaterThanOrEqual(1);
      expect(source).toBeLessThan(VIRT_PLIC_NUM_SOURCES);
    }
  });

  it('rejects virtio slots and RAM sizes that do not exist', () => {
    for (const index of [-1, 8, 1.5, Number.NaN]) expect(() => virtioMmioSlot(index)).toThrow(MemmapError);
    expect(() => virtioMmioSlot(8)).toThrow(/slot 8 does not exist/);
    for (const size of [0, -4096, 100, 2 ** 53]) expect(() => dramRegion(size)).toThrow(MemmapError);
    expect(dramRegion(256 * 1024 * 1024)).toEqual({ base: 0x8000_0000, size: 0x1000_0000 });
  });
});
