// The region translator: the hot code of one guest page, reached from one entry, becomes one WebAssembly
// function
//
//   (func (param $hart i32) (param $pc i64) (param $dataTlb i32) (param $asidHash i32) (param $tag i64)
//         (param $budget i32) (param $firstBlock i32) (result i32))
//
// that runs on the hart at `$hart` from its block `$firstBlock` (0: the entry, at virtual `$pc`; any other
// block is an entry point too, called with `$pc` the entry's virtual address), stores the next pc into HART_PC and
// returns how many instructions retired (with LEFT_EARLY when it stopped before an instruction for the
// interpreter). Its blocks are straight-line RV64I/M/A code along the fall-through path (a superblock: a
// taken branch leaves it, a jump ends it); branches and jumps to code on the same page go to that page's
// block in the same function (forward by a branch, back through a dispatch loop), so loops and calls
// within the page run without leaving it (v86's lesson: a call back to the dispatcher per block costs more
// than the block). A block runs only if all of it fits in what is left of `$budget`, so the count is exact.
//
// The guest registers the region uses live in WebAssembly locals: loaded at entry, and those it writes
// stored back by the one epilogue every exit branches to. Immediates are constants, and pc-relative values
// are `$pc + (offset - entry offset)`, so one translation serves every virtual address the physical page is
// mapped at.
//
// Anything that is not the plain fast path leaves the function *before* that instruction, with every
// earlier one retired, and the interpreter carries on from there: a load or store that misses the TLB
// (or is misaligned, or is MMIO), and every instruction the translator does not take (SYSTEM, AMOMIN/MAX,
// FP, FENCE.I, MULH/DIV/REM, illegal encodings). So translated code never traps, and all the slow paths —
// page walks, faults, MMIO exits — stay in one place, the interpreter.
//
// Layout of the function (N blocks, block 0 the entry):
//
//   block $exit
//     loop $dispatch            (a plain block when no block jumps back)
//       block $b(N-1) ... block $b0
//         (br_table $b0 ... $b(N-1) (local.get $nextBlock))
//       end  ;; block 0's code
//       ...
//       end  ;; block N-1's code
//     end
//   end
//   epilogue: store written registers and the next pc, return the count
//
// so block i's code falls through into block i+1's, reaches a later block j with `br $b(j)`, and an
// earlier one (a loop) by setting $nextBlock and branching to $dispatch. Only such loops make
// $dispatch a loop: in a loop every register the region writes needs a phi at its head, which made
// V8's optimizing compiler take longer over kernel code that mostly branches forward.
import {
  HART_X, HART_PC, HART_PRIV, CSR_MSTATUS, HART_RESERVATION, HART_RESERVED_VALUE, RVC_TABLE, TLB_LOAD, TLB_STORE, TLB_TAG, TLB_ADDEND, TLB_ENTRIES, TLB_ENTRY_SIZE,
  MACHINE_FENCE_WORD, JIT_HEAT_COUNTERS, JIT_REGION_MAX_BLOCKS, JIT_REGION_BLOCK_SIZE, JIT_REGION_BLOCK_START, JIT_REGION_BLOCK_LENGTH,
} from "../abi/layout";
import { MSTATUS_SIE, MSTATUS_FS, MSTATUS_SD } from "../cpu/hart";
import { XLEN_64_FIELDS, SSTATUS_VISIBLE } from "../cpu/csr";
import * as w from "./wasm_writer";
import { spread } from "./heat";

const PARAM_HART: u32 = 0;
const PARAM_PC: u32 = 1;
const PARAM_DATA_TLB: u32 = 2;
const PARAM_ASID_HASH: u32 = 3;
const PARAM_TAG: u32 = 4;
const PARAM_BUDGET: u32 = 5;
/** The block the dispatch loop runs next: the parameter $firstBlock at entry. */
const LOCAL_NEXT_BLOCK: u32 = 6;
/** Guest register r (1..31) is local REG_BASE + r. */
const REG_BASE: u32 = 6;
const LOCAL_VA: u32 = 38; // i64: the address of a load or store
const LOCAL_NEXT: u32 = 39; // i64: the pc the function leaves at
const LOCAL_ENTRY: u32 = 40; // i32: the TLB entry of a load or store
const LOCAL_RETIRED: u32 = 41; // i32: instructions retired when the function leaves
const LOCAL_DONE: u32 = 42; // i32: instructions retired by the blocks run before the current one

const PAGE_MASK: i64 = ~(<i64>0xfff);
/**
 * Or-ed into the returned count when the function left before an instruction it leaves to the
 * interpreter, rather than at a jump, a taken branch or a block's end (where the next block starts).
 */
export const LEFT_EARLY: i32 = 0x1_0000;
/**
 * Or-ed into the returned count when the function left after an instruction that may have made an
 * interrupt deliverable (it set sstatus.SIE): the interpreter must look for one before the next instruction.
 */
export const CHECK_INTERRUPTS: i32 = 0x2_0000;
/** The CSR number of sstatus. */
const CSR_NUMBER_SSTATUS: u32 = 0x100;
const MAX_BLOCK_INSNS: i32 = 128;
const MAX_REGION_INSNS: i32 = 512;
/** Bytes kept free in the buffer for one more instruction and the block's exit. */
const RESERVE: usize = 256;
/** More than the bytes of a body's size, locals, register loads and stores, epilogue and dispatch. */
const PROLOGUE_EPILOGUE_BYTES: usize = 640 + 4 * <usize>JIT_REGION_MAX_BLOCKS + 16;

/** Registers the region reads or writes (each loaded once, at entry), and those it writes (stored back at the exit). */
let used: u32 = 0;
let written: u32 = 0;
/** Length in bytes of the function body the last translateBlock wrote. */
export let bodyLength: u32 = 0;
/** The page offset of the first byte of guest code the last translated region covers, and how many bytes from there. */
export let regionLow: u32 = 0;
export let regionBytes: u32 = 0;
/** How many blocks the last translated region has; their starts and lengths stay in `regionBlocks` until the next. */
export let regionBlockCount: i32 = 0;

/**
 * The region's blocks, JIT_REGION_BLOCK_SIZE bytes each at `blocks` (in the hart's JIT state: harts share
 * memory, and this module allocates nothing): page offset of the first instruction, length in instructions.
 */
