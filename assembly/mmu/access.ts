// The out-of-line half of guest loads and stores: TLB misses, misaligned accesses, the in-core devices
// (CLINT, PLIC, virtio-mmio's interrupt registers), and MMIO exits to the host. The interpreter inlines
// only the TLB hit.
import {
  HART_X, HART_F, HART_PC, RUN_EXIT_REASON, RUN_MMIO_IS_WRITE, RUN_MMIO_ADDR, RUN_MMIO_DATA, RUN_MMIO_SIZE,
  RUN_MMIO_DEST, RUN_MMIO_LOAD_KIND, RUN_PENDING_LEN, RUN_MMIO_VA, EXIT_MMIO, MACHINE_FLAGS, MACHINE_FLAG_CLINT,
  MACHINE_FLAG_PLIC, CLINT_BASE, CLINT_SIZE, PLIC_BASE, PLIC_SIZE, LOAD_KIND_I8, LOAD_KIND_I16, LOAD_KIND_I32,
  LOAD_KIND_U8, LOAD_KIND_U16, LOAD_KIND_U32, LOAD_KIND_F32, LOAD_KIND_F64, PAGE_SIZE, HART_CUR_ASID, HART_DATA_TLB,
  TLB_LOAD, TLB_STORE, TLB_TAG, TLB_ADDEND, VIRTIO_MMIO_INTERRUPT_STATUS, VIRTIO_MMIO_INTERRUPT_ACK,
} from "../abi/layout";
import { hart, enterTrap, CAUSE_MISALIGNED_LOAD, CAUSE_MISALIGNED_STORE } from "../cpu/hart";
import {
  translate, faultCause, lastPa, lastHost, ACCESS_LOAD, ACCESS_STORE, accessFaultCause, tlbIndex, asidHash, asidTag,
} from "./mmu";
import { clintRead, clintWrite } from "../irq/clint";
import { noteDataAccess, forgetDataAccess, watchHitPending } from "../cpu/debug";
import { plicRead, plicWrite } from "../irq/plic";
import { inCoreInterruptRegister, readInterruptStatus, acknowledgeInterrupt } from "../virtio/mmio_interrupt";

export const MEM_OK = 0;
export const MEM_TRAP = 1; // an exception was raised: HART_PC holds the handler
export const MEM_EXIT = 2; // an MMIO exit was prepared: run() must return EXIT_MMIO

export let memStatus: i32 = MEM_OK;

@inline export function loadKindSize(kind: i32): i32 {
  if (kind == LOAD_KIND_I8 || kind == LOAD_KIND_U8) return 1;
  if (kind == LOAD_KIND_I16 || kind == LOAD_KIND_U16) return 2;
  if (kind == LOAD_KIND_I32 || kind == LOAD_KIND_U32 || kind == LOAD_KIND_F32) return 4;
  return 8;
}

/** Sign- or zero-extends raw little-endian bits of a load to the register value it produces. */
export function extendLoad(kind: i32, raw: u64): u64 {
  switch (kind) {
    case LOAD_KIND_I8: return <u64><i64><i8>raw;
    case LOAD_KIND_I16: return <u64><i64><i16>raw;
    case LOAD_KIND_I32: return <u64><i64><i32>raw;
    case LOAD_KIND_U8: return raw & 0xff;
    case LOAD_KIND_U16: return raw & 0xffff;
    case LOAD_KIND_U32: return raw & 0xffffffff;
    case LOAD_KIND_F32: return (raw & 0xffffffff) | 0xffffffff00000000; // NaN-boxed single
    default: return raw;
  }
}

@inline function readHost(host: usize, size: i32): u64 {
  if (size == 1) return <u64>load<u8>(host);
  if (size == 2) return <u64>load<u16>(host);
  if (size == 4) return <u64>load<u32>(host);
  return load<u64>(host);
}

@inline function writeHost(host: usize, size: i32, value: u64): void {
  if (size == 1) store<u8>(host, <u8>value);
  else if (size == 2) store<u16>(host, <u16>value);
  else if (size == 4) store<u32>(host, <u32>value);
  else store<u64>(host, value);
}

/** Writes a completed load into its destination register (x or f). */
export function writeLoadDest(kind: i32, dest: i32, value: u64): void {
  if (kind == LOAD_KIND_F32 || kind == LOAD_KIND_F64) store<u64>(hart + HART_F + (<usize>dest << 3), value);
  else if (dest != 0) store<u64>(hart + HART_X + (<usize>dest << 3), value);
}

