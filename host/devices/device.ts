// The narrow interface between the VMM's MMIO bus and an emulated device (kvmtool's `struct device_header`,
// rust-vmm's `BusDevice`). Offsets are relative to the device's base address. Accesses of 1, 2 or 4 bytes
// reach the device as they are; the bus splits an 8-byte access into two 4-byte ones (low word first)
// unless the device implements `read64`/`write64`.

export type AccessSize = 1 | 2 | 4;

export interface MmioDevice {
  /** Short name used in logs and errors, e.g. "uart0". */
  readonly name: string;
  /** Size of the device's MMIO window in bytes. */
  readonly size: number;
  /** A guest load. Returns the value zero-extended to a non-negative number below 2^(8·size). */
  read(offset: number, size: AccessSize): number;
  /** A guest store. `value` is a non-negative number below 2^(8·size). */
  write(offset: number, size: AccessSize, value: number): void;
  /**
   * Whether an access of `size` bytes at `offset` reaches anything (without it: all of the window does). A
   * window that forwards to other devices, such as a PCI host's MMIO window, says no where nothing is
   * mapped, and the bus then reports the access as unclaimed (an access fault, as QEMU's unassigned memory).
   */
  claims?(offset: number, size: number): boolean;
  read64?(offset: number): bigint;
  write64?(offset: number, value: bigint): void;
  /** Return to the state after power-on (system reset). */
  reset?(): void;
}

/** A level-triggered interrupt line into the interrupt controller (the PLIC on `virt`). */
export interface IrqLine {
  set(level: boolean): void;
}

/** An IRQ line that goes nowhere; for devices used without an interrupt controller and in tests. */
export class NullIrqLine implements IrqLine {
  level = false;
  set(level: boolean): void {
    this.level = level;
  }
}
