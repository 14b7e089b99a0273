// The interpreter: run one hart for up to `budget` instructions, or until an exit.
//
// Shape (TinyEMU's): an outer loop at block boundaries — remote fence requests, the timer, interrupts,
// reloading the TLB sets — and an inner loop that fetches by pointer within the current code page and
// executes from one dense switch. Loads and stores inline only the TLB hit; everything else, and every
// instruction that can change privilege or translation, leaves the inner loop.
import {
  HART_X, HART_F, HART_PC, HART_INSTRET, HART_DATA_TLB, HART_FETCH_TLB, HART_CUR_ASID, HART_RESERVATION,
  HART_RESERVED_VALUE, HART_STATE, HART_ID, HART_RUNNING, HART_TRAP_COUNT, HART_FLUSH_REQ, HART_HSM_START_ADDR, HART_HSM_OPAQUE, RUN_EXIT_REASON,
  RUN_PENDING_LEN, RUN_MMIO_FAULT, RUN_SBI_PENDING, RUN_SBI_RET, RUN_BUDGET_USED, RUN_INTERNAL_ERROR,
  RUN_ERROR_DATA, MACHINE_RVC_READY, MACHINE_FENCE_WORD, MACHINE_FLAGS, MACHINE_FLAG_SBI_IN_CORE, RVC_TABLE, TLB_LOAD, TLB_STORE,
  TLB_FETCH, TLB_ADDEND, CSR_MSTATUS, CSR_MIE, CSR_MEPC, CSR_SEPC, CSR_SATP, EXIT_BUDGET, EXIT_MMIO,
  EXIT_HALT, EXIT_INTERNAL_ERROR, EXIT_HART_STOPPED, EXIT_DEBUG, MACHINE_FLAG_GUEST_DEBUG, MACHINE_DEBUG_HIT_KIND, DEBUG_HIT_SOFTWARE_BREAKPOINT, INTERNAL_ERROR_NO_RVC_TABLE, HART_STATE_STARTED,
  HART_STATE_STOPPED, HART_STATE_START_PENDING, FLUSH_REQ_TLB, FLUSH_REQ_ICACHE, LOAD_KIND_I8, LOAD_KIND_I16, LOAD_KIND_I32,
  LOAD_KIND_I64, LOAD_KIND_U8, LOAD_KIND_U16, LOAD_KIND_U32, LOAD_KIND_F32, LOAD_KIND_F64, CSR_MENVCFG,
} from "../abi/layout";
import {
  hart, getX, setX, setPc, getPriv, setPriv, csr64, setCsr64, enterTrap, pendingInterrupt, effectiveMip,
  updateTlbSets, PRIV_M, PRIV_S, PRIV_U, MSTATUS_MIE, MSTATUS_MPIE, MSTATUS_MPP, MSTATUS_MPP_SHIFT, MSTATUS_MPRV,
  MSTATUS_SIE, MSTATUS_SPIE, MSTATUS_SPP, MSTATUS_TVM, MSTATUS_TW, MSTATUS_TSR, MSTATUS_FS,
  CAUSE_ILLEGAL_INSTRUCTION, CAUSE_BREAKPOINT, CAUSE_ECALL_U, CAUSE_FETCH_ACCESS,
} from "./hart";
import { csrRead, csrWrite, csrIllegal, csrIsMip, csrSetClearBits, markFpDirty } from "./csr";
import { sbiCall, SBI_HANDLED } from "./sbi";
import { translate, faultCause, lastHost, ACCESS_FETCH, tlbFlushAll, sfenceVma, tlbIndex, asidHash, asidTag } from "../mmu/mmu";
import { loadSlow, storeSlow, memStatus, MEM_TRAP, atomicAddress, completeMmio, writeLoadDest } from "../mmu/access";
import { hardwareBreakpointAt, stopDebugAt, watchHitPending, forgetDataAccess } from "./debug";
import { readMtime, updateTimerInterrupts } from "../irq/clint";
import { execFpOp } from "./exec_fp";
import { execBitmanip, notBitmanip } from "./bitmanip";
import { enterBlock, blockCompleted, startUntranslatable, interruptsToCheck, startCodeGeneration, jitEnabled, NO_BLOCK } from "../jit/block_cache";

const PAGE_MASK: u64 = ~(<u64>0xfff);
/** Flipped into a page address, makes it match no pc (see the fetch in runHart). */
const FETCH_PAGE_NONE: u64 = <u64>1 << 63;
/** Instructions between block-boundary checks (interrupt latency, timer resolution). */
const BLOCK_CHECK_INTERVAL: i32 = 4096;

// How an out-of-line instruction handler tells the loop what happened.
const NEXT = -1; // retired normally: continue at pc + len
const REDIRECT = -2; // pc changed (trap, xRET): reload pc from memory and the TLB sets

@inline function regAddr(r: u32): usize {
  return hart + HART_X + (<usize>r << 3);
}
/** A TLB hit is one compare: `key` is the (alignment-masked) page address, `tag` the ASID's part. */
@inline function tlbHit(e: usize, key: u64, tag: u64): bool {
  return load<u64>(e) == (key | tag);
}