let blocks: usize = 0;
let blockCount: i32 = 0;
@inline function blockStart(i: i32): u32 {
  return load<u32>(blocks + <usize>i * JIT_REGION_BLOCK_SIZE, JIT_REGION_BLOCK_START);
}
@inline function blockLength(i: i32): i32 {
  return load<i32>(blocks + <usize>i * JIT_REGION_BLOCK_SIZE, JIT_REGION_BLOCK_LENGTH);
}
@inline function setBlock(i: i32, start: u32, length: i32): void {
  store<u32>(blocks + <usize>i * JIT_REGION_BLOCK_SIZE, start, JIT_REGION_BLOCK_START);
  store<i32>(blocks + <usize>i * JIT_REGION_BLOCK_SIZE, length, JIT_REGION_BLOCK_LENGTH);
}
/** Host address of the page being translated, its heat counters, and the visits that make a start warm. */
let regionPage: usize = 0;
let heatTable: usize = 0;
let warmVisits: i32 = 0;
/**
 * Whether the start at page offset `offset` has been visited often enough to join the region. Code the
 * interpreter has (nearly) never reached stays out: translating everything reachable made each hot start
 * of a page translate, and V8 compile, most of the page again (boot 0.9 -> 1.1 s).
 */
@inline function isWarm(offset: u32): bool {
  return load<i32>(heatTable + (<usize>spread(<u32>(regionPage + <usize>offset), JIT_HEAT_COUNTERS) << 2)) >= warmVisits;
}
/** False while the first pass discovers the blocks, true while the second writes them. */
let finalPass = false;
/** Page offset of the region's entry: $pc is its virtual address. */
let entryOffset: u32 = 0;
/** The block being written, and the labels between its top level and $exit. */
let currentBlock: i32 = 0;
let exitDepth: u32 = 0;
/** Whether the first pass found a jump to a block at or before the jumping one: the region has a loop. */
let backwardJump = false;

function readReg(r: u32): void {
  if (r == 0) {
    w.i64Const(0);
  } else {
    w.localGet(REG_BASE + r);
    used |= 1 << r;
  }
}

/** Pops the i64 on the stack into register rd (x0 discards it). */
function writeReg(rd: u32): void {
  if (rd == 0) {
    w.byte(w.OP_DROP);
    return;
  }
  w.localSet(REG_BASE + rd);
  used |= 1 << rd;
  written |= 1 << rd;
}

/** Pushes the virtual address of page offset `offset`: $pc + (offset - entry offset). */
function pcPlus(offset: i64): void {
  w.localGet(PARAM_PC);
  const delta = offset - <i64>entryOffset;
  if (delta != 0) {
    w.i64Const(delta);
    w.byte(w.OP_I64_ADD);
  }
}

/**
 * Leaves the function for the shared exit (which stores the written registers and the next pc) with
 * `retired` more instructions done in this block and the next pc on the stack; `depth` is the number of
 * blocks (ifs) the exit is nested in below the block's top level.
 */
function exitWithStackPc(retired: i32, depth: u32): void {
  w.localSet(LOCAL_NEXT);
  leave(retired, depth);
}

/** Branches to the shared exit with `retired` more instructions done in this block, the next pc already in LOCAL_NEXT. */
function leave(retired: i32, depth: u32): void {
  w.localGet(LOCAL_DONE);
  if (retired != 0) {
    w.i32Const(retired);
    w.byte(w.OP_I32_ADD);
  }
  w.localSet(LOCAL_RETIRED);
  w.byte(w.OP_BR);
  w.u32leb(exitDepth + depth);
}

/** Leaves the function at page offset `offset` with `retired` more instructions done. */
function exitAt(offset: i64, retired: i32, depth: u32): void {
  pcPlus(offset);
  exitWithStackPc(retired, depth);
}

/**
 * Leaves the function at page offset `offset` with `retired` more instructions done if the i32 on the
 * stack is not zero; `depth` as for exitAt, below the `if` this adds.
 */
function exitIf(offset: i64, retired: i32, depth: u32): void {
  w.byte(w.OP_IF);
  w.byte(w.BLOCKTYPE_VOID);
  exitAt(offset, retired, depth + 1);
  w.byte(w.OP_END);
}

/** The region block that starts at page offset `offset`, or -1. */
function blockAt(offset: u32): i32 {
  for (let i = 0; i < blockCount; i++) if (blockStart(i) == offset) return i;
  return -1;
}

/**
 * Goes on at page offset `target` after `retired` more instructions of this block: in the region's block
 * there (the first pass adds one if there is room) if all of it fits in the budget, else by leaving.
 */
function continueAt(target: i64, retired: i32, depth: u32): void {
  let next: i32 = -1;
  if (target >= 0 && target < 0x1000) {
    next = blockAt(<u32>target);
    if (next < 0 && !finalPass && blockCount < JIT_REGION_MAX_BLOCKS && isWarm(<u32>target)) {
      next = blockCount++;
      setBlock(next, <u32>target, 0);
    }
  }
  if (next < 0) {
    exitAt(target, retired, depth);
    return;
  }
  // done += retired; if (done + length(next) > budget) leave at target
  w.localGet(LOCAL_DONE);
  w.i32Const(retired);
  w.byte(w.OP_I32_ADD);
  w.localTee(LOCAL_DONE);
  w.i32Const(finalPass ? blockLength(next) : 0x7f); // the first pass takes a two-byte constant's room
  w.byte(w.OP_I32_ADD);
  w.localGet(PARAM_BUDGET);
  w.byte(w.OP_I32_GT_S);
  exitIf(target, 0, depth);
  if (finalPass && next > currentBlock) {
    // A later block's code follows the end of its label: a plain forward branch, which keeps the
    // dispatch loop (and the phis of every register it carries) out of regions without a loop.
    if (next == currentBlock + 1 && depth == 0) return; // it follows right here
    w.byte(w.OP_BR);
    w.u32leb(<u32>(next - currentBlock - 1) + depth); // $b(next)
    return;
  }
  // A block at or before this one: round the dispatch loop (the first pass writes this longer form for
  // every jump, so its lengths bound the second's).
  if (!finalPass && next <= currentBlock) backwardJump = true;
  w.i32Const(next);
  w.localSet(LOCAL_NEXT_BLOCK);
  w.byte(w.OP_BR);
  w.u32leb(exitDepth - 1 + depth); // $dispatch
}

