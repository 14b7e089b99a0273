// A conventional PCI function's 256-byte configuration space with a type-0 header (PCI Local Bus 3.0
// §6.1-6.2): identity, command and status, the BARs and their sizing, interrupt line and pin, and a
// capability list. Which bits a guest may change is a per-byte write mask, as hardware (and QEMU's
// wmask) has it: a BAR's mask keeps its size-aligned address bits only, so writing all-ones and reading
// back gives the size, and read-only registers simply have no writable bits.

/** Register offsets of the type-0 header. */
export const PciConfig = {
  vendorId: 0x00,
  deviceId: 0x02,
  command: 0x04,
  status: 0x06,
  revision: 0x08,
  /** Programming interface, subclass and base class: the 24-bit class code. */
  classCode: 0x09,
  cacheLineSize: 0x0c,
  latencyTimer: 0x0d,
  headerType: 0x0e,
  bar0: 0x10,
  subsystemVendorId: 0x2c,
  subsystemId: 0x2e,
  expansionRom: 0x30,
  capabilityPointer: 0x34,
  interruptLine: 0x3c,
  interruptPin: 0x3d,
} as const;

export const PciCommand = {
  io: 0x1,
  memory: 0x2,
  busMaster: 0x4,
  parityErrorResponse: 0x40,
  serr: 0x100,
  intxDisable: 0x400,
} as const;

export const PciStatus = {
  /** The function asserts its INTx pin (whether or not the command register disables the pin). */
  interrupt: 0x08,
  capabilityList: 0x10,
} as const;

/** Config space of a conventional function; ECAM reads past it return all-ones. */
export const PCI_CONFIG_SIZE = 256;
/** Capabilities live after the header. */
const FIRST_CAPABILITY = 0x40;
export const PCI_BAR_COUNT = 6;

/** BAR flag bits (the low bits of the register, read-only). */
const BAR_IO_SPACE = 0x1;
const BAR_MEM_TYPE_64 = 0x4;
const BAR_MEM_PREFETCHABLE = 0x8;

export type PciBarKind = 'io' | 'mem32' | 'mem64';

export interface PciBarSpec {
  /** BAR number 0..5; a 64-bit BAR also takes the next register (its upper half). */
  readonly index: number;
  /** A power of two: at least 16 bytes for memory, 4 for I/O. */
  readonly size: number;
  readonly kind: PciBarKind;
  readonly prefetchable?: boolean;
}

export interface PciIdentity {
  readonly vendorId: number;
  readonly deviceId: number;
  readonly revision: number;
  /** Base class << 16 | subclass << 8 | programming interface. */
  readonly classCode: number;
  readonly subsystemVendorId: number;
  readonly subsystemId: number;
  /** 0 for none, 1..4 for INTA#..INTD#. */
  readonly interruptPin: number;
}

export class PciConfigError extends Error {
  override readonly name = 'PciConfigError';
  constructor(readonly owner: string, readonly reason: string) {
    super(`${owner}: ${reason}`);
  }
}

/**
 * The guest-writable bits of the header, as QEMU's defaults for a conventional function: command (I/O,
 * memory, bus master, parity, SERR#, INTx disable), cache line size and interrupt line. The latency timer
 * is not among them: under QEMU it reads 0 after Linux's pci_set_master has tried to set it to 64.
 */
const HEADER_WRITABLE: ReadonlyArray<readonly [offset: number, mask: number]> = [
  [PciConfig.command, 0x47],
  [PciConfig.command + 1, 0x05],
  [PciConfig.cacheLineSize, 0xff],
  [PciConfig.interruptLine, 0xff],
];

export class PciConfigSpace {
  private readonly bytes = new Uint8Array(PCI_CONFIG_SIZE);
  private readonly writeMask = new Uint8Array(PCI_CONFIG_SIZE);
  /** The bytes as they are at power-on, for reset. */
  private readonly initial = new Uint8Array(PCI_CONFIG_SIZE);
  private readonly barSpecs: Array<PciBarSpec | undefined> = new Array(PCI_BAR_COUNT);
  private capabilityEnd = FIRST_CAPABILITY;
  private sealed = false;

  constructor(readonly owner: string, identity: PciIdentity, bars: readonly PciBarSpec[] = []) {
    this.setU16(PciConfig.vendorId, identity.vendorId);
    this.setU16(PciConfig.deviceId, identity.deviceId);
    this.bytes[PciConfig.revision] = identity.revision;
    this.bytes[PciConfig.classCode] = identity.classCode & 0xff;
    this.setU16(PciConfig.classCode + 1, identity.classCode >>> 8);
    this.setU16(PciConfig.subsystemVendorId, identity.subsystemVendorId);
    this.setU16(PciConfig.subsystemId, identity.subsystemId);
    this.bytes[PciConfig.interruptPin] = identity.interruptPin;
    for (const [offset, mask] of HEADER_WRITABLE) this.writeMask[offset] = mask;
    for (const bar of bars) this.defineBar(bar);
    this.initial.set(this.bytes);
  }