/** Runs the selected hart. Returns an EXIT_* code; details are in the hart's run area. */
export function runHart(budget: i32): i32 {
  if (atomic.load<i32>(MACHINE_RVC_READY) == 0) return internalError(INTERNAL_ERROR_NO_RVC_TABLE, 0);
  const started = ensureStarted();
  if (started >= 0) return started;
  // Finish what the previous exit left: an MMIO access, an SBI call.
  if (load<i32>(hart + RUN_PENDING_LEN) != 0) {
    const faulted = load<i32>(hart + RUN_MMIO_FAULT) != 0;
    store<i32>(hart + RUN_MMIO_FAULT, 0);
    completeMmio(faulted);
  }
  if (load<i32>(hart + RUN_SBI_PENDING) != 0) {
    store<i32>(hart + RUN_SBI_PENDING, 0);
    setX(10, load<u64>(hart + RUN_SBI_RET));
    setX(11, load<u64>(hart + RUN_SBI_RET + 8));
  }
  atomic.store<i32>(hart + HART_RUNNING, 1);
  const instretBase = load<u64>(hart + HART_INSTRET);
  let executed: i32 = 0;
  let exitCode = EXIT_BUDGET;
  let pc = load<u64>(hart + HART_PC);
  const x = hart + HART_X;

  // Traps count against the budget too, so a hart that faults on every fetch still returns.
  const trapBase = load<u64>(hart + HART_TRAP_COUNT);
  // The clock is read at the first boundary and then every BLOCK_CHECK_INTERVAL instructions (or traps),
  // not at the extra boundaries SYSTEM instructions make: it is a call out to the host. (The CSR writes
  // that move a timer's deadline, and reads of mip/sip, update the timer bits themselves.)
  let nextClockCheck: i32 = 0;
  const jit = jitEnabled();
  // At a block start (a jump or branch target, a slice's first instruction) the block cache gets a say.
  let blockStart = true;
  while (true) {
    const progress = executed + <i32>(load<u64>(hart + HART_TRAP_COUNT) - trapBase);
    if (progress >= budget) break;
    // ---- block boundary ----
    if (atomic.load<i32>(hart + HART_FLUSH_REQ) != 0) {
      const flushReq = atomic.xchg<i32>(hart + HART_FLUSH_REQ, 0);
      if (flushReq & FLUSH_REQ_TLB) tlbFlushAll();
      if (flushReq & FLUSH_REQ_ICACHE) startCodeGeneration();
    }
    if (progress >= nextClockCheck) {
      updateTimerInterrupts(readMtime());
      nextClockCheck = progress + BLOCK_CHECK_INTERVAL;
    }
    const irq = pendingInterrupt();
    if (irq >= 0) {
      enterTrap(<u64>irq, 0, pc, true);
      pc = load<u64>(hart + HART_PC);
    }
    let dataTlb = <usize>load<i32>(hart + HART_DATA_TLB);
    const fetchTlb = <usize>load<i32>(hart + HART_FETCH_TLB);
    const asid = load<i32>(hart + HART_CUR_ASID);
    const hash = asidHash(asid);
    const tag = asidTag(asid);
    // The current code page and its host addend. `pc ^ fetchPage` is below 0xffe exactly when pc is on
    // that page and a 32-bit instruction there cannot reach the next one, so one compare serves the
    // common case; here it starts out matching no pc.
    let fetchPage: u64 = (pc & PAGE_MASK) ^ FETCH_PAGE_NONE;
    let fetchAddend: u64 = 0;
    let limit = budget - progress;
    if (limit > BLOCK_CHECK_INTERVAL) limit = BLOCK_CHECK_INTERVAL;
    limit += executed;

    blockStart = true;
    // When translated code stops for one instruction the interpreter must run (a TLB miss, an AMO, a CSR
    // access, a code page not in the fetch TLB), the block cache is asked again right after it: else the
    // rest of that block would run interpreted too.
    let probeAt: i32 = -1;

    while (executed < limit) {
      if (executed == probeAt) blockStart = true;
      if (blockStart) {
        blockStart = false;
        if (jit) {
          if ((pc ^ fetchPage) >= 0xffe && (pc & PAGE_MASK) != fetchPage) {
            const e = fetchTlb + TLB_FETCH + tlbIndex(pc, hash);
            if (tlbHit(e, pc & PAGE_MASK, tag)) {
              fetchAddend = load<u64>(e, TLB_ADDEND);
              fetchPage = pc & PAGE_MASK;
            }
          }
          if ((pc ^ fetchPage) < 0xffe) {
            const retired = enterBlock(<u32>(pc + fetchAddend), pc, limit - executed, dataTlb, hash, tag, fetchPage, fetchAddend, fetchTlb);
            if (retired != NO_BLOCK) {
              executed += retired;
              pc = load<u64>(hart + HART_PC);
              // Blocks that ran to their end stopped at a block start; one that left early stopped at an
              // instruction for the interpreter (a TLB miss, say), which must run it.
              blockStart = blockCompleted;
              if (!blockCompleted) probeAt = executed + 1;
              // As after the interpreter's own CSR write: end the chunk so that pendingInterrupt() looks.
              if (interruptsToCheck) limit = 0;
              continue;
            }
            if (startUntranslatable) probeAt = executed + 1;
          } else {
            probeAt = executed + 1;
          }
        }
      }
      // ---- fetch ----
      let insn: u32;
      if ((pc ^ fetchPage) < 0xffe) {
        insn = load<u32>(<usize>(pc + fetchAddend));
      } else {
        let pmpSplitPage = false;
        if ((pc & PAGE_MASK) != fetchPage) {
          const e = fetchTlb + TLB_FETCH + tlbIndex(pc, hash);
          if (tlbHit(e, pc & PAGE_MASK, tag)) {
            fetchAddend = load<u64>(e, TLB_ADDEND);
            fetchPage = pc & PAGE_MASK;
          } else {
            if (!translate(pc, ACCESS_FETCH, 2)) {
              enterTrap(<u64>faultCause, pc, pc, false);
              pc = load<u64>(hart + HART_PC);
              break;
            }
            if (lastHost == 0) {
              enterTrap(CAUSE_FETCH_ACCESS, pc, pc, false);
              pc = load<u64>(hart + HART_PC);
              break;
            }
            // Only pages a debugger's breakpoint is on come here for every instruction (they stay out of the TLB).
            if (hardwareBreakpointAt(pc, executed == 0)) {
              store<u64>(hart + HART_PC, pc);
              stopDebugAt(pc);
              return finish(instretBase, executed, EXIT_DEBUG);
            }
            fetchAddend = <u64>lastHost - pc;
            // translate caches a page only when PMP treats all of it alike; otherwise (a PMP region smaller
            // than the page) every fetch from it must be checked again, so it never becomes the fetch page.
            pmpSplitPage = !tlbHit(e, pc & PAGE_MASK, tag);
            fetchPage = pmpSplitPage ? (pc & PAGE_MASK) ^ FETCH_PAGE_NONE : pc & PAGE_MASK;
          }
        }
        insn = load<u32>(<usize>(pc + fetchAddend));
        if ((insn & 3) == 3 && (pc & 0xfff) == 0xffe) {
          // The upper half lies on the next page, which may be mapped elsewhere (or not at all).
          const upper = pc + 2;
          if (!translate(upper, ACCESS_FETCH, 2) || lastHost == 0) {
            enterTrap(faultCause != 0 ? <u64>faultCause : CAUSE_FETCH_ACCESS, upper, pc, false);
            pc = load<u64>(hart + HART_PC);
            break;
          }
          insn = (insn & 0xffff) | (<u32>load<u16>(lastHost) << 16);
        } else if ((insn & 3) == 3 && (pc & 2) != 0 && pmpSplitPage && !translate(pc + 2, ACCESS_FETCH, 2)) {
          // On such a page the upper half may fall in the next 4-byte PMP granule, with other permissions.
          enterTrap(<u64>faultCause, pc + 2, pc, false);
          pc = load<u64>(hart + HART_PC);
          break;
        }
      }
      let len: u64 = 4;
      if ((insn & 3) != 3) {
        const half = insn & 0xffff;
        insn = load<u32>(RVC_TABLE + (<usize>half << 2));
        len = 2;
        if (insn == 0) {
          enterTrap(CAUSE_ILLEGAL_INSTRUCTION, <u64>half, pc, false);
          pc = load<u64>(hart + HART_PC);
          break;
        }
      }
      executed++;
      let npc = pc + len;
      const rd = (insn >> 7) & 31;
      const rs1 = (insn >> 15) & 31;
      const rs2 = (insn >> 20) & 31;
      const funct3 = (insn >> 12) & 7;

      // Dispatch on opcode[6:2] (bits 1:0 are always 11 here): dense, so one br_table instead of a
      // compare chain. Measured: intbench 1.68 -> 1.48 s user, guest bench mode 22.9 -> 21.7 s; boot
      // and a bare addi loop lose ~5% (a chain is cheaper when one opcode dominates).
      switch ((insn >> 2) & 0x1f) {
        case 0x0d: { // LUI
          if (rd) store<i64>(x + (<usize>rd << 3), <i64><i32>(insn & 0xfffff000));
          break;
        }
        case 0x05: { // AUIPC
          if (rd) store<u64>(x + (<usize>rd << 3), pc + <u64><i64><i32>(insn & 0xfffff000));
          break;
        }
        case 0x1b: { // JAL
          const imm = ((<i32>insn >> 11) & 0xfff00000) | <i32>(insn & 0xff000) | <i32>((insn >> 9) & 0x800) |
            <i32>((insn >> 20) & 0x7fe);
          if (rd) store<u64>(x + (<usize>rd << 3), npc);
          npc = pc + <u64><i64>imm;
          blockStart = true;
          break;
        }
        case 0x19: { // JALR
          if (funct3 != 0) { pc = illegal(insn, pc, len); executed--; limit = 0; continue; }
          const target = (load<u64>(x + (<usize>rs1 << 3)) + <u64><i64>(<i32>insn >> 20)) & ~(<u64>1);
          if (rd) store<u64>(x + (<usize>rd << 3), npc);
          npc = target;
          blockStart = true;
          break;
        }
        case 0x18: { // BRANCH
          const a = load<u64>(x + (<usize>rs1 << 3));
          const b = load<u64>(x + (<usize>rs2 << 3));
          let taken = false;
          switch (funct3) {
            case 0: taken = a == b; break;
            case 1: taken = a != b; break;
            case 4: taken = <i64>a < <i64>b; break;
            case 5: taken = <i64>a >= <i64>b; break;
            case 6: taken = a < b; break;
            case 7: taken = a >= b; break;
            default: { pc = illegal(insn, pc, len); executed--; limit = 0; continue; }
          }
          if (taken) {
            const imm = ((<i32>insn >> 19) & 0xfffff000) | <i32>((insn << 4) & 0x800) | <i32>((insn >> 20) & 0x7e0) |
              <i32>((insn >> 7) & 0x1e);
            npc = pc + <u64><i64>imm;
            blockStart = true;
          }
          break;
        }
        case 0x00: { // LOAD
          const va = load<u64>(x + (<usize>rs1 << 3)) + <u64><i64>(<i32>insn >> 20);
          const sizeMask = <u64>((1 << (funct3 & 3)) - 1);
          const e = dataTlb + TLB_LOAD + tlbIndex(va, hash);
          let value: u64;
          if (funct3 != 7 && tlbHit(e, va & (PAGE_MASK | sizeMask), tag)) {
            const h = <usize>(va + load<u64>(e, TLB_ADDEND));
            switch (funct3) {
              case 0: value = <u64><i64>load<i8>(h); break;
              case 1: value = <u64><i64>load<i16>(h); break;
              case 2: value = <u64><i64>load<i32>(h); break;
              case 3: value = load<u64>(h); break;
              case 4: value = <u64>load<u8>(h); break;
              case 5: value = <u64>load<u16>(h); break;
              default: value = <u64>load<u32>(h); break;
            }
          } else {
            if (funct3 == 7) { pc = illegal(insn, pc, len); executed--; limit = 0; continue; }
            store<u64>(hart + HART_PC, pc);
            value = loadSlow(va, LOAD_KINDS[funct3], <i32>rd, pc, <i32>len);
            if (watchHitPending) limit = 0; // a watchpoint: stop once this instruction retires
            if (memStatus != 0) {
              executed--;
              if (memStatus == MEM_TRAP) { pc = load<u64>(hart + HART_PC); limit = 0; continue; }
              return finish(instretBase, executed, EXIT_MMIO);
            }
          }
          if (rd) store<u64>(x + (<usize>rd << 3), value);
          break;
        }
        case 0x08: { // STORE
          const imm = ((<i32>insn >> 20) & ~31) | <i32>((insn >> 7) & 31);
          const va = load<u64>(x + (<usize>rs1 << 3)) + <u64><i64>imm;
          const value = load<u64>(x + (<usize>rs2 << 3));
          if (funct3 > 3) { pc = illegal(insn, pc, len); executed--; limit = 0; continue; }
          const sizeMask = <u64>((1 << funct3) - 1);
          const e = dataTlb + TLB_STORE + tlbIndex(va, hash);
          if (tlbHit(e, va & (PAGE_MASK | sizeMask), tag)) {
            const h = <usize>(va + load<u64>(e, TLB_ADDEND));
            switch (funct3) {
              case 0: store<u8>(h, <u8>value); break;
              case 1: store<u16>(h, <u16>value); break;
              case 2: store<u32>(h, <u32>value); break;
              default: store<u64>(h, value); break;
            }
          } else {
            store<u64>(hart + HART_PC, pc);
            storeSlow(va, 1 << funct3, value, pc, <i32>len);
            if (watchHitPending) limit = 0;
            if (memStatus != 0) {
              executed--;
              if (memStatus == MEM_TRAP) { pc = load<u64>(hart + HART_PC); limit = 0; continue; }
              return finish(instretBase, executed, EXIT_MMIO);
            }
          }
          break;
        }
        case 0x04: { // OP-IMM
          const a = load<u64>(x + (<usize>rs1 << 3));
          const imm = <u64><i64>(<i32>insn >> 20);
          let r: u64;
          switch (funct3) {
            case 0: r = a + imm; break;
            case 1: {
              if ((insn >> 26) == 0) r = a << (imm & 63);
              else {
                r = execBitmanip(insn, a, 0);
                if (notBitmanip) { pc = illegal(insn, pc, len); executed--; limit = 0; continue; }
              }
              break;
            }
            case 2: r = <i64>a < <i64>imm ? 1 : 0; break;
            case 3: r = a < imm ? 1 : 0; break;
            case 4: r = a ^ imm; break;
            case 5: {
              const f6 = insn >> 26;
              if (f6 == 0) r = a >> (imm & 63);
              else if (f6 == 0x10) r = <u64>(<i64>a >> <i64>(imm & 63));
              else {
                r = execBitmanip(insn, a, 0);
                if (notBitmanip) { pc = illegal(insn, pc, len); executed--; limit = 0; continue; }
              }
              break;
            }
            case 6: r = a | imm; break;
            default: r = a & imm; break;
          }
          if (rd) store<u64>(x + (<usize>rd << 3), r);
          break;
        }
        case 0x0c: { // OP
          const a = load<u64>(x + (<usize>rs1 << 3));
          const b = load<u64>(x + (<usize>rs2 << 3));
          const funct7 = insn >> 25;
          let r: u64;
          if (funct7 == 0) {
            switch (funct3) {
              case 0: r = a + b; break;
              case 1: r = a << (b & 63); break;
              case 2: r = <i64>a < <i64>b ? 1 : 0; break;
              case 3: r = a < b ? 1 : 0; break;
              case 4: r = a ^ b; break;
              case 5: r = a >> (b & 63); break;
              case 6: r = a | b; break;
              default: r = a & b; break;
            }
          } else if (funct7 == 0x20 && (funct3 == 0 || funct3 == 5)) {
            r = funct3 == 0 ? a - b : <u64>(<i64>a >> <i64>(b & 63));
          } else if (funct7 == 1) {
            r = mulDiv(funct3, a, b);
          } else {
            r = execBitmanip(insn, a, b);
            if (notBitmanip) { pc = illegal(insn, pc, len); executed--; limit = 0; continue; }
          }
          if (rd) store<u64>(x + (<usize>rd << 3), r);
          break;
        }
        case 0x06: { // OP-IMM-32
          const a = <u32>load<u64>(x + (<usize>rs1 << 3));
          const imm = <i32>insn >> 20;
          const shamt = <u32>imm & 31;
          let r: i32 = 0;
          if (funct3 == 0) r = <i32>a + imm;
          else if (funct3 == 1 && (insn >> 25) == 0) r = <i32>(a << shamt);
          else if (funct3 == 5 && (insn >> 25) == 0) r = <i32>(a >> shamt);
          else if (funct3 == 5 && (insn >> 25) == 0x20) r = <i32>a >> shamt;
          else {
            const v = execBitmanip(insn, <u64>a, 0);
            if (notBitmanip) { pc = illegal(insn, pc, len); executed--; limit = 0; continue; }
            if (rd) store<u64>(x + (<usize>rd << 3), v);
            break;
          }
          if (rd) store<i64>(x + (<usize>rd << 3), <i64>r);
          break;
        }
        case 0x0e: { // OP-32
          const a = <u32>load<u64>(x + (<usize>rs1 << 3));
          const b = <u32>load<u64>(x + (<usize>rs2 << 3));
          const funct7 = insn >> 25;
          let r: i32 = 0;
          if (funct7 == 0 && funct3 == 0) r = <i32>(a + b);
          else if (funct7 == 0x20 && funct3 == 0) r = <i32>(a - b);
          else if (funct7 == 0 && funct3 == 1) r = <i32>(a << (b & 31));
          else if (funct7 == 0 && funct3 == 5) r = <i32>(a >> (b & 31));
          else if (funct7 == 0x20 && funct3 == 5) r = <i32>a >> (b & 31);
          else if (funct7 == 1 && funct3 != 1 && funct3 != 2 && funct3 != 3) r = mulDiv32(funct3, a, b);
          else {
            // add.uw and sh*add.uw add all of rs2.
            const v = execBitmanip(insn, load<u64>(x + (<usize>rs1 << 3)), load<u64>(x + (<usize>rs2 << 3)));
            if (notBitmanip) { pc = illegal(insn, pc, len); executed--; limit = 0; continue; }
            if (rd) store<u64>(x + (<usize>rd << 3), v);
            break;
          }
          if (rd) store<i64>(x + (<usize>rd << 3), <i64>r);
          break;
        }
        case 0x03: { // MISC-MEM: FENCE orders guest memory for other harts; FENCE.I makes this hart's
          // fetches see earlier stores, which means forgetting its translated blocks (the interpreter
          // itself always fetches from memory).
          // (WebAssembly atomics are sequentially consistent, so one atomic RMW is a full barrier.)
          if (funct3 == 0) atomic.add<i32>(MACHINE_FENCE_WORD, 0);
          else if (funct3 == 1) startCodeGeneration();
          else { pc = illegal(insn, pc, len); executed--; limit = 0; continue; }
          break;
        }
        case 0x0b: { // AMO
          store<u64>(hart + HART_INSTRET, instretBase + <u64>executed);
          const action = execAtomic(insn, pc, len);
          if (action != NEXT) { forgetDataAccess(); executed--; pc = load<u64>(hart + HART_PC); limit = 0; continue; }
          if (watchHitPending) limit = 0;
          break;
        }
        case 0x1c: { // SYSTEM: may change privilege, translation or interrupt state, so it ends the block
          // A CSR instruction sees the instructions retired before it, not itself.
          store<u64>(hart + HART_INSTRET, instretBase + <u64>executed - 1);
          const action = execSystem(insn, pc, len);
          if (action == NEXT) {
            pc = npc;
            if (funct3 != 0 && csrKeepsBlock(insn >> 20)) {
              // A CSR instruction changes neither privilege nor translation (but for the CSRs
              // csrKeepsBlock excludes): pick up a new data TLB set (SUM, MPRV) and end the block only
              // when an interrupt may have become deliverable.
              dataTlb = <usize>load<i32>(hart + HART_DATA_TLB);
              if ((effectiveMip() & csr64(CSR_MIE)) != 0) limit = 0;
              continue;
            }
          } else if (action == REDIRECT) {
            pc = load<u64>(hart + HART_PC);
          } else if (action == EXIT_DEBUG) {
            // Stopped at the breakpoint, which has not run: the debugger sees pc there.
            store<u64>(hart + HART_PC, pc);
            store<i32>(MACHINE_DEBUG_HIT_KIND, DEBUG_HIT_SOFTWARE_BREAKPOINT);
            stopDebugAt(pc);
            return finish(instretBase, executed - 1, action);
          } else {
            store<u64>(hart + HART_PC, pc + len);
            if (action == EXIT_HALT && effectiveMip() & csr64(CSR_MIE)) {
              pc = pc + len; // an interrupt is already pending: WFI completes at once
              limit = 0;
              continue;
            }
            return finish(instretBase, executed, action);
          }
          limit = 0;
          continue;
        }
        case 0x01: // LOAD-FP
        case 0x09: { // STORE-FP
          if ((csr64(CSR_MSTATUS) & MSTATUS_FS) == 0 || (funct3 != 2 && funct3 != 3)) {
            pc = illegal(insn, pc, len); executed--; limit = 0; continue;
          }
          const sizeMask: u64 = funct3 == 2 ? 3 : 7;
          const f = hart + HART_F;
          if ((insn & 0x7f) == 0x07) {
            const va = load<u64>(x + (<usize>rs1 << 3)) + <u64><i64>(<i32>insn >> 20);
            const e = dataTlb + TLB_LOAD + tlbIndex(va, hash);
            if (tlbHit(e, va & (PAGE_MASK | sizeMask), tag)) {
              const h = <usize>(va + load<u64>(e, TLB_ADDEND));
              // FLW NaN-boxes the single into the 64-bit register.
              store<u64>(f + (<usize>rd << 3), funct3 == 2 ? (<u64>load<u32>(h) | 0xffffffff00000000) : load<u64>(h));
              markFpDirty();
              break;
            } else {
              store<u64>(hart + HART_PC, pc);
              const kind = funct3 == 2 ? LOAD_KIND_F32 : LOAD_KIND_F64;
              const value = loadSlow(va, kind, <i32>rd, pc, <i32>len);
              if (memStatus == 0) writeLoadDest(kind, <i32>rd, value);
              if (watchHitPending) limit = 0;
            }
            markFpDirty();
          } else {
            const imm = ((<i32>insn >> 20) & ~31) | <i32>((insn >> 7) & 31);
            const va = load<u64>(x + (<usize>rs1 << 3)) + <u64><i64>imm;
            const value = load<u64>(f + (<usize>rs2 << 3));
            const e = dataTlb + TLB_STORE + tlbIndex(va, hash);
            if (tlbHit(e, va & (PAGE_MASK | sizeMask), tag)) {
              const h = <usize>(va + load<u64>(e, TLB_ADDEND));
              if (funct3 == 2) store<u32>(h, <u32>value);
              else store<u64>(h, value);
              break;
            }
            store<u64>(hart + HART_PC, pc);
            storeSlow(va, funct3 == 2 ? 4 : 8, value, pc, <i32>len);
            if (watchHitPending) limit = 0;
          }
          if (memStatus != 0) {
            executed--;
            if (memStatus == MEM_TRAP) { pc = load<u64>(hart + HART_PC); limit = 0; continue; }
            return finish(instretBase, executed, EXIT_MMIO);
          }
          break;
        }
        case 0x10: case 0x11: case 0x12: case 0x13: case 0x14: { // FP arithmetic
          if ((csr64(CSR_MSTATUS) & MSTATUS_FS) == 0 || execFpOp(hart, insn) != 0) {
            pc = illegal(insn, pc, len); executed--; limit = 0; continue;
          }
          markFpDirty();
          break;
        }
        default: { pc = illegal(insn, pc, len); executed--; limit = 0; continue; }
      }
      pc = npc;
    }
    if (watchHitPending) {
      // The watched access retired with the instruction before pc: the debugger sees its effect.
      store<u64>(hart + HART_PC, pc);
      stopDebugAt(pc);
      return finish(instretBase, executed, EXIT_DEBUG);
    }
  }
  store<u64>(hart + HART_PC, pc);
  return finish(instretBase, executed, exitCode);
}