/**
 * Computes a load's or store's address into LOCAL_VA and its TLB entry into LOCAL_ENTRY, leaves the
 * function (before this instruction) on a TLB miss, and pushes the host address.
 */
function hostAddress(rs1: u32, imm: i64, sizeMask: i64, array: u32, offset: i64, retired: i32): void {
  readReg(rs1);
  if (imm != 0) {
    w.i64Const(imm);
    w.byte(w.OP_I64_ADD);
  }
  w.localTee(LOCAL_VA);
  // entry = dataTlb + (((va >> 12) ^ asidHash) & (TLB_ENTRIES - 1)) * TLB_ENTRY_SIZE, as tlbIndex
  w.i64Const(12);
  w.byte(w.OP_I64_SHR_U);
  w.byte(w.OP_I32_WRAP_I64);
  w.localGet(PARAM_ASID_HASH);
  w.byte(w.OP_I32_XOR);
  w.i32Const(TLB_ENTRIES - 1);
  w.byte(w.OP_I32_AND);
  w.i32Const(<i32>ctz(TLB_ENTRY_SIZE));
  w.byte(w.OP_I32_SHL);
  w.localGet(PARAM_DATA_TLB);
  w.byte(w.OP_I32_ADD);
  w.localTee(LOCAL_ENTRY);
  w.memoryOp(w.OP_I64_LOAD, 3, array + TLB_TAG);
  // The tag holds the page address with the access's low bits, so a misaligned access misses too.
  w.localGet(LOCAL_VA);
  w.i64Const(PAGE_MASK | sizeMask);
  w.byte(w.OP_I64_AND);
  w.localGet(PARAM_TAG);
  w.byte(w.OP_I64_OR);
  w.byte(w.OP_I64_NE);
  exitIf(offset, retired | LEFT_EARLY, 0);
  w.localGet(LOCAL_VA);
  w.localGet(LOCAL_ENTRY);
  w.memoryOp(w.OP_I64_LOAD, 3, array + TLB_ADDEND);
  w.byte(w.OP_I64_ADD);
  w.byte(w.OP_I32_WRAP_I64);
}

const LOAD_OPS: StaticArray<u32> = [
  w.OP_I64_LOAD8_S, w.OP_I64_LOAD16_S, w.OP_I64_LOAD32_S, w.OP_I64_LOAD, w.OP_I64_LOAD8_U, w.OP_I64_LOAD16_U, w.OP_I64_LOAD32_U,
];
const STORE_OPS: StaticArray<u32> = [w.OP_I64_STORE8, w.OP_I64_STORE16, w.OP_I64_STORE32, w.OP_I64_STORE];
const BRANCH_OPS: StaticArray<u32> = [
  w.OP_I64_EQ, w.OP_I64_NE, 0, 0, w.OP_I64_LT_S, w.OP_I64_GE_S, w.OP_I64_LT_U, w.OP_I64_GE_U,
];

// What translating one instruction did.
const TAKEN = 0; // translated; the block goes on
const ENDED = 1; // translated a jump, which ended the block
const REFUSED = 2; // not translated: the block ends before it

/**
 * The Zba/Zbb/Zbs instructions that are WebAssembly operators or a few of them (cpu/bitmanip.ts has the
 * interpreter's forms); the carry-less products, orc.b, rev8 and illegal encodings stay the interpreter's.
 */
