// The running hart's architectural state, all of it in linear memory (see abi/layout.ts), and trap entry.
// `hart` is the only per-instance global that names state: it points at the HARTS block being run.
import {
  HARTS, HART_SIZE, HART_X, HART_PC, HART_PRIV, HART_RESERVATION, HART_EXT_IP, HART_DATA_TLB, HART_FETCH_TLB,
  HART_TLB, TLB_SET_SIZE, TLB_SET_U, TLB_SET_S, TLB_SET_S_SUM, TLB_SET_M, HART_TRAP_COUNT,
  CSR_MSTATUS, CSR_MEDELEG, CSR_MIDELEG, CSR_MTVEC, CSR_MEPC, CSR_MCAUSE, CSR_MTVAL, CSR_STVEC, CSR_SEPC,
  CSR_SCAUSE, CSR_STVAL, CSR_MIP, CSR_MIE,
} from "../abi/layout";

export let hart: usize = HARTS;

export function selectHart(id: i32): void {
  hart = HARTS + <usize>id * HART_SIZE;
}

export const PRIV_U = 0;
export const PRIV_S = 1;
export const PRIV_M = 3;

// mstatus fields
export const MSTATUS_SIE: u64 = 1 << 1;
export const MSTATUS_MIE: u64 = 1 << 3;
export const MSTATUS_SPIE: u64 = 1 << 5;
export const MSTATUS_MPIE: u64 = 1 << 7;
export const MSTATUS_SPP: u64 = 1 << 8;
export const MSTATUS_MPP_SHIFT: u64 = 11;
export const MSTATUS_MPP: u64 = 3 << 11;
export const MSTATUS_FS: u64 = 3 << 13;
export const MSTATUS_MPRV: u64 = 1 << 17;
export const MSTATUS_SUM: u64 = 1 << 18;
export const MSTATUS_MXR: u64 = 1 << 19;
export const MSTATUS_TVM: u64 = 1 << 20;
export const MSTATUS_TW: u64 = 1 << 21;
export const MSTATUS_TSR: u64 = 1 << 22;
export const MSTATUS_UXL: u64 = 3 << 32;
export const MSTATUS_SXL: u64 = 3 << 34;
export const MSTATUS_SD: u64 = 1 << 63;

// exception causes
export const CAUSE_MISALIGNED_FETCH = 0;
export const CAUSE_FETCH_ACCESS = 1;
export const CAUSE_ILLEGAL_INSTRUCTION = 2;
export const CAUSE_BREAKPOINT = 3;
export const CAUSE_MISALIGNED_LOAD = 4;
export const CAUSE_LOAD_ACCESS = 5;
export const CAUSE_MISALIGNED_STORE = 6;
export const CAUSE_STORE_ACCESS = 7;
export const CAUSE_ECALL_U = 8;
export const CAUSE_ECALL_S = 9;
export const CAUSE_ECALL_M = 11;
export const CAUSE_FETCH_PAGE_FAULT = 12;
export const CAUSE_LOAD_PAGE_FAULT = 13;
export const CAUSE_STORE_PAGE_FAULT = 15;

// interrupt numbers (bits of mip/mie)
export const IRQ_SSI = 1;
export const IRQ_MSI = 3;
export const IRQ_STI = 5;
export const IRQ_MTI = 7;
export const IRQ_SEI = 9;
export const IRQ_MEI = 11;
export const MIP_SSIP: u64 = 1 << IRQ_SSI;
export const MIP_MSIP: u64 = 1 << IRQ_MSI;
export const MIP_STIP: u64 = 1 << IRQ_STI;
export const MIP_MTIP: u64 = 1 << IRQ_MTI;
export const MIP_SEIP: u64 = 1 << IRQ_SEI;
export const MIP_MEIP: u64 = 1 << IRQ_MEI;

@inline export function getX(r: u32): u64 {
  return load<u64>(hart + HART_X + (<usize>r << 3));
}
@inline export function setX(r: u32, v: u64): void {
  if (r != 0) store<u64>(hart + HART_X + (<usize>r << 3), v);
}
@inline export function getPc(): u64 {
  return load<u64>(hart + HART_PC);
}
@inline export function setPc(pc: u64): void {
  store<u64>(hart + HART_PC, pc);
}
@inline export function getPriv(): i32 {
  return load<i32>(hart + HART_PRIV);
}
@inline export function csr64(offset: usize): u64 {
  return load<u64>(hart + offset);
}
@inline export function setCsr64(offset: usize, v: u64): void {
  store<u64>(hart + offset, v);
}

/** mip as software sees it: the hart's own bits plus the lines the PLIC drives. */
@inline export function effectiveMip(): u64 {
  return <u64>(<u32>atomic.load<i32>(hart + CSR_MIP)) | <u64>(<u32>atomic.load<i32>(hart + HART_EXT_IP));
}

