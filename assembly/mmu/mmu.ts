// Guest-virtual → guest-physical → host translation: memory slots, PMP, the Sv39/Sv48/Sv57 page-table walk,
// and the software TLB that makes the common case a compare and an add.
//
// A TLB entry maps one 4 KiB virtual page of one address space to a host address, in one of four sets
// (U, S, S+SUM, M) and three arrays (fetch, load, store). Its tag is the page address with the ASID in
// bits 3..11 (free in a page address; bits 0..2 stay clear so the same compare rejects misaligned
// accesses), so a hit is one 64-bit compare. A global mapping is cached as a copy per ASID that uses it
// (flagged, so ASID-specific fences spare it). An entry exists only when the page is RAM, PMP allows the
// access for the whole page, and (for stores) the PTE's D bit is already set, so a hit needs no further
// checks. MMIO is never cached.
import { keepsPageOutOfTlb } from "../cpu/debug";
import {
  MACHINE_SLOT_COUNT, MACHINE_SLOTS, SLOT_SIZE, SLOT_GPA, SLOT_LEN, SLOT_HOST, SLOT_FLAGS, SLOT_FLAG_READONLY,
  HART_TLB, TLB_SET_SIZE, TLB_PRIV_SETS, TLB_ENTRIES, TLB_ENTRY_SIZE, TLB_FETCH, TLB_LOAD, TLB_STORE,
  TLB_TAG, TLB_ADDEND, TLB_FLAGS, TLB_FLAG_GLOBAL, HART_CUR_ASID, CSR_SATP, CSR_MSTATUS, CSR_PMPCFG,
  CSR_PMPADDR, PMP_ENTRIES, HART_PRIV, PAGE_SIZE, ASID_BITS,
} from "../abi/layout";
import {
  hart, PRIV_M, PRIV_S, PRIV_U, MSTATUS_MPRV, MSTATUS_MPP_SHIFT, MSTATUS_SUM, MSTATUS_MXR,
  CAUSE_FETCH_ACCESS, CAUSE_LOAD_ACCESS, CAUSE_STORE_ACCESS, CAUSE_FETCH_PAGE_FAULT, CAUSE_LOAD_PAGE_FAULT,
  CAUSE_STORE_PAGE_FAULT,
} from "../cpu/hart";

export const ACCESS_FETCH = 0;
export const ACCESS_LOAD = 1;
export const ACCESS_STORE = 2;

const SATP_MODE_BARE: u64 = 0;
const SATP_MODE_SV39: u64 = 8;
const SATP_MODE_SV48: u64 = 9;
const SATP_MODE_SV57: u64 = 10;

const PTE_V: u64 = 1;
const PTE_R: u64 = 2;
const PTE_W: u64 = 4;
const PTE_X: u64 = 8;
const PTE_U: u64 = 16;
const PTE_G: u64 = 32;
const PTE_A: u64 = 64;
const PTE_D: u64 = 128;
const PPN_MASK: u64 = (<u64>1 << 44) - 1;

// Results of the last translation (per-instance scratch; valid right after a call).
export let faultCause: i32 = 0;
export let lastPa: u64 = 0;
/** Host address of the accessed byte when it is RAM, else 0. */
export let lastHost: usize = 0;
/** Set when a superpage was split into TLB entries: an address-specific SFENCE.VMA must flush more. */
let tlbHasSuperpages: bool = false;
/**
 * The virtual range [superLo, superHi] (inclusive) covers every superpage whose pieces are in the TLB, so an
 * address-specific fence outside it (a user page, say, while only the kernel's linear map uses
 * superpages) cannot hit one of them and needs no scan.
 */
let superLo: u64 = <u64>-1;
let superHi: u64 = 0;

@inline export function tlbArray(set: usize, access: i32): usize {
  return set + (access == ACCESS_FETCH ? TLB_FETCH : access == ACCESS_LOAD ? TLB_LOAD : TLB_STORE);
}

/**
 * The slot of `va` in a direct-mapped TLB array. Three bits of the ASID are folded into the index, so
 * processes that use the same virtual addresses (every process of a static busybox does) keep their
 * entries side by side instead of evicting each other on every switch.
 */
