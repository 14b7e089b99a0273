// Control and status registers: access rules (privilege, read-only, counter enables, TVM, FS) and the
// WARL behaviour of each register.
import {
  HART_ID, HART_INSTRET, CSR_MSTATUS, CSR_MISA, CSR_MEDELEG, CSR_MIDELEG, CSR_MIE, CSR_MIP, CSR_MTVEC, CSR_MSCRATCH,
  CSR_MEPC, CSR_MCAUSE, CSR_MTVAL, CSR_MCOUNTEREN, CSR_SCOUNTEREN, CSR_STVEC, CSR_SSCRATCH, CSR_SEPC, CSR_SCAUSE,
  CSR_STVAL, CSR_SATP, CSR_FCSR, CSR_MENVCFG, CSR_SENVCFG, CSR_STIMECMP, CSR_MCOUNTINHIBIT, CSR_MCYCLE_OFFSET,
  CSR_MINSTRET_OFFSET, CSR_PMPCFG, CSR_PMPADDR, PMP_ENTRIES, ASID_BITS,
} from "../abi/layout";
import {
  hart, csr64, setCsr64, getPriv, effectiveMip, updateTlbSets, setMipBits, clearMipBits, PRIV_M, PRIV_S, PRIV_U,
  MSTATUS_SIE, MSTATUS_MIE, MSTATUS_SPIE, MSTATUS_MPIE, MSTATUS_SPP, MSTATUS_MPP, MSTATUS_FS, MSTATUS_MPRV,
  MSTATUS_SUM, MSTATUS_MXR, MSTATUS_TVM, MSTATUS_TW, MSTATUS_TSR, MSTATUS_UXL, MSTATUS_SXL, MSTATUS_SD,
  MIP_SSIP, MIP_STIP, MIP_SEIP, MIP_MSIP, MIP_MTIP, MIP_MEIP,
} from "./hart";
import { tlbFlushAll, onSatpWrite, satpModeSupported } from "../mmu/mmu";
import { readMtime, supervisorTimerActive, updateTimerInterrupts } from "../irq/clint";

/** Set by csrRead/csrWrite when the access is illegal (the instruction raises illegal-instruction). */
export let csrIllegal: bool = false;

export const MISA_VALUE: u64 = (<u64>2 << 62) | // MXL = 64
  (1 << 0) | (1 << 2) | (1 << 3) | (1 << 5) | (1 << 8) | (1 << 12) | (1 << 18) | (1 << 20); // A C D F I M S U

// UXL = SXL = 2: U and S are 64-bit, fixed.
export const XLEN_64_FIELDS: u64 = (<u64>2 << 32) | (<u64>2 << 34);
const MSTATUS_WRITABLE: u64 = MSTATUS_SIE | MSTATUS_MIE | MSTATUS_SPIE | MSTATUS_MPIE | MSTATUS_SPP | MSTATUS_MPP |
  MSTATUS_FS | MSTATUS_MPRV | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_TVM | MSTATUS_TW | MSTATUS_TSR;
export const SSTATUS_VISIBLE: u64 = MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_FS | MSTATUS_SUM | MSTATUS_MXR |
  MSTATUS_UXL | MSTATUS_SD;
const SSTATUS_WRITABLE: u64 = MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_FS | MSTATUS_SUM | MSTATUS_MXR;
// Exceptions M-mode may delegate (not ecall-from-M, which cannot happen below M).
const MEDELEG_WRITABLE: u64 = 0xb3ff;
const MIDELEG_WRITABLE: u64 = MIP_SSIP | MIP_STIP | MIP_SEIP;
const MIE_WRITABLE: u64 = MIP_SSIP | MIP_MSIP | MIP_STIP | MIP_MTIP | MIP_SEIP | MIP_MEIP;
const MENVCFG_WRITABLE: u64 = (<u64>1 << 63) | 1; // STCE, FIOM
const MENVCFG_STCE: u64 = <u64>1 << 63;

// The instructions retired so far, as the interpreter last published them.
@inline function instret(): u64 {
  return load<u64>(hart + HART_INSTRET);
}

export function readMstatus(): u64 {
  let s = csr64(CSR_MSTATUS) | XLEN_64_FIELDS;
  if ((s & MSTATUS_FS) == MSTATUS_FS) s |= MSTATUS_SD;
  return s;
}

