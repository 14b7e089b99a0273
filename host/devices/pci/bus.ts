// Bus 0 of the virt board's PCIe host (QEMU's gpex): 32 slots of single-function devices, the host bridge
// in slot 0. The guest reaches it through three windows on the MMIO bus: the ECAM window (configuration
// space, 1 MiB per bus number), the MMIO windows where memory BARs decode, and the PIO window where I/O
// BARs decode. Firmware on virt assigns no BAR: the guest (Linux, U-Boot) sizes and places them, and an
// access reaches a function only inside a BAR it has placed and enabled. A BAR the guest puts over RAM or
// another device, or anywhere outside the windows, is simply never reached: RAM is served before any
// exit, and the windows are the only way in.
//
// INTx: the four lines INTA..INTD of the host are PLIC sources firstIrq..firstIrq+3; a function's pin
// reaches line (slot + pin - 1) % 4 (the standard swizzle, which the device tree's interrupt-map states),
// and a line is high while any function on it asserts its pin without INTx disabled in its command register.
import type { AccessSize, IrqLine, MmioDevice } from '../device.js';
import { PCI_CONFIG_SIZE, PciCommand, PciConfig, type PciConfigSpace } from './config_space.js';

/** A function on the bus: its config space, and what its BARs answer. */
export interface PciFunction {
  /** For logs and errors, e.g. "virtio-blk-pci(hd0)". */
  readonly name: string;
  readonly config: PciConfigSpace;
  /** A guest load from BAR `bar` (its base register index) at `offset`, the access inside the BAR. */
  readBar(bar: number, offset: number, size: AccessSize): number;
  writeBar(bar: number, offset: number, size: AccessSize, value: number): void;
  /** Before a guest config read of [offset, offset + size): a window into the function (virtio's PCI_CFG) fills in its bytes. */
  beforeConfigRead?(offset: number, size: number): void;
  /** After a guest config write of [offset, offset + size) took the writable bits. */
  afterConfigWrite?(offset: number, size: number): void;
  /** Machine reset. */
  reset?(): void;
}

/** A function's INTx pin as it drives it: asserted or not. */
export interface PciInterruptPin {
  set(asserted: boolean): void;
}

export const PCI_SLOTS = 32;
/** ECAM: 1 MiB of config space per bus, 4 KiB per function. */
export const PCIE_ECAM_WINDOW_SIZE = 0x1000_0000;
export const PCI_INTX_LINES = 4;

export class PciSlotError extends Error {
  override readonly name = 'PciSlotError';
  constructor(readonly slot: number, readonly reason: string) {
    super(`PCI slot ${slot}: ${reason}`);
  }
}

export interface PciRootBusOptions {
  /** The host's INTA..INTD lines (PLIC sources), in that order. */
  readonly intx: readonly IrqLine[];
}

/** Where the host's windows sit in CPU physical space. */
export interface PciHostWindows {
  readonly ecam: number;
  readonly io: { readonly base: number; readonly size: number };
  readonly memory: ReadonlyArray<{ readonly base: number; readonly size: number }>;
}

/** Where an address in a window lands: a function's BAR and the offset in it. */
interface BarHit {
  readonly fn: PciFunction;
  readonly bar: number;
  readonly offset: number;
}

export class PciRootBus {
  private readonly slots: Array<PciFunction | undefined> = new Array(PCI_SLOTS);
  private readonly asserted = new Array<boolean>(PCI_SLOTS).fill(false);
  private readonly lineLevels = new Array<boolean>(PCI_INTX_LINES).fill(false);

  constructor(private readonly options: PciRootBusOptions) {
    if (options.intx.length !== PCI_INTX_LINES) throw new RangeError(`a PCI host has ${PCI_INTX_LINES} INTx lines, not ${options.intx.length}`);
  }

  /** The function in `slot`, if any. */
  function(slot: number): PciFunction | undefined {
    return this.slots[slot];
  }

  /**
   * The slot a device gets: `requested` if it is free, else (without a request) the first free one, as
   * QEMU places a -device without addr=. Throws PciSlotError naming who holds a requested slot.
   */
  freeSlot(requested: number | undefined, name: string): number {
    if (requested !== undefined) {
      if (!Number.isInteger(requested) || requested < 0 || requested >= PCI_SLOTS) {
        throw new PciSlotError(requested, `${name}: bus 0 has slots 0..${PCI_SLOTS - 1}`);
      }
      const holder = this.slots[requested];
      if (holder !== undefined) throw new PciSlotError(requested, `not available for ${name}, in use by ${holder.name}`);
      return requested;
    }
    for (let slot = 0; slot < PCI_SLOTS; slot++) if (this.slots[slot] === undefined) return slot;
    throw new PciSlotError(PCI_SLOTS, `no free slot on bus 0 for ${name}`);
  }

  /** The pin a function in `slot` drives; give it to the function before plugging it there. */
  interruptPin(slot: number): PciInterruptPin {
    return { set: (asserted) => this.setAsserted(slot, asserted) };
  }

  plug(slot: number, fn: PciFunction): void {
    this.freeSlot(slot, fn.name);
    fn.config.seal();
    this.slots[slot] = fn;
  }

