// The block translator: straight-line RV64I/M integer code, up to and including its first jump (a taken
// branch leaves it early; the fall-through path goes on), becomes one WebAssembly function
//
//   (func (param $hart i32) (param $pc i64) (param $dataTlb i32) (param $asidHash i32) (param $tag i64)
//         (result i32))
//
// that runs the block on the hart at `$hart`, stores the next pc into HART_PC and returns how many
// instructions retired (with LEFT_EARLY when it stopped before an instruction for the interpreter).
// The guest registers the block uses live in WebAssembly locals: loaded at entry, and those it writes
// stored back by the one epilogue every exit branches to. Immediates are constants, and pc-relative values
// are `$pc + offset`, so one translation serves every virtual address the physical page is mapped at.
//
// Anything that is not the plain fast path leaves the block *before* that instruction, with every
// earlier one retired, and the interpreter carries on from there: a load or store that misses the TLB
// (or is misaligned, or is MMIO), and every instruction the translator does not take (SYSTEM, AMO, FP,
// FENCE.I, MULH/DIV/REM, illegal encodings). So a block never traps, and all the slow paths — page walks,
// faults, MMIO exits — stay in one place, the interpreter.
import {
  HART_X, HART_PC, RVC_TABLE, TLB_LOAD, TLB_STORE, TLB_TAG, TLB_ADDEND, TLB_ENTRIES, TLB_ENTRY_SIZE,
  MACHINE_FENCE_WORD,
} from "../abi/layout";
import * as w from "./wasm_writer";

const PARAM_HART: u32 = 0;
const PARAM_PC: u32 = 1;
const PARAM_DATA_TLB: u32 = 2;
const PARAM_ASID_HASH: u32 = 3;
const PARAM_TAG: u32 = 4;
/** Guest register r (1..31) is local REG_BASE + r. */
const REG_BASE: u32 = 4;
const LOCAL_VA: u32 = 36; // i64: the address of a load or store
const LOCAL_NEXT: u32 = 37; // i64: the pc the block leaves at
const LOCAL_ENTRY: u32 = 38; // i32: the TLB entry of a load or store
const LOCAL_RETIRED: u32 = 39; // i32: instructions retired when the block leaves

const PAGE_MASK: i64 = ~(<i64>0xfff);
/**
 * Or-ed into the returned count when the block left before an instruction it leaves to the interpreter,
 * rather than at a jump, a taken branch or its end (where the next block starts).
 */
export const LEFT_EARLY: i32 = 0x1_0000;
const MAX_BLOCK_INSNS: i32 = 128;
/** Bytes kept free in the buffer for one more instruction and the block's exit. */
const RESERVE: usize = 256;
/** More than the bytes of a body's size, locals, register loads and stores, and epilogue (~490 at most). */
const PROLOGUE_EPILOGUE_BYTES: usize = 640;

/** Registers the block reads or writes (each loaded once, at entry), and those it writes (stored back at the exit). */
let used: u32 = 0;
let written: u32 = 0;
/** Length in bytes of the function body the last translateBlock wrote. */
export let bodyLength: u32 = 0;
/** Bytes of guest code the last translated block covers. */
export let blockBytes: u32 = 0;

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

/** Pushes $pc + offset. */
function pcPlus(offset: i64): void {
  w.localGet(PARAM_PC);
  if (offset != 0) {
    w.i64Const(offset);
    w.byte(w.OP_I64_ADD);
  }
}

/**
 * Leaves the block for the shared exit (which stores the written registers and the next pc) with
 * `retired` instructions done and the next pc on the stack; `depth` is the number of blocks (ifs) the
 * exit is nested in below the function's outer block.
 */
function exitWithStackPc(retired: i32, depth: u32): void {
  w.localSet(LOCAL_NEXT);
  leave(retired, depth);
}

/** Branches to the shared exit with `retired` instructions done, the next pc already in LOCAL_NEXT. */
function leave(retired: i32, depth: u32): void {
  w.i32Const(retired);
  w.localSet(LOCAL_RETIRED);
  w.byte(w.OP_BR);
  w.u32leb(depth);
}

