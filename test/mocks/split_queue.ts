// A driver-side split virtqueue in a Vm's guest RAM, for tests (rust-vmm's MockSplitQueue): it writes
// descriptor tables, avail entries and event indexes exactly as a guest driver would, including the
// malformed ones a hostile guest could write, and reads back what the device put in the used ring.
import type { Vm } from '../../host/kvm/vm.js';

export const DESC_F_NEXT = 1;
export const DESC_F_WRITE = 2;
export const DESC_F_INDIRECT = 4;

export interface RawDescriptor {
  addr: bigint | number;
  len: number;
  flags: number;
  next?: number;
}

/** A buffer of a chain: guest-physical address, length, and whether the device may write it. */
export interface MockBuffer {
  addr: number;
  len: number;
  write?: boolean;
}

export interface UsedElement {
  id: number;
  len: number;
}

export class MockSplitQueue {
  private availIdx = 0;
  private nextFree = 0;

  constructor(
    readonly vm: Vm,
    readonly size: number,
    /** Guest-physical addresses of the three rings. */
    readonly desc: number,
    readonly avail: number,
    readonly used: number,
  ) {}

  /** Lays the rings out from `base`: descriptor table, avail ring, used ring (4-aligned). */
  static at(vm: Vm, base: number, size: number): MockSplitQueue {
    const desc = base;
    const avail = desc + 16 * size;
    const used = Math.ceil((avail + 6 + 2 * size) / 4) * 4;
    const queue = new MockSplitQueue(vm, size, desc, avail, used);
    vm.guestMemory(desc, used + 6 + 8 * size - desc).fill(0);
    return queue;
  }

  /** Bytes the rings take from `base`. */
  static footprint(size: number): number {
    return Math.ceil((16 * size + 6 + 2 * size) / 4) * 4 + 6 + 8 * size;
  }

  private view(gpa: number, len: number): DataView {
    const bytes = this.vm.guestMemory(gpa, len);
    return new DataView(bytes.buffer, bytes.byteOffset, len);
  }

  writeDescriptor(index: number, d: RawDescriptor): void {
    MockSplitQueue.writeDescriptorAt(this.vm, this.desc + 16 * index, d);
  }

  static writeDescriptorAt(vm: Vm, gpa: number, d: RawDescriptor): void {
    const bytes = vm.guestMemory(gpa, 16);
    const view = new DataView(bytes.buffer, bytes.byteOffset, 16);
    view.setBigUint64(0, BigInt(d.addr), true);
    view.setUint32(8, d.len >>> 0, true);
    view.setUint16(12, d.flags, true);
    view.setUint16(14, d.next ?? 0, true);
  }

  /** Publishes `head` in the avail ring (entry first, then avail.idx, as a driver must). */
  publish(head: number): void {
    this.view(this.avail + 4 + 2 * (this.availIdx % this.size), 2).setUint16(0, head, true);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    this.setAvailIdx(this.availIdx);
  }

  setAvailIdx(value: number): void {
    this.availIdx = value & 0xffff;
    this.view(this.avail + 2, 2).setUint16(0, this.availIdx, true);
  }

  setAvailFlags(flags: number): void {
    this.view(this.avail, 2).setUint16(0, flags, true);
  }

  /** The driver's used_event (the entry after the avail ring). */
  setUsedEvent(value: number): void {
    this.view(this.avail + 4 + 2 * this.size, 2).setUint16(0, value, true);
  }

  /** The device's avail_event (the entry after the used ring). */
  availEvent(): number {
    return this.view(this.used + 4 + 8 * this.size, 2).getUint16(0, true);
  }

  usedIdx(): number {
    return this.view(this.used + 2, 2).getUint16(0, true);
  }

  usedElement(position: number): UsedElement {
    const view = this.view(this.used + 4 + 8 * (position % this.size), 8);
    return { id: view.getUint32(0, true), len: view.getUint32(4, true) };
  }

  /** Writes `buffers` as a chain of free descriptors and publishes it; returns the head. */
  addChain(buffers: MockBuffer[]): number {
    const indexes = buffers.map(() => this.allocate());
    buffers.forEach((b, i) => {
      const last = i === buffers.length - 1;
      this.writeDescriptor(indexes[i]!, {
        addr: b.addr,
        len: b.len,
        flags: (b.write ? DESC_F_WRITE : 0) | (last ? 0 : DESC_F_NEXT),
        next: last ? 0 : indexes[i + 1]!,
      });
    });
    this.publish(indexes[0]!);
    return indexes[0]!;
  }

  /** Writes `buffers` as an indirect table at `table` and publishes a head descriptor pointing at it. */
  addIndirectChain(table: number, buffers: MockBuffer[]): number {
    buffers.forEach((b, i) => {
      const last = i === buffers.length - 1;
      MockSplitQueue.writeDescriptorAt(this.vm, table + 16 * i, {
        addr: b.addr,
        len: b.len,
        flags: (b.write ? DESC_F_WRITE : 0) | (last ? 0 : DESC_F_NEXT),
        next: last ? 0 : i + 1,
      });
    });
    const head = this.allocate();
    this.writeDescriptor(head, { addr: table, len: 16 * buffers.length, flags: DESC_F_INDIRECT });
    this.publish(head);
    return head;
  }

  /** The next descriptor index, round-robin (tests complete chains before the table wraps). */
  allocate(): number {
    const index = this.nextFree;
    this.nextFree = (this.nextFree + 1) % this.size;
    return index;
  }
}
