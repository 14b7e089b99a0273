// The core's only export surface (the "ioctl" layer). The host reads and writes plain state — registers,
// memory slots, the run area — directly in the shared memory, at the offsets in abi/layout.ts; anything
// with side effects (CSRs, TLBs, the PLIC) goes through these functions.
import {
  MACHINE, MACHINE_SIZE, MACHINE_NUM_HARTS, MACHINE_FLAGS, HARTS, HART_SIZE, MAX_HARTS, HART_ID, HART_STATE,
  HART_RESERVATION, CSR_MSTATUS, CSR_MISA, HART_STATE_STARTED, HART_STATE_STOPPED, HART_PC, HART_CUR_ASID,
  CSR_MTVEC, AS_STATIC_END, HART_PRIV, CSR_MCOUNTEREN, CSR_SCOUNTEREN, CSR_MENVCFG, MACHINE_MTIMECMP, CSR_STIMECMP,
} from "./abi/layout";
import { hart, selectHart, setPriv, getPriv, PRIV_M, MSTATUS_FS } from "./cpu/hart";
import { buildRvcTable } from "./cpu/rvc";
import { runHart } from "./cpu/interp";
import { csrRead, csrWrite, csrIllegal, MISA_VALUE } from "./cpu/csr";
import { tlbFlushAll } from "./mmu/mmu";
import { resetBlockCache, ageBatch, jitEnabled, adoptTranslations } from "./jit/block_cache";
import { setIrqLevel as plicSetIrqLevel } from "./irq/plic";
import { readMtime, nextTimerDeadline } from "./irq/clint";

/** Where AssemblyScript's static data ends; the host checks it stays below AS_STATIC_END. */
export function staticDataEnd(): usize {
  return __heap_base;
}

export function layoutLimit(): usize {
  return AS_STATIC_END;
}

/**
 * Prepares the VM-wide state for `numHarts` harts: clears it, builds the compressed-instruction table
 * and resets every hart. Call once, on one thread, before any run().
 */
export function initMachine(numHarts: i32, flags: i32): i32 {
  if (numHarts < 1 || numHarts > MAX_HARTS) return 1;
  memory.fill(MACHINE, 0, MACHINE_SIZE);
  store<i32>(MACHINE_NUM_HARTS, numHarts);
  store<i32>(MACHINE_FLAGS, flags);
  for (let i = 0; i < MAX_HARTS; i++) store<u64>(MACHINE_MTIMECMP + (<usize>i << 3), <u64>-1);
  buildRvcTable();
  for (let id = 0; id < numHarts; id++) resetHart(id, 0, id == 0 ? 1 : 0);
  return 0;
}

/** Power-on state of a hart: M-mode at `pc`, everything else zero; `started` 0 leaves it HSM-stopped. */
export function resetHart(id: i32, pc: u64, started: i32): void {
  selectHart(id);
  memory.fill(hart, 0, HART_SIZE);
  store<i32>(hart + HART_ID, id);
  store<u64>(hart + HART_PC, pc);
  store<u64>(hart + CSR_MISA, MISA_VALUE);
  store<u64>(hart + CSR_MSTATUS, 0);
  store<u64>(hart + CSR_MTVEC, 0);
  store<u64>(hart + CSR_STIMECMP, <u64>-1);
  store<i64>(hart + HART_RESERVATION, -1);
  store<i32>(hart + HART_CUR_ASID, 0);
  store<i32>(hart + HART_STATE, started != 0 ? HART_STATE_STARTED : HART_STATE_STOPPED);
  setPriv(PRIV_M);
  tlbFlushAll();
  resetBlockCache();
}

/**
 * Puts a hart where firmware would leave it for an S-mode kernel (KVM's vCPU reset for RISC-V): S-mode,
 * FP usable, counters and the Sstc timer delegated. Used by the firmware-less boot path.
 */
export function enterSupervisor(id: i32): void {
  selectHart(id);
  store<u64>(hart + CSR_MSTATUS, load<u64>(hart + CSR_MSTATUS) | (MSTATUS_FS & (<u64>1 << 13)));
  // Counters readable from S and (as OpenSBI leaves them, and Linux's vDSO needs for rdtime) from U.
  store<u64>(hart + CSR_MCOUNTEREN, 7);
  store<u64>(hart + CSR_SCOUNTEREN, 7);
  store<u64>(hart + CSR_MENVCFG, <u64>1 << 63);
  // Exceptions and interrupts S-mode handles, as OpenSBI delegates them.
  csrAsMachine(0x302, 0xb1ff, true); // medeleg: every exception but ecall-from-S, which is the SBI here
  csrAsMachine(0x303, 0x222, true); // mideleg: SSI, STI, SEI
  setPriv(1);
}

export function run(id: i32, budget: i32): i32 {
  selectHart(id);
  const exit = runHart(budget);
  if (jitEnabled()) ageBatch();
  return exit;
}

/**
 * Takes translations another hart of this VM compiled into hart `id`'s block cache (SMP): `count` batch
 * records at `records` and the `blockCount` region blocks at `blocks` they index, in memory the host wrote
 * them to. Returns how many went in; each record's JIT_RECORD_TABLE_INDEX then names the table slot for its
 * function, or -1.
 */
export function jitAdopt(id: i32, records: usize, count: i32, blocks: usize, blockCount: i32): i32 {
  selectHart(id);
  return adoptTranslations(records, count, blocks, blockCount);
}

/** KVM_GET_ONE_REG for a CSR, with M-mode rights. Returns the value; `lastCsrIllegal()` says if it exists. */
export function getCsr(id: i32, num: u32): u64 {
  selectHart(id);
  return csrAsMachine(num, 0, false);
}

/** KVM_SET_ONE_REG for a CSR. Returns 0, or 1 if the CSR does not exist or is read-only. */
export function setCsr(id: i32, num: u32, value: u64): i32 {
  selectHart(id);
  csrAsMachine(num, value, true);
  return csrIllegal ? 1 : 0;
}

let lastIllegal = false;
export function lastCsrIllegal(): bool {
  return lastIllegal;
}

function csrAsMachine(num: u32, value: u64, write: bool): u64 {
  const priv = getPriv();
  store<i32>(hart + HART_PRIV, PRIV_M);
  let result: u64 = 0;
  if (write) csrWrite(num, value, false);
  else result = csrRead(num);
  lastIllegal = csrIllegal;
  store<i32>(hart + HART_PRIV, priv);
  return result;
}

export function setPrivilege(id: i32, priv: i32): void {
  selectHart(id);
  setPriv(priv);
}

export function flushTlb(id: i32): void {
  selectHart(id);
  tlbFlushAll();
}

export function setIrqLevel(src: u32, level: i32): void {
  plicSetIrqLevel(src, level != 0);
}

/** mtime now, in timebase ticks (as a double: exact below 2^53). */
export function mtime(): f64 {
  return <f64>readMtime();
}

/** The mtime at which the hart's next timer interrupt is due (Infinity if none is armed). */
export function timerDeadline(id: i32): f64 {
  selectHart(id);
  const d = nextTimerDeadline();
  return d == <u64>-1 ? Infinity : <f64>d;
}

// ---- virtio data plane (issue #5): split virtqueues walked in the core, the host does the I/O ----
export { virtqConfigure, virtqReset, virtqPop, virtqPushUsed, virtqNeedNotify } from "./virtio/virtqueue";