function translateBitmanip(insn: u32, rd: u32, rs1: u32, rs2: u32): i32 {
  const funct3 = (insn >> 12) & 7;
  const funct7 = insn >> 25;
  const funct6 = insn >> 26;
  const imm12 = insn >> 20;
  const shamt = <i64>((insn >> 20) & 63);
  const shNadd = funct3 == 2 || funct3 == 4 || funct3 == 6;
  switch ((insn >> 2) & 0x1f) {
    case 0x0c: { // OP
      if (funct7 == 0x10 && shNadd) { // sh1add, sh2add, sh3add
        readReg(rs1);
        w.i64Const(<i64>(funct3 >> 1));
        w.byte(w.OP_I64_SHL);
        readReg(rs2);
        w.byte(w.OP_I64_ADD);
      } else if (funct7 == 0x20 && (funct3 == 4 || funct3 == 6 || funct3 == 7)) { // xnor, orn, andn
        readReg(rs1);
        readReg(rs2);
        if (funct3 == 4) w.byte(w.OP_I64_XOR);
        w.i64Const(-1);
        w.byte(w.OP_I64_XOR);
        if (funct3 != 4) w.byte(funct3 == 6 ? w.OP_I64_OR : w.OP_I64_AND);
      } else if (funct7 == 0x05 && funct3 >= 4) { // min, minu (rs1 if rs1 < rs2), max, maxu (rs1 if rs2 < rs1)
        readReg(rs1);
        readReg(rs2);
        readReg(funct3 < 6 ? rs1 : rs2);
        readReg(funct3 < 6 ? rs2 : rs1);
        w.byte((funct3 & 1) != 0 ? w.OP_I64_LT_U : w.OP_I64_LT_S);
        w.byte(w.OP_SELECT);
      } else if (funct7 == 0x30 && (funct3 == 1 || funct3 == 5)) { // rol, ror (counts modulo 64, as RISC-V's)
        readReg(rs1);
        readReg(rs2);
        w.byte(funct3 == 1 ? w.OP_I64_ROTL : w.OP_I64_ROTR);
      } else if (funct3 == 1 && (funct7 == 0x24 || funct7 == 0x34 || funct7 == 0x14)) { // bclr, binv, bset
        readReg(rs1);
        w.i64Const(1);
        readReg(rs2);
        w.byte(w.OP_I64_SHL);
        if (funct7 == 0x24) {
          w.i64Const(-1);
          w.byte(w.OP_I64_XOR);
          w.byte(w.OP_I64_AND);
        } else {
          w.byte(funct7 == 0x34 ? w.OP_I64_XOR : w.OP_I64_OR);
        }
      } else if (funct7 == 0x24 && funct3 == 5) { // bext
        readReg(rs1);
        readReg(rs2);
        extractBit();
      } else {
        return REFUSED;
      }
      break;
    }
    case 0x0e: { // OP-32
      if ((funct7 == 0x04 && funct3 == 0) || (funct7 == 0x10 && shNadd)) { // add.uw, sh1add.uw, sh2add.uw, sh3add.uw
        readReg(rs1);
        w.byte(w.OP_I32_WRAP_I64);
        w.byte(w.OP_I64_EXTEND_I32_U);
        if (funct3 != 0) {
          w.i64Const(<i64>(funct3 >> 1));
          w.byte(w.OP_I64_SHL);
        }
        readReg(rs2);
        w.byte(w.OP_I64_ADD);
      } else if (funct7 == 0x04 && funct3 == 4 && rs2 == 0) { // zext.h
        readReg(rs1);
        w.i64Const(0xffff);
        w.byte(w.OP_I64_AND);
      } else if (funct7 == 0x30 && (funct3 == 1 || funct3 == 5)) { // rolw, rorw
        readReg(rs1);
        w.byte(w.OP_I32_WRAP_I64);
        readReg(rs2);
        w.byte(w.OP_I32_WRAP_I64);
        w.byte(funct3 == 1 ? w.OP_I32_ROTL : w.OP_I32_ROTR);
        w.byte(w.OP_I64_EXTEND_I32_S);
      } else {
        return REFUSED;
      }
      break;
    }
    case 0x04: { // OP-IMM
      if (funct3 == 1 && imm12 >= 0x600 && imm12 <= 0x605 && imm12 != 0x603) { // clz, ctz, cpop, sext.b, sext.h
        readReg(rs1);
        w.byte(imm12 == 0x600 ? w.OP_I64_CLZ : imm12 == 0x601 ? w.OP_I64_CTZ : imm12 == 0x602 ? w.OP_I64_POPCNT
          : imm12 == 0x604 ? w.OP_I64_EXTEND8_S : w.OP_I64_EXTEND16_S);
      } else if (funct3 == 1 && (funct6 == 0x0a || funct6 == 0x12 || funct6 == 0x1a)) { // bseti, bclri, binvi
        const bit = <i64>1 << shamt;
        readReg(rs1);
        w.i64Const(funct6 == 0x12 ? ~bit : bit);
        w.byte(funct6 == 0x0a ? w.OP_I64_OR : funct6 == 0x12 ? w.OP_I64_AND : w.OP_I64_XOR);
      } else if (funct3 == 5 && funct6 == 0x18) { // rori
        readReg(rs1);
        w.i64Const(shamt);
        w.byte(w.OP_I64_ROTR);
      } else if (funct3 == 5 && funct6 == 0x12) { // bexti
        readReg(rs1);
        w.i64Const(shamt);
        extractBit();
      } else {
        return REFUSED;
      }
      break;
    }
    case 0x06: { // OP-IMM-32
      if (funct3 == 1 && imm12 >= 0x600 && imm12 <= 0x602) { // clzw, ctzw, cpopw
        readReg(rs1);
        w.byte(w.OP_I32_WRAP_I64);
        w.byte(imm12 == 0x600 ? w.OP_I32_CLZ : imm12 == 0x601 ? w.OP_I32_CTZ : w.OP_I32_POPCNT);
        w.byte(w.OP_I64_EXTEND_I32_U);
      } else if (funct3 == 1 && funct6 == 0x02) { // slli.uw
        readReg(rs1);
        w.byte(w.OP_I32_WRAP_I64);
        w.byte(w.OP_I64_EXTEND_I32_U);
        w.i64Const(shamt);
        w.byte(w.OP_I64_SHL);
      } else if (funct3 == 5 && funct7 == 0x30) { // roriw
        readReg(rs1);
        w.byte(w.OP_I32_WRAP_I64);
        w.i32Const(<i32>((insn >> 20) & 31));
        w.byte(w.OP_I32_ROTR);
        w.byte(w.OP_I64_EXTEND_I32_S);
      } else {
        return REFUSED;
      }
      break;
    }
    default:
      return REFUSED;
  }
  writeReg(rd);
  return TAKEN;
}

/** With a value and a bit number on the stack, leaves that bit of the value (bext, bexti). */
function extractBit(): void {
  w.byte(w.OP_I64_SHR_U);
  w.i64Const(1);
  w.byte(w.OP_I64_AND);
}