  /** Machine reset: every function back to power-on, every line low. */
  reset(): void {
    for (const fn of this.slots) {
      fn?.config.reset();
      fn?.reset?.();
    }
    this.asserted.fill(false);
    for (let line = 0; line < PCI_INTX_LINES; line++) this.updateLine(line);
  }

  // ---- configuration space (ECAM) ----

  /** A guest config read; all-ones where no function answers, as a bus with nothing there reads. */
  readConfig(bus: number, slot: number, fn: number, register: number, size: AccessSize): number {
    const target = this.configTarget(bus, slot, fn, register, size);
    if (target === undefined) return allOnes(size);
    target.beforeConfigRead?.(register, size);
    return target.config.read(register, size);
  }

  writeConfig(bus: number, slot: number, fn: number, register: number, size: AccessSize, value: number): void {
    const target = this.configTarget(bus, slot, fn, register, size);
    if (target === undefined) return;
    target.config.write(register, size, value);
    if (register < PciConfig.command + 2 && register + size > PciConfig.command) this.updateLine(this.lineOf(slot));
    target.afterConfigWrite?.(register, size);
  }

  /** Only bus 0 exists (no bridges), only function 0 of each slot, and only the first 256 bytes (no PCIe extended space). */
  private configTarget(bus: number, slot: number, fn: number, register: number, size: number): PciFunction | undefined {
    if (bus !== 0 || fn !== 0 || register + size > PCI_CONFIG_SIZE) return undefined;
    return this.slots[slot];
  }

  // ---- BARs ----

  /** The enabled BAR of kind `space` that holds all of [address, address + size), first slot first. */
  private findBar(space: 'memory' | 'io', address: number, size: number): BarHit | null {
    for (const fn of this.slots) {
      if (fn === undefined) continue;
      for (const bar of fn.config.bars) {
        if ((bar.kind === 'io') !== (space === 'io')) continue;
        const base = fn.config.barBase(bar);
        if (base !== null && address >= base && address + size <= base + bar.size) return { fn, bar: bar.index, offset: address - base };
      }
    }
    return null;
  }

  /** An MMIO window onto `space`: window offset 0 is bus address `busBase`. */
  window(name: string, space: 'memory' | 'io', busBase: number, size: number): MmioDevice {
    const bus = this;
    return {
      name,
      size,
      claims: (offset, accessSize) => bus.findBar(space, busBase + offset, accessSize) !== null,
      read(offset, accessSize) {
        const hit = bus.findBar(space, busBase + offset, accessSize);
        return hit === null ? allOnes(accessSize) : hit.fn.readBar(hit.bar, hit.offset, accessSize);
      },
      write(offset, accessSize, value) {
        const hit = bus.findBar(space, busBase + offset, accessSize);
        hit?.fn.writeBar(hit.bar, hit.offset, accessSize, value);
      },
    };
  }

  /**
   * Puts the host's windows on an MMIO bus: the ECAM window at `ecam`, the I/O window (bus addresses from
   * 0) and the memory windows (bus address = CPU address, as on virt).
   */
  mapWindows(mmio: { register(base: number, device: MmioDevice): void }, windows: PciHostWindows): void {
    mmio.register(windows.ecam, this.ecamWindow());
    mmio.register(windows.io.base, this.window('pcie-pio', 'io', 0, windows.io.size));
    for (const { base, size } of windows.memory) mmio.register(base, this.window(`pcie-mmio@${base.toString(16)}`, 'memory', base, size));
  }

  /** The ECAM window: bus << 20 | slot << 15 | function << 12 | register. */
  ecamWindow(): MmioDevice {
    const bus = this;
    return {
      name: 'pcie-ecam',
      size: PCIE_ECAM_WINDOW_SIZE,
      read: (offset, size) => bus.readConfig(offset >>> 20, (offset >>> 15) & 31, (offset >>> 12) & 7, offset & 0xfff, size),
      write: (offset, size, value) => bus.writeConfig(offset >>> 20, (offset >>> 15) & 31, (offset >>> 12) & 7, offset & 0xfff, size, value),
      reset: () => bus.reset(),
    };
  }

  // ---- INTx ----

  private lineOf(slot: number): number {
    const pin = this.slots[slot]?.config.u8(PciConfig.interruptPin) ?? 0;
    return (slot + Math.max(pin, 1) - 1) % PCI_INTX_LINES;
  }

  private setAsserted(slot: number, asserted: boolean): void {
    this.asserted[slot] = asserted;
    this.slots[slot]?.config.setInterruptStatus(asserted);
    this.updateLine(this.lineOf(slot));
  }

  private updateLine(line: number): void {
    let level = false;
    for (let slot = 0; slot < PCI_SLOTS && !level; slot++) {
      const fn = this.slots[slot];
      if (fn === undefined || !this.asserted[slot] || this.lineOf(slot) !== line) continue;
      level = fn.config.u8(PciConfig.interruptPin) !== 0 && (fn.config.command & PciCommand.intxDisable) === 0;
    }
    if (level === this.lineLevels[line]) return;
    this.lineLevels[line] = level;
    this.options.intx[line]!.set(level);
  }

  /** The INTx lines' levels, INTA first (for tests and diagnostics). */
  get intxLevels(): readonly boolean[] {
    return [...this.lineLevels];
  }
}

function allOnes(size: number): number {
  return size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff;
}