  private defineBar(bar: PciBarSpec): void {
    const { index, size, kind } = bar;
    const slots = kind === 'mem64' ? 2 : 1;
    if (!Number.isInteger(index) || index < 0 || index + slots > PCI_BAR_COUNT) throw new PciConfigError(this.owner, `BAR ${index} does not exist`);
    for (let i = index; i < index + slots; i++) {
      if (this.barSpecs[i] !== undefined || (i > 0 && this.barSpecs[i - 1]?.kind === 'mem64')) {
        throw new PciConfigError(this.owner, `BAR ${index} overlaps another BAR`);
      }
    }
    const minimum = kind === 'io' ? 4 : 16;
    const largest = kind === 'mem64' ? 2 ** 52 : 2 ** 31;
    if (!Number.isSafeInteger(size) || size < minimum || size > largest || !Number.isInteger(Math.log2(size))) {
      throw new PciConfigError(this.owner, `BAR ${index}: size ${size} is not a power of two from ${minimum} to ${largest}`);
    }
    this.barSpecs[index] = bar;
    const register = PciConfig.bar0 + 4 * index;
    const flags = kind === 'io' ? BAR_IO_SPACE : (kind === 'mem64' ? BAR_MEM_TYPE_64 : 0) | (bar.prefetchable ? BAR_MEM_PREFETCHABLE : 0);
    this.setU32(register, flags);
    // The address bits a guest may set: those above the size, in both halves of a 64-bit BAR.
    const lowMask = (size >= 2 ** 32 ? 0 : (0x1_0000_0000 - size)) >>> 0;
    this.setMask(register, lowMask);
    if (kind === 'mem64') this.setMask(register + 4, size > 2 ** 32 ? (0x1_0000_0000 - size / 2 ** 32) >>> 0 : 0xffff_ffff);
  }

  private setMask(offset: number, mask: number): void {
    for (let i = 0; i < 4; i++) this.writeMask[offset + i] = (mask >>> (8 * i)) & 0xff;
  }

  /**
   * Adds a capability (its id and body, without the two header bytes) and returns its offset. Like QEMU,
   * each new capability goes first in the list, so the last added is the one the pointer names.
   * `writable` lists [offset within the capability, length] ranges the guest may write.
   */
  addCapability(id: number, body: Uint8Array, writable: ReadonlyArray<readonly [number, number]> = []): number {
    if (this.sealed) throw new PciConfigError(this.owner, 'capabilities are added before the function is plugged');
    const offset = this.capabilityEnd;
    const length = 2 + body.length;
    if (offset + length > PCI_CONFIG_SIZE) throw new PciConfigError(this.owner, 'no room left for a capability');
    this.bytes[offset] = id;
    this.bytes[offset + 1] = this.bytes[PciConfig.capabilityPointer]!;
    this.bytes.set(body, offset + 2);
    this.bytes[PciConfig.capabilityPointer] = offset;
    this.setU16(PciConfig.status, this.u16(PciConfig.status) | PciStatus.capabilityList);
    for (const [start, count] of writable) this.writeMask.fill(0xff, offset + start, offset + start + count);
    // Capabilities are dword-aligned.
    this.capabilityEnd = (offset + length + 3) & ~3;
    this.initial.set(this.bytes);
    return offset;
  }

  /** No more capabilities: the function is on a bus. */
  seal(): void {
    this.sealed = true;
  }

  /** A guest read of `size` bytes at `offset` (within the 256 bytes), little-endian. */
  read(offset: number, size: number): number {
    let value = 0;
    for (let i = size - 1; i >= 0; i--) value = value * 256 + (this.bytes[offset + i] ?? 0xff);
    return value;
  }

  /** A guest write: only the writable bits change. */
  write(offset: number, size: number, value: number): void {
    for (let i = 0; i < size && offset + i < PCI_CONFIG_SIZE; i++) {
      const mask = this.writeMask[offset + i]!;
      const byte = Math.floor(value / 256 ** i) & 0xff;
      this.bytes[offset + i] = (this.bytes[offset + i]! & ~mask) | (byte & mask);
    }
  }

  /** Back to power-on: no BAR assigned, decoding off, capabilities as built. */
  reset(): void {
    this.bytes.set(this.initial);
  }

  // ---- the function's own view (no write mask) ----

  u8(offset: number): number {
    return this.bytes[offset]!;
  }

  u16(offset: number): number {
    return this.bytes[offset]! | (this.bytes[offset + 1]! << 8);
  }

  u32(offset: number): number {
    return (this.u16(offset) | (this.u16(offset + 2) << 16)) >>> 0;
  }

  setU8(offset: number, value: number): void {
    this.bytes[offset] = value & 0xff;
  }

  setU16(offset: number, value: number): void {
    this.bytes[offset] = value & 0xff;
    this.bytes[offset + 1] = (value >>> 8) & 0xff;
  }

  setU32(offset: number, value: number): void {
    this.setU16(offset, value & 0xffff);
    this.setU16(offset + 2, value >>> 16);
  }

  get command(): number {
    return this.u16(PciConfig.command);
  }

  /** Sets or clears the status register's interrupt bit (the function's INTx level). */
  setInterruptStatus(asserted: boolean): void {
    const status = this.u16(PciConfig.status);
    this.setU16(PciConfig.status, asserted ? status | PciStatus.interrupt : status & ~PciStatus.interrupt);
  }

  get bars(): readonly PciBarSpec[] {
    return this.barSpecs.filter((bar): bar is PciBarSpec => bar !== undefined);
  }

  /**
   * Where BAR `bar` decodes in its address space, or null when it does not: its space is disabled in the
   * command register, or the guest left it where it cannot be (wrapping past the top of its space).
   */
  barBase(bar: PciBarSpec): number | null {
    const register = PciConfig.bar0 + 4 * bar.index;
    const enable = bar.kind === 'io' ? PciCommand.io : PciCommand.memory;
    if ((this.command & enable) === 0) return null;
    const low = this.u32(register) & (bar.kind === 'io' ? ~0x3 : ~0xf);
    const base = (bar.kind === 'mem64' ? this.u32(register + 4) * 2 ** 32 : 0) + (low >>> 0);
    const top = bar.kind === 'mem64' ? 2 ** 64 : bar.kind === 'mem32' ? 2 ** 32 : 2 ** 32;
    // A base past 2^53 is not an address this VMM's bus can reach anyway.
    if (base + bar.size > top || !Number.isSafeInteger(base + bar.size)) return null;
    return base;
  }
}