/**
 * Whether the block may go on after CSR instruction `csr` retired. Not after satp (the ASID is in the
 * loop's TLB tag) or a PMP register (may revoke the cached code page); every other CSR's effect on the
 * loop is the data TLB set and the pending interrupts, which the caller rechecks.
 */
@inline function csrKeepsBlock(csr: u32): bool {
  return csr != 0x180 && (csr < 0x3a0 || csr > 0x3ef);
}

const LOAD_KINDS: StaticArray<i32> = [LOAD_KIND_I8, LOAD_KIND_I16, LOAD_KIND_I32, LOAD_KIND_I64, LOAD_KIND_U8,
  LOAD_KIND_U16, LOAD_KIND_U32, 0];

@inline function finish(instretBase: u64, executed: i32, code: i32): i32 {
  atomic.store<i32>(hart + HART_RUNNING, 0);
  store<u64>(hart + HART_INSTRET, instretBase + <u64>executed);
  store<u64>(hart + RUN_BUDGET_USED, <u64>executed);
  store<i32>(hart + RUN_EXIT_REASON, code);
  return code;
}

function internalError(kind: i32, data: u64): i32 {
  store<i32>(hart + RUN_INTERNAL_ERROR, kind);
  store<u64>(hart + RUN_ERROR_DATA, data);
  store<i32>(hart + RUN_EXIT_REASON, EXIT_INTERNAL_ERROR);
  return EXIT_INTERNAL_ERROR;
}