@inline function inCoreDevice(pa: u64): i32 {
  const flags = load<i32>(MACHINE_FLAGS);
  if ((flags & MACHINE_FLAG_CLINT) != 0 && pa - CLINT_BASE < <u64>CLINT_SIZE) return 1;
  if ((flags & MACHINE_FLAG_PLIC) != 0 && pa - PLIC_BASE < <u64>PLIC_SIZE) return 2;
  return 0;
}

function trap(cause: i32, tval: u64, pc: u64): void {
  enterTrap(<u64>cause, tval, pc, false);
  memStatus = MEM_TRAP;
  forgetDataAccess();
}

/**
 * A load the TLB could not serve. Returns the extended value when it completes here; otherwise sets
 * memStatus: MEM_TRAP (exception entered) or MEM_EXIT (MMIO exit prepared; `dest` receives the value when
 * the host completes it and run() resumes the instruction of length `len`).
 */
export function loadSlow(va: u64, kind: i32, dest: i32, pc: u64, len: i32): u64 {
  memStatus = MEM_OK;
  const size = loadKindSize(kind);
  noteDataAccess(va, size, false);
  const misaligned = (va & <u64>(size - 1)) != 0;
  if (misaligned && ((va & <u64>(PAGE_SIZE - 1)) + <u64>size > <u64>PAGE_SIZE)) {
    // Crosses a page: assemble it from bytes, each translated (the first fault wins).
    let raw: u64 = 0;
    for (let i = 0; i < size; i++) {
      const a = va + <u64>i;
      if (!translate(a, ACCESS_LOAD, 1)) { trap(faultCause, a, pc); return 0; }
      if (lastHost == 0) { trap(CAUSE_MISALIGNED_LOAD, va, pc); return 0; }
      raw |= <u64>load<u8>(lastHost) << (<u64>i << 3);
    }
    return extendLoad(kind, raw);
  }
  if (!translate(va, ACCESS_LOAD, <u64>size)) { trap(faultCause, va, pc); return 0; }
  if (lastHost != 0) return extendLoad(kind, readHost(lastHost, size));
  if (misaligned) { trap(CAUSE_MISALIGNED_LOAD, va, pc); return 0; }
  const device = inCoreDevice(lastPa);
  if (device == 1) return extendLoad(kind, clintRead(<u32>(lastPa - CLINT_BASE), size));
  if (device == 2) return extendLoad(kind, size == 4 ? <u64>plicRead(<u32>(lastPa - PLIC_BASE)) : 0);
  const slot = inCoreInterruptRegister(lastPa, size, VIRTIO_MMIO_INTERRUPT_STATUS);
  if (slot >= 0) return extendLoad(kind, <u64>readInterruptStatus(slot));
  prepareMmioExit(false, lastPa, va, size, 0, dest, kind, len);
  return 0;
}

/** A store the TLB could not serve; memStatus as for loadSlow. */
export function storeSlow(va: u64, size: i32, value: u64, pc: u64, len: i32): void {
  memStatus = MEM_OK;
  noteDataAccess(va, size, true);
  const misaligned = (va & <u64>(size - 1)) != 0;
  if (misaligned && ((va & <u64>(PAGE_SIZE - 1)) + <u64>size > <u64>PAGE_SIZE)) {
    // Translate every byte before writing any, so a fault leaves memory untouched.
    for (let i = 0; i < size; i++) {
      const a = va + <u64>i;
      if (!translate(a, ACCESS_STORE, 1)) { trap(faultCause, a, pc); return; }
      if (lastHost == 0) { trap(CAUSE_MISALIGNED_STORE, va, pc); return; }
    }
    for (let i = 0; i < size; i++) {
      translate(va + <u64>i, ACCESS_STORE, 1);
      store<u8>(lastHost, <u8>(value >> (<u64>i << 3)));
    }
    return;
  }
  if (!translate(va, ACCESS_STORE, <u64>size)) { trap(faultCause, va, pc); return; }
  if (lastHost != 0) { writeHost(lastHost, size, value); return; }
  if (misaligned) { trap(CAUSE_MISALIGNED_STORE, va, pc); return; }
  const device = inCoreDevice(lastPa);
  if (device == 1) { clintWrite(<u32>(lastPa - CLINT_BASE), size, value); return; }
  if (device == 2) { if (size == 4) plicWrite(<u32>(lastPa - PLIC_BASE), <u32>value); return; }
  const slot = inCoreInterruptRegister(lastPa, size, VIRTIO_MMIO_INTERRUPT_ACK);
  if (slot >= 0) { acknowledgeInterrupt(slot, <u32>value); return; }
  // The device sees exactly the bytes stored, not the rest of the source register.
  const data = size == 8 ? value : value & ((<u64>1 << (<u64>size << 3)) - 1);
  prepareMmioExit(true, lastPa, va, size, data, -1, 0, len);
}

