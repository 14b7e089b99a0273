// HTIF (the Berkeley host-target interface that riscv-tests and many bare-metal programs use): the
// program's `tohost`/`fromhost` words. The 4 KiB page holding them becomes a read-only memory slot
// (KVM_MEM_READONLY): the guest reads and fetches from it at full speed, and its writes reach the VMM as
// MMIO exits, which this device performs on the slot's memory and then checks `tohost`.
//   tohost = 1                        → exit, status 0 (pass)
//   tohost = (code << 1) | 1          → exit, status `code`
//   tohost = device 1, command 1, ch  → console output of byte ch
import type { AccessSize, MmioDevice } from '../devices/device.js';

export type HtifEvent = { type: 'exit'; status: number } | { type: 'putchar'; byte: number };

export class HtifPage implements MmioDevice {
  readonly name = 'htif';
  readonly size = 4096;
  private readonly view: DataView;

  constructor(
    /** The read-only slot's 4 KiB of guest memory. */
    readonly bytes: Uint8Array,
    private readonly tohostOffset: number,
    private readonly fromhostOffset: number | null,
    private readonly onEvent: (event: HtifEvent) => void,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  read(offset: number, size: AccessSize): number {
    return readLe(this.view, offset, size);
  }

  write(offset: number, size: AccessSize, value: number): void {
    writeLe(this.view, offset, size, value);
    // 32-bit programs write tohost as two words, the high one last; act on a write that covers the low word.
    if (offset === this.tohostOffset) this.poll();
  }

  read64(offset: number): bigint {
    return this.view.getBigUint64(offset, true);
  }

  write64(offset: number, value: bigint): void {
    this.view.setBigUint64(offset, value, true);
    if (offset === this.tohostOffset) this.poll();
  }

  private poll(): void {
    const tohost = this.view.getBigUint64(this.tohostOffset, true);
    if (tohost === 0n) return;
    const device = Number(tohost >> 56n);
    const command = Number((tohost >> 48n) & 0xffn);
    const payload = tohost & 0xffff_ffff_ffffn;
    if (device === 0 && (payload & 1n) === 1n) {
      this.onEvent({ type: 'exit', status: Number(payload >> 1n) });
    } else if (device === 1 && command === 1) {
      this.onEvent({ type: 'putchar', byte: Number(payload & 0xffn) });
    }
    this.view.setBigUint64(this.tohostOffset, 0n, true);
    if (this.fromhostOffset !== null) this.view.setBigUint64(this.fromhostOffset, 1n, true);
  }
}

function readLe(view: DataView, offset: number, size: AccessSize): number {
  if (size === 1) return view.getUint8(offset);
  if (size === 2) return view.getUint16(offset, true);
  return view.getUint32(offset, true);
}

function writeLe(view: DataView, offset: number, size: AccessSize, value: number): void {
  if (size === 1) view.setUint8(offset, value);
  else if (size === 2) view.setUint16(offset, value, true);
  else view.setUint32(offset, value, true);
}
