// The guest-physical memory map of the `virt` board, as QEMU 7.2 lays it out in hw/riscv/virt.c
// (`virt_memmap[]`). This is the one table the VMM consults: the device tree, the MMIO bus and the
// boot loader all take addresses from here, so a guest sees the same board under wkvm as under QEMU.
// The devices the WASM core emulates itself (CLINT, PLIC, and the virtio-mmio interrupt registers) take
// their windows from the core's shared layout module, so core and host cannot disagree about them.

import {
  CLINT_BASE,
  CLINT_SIZE,
  MAX_HARTS,
  PLIC_BASE,
  PLIC_SIZE,
  TIMEBASE_HZ,
  VIRTIO_MMIO_BASE,
  VIRTIO_MMIO_FIRST_IRQ,
  VIRTIO_MMIO_SLOTS,
  VIRTIO_MMIO_STRIDE,
} from '../../assembly/abi/layout.js';

/** A window of guest-physical address space. */
export interface MemoryRegion {
  readonly base: number;
  readonly size: number;
}

/** Most harts the `virt` board of wkvm supports (the core sizes its per-hart state for this many). */
export const VIRT_MAX_HARTS: number = MAX_HARTS;

/** The CLINT's mtime counter frequency, published as /cpus/timebase-frequency. */
export const VIRT_TIMEBASE_HZ: number = TIMEBASE_HZ;

// ---- PLIC register layout (SiFive PLIC, as QEMU's `VIRT_PLIC_*` macros describe it) ----

export const VIRT_PLIC_PRIORITY_BASE = 0x0;
export const VIRT_PLIC_PENDING_BASE = 0x1000;
export const VIRT_PLIC_ENABLE_BASE = 0x2000;
export const VIRT_PLIC_ENABLE_STRIDE = 0x80;
export const VIRT_PLIC_CONTEXT_BASE = 0x200000;
export const VIRT_PLIC_CONTEXT_STRIDE = 0x1000;

/**
 * Interrupt sources the board wires to the PLIC, counting the reserved source 0 (QEMU 7.2's
 * `VIRT_IRQCHIP_NUM_SOURCES`). Usable source ids are therefore 1..95.
 */
export const VIRT_PLIC_NUM_SOURCES = 96;

/**
 * Hart count QEMU 7.2 sizes the PLIC window for (`VIRT_CPUS_MAX`). QEMU maps the window for this
 * many harts whatever `-smp` says, so the PLIC's `reg` does not change with the hart count.
 */
export const QEMU_VIRT_CPUS_MAX = 512;

/** Bytes of PLIC register space that `numContexts` contexts need (QEMU's `VIRT_PLIC_SIZE`). */
export function virtPlicSize(numContexts: number): number {
  return VIRT_PLIC_CONTEXT_BASE + numContexts * VIRT_PLIC_CONTEXT_STRIDE;
}

/** PLIC context of a hart's privilege level: each hart has an M-mode then an S-mode context. */
export function virtPlicContext(hartId: number, mode: 'M' | 'S'): number {
  return hartId * 2 + (mode === 'M' ? 0 : 1);
}

// ---- virtio-mmio transports ----

/** Number of virtio-mmio transports on the board (QEMU's `VIRTIO_COUNT`). */
export const VIRT_VIRTIO_COUNT = VIRTIO_MMIO_SLOTS;

// ---- interrupt routing ----

/** PLIC source ids of the board's devices (QEMU's `UART0_IRQ`, `RTC_IRQ`, `VIRTIO_IRQ`). */
export const VIRT_IRQ = {
  /** virtio-mmio slot n (0..7) interrupts on source `virtio0 + n`. */
  virtio0: VIRTIO_MMIO_FIRST_IRQ,
  uart0: 10,
  rtc: 11,
  /** The PCIe host's INTA..INTD on sources pcie0..pcie0 + 3 (QEMU's PCIE_IRQ). */
  pcie0: 32,
} as const;

/** Local interrupt numbers of a hart's `riscv,cpu-intc` (the bit positions in mip/mie). */
export const RISCV_CPU_IRQ = {
  supervisorSoftware: 1,
  machineSoftware: 3,
  supervisorTimer: 5,
  machineTimer: 7,
  supervisorExternal: 9,
  machineExternal: 11,
} as const;

/**
 * Values a guest writes (low 16 bits) to the test device's first register (QEMU's sifive_test.h):
 * `pass`/`fail` power the machine off (exit status in the upper 16 bits for `fail`), `reset` reboots.
 * The device tree's syscon-poweroff and syscon-reboot nodes tell Linux to write `pass` and `reset`.
 */