function prepareMmioExit(isWrite: bool, pa: u64, va: u64, size: i32, value: u64, dest: i32, kind: i32, len: i32): void {
  forgetDataAccess(); // watchpoints watch memory, not device registers
  store<i32>(hart + RUN_EXIT_REASON, EXIT_MMIO);
  store<i32>(hart + RUN_MMIO_IS_WRITE, isWrite ? 1 : 0);
  store<u64>(hart + RUN_MMIO_ADDR, pa);
  store<u64>(hart + RUN_MMIO_VA, va);
  store<u64>(hart + RUN_MMIO_DATA, value);
  store<i32>(hart + RUN_MMIO_SIZE, size);
  store<i32>(hart + RUN_MMIO_DEST, dest);
  store<i32>(hart + RUN_MMIO_LOAD_KIND, kind);
  store<i32>(hart + RUN_PENDING_LEN, len);
  memStatus = MEM_EXIT;
}

/**
 * Completes an MMIO access on the next run(): the host has put a load's value in RUN_MMIO_DATA, or set
 * RUN_MMIO_FAULT when no device answers. Retires the instruction or raises the access fault.
 */
export function completeMmio(faulted: bool): void {
  const len = load<i32>(hart + RUN_PENDING_LEN);
  store<i32>(hart + RUN_PENDING_LEN, 0);
  const pc = load<u64>(hart + HART_PC);
  const isWrite = load<i32>(hart + RUN_MMIO_IS_WRITE) != 0;
  if (faulted) {
    enterTrap(<u64>accessFaultCause(isWrite ? ACCESS_STORE : ACCESS_LOAD), load<u64>(hart + RUN_MMIO_VA), pc, false);
    return;
  }
  if (!isWrite) {
    const kind = load<i32>(hart + RUN_MMIO_LOAD_KIND);
    writeLoadDest(kind, load<i32>(hart + RUN_MMIO_DEST), extendLoad(kind, load<u64>(hart + RUN_MMIO_DATA)));
  }
  store<u64>(hart + HART_PC, pc + <u64>len);
}

/**
 * The host address for an atomic access of `size` bytes at `va` (LR with `forWrite` false; SC and AMOs
 * true), or 0 with memStatus = MEM_TRAP. Atomics must be naturally aligned and in RAM.
 */
export function atomicAddress(va: u64, size: i32, forWrite: bool, pc: u64): usize {
  memStatus = MEM_OK;
  // The TLB hit, as the interpreter inlines it for loads and stores: a store entry means the page is
  // writable RAM with D set, and the tag compare also rejects a misaligned address.
  const asid = load<i32>(hart + HART_CUR_ASID);
  const e = <usize>load<i32>(hart + HART_DATA_TLB) + (forWrite ? TLB_STORE : TLB_LOAD) + tlbIndex(va, asidHash(asid));
  if (load<u64>(e, TLB_TAG) == ((va & (~(<u64>PAGE_SIZE - 1) | <u64>(size - 1))) | asidTag(asid))) {
    return <usize>(va + load<u64>(e, TLB_ADDEND));
  }
  // LR reads; SC writes; an AMO does both (a write watchpoint or, failing that, a read one).
  noteDataAccess(va, size, forWrite);
  if (forWrite && !watchHitPending) noteDataAccess(va, size, false);
  if ((va & <u64>(size - 1)) != 0) {
    trap(forWrite ? CAUSE_MISALIGNED_STORE : CAUSE_MISALIGNED_LOAD, va, pc);
    return 0;
  }
  const access = forWrite ? ACCESS_STORE : ACCESS_LOAD;
  if (!translate(va, access, <u64>size)) { trap(faultCause, va, pc); return 0; }
  if (lastHost == 0) { trap(accessFaultCause(access), va, pc); return 0; }
  return lastHost;
}