/** SBI HSM: a stopped hart does not run; a start request puts it at its entry in S-mode. */
function ensureStarted(): i32 {
  const state = atomic.load<i32>(hart + HART_STATE);
  if (state == HART_STATE_STARTED) return -1;
  if (state == HART_STATE_START_PENDING) {
    store<u64>(hart + HART_PC, load<u64>(hart + HART_HSM_START_ADDR));
    setX(10, <u64>load<i32>(hart + HART_ID));
    setX(11, load<u64>(hart + HART_HSM_OPAQUE));
    setCsr64(CSR_SATP, 0);
    setCsr64(CSR_MSTATUS, csr64(CSR_MSTATUS) & ~MSTATUS_SIE);
    setPriv(PRIV_S);
    tlbFlushAll();
    atomic.store<i32>(hart + HART_STATE, HART_STATE_STARTED);
    return -1;
  }
  store<i32>(hart + RUN_EXIT_REASON, EXIT_HART_STOPPED);
  return EXIT_HART_STOPPED;
}

/** Raises illegal-instruction for `insn` at `pc` and returns the handler's pc. */
function illegal(insn: u32, pc: u64, len: u64): u64 {
  // A compressed instruction reports its own 16 bits, not its expansion.
  const bits = len == 2 ? originalHalf(pc) : <u64>insn;
  enterTrap(CAUSE_ILLEGAL_INSTRUCTION, bits, pc, false);
  return load<u64>(hart + HART_PC);
}