/** Appends instruction `insn` (32-bit form), the block's instruction number `k`, at page offset `offset`. */
function translateInsn(insn: u32, len: i64, offset: i64, k: i32): i32 {
  const rd = (insn >> 7) & 31;
  const rs1 = (insn >> 15) & 31;
  const rs2 = (insn >> 20) & 31;
  const funct3 = (insn >> 12) & 7;
  const immI = <i64>(<i32>insn >> 20);
  switch ((insn >> 2) & 0x1f) {
    case 0x0d: { // LUI
      w.i64Const(<i64><i32>(insn & 0xfffff000));
      writeReg(rd);
      return TAKEN;
    }
    case 0x05: { // AUIPC
      pcPlus(offset + <i64><i32>(insn & 0xfffff000));
      writeReg(rd);
      return TAKEN;
    }
    case 0x1b: { // JAL
      const imm = ((<i32>insn >> 11) & 0xfff00000) | <i32>(insn & 0xff000) | <i32>((insn >> 9) & 0x800) |
        <i32>((insn >> 20) & 0x7fe);
      if (rd) {
        pcPlus(offset + len);
        writeReg(rd);
      }
      continueAt(offset + <i64>imm, k + 1, 0);
      return ENDED;
    }
    case 0x19: { // JALR
      if (funct3 != 0) return REFUSED;
      readReg(rs1);
      w.i64Const(immI);
      w.byte(w.OP_I64_ADD);
      w.i64Const(-2);
      w.byte(w.OP_I64_AND);
      w.localSet(LOCAL_NEXT); // before rd is written: rd may be rs1
      if (rd) {
        pcPlus(offset + len);
        writeReg(rd);
      }
      leave(k + 1, 0);
      return ENDED;
    }
    case 0x18: { // BRANCH
      const op = BRANCH_OPS[funct3];
      if (op == 0) return REFUSED;
      const imm = ((<i32>insn >> 19) & 0xfffff000) | <i32>((insn << 4) & 0x800) | <i32>((insn >> 20) & 0x7e0) |
        <i32>((insn >> 7) & 0x1e);
      // Taken, it leaves the block; not taken, the block goes on (a superblock along the fall-through path).
      readReg(rs1);
      readReg(rs2);
      w.byte(op);
      w.byte(w.OP_IF);
      w.byte(w.BLOCKTYPE_VOID);
      continueAt(offset + <i64>imm, k + 1, 1);
      w.byte(w.OP_END);
      return TAKEN;
    }
    case 0x00: { // LOAD
      if (funct3 == 7) return REFUSED;
      hostAddress(rs1, immI, <i64>((1 << (funct3 & 3)) - 1), TLB_LOAD, offset, k);
      w.memoryOp(LOAD_OPS[funct3], 0, 0);
      writeReg(rd);
      return TAKEN;
    }
    case 0x08: { // STORE
      if (funct3 > 3) return REFUSED;
      const imm = <i64>(((<i32>insn >> 20) & ~31) | <i32>((insn >> 7) & 31));
      hostAddress(rs1, imm, <i64>((1 << funct3) - 1), TLB_STORE, offset, k);
      readReg(rs2);
      w.memoryOp(STORE_OPS[funct3], 0, 0);
      return TAKEN;
    }
    case 0x04: { // OP-IMM
      const f6 = insn >> 26;
      if (funct3 == 1 && f6 != 0) return translateBitmanip(insn, rd, rs1, rs2);
      if (funct3 == 5 && f6 != 0 && f6 != 0x10) return translateBitmanip(insn, rd, rs1, rs2);
      readReg(rs1);
      switch (funct3) {
        case 0: {
          if (immI != 0) {
            w.i64Const(immI);
            w.byte(w.OP_I64_ADD);
          }
          break;
        }
        case 1: w.i64Const(immI & 63); w.byte(w.OP_I64_SHL); break;
        case 2: w.i64Const(immI); w.byte(w.OP_I64_LT_S); w.byte(w.OP_I64_EXTEND_I32_U); break;
        case 3: w.i64Const(immI); w.byte(w.OP_I64_LT_U); w.byte(w.OP_I64_EXTEND_I32_U); break;
        case 4: w.i64Const(immI); w.byte(w.OP_I64_XOR); break;
        case 5: w.i64Const(immI & 63); w.byte(f6 == 0 ? w.OP_I64_SHR_U : w.OP_I64_SHR_S); break;
        case 6: w.i64Const(immI); w.byte(w.OP_I64_OR); break;
        default: w.i64Const(immI); w.byte(w.OP_I64_AND); break;
      }
      writeReg(rd);
      return TAKEN;
    }
    case 0x0c: { // OP
      const funct7 = insn >> 25;
      let op: u32 = 0;
      let compare = false;
      if (funct7 == 0) {
        switch (funct3) {
          case 0: op = w.OP_I64_ADD; break;
          case 1: op = w.OP_I64_SHL; break;
          case 2: op = w.OP_I64_LT_S; compare = true; break;
          case 3: op = w.OP_I64_LT_U; compare = true; break;
          case 4: op = w.OP_I64_XOR; break;
          case 5: op = w.OP_I64_SHR_U; break;
          case 6: op = w.OP_I64_OR; break;
          default: op = w.OP_I64_AND; break;
        }
      } else if (funct7 == 0x20 && funct3 == 0) {
        op = w.OP_I64_SUB;
      } else if (funct7 == 0x20 && funct3 == 5) {
        op = w.OP_I64_SHR_S;
      } else if (funct7 == 1 && funct3 == 0) {
        op = w.OP_I64_MUL;
      } else if (funct7 == 1) {
        return REFUSED; // MULH*, DIV*, REM*: the interpreter's
      } else {
        return translateBitmanip(insn, rd, rs1, rs2);
      }
      // WebAssembly's 64-bit shifts take the count modulo 64, as RISC-V does.
      readReg(rs1);
      readReg(rs2);
      w.byte(op);
      if (compare) w.byte(w.OP_I64_EXTEND_I32_U);
      writeReg(rd);
      return TAKEN;
    }
    case 0x06: { // OP-IMM-32
      const f7 = insn >> 25;
      let op: u32 = 0;
      if (funct3 == 0) op = w.OP_I32_ADD;
      else if (funct3 == 1 && f7 == 0) op = w.OP_I32_SHL;
      else if (funct3 == 5 && f7 == 0) op = w.OP_I32_SHR_U;
      else if (funct3 == 5 && f7 == 0x20) op = w.OP_I32_SHR_S;
      else return translateBitmanip(insn, rd, rs1, rs2);
      readReg(rs1);
      w.byte(w.OP_I32_WRAP_I64);
      w.i32Const(funct3 == 0 ? <i32>immI : <i32>(rs2));
      w.byte(op);
      w.byte(w.OP_I64_EXTEND_I32_S);
      writeReg(rd);
      return TAKEN;
    }
    case 0x0e: { // OP-32
      const funct7 = insn >> 25;
      let op: u32 = 0;
      if (funct7 == 0 && funct3 == 0) op = w.OP_I32_ADD;
      else if (funct7 == 0x20 && funct3 == 0) op = w.OP_I32_SUB;
      else if (funct7 == 0 && funct3 == 1) op = w.OP_I32_SHL;
      else if (funct7 == 0 && funct3 == 5) op = w.OP_I32_SHR_U;
      else if (funct7 == 0x20 && funct3 == 5) op = w.OP_I32_SHR_S;
      else if (funct7 == 1 && funct3 == 0) op = w.OP_I32_MUL;
      else if (funct7 == 1) return REFUSED;
      else return translateBitmanip(insn, rd, rs1, rs2);
      // ... and its 32-bit shifts modulo 32.
      readReg(rs1);
      w.byte(w.OP_I32_WRAP_I64);
      readReg(rs2);
      w.byte(w.OP_I32_WRAP_I64);
      w.byte(op);
      w.byte(w.OP_I64_EXTEND_I32_S);
      writeReg(rd);
      return TAKEN;
    }
    case 0x0b: { // AMO
      if (funct3 != 2 && funct3 != 3) return REFUSED;
      return translateAtomic(insn >> 27, funct3 == 3, rd, rs1, rs2, offset, k);
    }
    case 0x1c: { // SYSTEM: only sstatus.SIE (Linux's irq save, restore, enable and disable); the rest is the interpreter's
      if (funct3 == 0 || funct3 == 4 || (funct3 & 3) == 1 || (insn >> 20) != CSR_NUMBER_SSTATUS) return REFUSED;
      return translateSstatus(funct3, rd, rs1, offset + len, offset, k);
    }
    case 0x03: { // MISC-MEM: FENCE as the interpreter does it; FENCE.I flushes the block cache, so it is not ours
      if (funct3 != 0) return REFUSED;
      w.i32Const(MACHINE_FENCE_WORD);
      w.i32Const(0);
      w.atomicAddI32(0);
      w.byte(w.OP_DROP);
      return TAKEN;
    }
    default:
      return REFUSED;
  }
}

