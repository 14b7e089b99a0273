// The SBI (RISC-V's hypercall interface) served by the core when the VM has no M-mode firmware, split the
// way KVM splits it: BASE, TIME, IPI, RFENCE and HSM in the "kernel" (here), SRST as a system-event exit,
// and the console (DBCN, legacy putchar/getchar) and anything unknown as an SBI exit to the VMM.
import {
  HARTS, HART_SIZE, HART_ID, HART_STATE, HART_HSM_START_ADDR, HART_HSM_OPAQUE, HART_FLUSH_REQ, MACHINE_NUM_HARTS,
  CSR_STIMECMP, RUN_SBI_ARGS, RUN_SBI_PENDING, RUN_SYSTEM_EVENT, RUN_EXIT_REASON, EXIT_SBI, EXIT_SYSTEM_EVENT,
  EXIT_HALT, EXIT_HART_STOPPED, SYSTEM_EVENT_SHUTDOWN, SYSTEM_EVENT_RESET, HART_STATE_STOPPED,
  HART_STATE_START_PENDING, FLUSH_REQ_TLB, FLUSH_REQ_ICACHE, CSR_MIP, HART_RUNNING,
} from "../abi/layout";
import { hart, getX, setX, clearMipBits, MIP_STIP, MIP_SSIP } from "./hart";
import { readMtime, updateTimerInterrupts, wakeHart } from "../irq/clint";
import { tlbFlushAll } from "../mmu/mmu";
import { startCodeGeneration } from "../jit/block_cache";

const EXT_BASE: u64 = 0x10;
const EXT_TIME: u64 = 0x54494d45;
const EXT_IPI: u64 = 0x735049;
const EXT_RFENCE: u64 = 0x52464e43;
const EXT_HSM: u64 = 0x48534d;
const EXT_SRST: u64 = 0x53525354;
const EXT_DBCN: u64 = 0x4442434e;
const LEGACY_SET_TIMER: u64 = 0;
const LEGACY_CONSOLE_PUTCHAR: u64 = 1;
const LEGACY_CONSOLE_GETCHAR: u64 = 2;
const LEGACY_CLEAR_IPI: u64 = 3;
const LEGACY_SHUTDOWN: u64 = 8;

const SBI_SUCCESS: i64 = 0;
const SBI_ERR_NOT_SUPPORTED: i64 = -2;
const SBI_ERR_INVALID_PARAM: i64 = -3;
const SBI_ERR_ALREADY_AVAILABLE: i64 = -6;

const SBI_SPEC_VERSION: u64 = 2 << 24; // v2.0
const SBI_IMPL_ID: u64 = 0x776b766d; // "wkvm"
const SBI_IMPL_VERSION: u64 = 1;

/** Returned by sbiCall when the call completed in the core and the guest continues. */
export const SBI_HANDLED = -1;

@inline function ret(error: i64, value: u64): i32 {
  setX(10, <u64>error);
  setX(11, value);
  return SBI_HANDLED;
}

@inline function hartBlock(id: i32): usize {
  return HARTS + <usize>id * HART_SIZE;
}

/**
 * Handles an ECALL from S-mode (pc already advanced past it). Returns SBI_HANDLED, or the exit code
 * run() must return (EXIT_SBI with a0..a7 in RUN_SBI_ARGS; EXIT_SYSTEM_EVENT; EXIT_HALT; EXIT_HART_STOPPED).
 */
export function sbiCall(): i32 {
  const eid = getX(17);
  const fid = getX(16);
  const a0 = getX(10);
  const a1 = getX(11);
  if (eid == EXT_BASE) {
    switch (<i32>fid) {
      case 0: return ret(SBI_SUCCESS, SBI_SPEC_VERSION);
      case 1: return ret(SBI_SUCCESS, SBI_IMPL_ID);
      case 2: return ret(SBI_SUCCESS, SBI_IMPL_VERSION);
      case 3: return ret(SBI_SUCCESS, extensionAvailable(a0) ? 1 : 0);
      case 4: case 5: case 6: return ret(SBI_SUCCESS, 0);
    }
    return ret(SBI_ERR_NOT_SUPPORTED, 0);
  }
  if (eid == EXT_TIME || eid == LEGACY_SET_TIMER) {
    if (eid == EXT_TIME && fid != 0) return ret(SBI_ERR_NOT_SUPPORTED, 0);
    store<u64>(hart + CSR_STIMECMP, a0);
    clearMipBits(<u32>MIP_STIP);
    updateTimerInterrupts(readMtime());
    return eid == EXT_TIME ? ret(SBI_SUCCESS, 0) : legacyReturn(0);
  }
  if (eid == EXT_IPI) {
    if (fid != 0) return ret(SBI_ERR_NOT_SUPPORTED, 0);
    return forEachTargetHart(a0, a1, TARGET_IPI);
  }
  if (eid == LEGACY_CLEAR_IPI) {
    clearMipBits(<u32>MIP_SSIP);
    return legacyReturn(0);
  }
  if (eid == EXT_RFENCE) {
    // Fences on other harts are requests they act on at their next block boundary; a full TLB flush
    // is a correct (if generous) answer to every remote sfence.vma.
    if (fid == 0) return forEachTargetHart(a0, a1, TARGET_FENCE_I);
    if (fid == 1 || fid == 2) return forEachTargetHart(a0, a1, TARGET_SFENCE);
    return ret(SBI_ERR_NOT_SUPPORTED, 0);
  }
  if (eid == EXT_HSM) return hsmCall(fid, a0, a1, getX(12));
  if (eid == EXT_SRST || eid == LEGACY_SHUTDOWN) {
    if (eid == EXT_SRST && (fid != 0 || a0 > 2)) return ret(SBI_ERR_INVALID_PARAM, 0);
    const type = eid == LEGACY_SHUTDOWN ? 0 : <i32>a0;
    store<i32>(hart + RUN_SYSTEM_EVENT, type == 0 ? SYSTEM_EVENT_SHUTDOWN : SYSTEM_EVENT_RESET);
    store<i32>(hart + RUN_EXIT_REASON, EXIT_SYSTEM_EVENT);
    return EXIT_SYSTEM_EVENT;
  }
  // Everything else is the VMM's: console, vendor extensions, unknown ones (it answers NOT_SUPPORTED).
  for (let i = 0; i < 8; i++) store<u64>(hart + RUN_SBI_ARGS + (<usize>i << 3), getX(10 + i));
  store<i32>(hart + RUN_SBI_PENDING, 1);
  store<i32>(hart + RUN_EXIT_REASON, EXIT_SBI);
  return EXIT_SBI;
}