/** Re-reads the 16-bit instruction at pc (only for the rare illegal-expansion case). */
function originalHalf(pc: u64): u64 {
  if (!translate(pc, ACCESS_FETCH, 2) || lastHost == 0) return 0;
  return <u64>load<u16>(lastHost);
}

// ---- M extension ----

@inline function mulhu(a: u64, b: u64): u64 {
  const aLo = a & 0xffffffff, aHi = a >> 32, bLo = b & 0xffffffff, bHi = b >> 32;
  const p0 = aLo * bLo, p1 = aLo * bHi, p2 = aHi * bLo, p3 = aHi * bHi;
  const mid = (p0 >> 32) + (p1 & 0xffffffff) + (p2 & 0xffffffff);
  return p3 + (p1 >> 32) + (p2 >> 32) + (mid >> 32);
}

function mulDiv(funct3: u32, a: u64, b: u64): u64 {
  switch (funct3) {
    case 0: return a * b;
    case 1: { // MULH
      let hi = mulhu(a, b);
      if (<i64>a < 0) hi -= b;
      if (<i64>b < 0) hi -= a;
      return hi;
    }
    case 2: { // MULHSU
      let hi = mulhu(a, b);
      if (<i64>a < 0) hi -= b;
      return hi;
    }
    case 3: return mulhu(a, b);
    case 4: { // DIV
      if (b == 0) return <u64>-1;
      if (a == 0x8000000000000000 && b == <u64>-1) return a;
      return <u64>(<i64>a / <i64>b);
    }
    case 5: return b == 0 ? <u64>-1 : a / b; // DIVU
    case 6: { // REM
      if (b == 0) return a;
      if (a == 0x8000000000000000 && b == <u64>-1) return 0;
      return <u64>(<i64>a % <i64>b);
    }
    default: return b == 0 ? a : a % b; // REMU
  }
}