@inline export function tlbIndex(va: u64, asidHash: usize): usize {
  return ((<usize>(va >> 12) ^ asidHash) & (TLB_ENTRIES - 1)) * TLB_ENTRY_SIZE;
}

export const ASID_HASH_VALUES: usize = 8;
@inline export function asidHash(asid: i32): usize {
  return (<usize>asid & (ASID_HASH_VALUES - 1)) << 5;
}

/** The ASID's part of a TLB tag. */
@inline export function asidTag(asid: i32): u64 {
  return <u64>asid << 3;
}
const TAG_PAGE_MASK: u64 = ~(<u64>PAGE_SIZE - 1);
const TAG_ASID_MASK: u64 = <u64>(PAGE_SIZE - 8);

// ---- memory slots ----

/** Bytes of the last slotSpan() result (at most the requested length). */
export let spanLength: u64 = 0;

/**
 * Host address of guest-physical `pa` if it is RAM (writable RAM if `write`), with spanLength set to how
 * many of the `len` bytes from there lie in that slot; 0 if `pa` is not RAM. (A buffer across adjacent
 * slots is followed slot by slot by the caller.)
 */
export function slotSpan(pa: u64, len: u64, write: bool): usize {
  const count = load<i32>(MACHINE_SLOT_COUNT);
  for (let i = 0; i < count; i++) {
    const slot = MACHINE_SLOTS + <usize>i * SLOT_SIZE;
    const size = load<u64>(slot, SLOT_LEN);
    if (size == 0) continue;
    const off = pa - load<u64>(slot, SLOT_GPA);
    if (off >= size) continue;
    if (write && (load<u32>(slot, SLOT_FLAGS) & SLOT_FLAG_READONLY) != 0) return 0;
    const room = size - off;
    spanLength = len < room ? len : room;
    return <usize>load<u32>(slot, SLOT_HOST) + <usize>off;
  }
  return 0;
}

/** Host address of guest-physical `pa` when [pa, pa+len) lies in one RAM slot (writable if `write`), else 0. */
export function slotHost(pa: u64, len: u64, write: bool): usize {
  const host = slotSpan(pa, len, write);
  return host != 0 && spanLength == len ? host : 0;
}

// ---- PMP ----

/**
 * The permissions (R=1, W=2, X=4) PMP grants for [addr, addr+len) at privilege `priv`, or -1 when an
 * entry matches only part of the range (an access then fails; a page then cannot be cached in the TLB).
 * As in QEMU, a hart with no active entry allows everything.
 */
export function pmpPermissions(addr: u64, len: u64, priv: i32): i32 {
  // Fast path: no entry is active (every pmpcfg's A field is OFF), as with firmware-less Linux. Every
  // page-table walk asks this once per level, so the loop below is worth skipping.
  if (((load<u64>(hart + CSR_PMPCFG) | load<u64>(hart + CSR_PMPCFG + 8)) & PMPCFG_A_FIELDS) == 0) return 7;
  let anyActive = false;
  let prevAddr: u64 = 0;
  for (let i = 0; i < PMP_ENTRIES; i++) {
    const cfg = <i32>load<u8>(hart + CSR_PMPCFG + <usize>i);
    const pmpaddr = load<u64>(hart + CSR_PMPADDR + (<usize>i << 3));
    const mode = (cfg >> 3) & 3;
    if (mode == 0) {
      prevAddr = pmpaddr;
      continue;
    }
    anyActive = true;
    let lo: u64, hi: u64;
    if (mode == 1) {
      lo = prevAddr << 2;
      hi = pmpaddr << 2;
    } else if (mode == 2) {
      lo = pmpaddr << 2;
      hi = lo + 4;
    } else {
      const ones = <u64>ctz(~pmpaddr);
      lo = (pmpaddr & ~((<u64>1 << ones) - 1)) << 2;
      hi = ones >= 54 ? <u64>-1 : lo + (<u64>8 << ones);
    }
    prevAddr = pmpaddr;
    if (addr + len <= lo || addr >= hi) continue;
    if (addr >= lo && addr + len - 1 <= hi - 1) {
      if (priv == PRIV_M && (cfg & 0x80) == 0) return 7;
      return cfg & 7;
    }
    return -1;
  }
  if (!anyActive || priv == PRIV_M) return 7;
  return 0;
}