/** Picks the TLB sets for fetch and data accesses from the privilege, MPRV/MPP and SUM. */
export function updateTlbSets(): void {
  const priv = getPriv();
  const mstatus = csr64(CSR_MSTATUS);
  // SUM does not apply to instruction fetch, so fetches at S always use the plain S set.
  store<i32>(hart + HART_FETCH_TLB, <i32>(hart + HART_TLB + <usize>tlbSetFor(priv, 0) * TLB_SET_SIZE));
  let dataPriv = priv;
  if (priv == PRIV_M && (mstatus & MSTATUS_MPRV) != 0) dataPriv = <i32>((mstatus >> MSTATUS_MPP_SHIFT) & 3);
  store<i32>(hart + HART_DATA_TLB, <i32>(hart + HART_TLB + <usize>tlbSetFor(dataPriv, mstatus) * TLB_SET_SIZE));
}

@inline function tlbSetFor(priv: i32, mstatus: u64): i32 {
  if (priv == PRIV_M) return TLB_SET_M;
  if (priv == PRIV_U) return TLB_SET_U;
  return (mstatus & MSTATUS_SUM) != 0 ? TLB_SET_S_SUM : TLB_SET_S;
}

export function setPriv(priv: i32): void {
  store<i32>(hart + HART_PRIV, priv);
  updateTlbSets();
}

/**
 * Enters the trap handler for an exception (`isInterrupt` false) or an interrupt, at the privilege that
 * medeleg/mideleg select, as the privileged spec's trap entry describes. `epc` is the pc of the
 * instruction that trapped (or the next one to run, for an interrupt).
 */
export function enterTrap(cause: u64, tval: u64, epc: u64, isInterrupt: bool): void {
  const priv = getPriv();
  const deleg = isInterrupt ? csr64(CSR_MIDELEG) : csr64(CSR_MEDELEG);
  const bit = (deleg >> cause) & 1;
  let mstatus = csr64(CSR_MSTATUS);
  const causeValue = isInterrupt ? (cause | (<u64>1 << 63)) : cause;
  store<u64>(hart + HART_TRAP_COUNT, load<u64>(hart + HART_TRAP_COUNT) + 1);
  // An SC after a trap must fail: the handler may have run code between the LR and the SC.
  store<i64>(hart + HART_RESERVATION, -1);
  if (priv <= PRIV_S && bit != 0) {
    setCsr64(CSR_SEPC, epc);
    setCsr64(CSR_SCAUSE, causeValue);
    setCsr64(CSR_STVAL, tval);
    const sie = (mstatus & MSTATUS_SIE) != 0;
    mstatus &= ~(MSTATUS_SPIE | MSTATUS_SIE | MSTATUS_SPP);
    if (sie) mstatus |= MSTATUS_SPIE;
    if (priv == PRIV_S) mstatus |= MSTATUS_SPP;
    setCsr64(CSR_MSTATUS, mstatus);
    setPc(trapVector(csr64(CSR_STVEC), cause, isInterrupt));
    setPriv(PRIV_S);
  } else {
    setCsr64(CSR_MEPC, epc);
    setCsr64(CSR_MCAUSE, causeValue);
    setCsr64(CSR_MTVAL, tval);
    const mie = (mstatus & MSTATUS_MIE) != 0;
    mstatus &= ~(MSTATUS_MPIE | MSTATUS_MIE | MSTATUS_MPP);
    if (mie) mstatus |= MSTATUS_MPIE;
    mstatus |= <u64>priv << MSTATUS_MPP_SHIFT;
    setCsr64(CSR_MSTATUS, mstatus);
    setPc(trapVector(csr64(CSR_MTVEC), cause, isInterrupt));
    setPriv(PRIV_M);
  }
}

@inline function trapVector(tvec: u64, cause: u64, isInterrupt: bool): u64 {
  const base = tvec & ~(<u64>3);
  if ((tvec & 3) == 1 && isInterrupt) return base + (cause << 2);
  return base;
}

/**
 * The interrupt to take now, or -1: the highest-priority pending and enabled one whose target privilege
 * allows it (MEI, MSI, MTI, SEI, SSI, STI, as the spec orders them).
 */
export function pendingInterrupt(): i32 {
  const pending = effectiveMip() & csr64(CSR_MIE);
  if (pending == 0) return -1;
  const priv = getPriv();
  const mstatus = csr64(CSR_MSTATUS);
  const mideleg = csr64(CSR_MIDELEG);
  const mEnabled = priv < PRIV_M || (mstatus & MSTATUS_MIE) != 0;
  const sEnabled = priv < PRIV_S || (priv == PRIV_S && (mstatus & MSTATUS_SIE) != 0);
  let candidates: u64 = 0;
  if (mEnabled) candidates |= pending & ~mideleg;
  if (sEnabled) candidates |= pending & mideleg;
  if (candidates == 0) return -1;
  if (candidates & MIP_MEIP) return IRQ_MEI;
  if (candidates & MIP_MSIP) return IRQ_MSI;
  if (candidates & MIP_MTIP) return IRQ_MTI;
  if (candidates & MIP_SEIP) return IRQ_SEI;
  if (candidates & MIP_SSIP) return IRQ_SSI;
  if (candidates & MIP_STIP) return IRQ_STI;
  return <i32>ctz(candidates);
}

// Helpers so other modules need not know which word of mip a bit lives in.
@inline export function setMipBits(bits: u32): void {
  atomic.or<i32>(hart + CSR_MIP, bits);
}
@inline export function clearMipBits(bits: u32): void {
  atomic.and<i32>(hart + CSR_MIP, ~bits);
}