function mulDiv32(funct3: u32, a: u32, b: u32): i32 {
  switch (funct3) {
    case 0: return <i32>(a * b);
    case 4: {
      if (b == 0) return -1;
      if (a == 0x80000000 && b == 0xffffffff) return <i32>a;
      return <i32>a / <i32>b;
    }
    case 5: return b == 0 ? -1 : <i32>(a / b);
    case 6: {
      if (b == 0) return <i32>a;
      if (a == 0x80000000 && b == 0xffffffff) return 0;
      return <i32>a % <i32>b;
    }
    default: return b == 0 ? <i32>a : <i32>(a % b);
  }
}

// ---- A extension ----

// Through a local: AssemblyScript would otherwise widen a 32-bit atomic load with a zero-extending i64 load.
@inline function sext32(v: i32): u64 {
  const narrow: i32 = v;
  return <u64>(<i64>narrow);
}

/**
 * LR/SC and AMOs, atomic with respect to other harts (WebAssembly atomics on shared memory). SC is a
 * compare-and-swap against the value LR saw, as in QEMU: it fails if the word changed since the LR.
 */
function execAtomic(insn: u32, pc: u64, len: u64): i32 {
  const funct3 = (insn >> 12) & 7;
  const funct5 = insn >> 27;
  const rd = (insn >> 7) & 31;
  const va = getX((insn >> 15) & 31);
  const src = getX((insn >> 20) & 31);
  if (funct3 != 2 && funct3 != 3) { illegal(insn, pc, len); return REDIRECT; }
  const size = funct3 == 2 ? 4 : 8;
  setPc(pc);
  if (funct5 == 2) { // LR
    if (((insn >> 20) & 31) != 0) { illegal(insn, pc, len); return REDIRECT; }
    const host = atomicAddress(va, size, false, pc);
    if (host == 0) return REDIRECT;
    const value = size == 4 ? sext32(atomic.load<i32>(host)) : atomic.load<u64>(host);
    store<u64>(hart + HART_RESERVATION, <u64>host);
    store<u64>(hart + HART_RESERVED_VALUE, value);
    setX(rd, value);
    return NEXT;
  }
  const host = atomicAddress(va, size, true, pc);
  if (host == 0) return REDIRECT;
  if (funct5 == 3) { // SC
    let ok = false;
    if (load<u64>(hart + HART_RESERVATION) == <u64>host) {
      const expected = load<u64>(hart + HART_RESERVED_VALUE);
      if (size == 4) ok = atomic.cmpxchg<i32>(host, <i32>expected, <i32>src) == <i32>expected;
      else ok = atomic.cmpxchg<u64>(host, expected, src) == expected;
    }
    store<i64>(hart + HART_RESERVATION, -1);
    setX(rd, ok ? 0 : 1);
    return NEXT;
  }
  let old: u64;
  if (size == 4) {
    const v = <i32>src;
    switch (funct5) {
      case 0x00: old = sext32(atomic.add<i32>(host, v)); break;
      case 0x01: old = sext32(atomic.xchg<i32>(host, v)); break;
      case 0x04: old = sext32(atomic.xor<i32>(host, v)); break;
      case 0x08: old = sext32(atomic.or<i32>(host, v)); break;
      case 0x0c: old = sext32(atomic.and<i32>(host, v)); break;
      case 0x10: case 0x14: case 0x18: case 0x1c: old = sext32(amoMinMax32(host, v, funct5)); break;
      default: { illegal(insn, pc, len); return REDIRECT; }
    }
  } else {
    switch (funct5) {
      case 0x00: old = atomic.add<u64>(host, src); break;
      case 0x01: old = atomic.xchg<u64>(host, src); break;
      case 0x04: old = atomic.xor<u64>(host, src); break;
      case 0x08: old = atomic.or<u64>(host, src); break;
      case 0x0c: old = atomic.and<u64>(host, src); break;
      case 0x10: case 0x14: case 0x18: case 0x1c: old = amoMinMax64(host, src, funct5); break;
      default: { illegal(insn, pc, len); return REDIRECT; }
    }
  }
  setX(rd, old);
  return NEXT;
}