/** The A (address-matching mode) field of all eight pmpcfg bytes in one u64. */
const PMPCFG_A_FIELDS: u64 = 0x1818181818181818;

@inline function accessBit(access: i32): i32 {
  return access == ACCESS_FETCH ? 4 : access == ACCESS_LOAD ? 1 : 2;
}

// ---- translation ----

@inline function pageFaultCause(access: i32): i32 {
  return access == ACCESS_FETCH ? CAUSE_FETCH_PAGE_FAULT : access == ACCESS_LOAD ? CAUSE_LOAD_PAGE_FAULT : CAUSE_STORE_PAGE_FAULT;
}
@inline export function accessFaultCause(access: i32): i32 {
  return access == ACCESS_FETCH ? CAUSE_FETCH_ACCESS : access == ACCESS_LOAD ? CAUSE_LOAD_ACCESS : CAUSE_STORE_ACCESS;
}

/** The privilege a data access runs at (MPRV makes M-mode loads and stores use MPP's). */
@inline export function effectivePriv(access: i32): i32 {
  const priv = load<i32>(hart + HART_PRIV);
  if (access != ACCESS_FETCH && priv == PRIV_M) {
    const mstatus = load<u64>(hart + CSR_MSTATUS);
    if (mstatus & MSTATUS_MPRV) return <i32>((mstatus >> MSTATUS_MPP_SHIFT) & 3);
  }
  return priv;
}

// Per-walk results beside the physical address.
let walkGlobal: bool = false;
let walkSuperpage: bool = false;
let walkPageBits: u64 = 12; // log2 of the size of the page the leaf maps

/**
 * Walks the Sv39/Sv48/Sv57 page table for `va`. Returns the physical address, or sets `faultCause` (non-zero)
 * and returns 0. Sets the A and D bits in hardware (atomically, as QEMU does), so the guest never sees a
 * fault for a clear A/D bit.
 */
function walkPageTable(va: u64, access: i32, priv: i32, mode: u64, satp: u64): u64 {
  const levels = <i32>(mode - SATP_MODE_SV39) + 3; // Sv39 3, Sv48 4, Sv57 5: only supported modes reach here
  const vaBits = 12 + 9 * levels;
  const unused = <u64>(64 - vaBits);
  if (<u64>((<i64>(va << unused)) >> unused) != va) {
    faultCause = pageFaultCause(access);
    return 0;
  }
  const mstatus = load<u64>(hart + CSR_MSTATUS);
  let table = (satp & PPN_MASK) << 12;
  let global = false;
  for (let level = levels - 1; level >= 0; level--) {
    const pteAddr = table + (((va >> (12 + 9 * <u64>level)) & 511) << 3);
    // Implicit page-table reads obey PMP at S-mode privilege.
    const host = slotHost(pteAddr, 8, false);
    if (host == 0 || (pmpPermissions(pteAddr, 8, PRIV_S) & 1) == 0) {
      faultCause = accessFaultCause(access);
      return 0;
    }
    let pte = atomic.load<u64>(host);
    while (true) {
      if ((pte & PTE_V) == 0 || ((pte & PTE_R) == 0 && (pte & PTE_W) != 0) || (pte >> 54) != 0) {
        faultCause = pageFaultCause(access);
        return 0;
      }
      if ((pte & (PTE_R | PTE_X)) == 0) break; // pointer to the next level
      // Leaf.
      if (pte & PTE_G) global = true;
      if (priv == PRIV_U) {
        if ((pte & PTE_U) == 0) { faultCause = pageFaultCause(access); return 0; }
      } else if (pte & PTE_U) {
        if (access == ACCESS_FETCH || (mstatus & MSTATUS_SUM) == 0) { faultCause = pageFaultCause(access); return 0; }
      }
      let allowed = false;
      if (access == ACCESS_FETCH) allowed = (pte & PTE_X) != 0;
      else if (access == ACCESS_LOAD) allowed = (pte & PTE_R) != 0 || ((mstatus & MSTATUS_MXR) != 0 && (pte & PTE_X) != 0);
      else allowed = (pte & PTE_W) != 0;
      if (!allowed) { faultCause = pageFaultCause(access); return 0; }
      const ppn = (pte >> 10) & PPN_MASK;
      const levelMask = (<u64>1 << (9 * <u64>level)) - 1;
      if ((ppn & levelMask) != 0) { faultCause = pageFaultCause(access); return 0; } // misaligned superpage
      const need = access == ACCESS_STORE ? (PTE_A | PTE_D) : PTE_A;
      if ((pte & need) != need) {
        const seen = atomic.cmpxchg<u64>(host, pte, pte | need);
        if (seen != pte) { pte = seen; continue; } // another hart changed it: check again
      }
      walkGlobal = global;
      walkSuperpage = level > 0;
      walkPageBits = 12 + 9 * <u64>level;
      const offsetMask = (<u64>1 << (12 + 9 * <u64>level)) - 1;
      return ((ppn << 12) & ~offsetMask) | (va & offsetMask);
    }
    if (pte & PTE_G) global = true;
    if ((pte & (PTE_D | PTE_A | PTE_U)) != 0) { faultCause = pageFaultCause(access); return 0; }
    table = ((pte >> 10) & PPN_MASK) << 12;
  }
  faultCause = pageFaultCause(access);
  return 0;
}

