// The CLINT (ACLINT MSWI + MTIMER) of the virt board, emulated in the core like KVM's in-kernel timer:
// msip at 0x0000 + 4·hart, mtimecmp at 0x4000 + 8·hart, mtime at 0xbff8.
// mtime is the host's monotonic clock in timebase ticks (10 MHz) plus an offset the guest may set.
import {
  HARTS, HART_SIZE, MACHINE_MTIME_OFFSET, MACHINE_MTIMECMP, MACHINE_NUM_HARTS, CSR_MIP, HART_WAKE,
  CSR_STIMECMP, CSR_MENVCFG, MACHINE_FLAGS, MACHINE_FLAG_SBI_IN_CORE,
} from "../abi/layout";
import { hart, MIP_MSIP, MIP_MTIP, MIP_STIP, setMipBits, clearMipBits } from "../cpu/hart";

/** Host monotonic clock in timebase ticks. Provided by the embedder (performance.now based). */
@external("wkvm", "clockTicks")
declare function clockTicks(): f64;

const MENVCFG_STCE: u64 = <u64>1 << 63;

export function readMtime(): u64 {
  return <u64>(<i64>clockTicks()) + load<u64>(MACHINE_MTIME_OFFSET);
}

@inline function hartBlock(id: i32): usize {
  return HARTS + <usize>id * HART_SIZE;
}

export function wakeHart(id: i32): void {
  const block = hartBlock(id);
  atomic.add<i32>(block + HART_WAKE, 1);
  atomic.notify(block + HART_WAKE, 1);
}

/**
 * Raises or lowers MTIP (and STIP when the supervisor timer is in use) of the running hart from the
 * clock. Called at block boundaries and before WFI decides to sleep.
 */
export function updateTimerInterrupts(now: u64): void {
  const id = <i32>((hart - HARTS) / HART_SIZE);
  if (now >= load<u64>(MACHINE_MTIMECMP + (<usize>id << 3))) setMipBits(<u32>MIP_MTIP);
  else clearMipBits(<u32>MIP_MTIP);
  if (supervisorTimerActive()) {
    if (now >= load<u64>(hart + CSR_STIMECMP)) setMipBits(<u32>MIP_STIP);
    else clearMipBits(<u32>MIP_STIP);
  }
}

/** stimecmp drives STIP when Sstc is on (menvcfg.STCE) or when the core is the SBI (set_timer). */
@inline export function supervisorTimerActive(): bool {
  return (load<u64>(hart + CSR_MENVCFG) & MENVCFG_STCE) != 0 || (load<i32>(MACHINE_FLAGS) & MACHINE_FLAG_SBI_IN_CORE) != 0;
}

/** The earliest mtime at which the running hart's timers fire (for the host's WFI sleep). */
export function nextTimerDeadline(): u64 {
  const id = <i32>((hart - HARTS) / HART_SIZE);
  let deadline = load<u64>(MACHINE_MTIMECMP + (<usize>id << 3));
  if (supervisorTimerActive()) {
    const s = load<u64>(hart + CSR_STIMECMP);
    if (s < deadline) deadline = s;
  }
  return deadline;
}

export function clintRead(offset: u32, size: i32): u64 {
  const harts = load<i32>(MACHINE_NUM_HARTS);
  if (offset < 0x4000) {
    const id = <i32>(offset >> 2);
    if (id >= harts || size != 4 || (offset & 3) != 0) return 0;
    return (<u64>atomic.load<i32>(hartBlock(id) + CSR_MIP) >> 3) & 1;
  }
  if (offset >= 0x4000 && offset < 0xbff8) {
    const rel = offset - 0x4000;
    const id = <i32>(rel >> 3);
    if (id >= harts) return 0;
    const value = load<u64>(MACHINE_MTIMECMP + (<usize>id << 3));
    return sliceRead(value, rel & 7, size);
  }
  if (offset >= 0xbff8 && offset < 0xc000) return sliceRead(readMtime(), offset - 0xbff8, size);
  return 0;
}

export function clintWrite(offset: u32, size: i32, value: u64): void {
  const harts = load<i32>(MACHINE_NUM_HARTS);
  if (offset < 0x4000) {
    const id = <i32>(offset >> 2);
    if (id >= harts || (offset & 3) != 0) return;
    const block = hartBlock(id);
    if (value & 1) atomic.or<i32>(block + CSR_MIP, <i32>MIP_MSIP);
    else atomic.and<i32>(block + CSR_MIP, ~(<i32>MIP_MSIP));
    // Waking the writer itself would make its next WFI return at once (a spin instead of a sleep).
    if (block != hart) wakeHart(id);
    return;
  }
  if (offset >= 0x4000 && offset < 0xbff8) {
    const rel = offset - 0x4000;
    const id = <i32>(rel >> 3);
    if (id >= harts) return;
    const addr = MACHINE_MTIMECMP + (<usize>id << 3);
    store<u64>(addr, sliceWrite(load<u64>(addr), rel & 7, size, value));
    updateTimerInterrupts(readMtime()); // the writer sees its own MTIP change at once
    if (hartBlock(id) != hart) wakeHart(id);
    return;
  }
  if (offset >= 0xbff8 && offset < 0xc000) {
    const now = readMtime();
    const wanted = sliceWrite(now, offset - 0xbff8, size, value);
    store<u64>(MACHINE_MTIME_OFFSET, load<u64>(MACHINE_MTIME_OFFSET) + (wanted - now));
    for (let id = 0; id < harts; id++) wakeHart(id);
  }
}

// 32-bit halves of the 64-bit registers are accessible on their own (RV32 software, and Linux's
// readl-based drivers).
@inline function sliceRead(value: u64, byteOffset: u32, size: i32): u64 {
  const shifted = value >> (<u64>byteOffset << 3);
  return size >= 8 ? shifted : shifted & ((<u64>1 << (<u64>size << 3)) - 1);
}

@inline function sliceWrite(old: u64, byteOffset: u32, size: i32, value: u64): u64 {
  if (size >= 8) return value;
  const shift = <u64>byteOffset << 3;
  const mask = ((<u64>1 << (<u64>size << 3)) - 1) << shift;
  return (old & ~mask) | ((value << shift) & mask);
}