/**
 * CSRRS/CSRRC/CSRRSI/CSRRCI on sstatus that read it or set or clear only SIE (funct3 bit 2: the
 * immediate forms, `source` the 5-bit immediate; else `source` is rs1). Linux brackets its critical
 * sections with these (~65 per 4 KiB disk request: local_irq_save/restore, spin_lock_irqsave), and each
 * one the interpreter did split the region in two. Anything else — U-mode, where sstatus is illegal, or a
 * register whose value touches another bit (SUM, say, which changes the data TLB) — leaves before the
 * instruction for the interpreter. Setting SIE may make a pending interrupt deliverable, so the function
 * then leaves after the instruction with CHECK_INTERRUPTS, and the interpreter takes it before the next.
 */
function translateSstatus(funct3: u32, rd: u32, source: u32, nextOffset: i64, offset: i64, k: i32): i32 {
  const immediate = (funct3 & 4) != 0;
  const sets = (funct3 & 3) == 2;
  if (immediate && (<u64>source & ~MSTATUS_SIE) != 0) return REFUSED;
  const writes = source != 0;
  // One exit for both of the interpreter's cases: U-mode, or a register with bits other than SIE.
  w.localGet(PARAM_HART);
  w.memoryOp(w.OP_I32_LOAD, 2, HART_PRIV);
  w.byte(w.OP_I32_EQZ);
  if (writes && !immediate) {
    // The bits to set or clear, kept before rd is written (rd may be rs1).
    readReg(source);
    w.localTee(LOCAL_VA);
    w.i64Const(~<i64>MSTATUS_SIE);
    w.byte(w.OP_I64_AND);
    w.i64Const(0);
    w.byte(w.OP_I64_NE);
    w.byte(w.OP_I32_OR);
  }
  exitIf(offset, k | LEFT_EARLY, 0);
  if (rd != 0) {
    // readMstatus() & SSTATUS_VISIBLE: SD summarises FS == dirty.
    w.localGet(PARAM_HART);
    w.memoryOp(w.OP_I64_LOAD, 3, CSR_MSTATUS);
    w.localTee(LOCAL_NEXT);
    w.i64Const(<i64>(XLEN_64_FIELDS & SSTATUS_VISIBLE));
    w.byte(w.OP_I64_OR);
    w.i64Const(<i64>(SSTATUS_VISIBLE & ~MSTATUS_SD));
    w.byte(w.OP_I64_AND);
    w.localGet(LOCAL_NEXT);
    w.i64Const(<i64>MSTATUS_FS);
    w.byte(w.OP_I64_AND);
    w.i64Const(<i64>MSTATUS_FS);
    w.byte(w.OP_I64_EQ);
    w.byte(w.OP_I64_EXTEND_I32_U);
    w.i64Const(63);
    w.byte(w.OP_I64_SHL);
    w.byte(w.OP_I64_OR);
    writeReg(rd);
  }
  if (!writes) return TAKEN;
  w.localGet(PARAM_HART);
  w.localGet(PARAM_HART);
  w.memoryOp(w.OP_I64_LOAD, 3, CSR_MSTATUS);
  if (immediate) w.i64Const(<i64>source);
  else w.localGet(LOCAL_VA);
  if (!sets) {
    w.i64Const(-1);
    w.byte(w.OP_I64_XOR);
    w.byte(w.OP_I64_AND);
  } else {
    w.byte(w.OP_I64_OR);
  }
  w.memoryOp(w.OP_I64_STORE, 3, CSR_MSTATUS);
  if (!sets) return TAKEN;
  if (immediate) {
    exitAt(nextOffset, (k + 1) | CHECK_INTERRUPTS, 0);
    return ENDED;
  }
  w.localGet(LOCAL_VA);
  w.byte(w.OP_I64_EQZ);
  w.byte(w.OP_I32_EQZ);
  exitIf(nextOffset, (k + 1) | CHECK_INTERRUPTS, 0);
  return TAKEN;
}

/**
 * LR, SC and the AMOs WebAssembly has a read-modify-write for (ADD, SWAP, XOR, OR, AND), as the interpreter
 * does them: WebAssembly's atomics on the host address of an aligned RAM access (LR through the load TLB,
 * the others through the store TLB, whose entries mean writable and dirty); SC is a compare-and-swap
 * against the value LR read. A misaligned address misses the TLB (its tag has the low bits), so the
 * interpreter raises the fault. AMOMIN/MAX (a compare-and-swap loop) stay the interpreter's.
 */