/**
 * Translates `va` for `access` at the current privilege and checks PMP. On success sets `lastPa` and
 * `lastHost` (0 for MMIO), fills the TLB when the page may be cached, and returns true; on failure sets
 * `faultCause` and returns false.
 */
export function translate(va: u64, access: i32, len: u64): bool {
  faultCause = 0;
  const priv = effectivePriv(access);
  const satp = load<u64>(hart + CSR_SATP);
  const mode = satp >> 60;
  let pa = va;
  walkGlobal = true;
  walkSuperpage = false;
  if (priv != PRIV_M && mode != SATP_MODE_BARE) {
    pa = walkPageTable(va, access, priv, mode, satp);
    if (faultCause != 0) return false;
  }
  lastPa = pa;
  const bit = accessBit(access);
  const pagePerm = pmpPermissions(pa & ~(<u64>PAGE_SIZE - 1), PAGE_SIZE, priv);
  let perm = pagePerm;
  if (perm < 0) perm = pmpPermissions(pa, len, priv);
  if (perm < 0 || (perm & bit) == 0) {
    faultCause = accessFaultCause(access);
    return false;
  }
  const pagePa = pa & ~(<u64>PAGE_SIZE - 1);
  const pageHost = slotHost(pagePa, PAGE_SIZE, access == ACCESS_STORE);
  if (pageHost == 0) {
    lastHost = 0;
    return true;
  }
  lastHost = pageHost + <usize>(pa & (PAGE_SIZE - 1));
  if (pagePerm >= 0 && !keepsPageOutOfTlb(access, va)) {
    const set = tlbSetAddress(priv, access);
    const asid = load<i32>(hart + HART_CUR_ASID);
    const e = tlbArray(set, access) + tlbIndex(va, asidHash(asid));
    const vpage = va & ~(<u64>PAGE_SIZE - 1);
    store<u64>(e, vpage | asidTag(asid), TLB_TAG);
    store<i64>(e, <i64>pageHost - <i64>vpage, TLB_ADDEND);
    store<i32>(e, walkGlobal ? TLB_FLAG_GLOBAL : 0, TLB_FLAGS);
    if (walkSuperpage) {
      tlbHasSuperpages = true;
      const lo = va & ~((<u64>1 << walkPageBits) - 1);
      const hi = lo + (<u64>1 << walkPageBits) - 1; // inclusive: the top superpage's end would wrap
      if (lo < superLo) superLo = lo;
      if (hi > superHi) superHi = hi;
    }
  }
  return true;
}