function extensionAvailable(eid: u64): bool {
  return eid == EXT_BASE || eid == EXT_TIME || eid == EXT_IPI || eid == EXT_RFENCE || eid == EXT_HSM ||
    eid == EXT_SRST || eid == EXT_DBCN || eid == LEGACY_SET_TIMER || eid == LEGACY_CONSOLE_PUTCHAR ||
    eid == LEGACY_CONSOLE_GETCHAR || eid == LEGACY_CLEAR_IPI || eid == LEGACY_SHUTDOWN;
}

@inline function legacyReturn(value: i64): i32 {
  setX(10, <u64>value);
  return SBI_HANDLED;
}

const TARGET_IPI = 0;
const TARGET_FENCE_I = 1;
const TARGET_SFENCE = 2;

/** Applies an IPI or remote fence to the harts named by (hart_mask, hart_mask_base); base -1 means all. */
function forEachTargetHart(mask: u64, base: u64, action: i32): i32 {
  const harts = load<i32>(MACHINE_NUM_HARTS);
  const self = load<i32>(hart + HART_ID);
  for (let id = 0; id < harts; id++) {
    if (base != <u64>-1) {
      const rel = <u64>id - base;
      if (<u64>id < base || rel >= 64 || ((mask >> rel) & 1) == 0) continue;
    }
    const block = hartBlock(id);
    if (action == TARGET_IPI) {
      atomic.or<i32>(block + CSR_MIP, <i32>MIP_SSIP);
      wakeHart(id);
    } else if (id == self) {
      if (action == TARGET_SFENCE) tlbFlushAll();
      else startCodeGeneration();
    } else {
      atomic.or<i32>(block + HART_FLUSH_REQ, action == TARGET_SFENCE ? FLUSH_REQ_TLB : FLUSH_REQ_ICACHE);
      wakeHart(id);
      waitForFlush(block);
    }
  }
  if (base != <u64>-1 && base >= <u64>harts) return ret(SBI_ERR_INVALID_PARAM, 0);
  return ret(SBI_SUCCESS, 0);
}

/**
 * SBI requires a remote fence (sfence.vma, fence.i) to have taken effect when the call returns. A running target acts on
 * its request at its next block boundary; a hart that is not running will before it runs again. While
 * waiting, serve requests aimed at this hart, so two harts fencing each other cannot deadlock.
 */
function waitForFlush(target: usize): void {
  while (atomic.load<i32>(target + HART_FLUSH_REQ) != 0 && atomic.load<i32>(target + HART_RUNNING) != 0) {
    const own = atomic.xchg<i32>(hart + HART_FLUSH_REQ, 0);
    if (own & FLUSH_REQ_TLB) tlbFlushAll();
    if (own & FLUSH_REQ_ICACHE) startCodeGeneration();
  }
}

function hsmCall(fid: u64, a0: u64, a1: u64, a2: u64): i32 {
  const harts = load<i32>(MACHINE_NUM_HARTS);
  if (fid == 0) { // hart_start(hartid, start_addr, opaque)
    if (a0 >= <u64>harts) return ret(SBI_ERR_INVALID_PARAM, 0);
    const block = hartBlock(<i32>a0);
    if (atomic.cmpxchg<i32>(block + HART_STATE, HART_STATE_STOPPED, HART_STATE_START_PENDING) != HART_STATE_STOPPED) {
      return ret(SBI_ERR_ALREADY_AVAILABLE, 0);
    }
    store<u64>(block + HART_HSM_START_ADDR, a1);
    store<u64>(block + HART_HSM_OPAQUE, a2);
    wakeHart(<i32>a0);
    return ret(SBI_SUCCESS, 0);
  }
  if (fid == 1) { // hart_stop(): does not return
    atomic.store<i32>(hart + HART_STATE, HART_STATE_STOPPED);
    store<i32>(hart + RUN_EXIT_REASON, EXIT_HART_STOPPED);
    return EXIT_HART_STOPPED;
  }
  if (fid == 2) { // hart_get_status(hartid)
    if (a0 >= <u64>harts) return ret(SBI_ERR_INVALID_PARAM, 0);
    return ret(SBI_SUCCESS, <u64>atomic.load<i32>(hartBlock(<i32>a0) + HART_STATE));
  }
  if (fid == 3) { // hart_suspend(type, ...): the default retentive suspend behaves as WFI
    if (<u32>a0 != 0) return ret(SBI_ERR_NOT_SUPPORTED, 0);
    ret(SBI_SUCCESS, 0);
    store<i32>(hart + RUN_EXIT_REASON, EXIT_HALT);
    return EXIT_HALT;
  }
  return ret(SBI_ERR_NOT_SUPPORTED, 0);
}