/** Leaves the block at $pc + offset with `retired` instructions done. */
function exitAt(offset: i64, retired: i32, depth: u32): void {
  pcPlus(offset);
  exitWithStackPc(retired, depth);
}

/**
 * Computes a load's or store's address into LOCAL_VA and its TLB entry into LOCAL_ENTRY, leaves the
 * block (before this instruction) on a TLB miss, and pushes the host address.
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
  w.byte(w.OP_IF);
  w.byte(w.BLOCKTYPE_VOID);
  exitAt(offset, retired | LEFT_EARLY, 1);
  w.byte(w.OP_END);
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

/** Appends instruction `insn` (32-bit form), the block's instruction number `k` at $pc + offset. */
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
      exitAt(offset + <i64>imm, k + 1, 0);
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
      exitAt(offset + <i64>imm, k + 1, 1);
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
      if (funct3 == 1 && f6 != 0) return REFUSED;
      if (funct3 == 5 && f6 != 0 && f6 != 0x10) return REFUSED;
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
      } else {
        return REFUSED; // MULH*, DIV*, REM* and illegal encodings: the interpreter's
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
      else return REFUSED;
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
      else return REFUSED;
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
 * Translates the block whose first instruction is at host address `code`, page offset `pageOffset`, into a
 * function body (as the code section holds it: size, locals, code) in [buffer, buffer + size). Returns the
 * number of instructions in it (0: the first one is not translatable) and sets bodyLength and blockBytes.
 */
export function translateBlock(code: usize, pageOffset: u32, buffer: usize, size: usize): i32 {
  // Pass 1 finds the block's length and registers (its output is thrown away); pass 2 writes the body
  // with a prologue that loads those registers, so that every exit can share one epilogue.
  // Pass 1 gets less room than pass 2 will have after the prologue, and pass 2 stops at pass 1's count.
  const count = translateBody(code, pageOffset, buffer, size - PROLOGUE_EPILOGUE_BYTES, MAX_BLOCK_INSNS);
  if (count == 0) return 0;
  const registers = used;
  w.startWriting(buffer, size);
  const body = w.sizePlaceholder();
  w.byte(2); w.byte(33); w.byte(w.TYPE_I64); w.byte(2); w.byte(w.TYPE_I32); // locals: x1..x31, temps
  for (let r: u32 = 1; r < 32; r++) {
    if ((registers & (1 << r)) == 0) continue;
    w.localGet(PARAM_HART);
    w.memoryOp(w.OP_I64_LOAD, 3, HART_X + (r << 3));
    w.localSet(REG_BASE + r);
  }
  w.byte(w.OP_BLOCK); // $exit
  w.byte(w.BLOCKTYPE_VOID);
  const base = w.pos;
  translateBody(code, pageOffset, base, size - (base - buffer), count);
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
  return count;
}

/**
 * Writes the block's instructions, from the first at host address `code`, at [buffer, buffer + size),
 * ending with the jump to the exit; returns how many there are and sets blockBytes, used and written.
 */
function translateBody(code: usize, pageOffset: u32, buffer: usize, size: usize, maxInsns: i32): i32 {
  w.startWriting(buffer, size);
  used = 0;
  written = 0;
  let count: i32 = 0;
  let offset: i64 = 0;
  let ended = false;
  while (count < maxInsns && w.room() > RESERVE) {
    const inPage = <u32>offset + pageOffset;
    if (inPage > 0xffe) break;
    let insn = <u32>load<u16>(code + <usize>offset);
    let len: i64 = 2;
    if ((insn & 3) == 3) {
      if (inPage > 0xffc) break; // its upper half is on the next page
      insn = load<u32>(code + <usize>offset);
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
  if (count > 0 && !ended) exitAt(offset, count, 0);
  blockBytes = <u32>offset;
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
  w.byte(1); // type section: (i32 hart, i64 pc, i32 dataTlb, i32 asidHash, i64 tag) -> i32
  let at = w.sizePlaceholder();
  w.byte(1); w.byte(0x60);
  w.byte(5); w.byte(w.TYPE_I32); w.byte(w.TYPE_I64); w.byte(w.TYPE_I32); w.byte(w.TYPE_I32); w.byte(w.TYPE_I64);
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