/** The TLB set that serves accesses at `priv` (data accesses at S also depend on SUM). */
@inline function tlbSetAddress(priv: i32, access: i32): usize {
  let set = 3;
  if (priv == PRIV_U) set = 0;
  else if (priv == PRIV_S) set = (access != ACCESS_FETCH && (load<u64>(hart + CSR_MSTATUS) & MSTATUS_SUM) != 0) ? 2 : 1;
  return hart + HART_TLB + <usize>set * TLB_SET_SIZE;
}

// ---- flushes ----

export function tlbFlushAll(): void {
  memory.fill(hart + HART_TLB, 0xff, TLB_SET_SIZE * TLB_PRIV_SETS);
  tlbHasSuperpages = false;
  superLo = <u64>-1;
  superHi = 0;
}

/**
 * SFENCE.VMA: `hasAddr`/`hasAsid` say whether rs1/rs2 were given. Global entries survive an
 * ASID-specific fence, as the spec requires. The M set holds no translations and is left alone.
 */
export function sfenceVma(hasAddr: bool, va: u64, hasAsid: bool, asid: i32): void {
  if (!hasAddr && !hasAsid) {
    tlbFlushAll();
    return;
  }
  if (!hasAddr || (tlbHasSuperpages && va >= superLo && va <= superHi)) {
    // Every entry of the ASID (or, with an address but superpages around, every entry that may map it).
    for (let set = 0; set < 3; set++) {
      for (let arr = 0; arr < 3; arr++) {
        const base = hart + HART_TLB + <usize>set * TLB_SET_SIZE + <usize>arr * TLB_ENTRIES * TLB_ENTRY_SIZE;
        for (let i = 0; i < TLB_ENTRIES; i++) {
          const e = base + <usize>i * TLB_ENTRY_SIZE;
          if (!hasAsid || fenceHitsAsid(e, asid)) store<i64>(e, -1, TLB_TAG);
        }
      }
    }
    if (!hasAsid) {
      tlbHasSuperpages = false;
      superLo = <u64>-1;
      superHi = 0;
    }
  } else {
    // The page can only sit in the slots its ASID hashes to: one when the ASID is given, else each.
    const vpage = va & ~(<u64>PAGE_SIZE - 1);
    const firstHash: usize = hasAsid ? asidHash(asid) : 0;
    const lastHash: usize = hasAsid ? firstHash : asidHash(<i32>ASID_HASH_VALUES - 1);
    for (let h = firstHash; h <= lastHash; h += 1 << 5) {
      const idx = tlbIndex(va, h);
      for (let set = 0; set < 3; set++) {
        for (let arr = 0; arr < 3; arr++) {
          const e = hart + HART_TLB + <usize>set * TLB_SET_SIZE + <usize>arr * TLB_ENTRIES * TLB_ENTRY_SIZE + idx;
          const tag = load<u64>(e, TLB_TAG);
          if (tag == <u64>-1 || (tag & TAG_PAGE_MASK) != vpage) continue;
          if (!hasAsid || fenceHitsAsid(e, asid)) store<i64>(e, -1, TLB_TAG);
        }
      }
    }
  }
}

/** An ASID-specific fence removes that ASID's entries, but not its copies of global mappings. */
@inline function fenceHitsAsid(e: usize, asid: i32): bool {
  const tag = load<u64>(e, TLB_TAG);
  return tag != <u64>-1 && (tag & TAG_ASID_MASK) == asidTag(asid) && (load<i32>(e, TLB_FLAGS) & TLB_FLAG_GLOBAL) == 0;
}

/** satp changed: a new mode invalidates everything; a new ASID only changes which entries hit. */
export function onSatpWrite(oldSatp: u64, newSatp: u64): void {
  store<i32>(hart + HART_CUR_ASID, <i32>((newSatp >> 44) & ((1 << ASID_BITS) - 1)));
  if ((oldSatp >> 60) != (newSatp >> 60)) tlbFlushAll();
}

/** Bare, Sv39, Sv48 and Sv57, as QEMU 7.2's RV64 CPUs (Linux 6.1 probes Sv57 first and uses it there). */
export function satpModeSupported(mode: u64): bool {
  return mode == SATP_MODE_BARE || mode == SATP_MODE_SV39 || mode == SATP_MODE_SV48 || mode == SATP_MODE_SV57;
}