function amoMinMax32(host: usize, v: i32, funct5: u32): i32 {
  let old = atomic.load<i32>(host);
  while (true) {
    let next: i32;
    if (funct5 == 0x10) next = old < v ? old : v;
    else if (funct5 == 0x14) next = old > v ? old : v;
    else if (funct5 == 0x18) next = <u32>old < <u32>v ? old : v;
    else next = <u32>old > <u32>v ? old : v;
    const seen = atomic.cmpxchg<i32>(host, old, next);
    if (seen == old) return old;
    old = seen;
  }
}

function amoMinMax64(host: usize, v: u64, funct5: u32): u64 {
  let old = atomic.load<u64>(host);
  while (true) {
    let next: u64;
    if (funct5 == 0x10) next = <i64>old < <i64>v ? old : v;
    else if (funct5 == 0x14) next = <i64>old > <i64>v ? old : v;
    else if (funct5 == 0x18) next = old < v ? old : v;
    else next = old > v ? old : v;
    const seen = atomic.cmpxchg<u64>(host, old, next);
    if (seen == old) return old;
    old = seen;
  }
}

// ---- SYSTEM ----

/** ECALL/EBREAK/xRET/WFI/SFENCE.VMA and the CSR instructions. Returns NEXT, REDIRECT or an EXIT_* code. */
function execSystem(insn: u32, pc: u64, len: u64): i32 {
  const funct3 = (insn >> 12) & 7;
  const rd = (insn >> 7) & 31;
  const rs1 = (insn >> 15) & 31;
  const priv = getPriv();
  if (funct3 == 0) {
    if (rd != 0) { illegal(insn, pc, len); return REDIRECT; }
    const funct7 = insn >> 25;
    const rs2 = (insn >> 20) & 31;
    if (funct7 == 0x09) { // SFENCE.VMA
      if (priv == PRIV_U || (priv == PRIV_S && (csr64(CSR_MSTATUS) & MSTATUS_TVM) != 0)) { illegal(insn, pc, len); return REDIRECT; }
      sfenceVma(rs1 != 0, getX(rs1), rs2 != 0, <i32>(getX(rs2) & 0xffff));
      return NEXT;
    }
    if (rs1 != 0) { illegal(insn, pc, len); return REDIRECT; }
    switch (insn >> 20) {
      case 0x000: { // ECALL
        if (priv == PRIV_S && (load<i32>(MACHINE_FLAGS) & MACHINE_FLAG_SBI_IN_CORE) != 0) {
          setPc(pc + len);
          const result = sbiCall();
          return result == SBI_HANDLED ? REDIRECT : result;
        }
        enterTrap(CAUSE_ECALL_U + <u64>priv, 0, pc, false);
        return REDIRECT;
      }
      case 0x001: // EBREAK (mtval 0, as QEMU); a debugger's breakpoint when the host debugs the guest
        if ((load<i32>(MACHINE_FLAGS) & MACHINE_FLAG_GUEST_DEBUG) != 0) return EXIT_DEBUG;
        enterTrap(CAUSE_BREAKPOINT, 0, pc, false);
        return REDIRECT;
      case 0x302: { // MRET
        if (priv != PRIV_M) { illegal(insn, pc, len); return REDIRECT; }
        let s = csr64(CSR_MSTATUS);
        const mpp = <i32>((s >> MSTATUS_MPP_SHIFT) & 3);
        s = (s & ~MSTATUS_MIE) | ((s & MSTATUS_MPIE) != 0 ? MSTATUS_MIE : 0);
        s = (s | MSTATUS_MPIE) & ~MSTATUS_MPP;
        if (mpp != PRIV_M) s &= ~MSTATUS_MPRV;
        setCsr64(CSR_MSTATUS, s);
        setPc(csr64(CSR_MEPC));
        setPriv(mpp);
        return REDIRECT;
      }
      case 0x102: { // SRET
        if (priv == PRIV_U || (priv == PRIV_S && (csr64(CSR_MSTATUS) & MSTATUS_TSR) != 0)) { illegal(insn, pc, len); return REDIRECT; }
        let s = csr64(CSR_MSTATUS);
        const spp = (s & MSTATUS_SPP) != 0 ? PRIV_S : PRIV_U;
        s = (s & ~MSTATUS_SIE) | ((s & MSTATUS_SPIE) != 0 ? MSTATUS_SIE : 0);
        s = (s | MSTATUS_SPIE) & ~MSTATUS_SPP & ~MSTATUS_MPRV;
        setCsr64(CSR_MSTATUS, s);
        setPc(csr64(CSR_SEPC));
        setPriv(spp);
        return REDIRECT;
      }
      case 0x105: { // WFI
        if (priv == PRIV_U || (priv == PRIV_S && (csr64(CSR_MSTATUS) & MSTATUS_TW) != 0)) { illegal(insn, pc, len); return REDIRECT; }
        return EXIT_HALT;
      }
    }
    illegal(insn, pc, len);
    return REDIRECT;
  }
  if (funct3 == 4) { illegal(insn, pc, len); return REDIRECT; }
  // Zicsr
  const csr = insn >> 20;
  const operand = funct3 >= 5 ? <u64>rs1 : getX(rs1);
  const op = funct3 & 3;
  const writes = op == 1 || rs1 != 0;
  let old: u64 = 0;
  if (op != 1 || rd != 0) {
    old = csrRead(csr);
    if (csrIllegal) { illegal(insn, pc, len); return REDIRECT; }
  }
  if (writes && op != 1 && csrIsMip(csr)) {
    csrSetClearBits(csr, operand, op == 2);
    if (csrIllegal) { illegal(insn, pc, len); return REDIRECT; }
  } else if (writes) {
    const value = op == 1 ? operand : op == 2 ? (old | operand) : (old & ~operand);
    csrWrite(csr, value);
    if (csrIllegal) { illegal(insn, pc, len); return REDIRECT; }
  }
  setX(rd, old);
  return NEXT;
}