function writeMstatus(value: u64): void {
  const old = csr64(CSR_MSTATUS);
  let next = (old & ~MSTATUS_WRITABLE) | (value & MSTATUS_WRITABLE);
  if ((next & MSTATUS_MPP) == (<u64>2 << 11)) next = (next & ~MSTATUS_MPP) | (old & MSTATUS_MPP); // MPP=2 is reserved
  setCsr64(CSR_MSTATUS, next);
  if (((old ^ next) & MSTATUS_MXR) != 0) tlbFlushAll();
  if (((old ^ next) & (MSTATUS_MPRV | MSTATUS_MPP | MSTATUS_SUM)) != 0) updateTlbSets();
}

@inline function fpEnabled(): bool {
  return (csr64(CSR_MSTATUS) & MSTATUS_FS) != 0;
}

@inline export function markFpDirty(): void {
  setCsr64(CSR_MSTATUS, csr64(CSR_MSTATUS) | MSTATUS_FS);
}

/** Whether counter `index` (0 cycle, 1 time, 2 instret, 3.. hpm) may be read at the current privilege. */
function counterAccessible(index: u32): bool {
  const priv = getPriv();
  if (priv == PRIV_M) return true;
  if (((csr64(CSR_MCOUNTEREN) >> index) & 1) == 0) return false;
  if (priv == PRIV_U && ((csr64(CSR_SCOUNTEREN) >> index) & 1) == 0) return false;
  return true;
}

/** Privilege and existence checks shared by reads and writes. */
function csrAccessible(num: u32): bool {
  const minPriv = <i32>((num >> 8) & 3);
  if (getPriv() < minPriv) return false;
  if (num == 0x180 && getPriv() == PRIV_S && (csr64(CSR_MSTATUS) & MSTATUS_TVM) != 0) return false;
  if (num == 0x14d && getPriv() == PRIV_S && (csr64(CSR_MENVCFG) & MENVCFG_STCE) == 0) return false;
  if (num <= 3 && !fpEnabled()) return false;
  return true;
}

export function csrRead(num: u32): u64 {
  csrIllegal = false;
  if (!csrAccessible(num)) { csrIllegal = true; return 0; }
  switch (num) {
    case 0x001: return csr64(CSR_FCSR) & 0x1f;
    case 0x002: return (csr64(CSR_FCSR) >> 5) & 7;
    case 0x003: return csr64(CSR_FCSR) & 0xff;
    case 0xc00: case 0xc01: case 0xc02: {
      if (!counterAccessible(num - 0xc00)) { csrIllegal = true; return 0; }
      if (num == 0xc01) return readMtime();
      return instret() + csr64(num == 0xc00 ? CSR_MCYCLE_OFFSET : CSR_MINSTRET_OFFSET);
    }
    case 0x100: return readMstatus() & SSTATUS_VISIBLE;
    case 0x104: return csr64(CSR_MIE) & csr64(CSR_MIDELEG);
    case 0x105: return csr64(CSR_STVEC);
    case 0x106: return csr64(CSR_SCOUNTEREN);
    case 0x10a: return csr64(CSR_SENVCFG);
    case 0x140: return csr64(CSR_SSCRATCH);
    case 0x141: return csr64(CSR_SEPC);
    case 0x142: return csr64(CSR_SCAUSE);
    case 0x143: return csr64(CSR_STVAL);
    case 0x144: updateTimerInterrupts(readMtime()); return effectiveMip() & csr64(CSR_MIDELEG);
    case 0x14d: return csr64(CSR_STIMECMP);
    case 0x180: return csr64(CSR_SATP);
    case 0x300: return readMstatus();
    case 0x301: return MISA_VALUE;
    case 0x302: return csr64(CSR_MEDELEG);
    case 0x303: return csr64(CSR_MIDELEG);
    case 0x304: return csr64(CSR_MIE);
    case 0x305: return csr64(CSR_MTVEC);
    case 0x306: return csr64(CSR_MCOUNTEREN);
    case 0x30a: return csr64(CSR_MENVCFG);
    case 0x320: return csr64(CSR_MCOUNTINHIBIT);
    case 0x340: return csr64(CSR_MSCRATCH);
    case 0x341: return csr64(CSR_MEPC);
    case 0x342: return csr64(CSR_MCAUSE);
    case 0x343: return csr64(CSR_MTVAL);
    case 0x344: updateTimerInterrupts(readMtime()); return effectiveMip();
    case 0x7a0: return 1; // tselect: no triggers implemented; reads back a value that is not the one written
    case 0x7a1: case 0x7a2: case 0x7a3: return 0;
    case 0xb00: return instret() + csr64(CSR_MCYCLE_OFFSET);
    case 0xb02: return instret() + csr64(CSR_MINSTRET_OFFSET);
    case 0xf11: case 0xf12: case 0xf13: case 0xf15: return 0;
    case 0xf14: return <u64>load<i32>(hart + HART_ID);
  }
  if (num >= 0xc03 && num <= 0xc1f) {
    if (!counterAccessible(num - 0xc00)) csrIllegal = true;
    return 0;
  }
  if ((num >= 0xb03 && num <= 0xb1f) || (num >= 0x323 && num <= 0x33f)) return 0;
  if (num >= 0x3a0 && num <= 0x3af) {
    if (num & 1) { csrIllegal = true; return 0; } // odd pmpcfg registers exist only on RV32
    const first = (num - 0x3a0) * 4;
    return first < <u32>PMP_ENTRIES ? load<u64>(hart + CSR_PMPCFG + <usize>first) : 0;
  }
  if (num >= 0x3b0 && num <= 0x3ef) {
    const index = num - 0x3b0;
    return index < <u32>PMP_ENTRIES ? load<u64>(hart + CSR_PMPADDR + (<usize>index << 3)) : 0;
  }
  csrIllegal = true;
  return 0;
}