function translateAtomic(funct5: u32, wide: bool, rd: u32, rs1: u32, rs2: u32, offset: i64, k: i32): i32 {
  const alignLog2: u32 = wide ? 3 : 2;
  const sizeMask: i64 = wide ? 7 : 3;
  if (funct5 == 0x02) { // LR
    if (rs2 != 0) return REFUSED;
    hostAddress(rs1, 0, sizeMask, TLB_LOAD, offset, k);
    w.localSet(LOCAL_ENTRY);
    w.localGet(PARAM_HART);
    w.localGet(LOCAL_ENTRY);
    w.byte(w.OP_I64_EXTEND_I32_U);
    w.memoryOp(w.OP_I64_STORE, 3, HART_RESERVATION);
    w.localGet(LOCAL_ENTRY);
    w.atomicOp(wide ? w.OP_I64_ATOMIC_LOAD : w.OP_I32_ATOMIC_LOAD, alignLog2, 0);
    if (!wide) w.byte(w.OP_I64_EXTEND_I32_S);
    w.localSet(LOCAL_VA);
    w.localGet(PARAM_HART);
    w.localGet(LOCAL_VA);
    w.memoryOp(w.OP_I64_STORE, 3, HART_RESERVED_VALUE);
    w.localGet(LOCAL_VA);
    writeReg(rd);
    return TAKEN;
  }
  if (funct5 == 0x03) { // SC: rd = 0 if the reservation is this address and memory still holds LR's value
    hostAddress(rs1, 0, sizeMask, TLB_STORE, offset, k);
    w.localSet(LOCAL_ENTRY);
    w.localGet(PARAM_HART);
    w.memoryOp(w.OP_I64_LOAD, 3, HART_RESERVATION);
    w.localGet(LOCAL_ENTRY);
    w.byte(w.OP_I64_EXTEND_I32_U);
    w.byte(w.OP_I64_EQ);
    w.byte(w.OP_IF);
    w.byte(w.TYPE_I64);
    w.localGet(LOCAL_ENTRY);
    reservedValue(wide);
    readReg(rs2);
    if (!wide) w.byte(w.OP_I32_WRAP_I64);
    w.atomicOp(wide ? w.OP_I64_ATOMIC_RMW_CMPXCHG : w.OP_I32_ATOMIC_RMW_CMPXCHG, alignLog2, 0);
    reservedValue(wide);
    w.byte(wide ? w.OP_I64_NE : w.OP_I32_NE);
    w.byte(w.OP_I64_EXTEND_I32_U);
    w.byte(w.OP_ELSE);
    w.i64Const(1);
    w.byte(w.OP_END);
    w.localGet(PARAM_HART);
    w.i64Const(-1);
    w.memoryOp(w.OP_I64_STORE, 3, HART_RESERVATION);
    writeReg(rd);
    return TAKEN;
  }
  let op: u32;
  switch (funct5) {
    case 0x00: op = wide ? w.OP_I64_ATOMIC_RMW_ADD : w.OP_I32_ATOMIC_RMW_ADD; break;
    case 0x01: op = wide ? w.OP_I64_ATOMIC_RMW_XCHG : w.OP_I32_ATOMIC_RMW_XCHG; break;
    case 0x04: op = wide ? w.OP_I64_ATOMIC_RMW_XOR : w.OP_I32_ATOMIC_RMW_XOR; break;
    case 0x08: op = wide ? w.OP_I64_ATOMIC_RMW_OR : w.OP_I32_ATOMIC_RMW_OR; break;
    case 0x0c: op = wide ? w.OP_I64_ATOMIC_RMW_AND : w.OP_I32_ATOMIC_RMW_AND; break;
    default: return REFUSED;
  }
  hostAddress(rs1, 0, sizeMask, TLB_STORE, offset, k);
  readReg(rs2);
  if (!wide) w.byte(w.OP_I32_WRAP_I64);
  w.atomicOp(op, alignLog2, 0);
  if (!wide) w.byte(w.OP_I64_EXTEND_I32_S);
  writeReg(rd);
  return TAKEN;
}

/** Pushes the value LR read, as an i64 (`wide`) or its low half. */
function reservedValue(wide: bool): void {
  w.localGet(PARAM_HART);
  w.memoryOp(w.OP_I64_LOAD, 3, HART_RESERVED_VALUE);
  if (!wide) w.byte(w.OP_I32_WRAP_I64);
}

/**
 * Translates the region entered at host address `code`, page offset `pageOffset`, into a function body (as
 * the code section holds it: size, locals, code) in [buffer, buffer + size). Returns the number of
 * instructions in its entry block (0: the first one is not translatable) and sets bodyLength, regionLow and
 * regionBytes. Its other blocks are starts on the page it reaches whose heat counter (in `heatCounters`) is
 * at least `warm`; `regionBlocks` is scratch for the block list.
 */
