// Guest memory as a hart sees it, for debuggers and the monitor (gdb's `m`, HMP's `x` and `xp`): physical
// addresses through the RAM slots, virtual ones through satp's page table (Sv39, Sv48 or Sv57, the modes
// the core implements; physical when paging is off: host/kvm/guest_page_table.ts), walked in software without touching the hart's TLB or
// setting A/D bits. Views stop at the first page that is not mapped or not RAM (devices are not read:
// a read may have side effects). Node-free.
import type { Vm } from '../kvm/vm.js';
import type { Vcpu } from '../kvm/vcpu.js';
import { guestPhysicalAddress } from '../kvm/guest_page_table.js';

const SATP = 0x180;
const PAGE_SIZE = 4096;

/** `length` bytes of guest RAM at a physical address, as a view; null unless all of it is in one RAM slot. */
export function physicalRam(vm: Vm, physical: bigint, length: number): Uint8Array | null {
  if (physical < 0n || physical + BigInt(length) > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  try {
    return vm.guestMemory(Number(physical), length);
  } catch {
    return null;
  }
}

/** The physical address `vcpu` reaches at `virtual` through satp's page table, or null where nothing is mapped. */
export function translateVirtual(vm: Vm, vcpu: Vcpu, virtual: bigint): bigint | null {
  return guestPhysicalAddress(vcpu.getCsr(SATP), virtual, (physical) => readPhysical64(vm, physical));
}

/**
 * Views of guest RAM for `length` bytes from `address`, a page per view (one page-table walk each),
 * ending early at the first page that is not mapped or not RAM. `vcpu` null: `address` is physical.
 */
export function guestRamViews(vm: Vm, vcpu: Vcpu | null, address: bigint, length: number): Uint8Array[] {
  const parts: Uint8Array[] = [];
  for (let done = 0; done < length;) {
    const at = BigInt.asUintN(64, address + BigInt(done));
    const inPage = Math.min(length - done, PAGE_SIZE - Number(at & 0xfffn));
    const physical = vcpu === null ? at : translateVirtual(vm, vcpu, at);
    const view = physical === null ? null : physicalRam(vm, physical, inPage);
    if (view === null) break;
    parts.push(view);
    done += inPage;
  }
  return parts;
}

/** A copy of the bytes at `address` (virtual for `vcpu`, physical for null), up to the first that cannot be read. */
export function readGuestBytes(vm: Vm, vcpu: Vcpu | null, address: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  for (const part of guestRamViews(vm, vcpu, address, length)) {
    out.set(part, done);
    done += part.length;
  }
  return out.subarray(0, done);
}

function readPhysical64(vm: Vm, physical: bigint): bigint | null {
  const bytes = physicalRam(vm, physical, 8);
  return bytes === null ? null : new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
}