/** The mip bits a write through `num` (mip or sip) may change. */
function mipWritableMask(num: u32): u64 {
  if (num == 0x144) return csr64(CSR_MIDELEG) & MIP_SSIP;
  // SSIP and SEIP are software-writable; STIP too unless stimecmp drives it.
  let mask = MIP_SSIP | MIP_SEIP;
  if (!supervisorTimerActive()) mask |= MIP_STIP;
  return mask;
}

/** True for the CSRs whose CSRRS/CSRRC must go through `csrSetClearBits` (mip and sip). */
@inline export function csrIsMip(num: u32): bool {
  return num == 0x344 || num == 0x144;
}

/**
 * CSRRS/CSRRC on mip or sip: sets or clears only the operand's bits, atomically. Two reasons not to
 * write back read|operand: the value read includes the PLIC's SEIP line, which the spec says the
 * read-modify-write must ignore (written back, it would latch into the software SEIP bit and storm),
 * and other harts and devices set bits of mip concurrently.
 */
export function csrSetClearBits(num: u32, bits: u64, set: bool): void {
  csrIllegal = false;
  if (!csrAccessible(num)) { csrIllegal = true; return; }
  const mask = <u32>(bits & mipWritableMask(num));
  if (set) setMipBits(mask);
  else clearMipBits(mask);
}

/**
 * Writes `value` to CSR `num`. The caller has read it first (CSR instructions always check readability).
 * `byInstruction`: a CSR instruction is writing, whose own retirement must not count in mcycle/minstret
 * (the write takes effect after it completes); false for the host's KVM_SET_ONE_REG.
 */