export function translateBlock(
  code: usize, pageOffset: u32, buffer: usize, size: usize, regionBlocks: usize, heatCounters: usize, warm: i32,
): i32 {
  blocks = regionBlocks;
  regionPage = code - <usize>pageOffset;
  heatTable = heatCounters;
  warmVisits = warm;
  entryOffset = pageOffset;
  // Pass 1 finds the blocks, their lengths and the registers they use (its output is thrown away); pass 2
  // writes the body with a prologue that loads those registers, so that every exit can share one epilogue.
  // Pass 1 gets less room than pass 2 will have after the prologue, and pass 2 keeps pass 1's lengths.
  finalPass = false;
  backwardJump = false;
  used = 0;
  written = 0;
  blockCount = 1;
  setBlock(0, pageOffset, 0);
  w.startWriting(buffer, size - PROLOGUE_EPILOGUE_BYTES);
  let insns: i32 = 0;
  for (let i = 0; i < blockCount; i++) {
    let length: i32 = 0;
    if (insns < MAX_REGION_INSNS && w.room() > RESERVE) {
      currentBlock = i;
      exitDepth = 1;
      const most = MAX_REGION_INSNS - insns;
      length = translateBody(blockStart(i), most < MAX_BLOCK_INSNS ? most : MAX_BLOCK_INSNS);
    }
    setBlock(i, blockStart(i), length);
    insns += length;
  }
  regionBlockCount = 0;
  if (blockLength(0) == 0) return 0;
  // Blocks whose first instruction is not ours are no blocks: going there leaves the function.
  let kept = 0;
  for (let i = 0; i < blockCount; i++) {
    if (blockLength(i) == 0) continue;
    setBlock(kept++, blockStart(i), blockLength(i));
  }
  blockCount = kept;
  const registers = used;

  finalPass = true;
  used = 0;
  written = 0;
  w.startWriting(buffer, size);
  const body = w.sizePlaceholder();
  w.byte(2); w.byte(33); w.byte(w.TYPE_I64); w.byte(3); w.byte(w.TYPE_I32); // locals: x1..x31, temps
  for (let r: u32 = 1; r < 32; r++) {
    if ((registers & (1 << r)) == 0) continue;
    w.localGet(PARAM_HART);
    w.memoryOp(w.OP_I64_LOAD, 3, HART_X + (r << 3));
    w.localSet(REG_BASE + r);
  }
  w.byte(w.OP_BLOCK); // $exit
  w.byte(w.BLOCKTYPE_VOID);
  // $dispatch: a loop only if a block jumps back; else nothing branches to it.
  w.byte(backwardJump ? w.OP_LOOP : w.OP_BLOCK);
  w.byte(w.BLOCKTYPE_VOID);
  for (let i = 0; i < blockCount; i++) {
    w.byte(w.OP_BLOCK);
    w.byte(w.BLOCKTYPE_VOID);
  }
  w.localGet(LOCAL_NEXT_BLOCK);
  w.byte(w.OP_BR_TABLE);
  w.u32leb(<u32>blockCount);
  for (let i = 0; i < blockCount; i++) w.u32leb(<u32>i);
  w.u32leb(0);
  let low: u32 = 0x1000;
  let high: u32 = 0;
  for (let i = 0; i < blockCount; i++) {
    w.byte(w.OP_END);
    currentBlock = i;
    exitDepth = <u32>(blockCount - i);
    const start = blockStart(i);
    translateBody(start, blockLength(i));
    if (start < low) low = start;
    if (start + lastBlockBytes > high) high = start + lastBlockBytes;
  }
  w.byte(w.OP_END);
  w.byte(w.OP_END);
  for (let r: u32 = 1; r < 32; r++) {
    if ((written & (1 << r)) == 0) continue;
    w.localGet(PARAM_HART);
    w.localGet(REG_BASE + r);
    w.memoryOp(w.OP_I64_STORE, 3, HART_X + (r << 3));
  }
  w.localGet(PARAM_HART);
  w.localGet(LOCAL_NEXT);
  w.memoryOp(w.OP_I64_STORE, 3, HART_PC);
  w.localGet(LOCAL_RETIRED);
  w.byte(w.OP_END);
  w.patchSize(body);
  bodyLength = <u32>(w.pos - buffer);
  regionLow = low;
  regionBytes = high - low;
  regionBlockCount = blockCount;
  return blockLength(0);
}

/** Bytes of guest code the last block translateBody wrote covers. */
let lastBlockBytes: u32 = 0;

/**
 * Writes the block whose first instruction is at page offset `start` of the region's page, at most
 * `maxInsns` instructions, ending with where it goes next; returns how many instructions it has (0 if the
 * first is not translatable) and sets lastBlockBytes. The first pass also ends a block where another one
 * starts.
 */
function translateBody(start: u32, maxInsns: i32): i32 {
  let count: i32 = 0;
  let offset: i64 = <i64>start;
  let ended = false;
  while (count < maxInsns && w.room() > RESERVE) {
    if (offset > 0xffe) break;
    if (!finalPass && count > 0 && blockAt(<u32>offset) >= 0) break;
    let insn = <u32>load<u16>(regionPage + <usize>offset);
    let len: i64 = 2;
    if ((insn & 3) == 3) {
      if (offset > 0xffc) break; // its upper half is on the next page
      insn = load<u32>(regionPage + <usize>offset);
      len = 4;
    } else {
      insn = load<u32>(RVC_TABLE + (<usize>insn << 2));
      if (insn == 0) break;
    }
    const result = translateInsn(insn, len, offset, count);
    if (result == REFUSED) break;
    count++;
    offset += len;
    if (result == ENDED) {
      ended = true;
      break;
    }
  }
  if (count > 0 && !ended) continueAt(offset, count, 0);
  lastBlockBytes = <u32>(offset - <i64>start);
  return count;
}

/**
 * Writes into `out` a module of `count` functions — the bodies at `bodies` (`bodyBytes` long, back to back)
 * — each exported under its number ("0", "1", ...), all of the block type, importing the shared memory as
 * "e" "m". Returns its length.
 */
export function writeModule(bodies: usize, bodyBytes: u32, count: i32, out: usize, size: usize): i32 {
  w.startWriting(out, size);
  w.byte(0x00); w.byte(0x61); w.byte(0x73); w.byte(0x6d); w.byte(0x01); w.byte(0x00); w.byte(0x00); w.byte(0x00);
  w.byte(1); // type section: (i32 hart, i64 pc, i32 dataTlb, i32 asidHash, i64 tag, i32 budget, i32 firstBlock) -> i32
  let at = w.sizePlaceholder();
  w.byte(1); w.byte(0x60);
  w.byte(7); w.byte(w.TYPE_I32); w.byte(w.TYPE_I64); w.byte(w.TYPE_I32); w.byte(w.TYPE_I32); w.byte(w.TYPE_I64); w.byte(w.TYPE_I32);
  w.byte(w.TYPE_I32);
  w.byte(1); w.byte(w.TYPE_I32);
  w.patchSize(at);
  w.byte(2); // import section: (import "e" "m" (memory 0 65536 shared))
  at = w.sizePlaceholder();
  w.byte(1); w.name("e"); w.name("m"); w.byte(2); w.byte(3); w.u32leb(0); w.u32leb(65536);
  w.patchSize(at);
  w.byte(3); // function section
  at = w.sizePlaceholder();
  w.u32leb(<u32>count);
  for (let i = 0; i < count; i++) w.byte(0);
  w.patchSize(at);
  w.byte(7); // export section
  at = w.sizePlaceholder();
  w.u32leb(<u32>count);
  for (let i = 0; i < count; i++) {
    w.decimalName(<u32>i);
    w.byte(0);
    w.u32leb(<u32>i);
  }
  w.patchSize(at);
  w.byte(10); // code section
  at = w.sizePlaceholder();
  w.u32leb(<u32>count);
  memory.copy(w.pos, bodies, bodyBytes);
  w.pos += bodyBytes;
  w.patchSize(at);
  return <i32>(w.pos - out);
}