export const VIRT_TEST_FINISHER = {
  fail: 0x3333,
  pass: 0x5555,
  reset: 0x7777,
} as const;

// ---- the map ----

/** Start of guest RAM. Its size is chosen per VM (`-m`). */
export const DRAM_BASE = 0x8000_0000;

/**
 * Where a Linux `Image` goes, relative to DRAM_BASE: its header's `text_offset` on RV64. The first
 * 2 MiB stay free for the firmware (OpenSBI's `fw_jump` jumps to DRAM_BASE + 0x200000).
 */
export const KERNEL_LOAD_OFFSET = 0x20_0000;

export const VIRT_MEMMAP = {
  /** Boot ROM: QEMU's reset vector lives here (a0 = hart id, a1 = DTB, a2 = fw_dynamic info). */
  mrom: { base: 0x1000, size: 0xf000 },
  /** SiFive test finisher, also the syscon that poweroff/reboot write to. */
  test: { base: 0x10_0000, size: 0x1000 },
  rtc: { base: 0x10_1000, size: 0x1000 },
  clint: { base: CLINT_BASE, size: CLINT_SIZE },
  plic: { base: PLIC_BASE, size: PLIC_SIZE },
  uart0: { base: 0x1000_0000, size: 0x100 },
  /** The PCIe host's ECAM window (QEMU's `VIRT_PCIE_ECAM`): configuration space of bus 0 (host/devices/pci). */
  pcieEcam: { base: 0x3000_0000, size: 0x1000_0000 },
  /** The PCIe host's I/O space, 64 KiB from bus address 0 (`VIRT_PCIE_PIO`). */
  pciePio: { base: 0x0300_0000, size: 0x1_0000 },
  /** The 32-bit memory window for BARs, bus address = CPU address (`VIRT_PCIE_MMIO`). */
  pcieMmio: { base: 0x4000_0000, size: 0x4000_0000 },
  /**
   * The 64-bit memory window (QEMU's `virt_high_pcie_memmap` on RV64): 16 GiB at the end of RAM rounded up to
   * 16 GiB, which is 16 GiB for every RAM size wkvm gives (at most 4 GiB), bus address = CPU address.
   */
  pcieMmioHigh: { base: 0x4_0000_0000, size: 0x4_0000_0000 },
  /** The first virtio-mmio transport; transport n sits at `base + n * size` (see virtioMmioSlot). */
  virtio: { base: VIRTIO_MMIO_BASE, size: VIRTIO_MMIO_STRIDE },
} as const satisfies Record<string, MemoryRegion>;

/** The PCIe host's windows as its bus maps them (host/devices/pci). */
export const VIRT_PCI_WINDOWS = {
  ecam: VIRT_MEMMAP.pcieEcam.base,
  io: VIRT_MEMMAP.pciePio,
  memory: [VIRT_MEMMAP.pcieMmio, VIRT_MEMMAP.pcieMmioHigh],
} as const;

/** A virtio-mmio transport's window and PLIC source. */
export interface VirtioMmioSlot extends MemoryRegion {
  readonly index: number;
  readonly irq: number;
}

export class MemmapError extends Error {
  constructor(
    message: string,
    readonly value: number,
  ) {
    super(message);
    this.name = 'MemmapError';
  }
}

/** The window and interrupt of virtio-mmio transport `index` (0..7). */
export function virtioMmioSlot(index: number): VirtioMmioSlot {
  if (!Number.isInteger(index) || index < 0 || index >= VIRT_VIRTIO_COUNT) {
    throw new MemmapError(`virtio-mmio slot ${index} does not exist (the board has slots 0..${VIRT_VIRTIO_COUNT - 1})`, index);
  }
  const { base, size } = VIRT_MEMMAP.virtio;
  return { index, base: base + index * size, size, irq: VIRT_IRQ.virtio0 + index };
}

/** The guest RAM region for a VM with `memoryBytes` of RAM. */
export function dramRegion(memoryBytes: number): MemoryRegion {
  if (!Number.isSafeInteger(memoryBytes) || memoryBytes <= 0 || memoryBytes % 4096 !== 0) {
    throw new MemmapError(`guest RAM size ${memoryBytes} must be a positive multiple of 4096 bytes`, memoryBytes);
  }
  if (!Number.isSafeInteger(DRAM_BASE + memoryBytes)) {
    throw new MemmapError(`guest RAM size ${memoryBytes} runs past the largest address this VMM handles`, memoryBytes);
  }
  return { base: DRAM_BASE, size: memoryBytes };
}