export function csrWrite(num: u32, value: u64, byInstruction: bool = true): void {
  csrIllegal = false;
  if ((num >> 10) == 3 || !csrAccessible(num)) { csrIllegal = true; return; }
  switch (num) {
    case 0x001: setCsr64(CSR_FCSR, (csr64(CSR_FCSR) & ~(<u64>0x1f)) | (value & 0x1f)); markFpDirty(); return;
    case 0x002: setCsr64(CSR_FCSR, (csr64(CSR_FCSR) & 0x1f) | ((value & 7) << 5)); markFpDirty(); return;
    case 0x003: setCsr64(CSR_FCSR, value & 0xff); markFpDirty(); return;
    case 0x100: writeMstatus((csr64(CSR_MSTATUS) & ~SSTATUS_WRITABLE) | (value & SSTATUS_WRITABLE)); return;
    case 0x104: {
      const mask = csr64(CSR_MIDELEG) & MIE_WRITABLE;
      setCsr64(CSR_MIE, (csr64(CSR_MIE) & ~mask) | (value & mask));
      return;
    }
    case 0x105: setCsr64(CSR_STVEC, tvecLegal(value, csr64(CSR_STVEC))); return;
    case 0x106: setCsr64(CSR_SCOUNTEREN, value & 0xffffffff); return;
    case 0x10a: setCsr64(CSR_SENVCFG, value & 1); return;
    case 0x140: setCsr64(CSR_SSCRATCH, value); return;
    case 0x141: setCsr64(CSR_SEPC, value & ~(<u64>1)); return;
    case 0x142: setCsr64(CSR_SCAUSE, value); return;
    case 0x143: setCsr64(CSR_STVAL, value); return;
    case 0x14d: setCsr64(CSR_STIMECMP, value); updateTimerInterrupts(readMtime()); return;
    case 0x180: {
      const old = csr64(CSR_SATP);
      // WARL: a mode we do not implement leaves satp unchanged (Linux probes Sv57, Sv48, Sv39 this way).
      if (!satpModeSupported(value >> 60)) return;
      const next = value & ((<u64>0xf << 60) | (((<u64>1 << ASID_BITS) - 1) << 44) | ((<u64>1 << 44) - 1));
      setCsr64(CSR_SATP, next);
      onSatpWrite(old, next);
      return;
    }
    case 0x300: writeMstatus(value); return;
    case 0x301: return; // misa is fixed
    case 0x302: setCsr64(CSR_MEDELEG, value & MEDELEG_WRITABLE); return;
    case 0x303: setCsr64(CSR_MIDELEG, value & MIDELEG_WRITABLE); return;
    case 0x304: setCsr64(CSR_MIE, value & MIE_WRITABLE); return;
    case 0x305: setCsr64(CSR_MTVEC, tvecLegal(value, csr64(CSR_MTVEC))); return;
    case 0x306: setCsr64(CSR_MCOUNTEREN, value & 0xffffffff); return;
    case 0x30a: setCsr64(CSR_MENVCFG, value & MENVCFG_WRITABLE); updateTimerInterrupts(readMtime()); return;
    case 0x320: setCsr64(CSR_MCOUNTINHIBIT, value & 0xfffffffd); return;
    case 0x340: setCsr64(CSR_MSCRATCH, value); return;
    case 0x341: setCsr64(CSR_MEPC, value & ~(<u64>1)); return;
    case 0x342: setCsr64(CSR_MCAUSE, value); return;
    case 0x343: setCsr64(CSR_MTVAL, value); return;
    case 0x144: case 0x344: { // sip, mip
      const mask = <u32>mipWritableMask(num);
      setMipBits(<u32>value & mask);
      clearMipBits(<u32>~value & mask);
      return;
    }
    case 0x7a0: case 0x7a1: case 0x7a2: case 0x7a3: return;
    case 0xb00: setCsr64(CSR_MCYCLE_OFFSET, value - instret() - (byInstruction ? 1 : 0)); return;
    case 0xb02: setCsr64(CSR_MINSTRET_OFFSET, value - instret() - (byInstruction ? 1 : 0)); return;
  }
  if ((num >= 0xb03 && num <= 0xb1f) || (num >= 0x323 && num <= 0x33f)) return;
  if (num >= 0x3a0 && num <= 0x3af) {
    if (num & 1) { csrIllegal = true; return; }
    const first = (num - 0x3a0) * 4;
    if (first < <u32>PMP_ENTRIES) writePmpCfg(first, value);
    return;
  }
  if (num >= 0x3b0 && num <= 0x3ef) {
    const index = num - 0x3b0;
    if (index < <u32>PMP_ENTRIES) writePmpAddr(index, value);
    return;
  }
  csrIllegal = true;
}

@inline function tvecLegal(value: u64, old: u64): u64 {
  // Modes 0 (direct) and 1 (vectored); reserved modes keep the old value.
  if ((value & 3) >= 2) return old;
  return value;
}

function writePmpCfg(first: u32, value: u64): void {
  for (let i: u32 = 0; i < 8; i++) {
    const addr = hart + CSR_PMPCFG + <usize>(first + i);
    const old = load<u8>(addr);
    if (old & 0x80) continue; // locked
    let cfg = <u8>((value >> (<u64>i << 3)) & 0x9f);
    if ((cfg & 3) == 2) cfg = old; // W without R is reserved
    store<u8>(addr, cfg);
  }
  tlbFlushAll();
}

function writePmpAddr(index: u32, value: u64): void {
  if (load<u8>(hart + CSR_PMPCFG + <usize>index) & 0x80) return;
  // A locked TOR entry also locks the address below it.
  if (index + 1 < <u32>PMP_ENTRIES) {
    const next = load<u8>(hart + CSR_PMPCFG + <usize>(index + 1));
    if ((next & 0x80) != 0 && ((next >> 3) & 3) == 1) return;
  }
  store<u64>(hart + CSR_PMPADDR + (<usize>index << 3), value & ((<u64>1 << 54) - 1));
  tlbFlushAll();
}
