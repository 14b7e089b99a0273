// Semantics of the RISC-V F and D computational instructions: OP-FP (opcode 0x53) and the fused
// multiply-add family (0x43 FMADD, 0x47 FMSUB, 0x4b FNMSUB, 0x4f FNMADD). Loads and stores belong to
// the interpreter's memory path, which uses nanBox32 / unboxF32 from here.
//
// The caller (the interpreter) checks mstatus.FS != Off before calling, and on success sets FS to
// Dirty. This file reads and writes only the hart's x and f registers and fcsr.

import { CSR_FCSR, HART_F, HART_X } from '../abi/layout';
import * as sf from './softfloat';
import { F32_DEFAULT_NAN } from './softfloat';

export const EXEC_FP_OK: i32 = 0;
export const EXEC_FP_ILLEGAL: i32 = 1;

const NAN_BOX: u64 = 0xffffffff00000000;
const F32_SIGN: u32 = 0x80000000;
const F64_SIGN: u64 = 0x8000000000000000;

const FMT_S: u32 = 0;
const FMT_D: u32 = 1;

const RM_DYNAMIC: u32 = 7;
const FCSR_FRM_SHIFT: u32 = 5;
const FCSR_FFLAGS_MASK: u64 = 0x1f;

// A single in a 64-bit f register: the upper half all ones.
@inline export function nanBox32(v: u32): u64 {
  return NAN_BOX | <u64>v;
}

// The single an f register holds; an improperly boxed value reads as the canonical NaN.
@inline export function unboxF32(v: u64): u32 {
  return (v >> 32) == 0xffffffff ? <u32>v : F32_DEFAULT_NAN;
}

@inline function readF(hartBase: usize, r: u32): u64 {
  return load<u64>(hartBase + HART_F + (<usize>r << 3));
}
@inline function readS(hartBase: usize, r: u32): u32 {
  return unboxF32(readF(hartBase, r));
}
@inline function writeF(hartBase: usize, r: u32, v: u64): void {
  store<u64>(hartBase + HART_F + (<usize>r << 3), v);
}
@inline function writeS(hartBase: usize, r: u32, v: u32): void {
  writeF(hartBase, r, nanBox32(v));
}
@inline function readX(hartBase: usize, r: u32): u64 {
  return load<u64>(hartBase + HART_X + (<usize>r << 3));
}
@inline function writeX(hartBase: usize, r: u32, v: u64): void {
  if (r != 0) store<u64>(hartBase + HART_X + (<usize>r << 3), v);
}

// The effective rounding mode, or -1 when it is reserved (static 5, 6; dynamic with frm ≥ 5).
@inline function effectiveRm(hartBase: usize, rmField: u32): i32 {
  let rm = rmField;
  if (rm == RM_DYNAMIC) rm = <u32>(load<u64>(hartBase + CSR_FCSR) >> FCSR_FRM_SHIFT) & 7;
  return rm <= sf.RM_RMM ? <i32>rm : -1;
}

@inline function accrueFlags(hartBase: usize): void {
  if (sf.fpFlags != 0) {
    const addr = hartBase + CSR_FCSR;
    store<u64>(addr, load<u64>(addr) | (<u64>sf.fpFlags & FCSR_FFLAGS_MASK));
  }
}

// Executes one OP-FP or fused multiply-add instruction. Returns EXEC_FP_OK, or EXEC_FP_ILLEGAL
// (nothing changed) for a reserved rounding mode, an unsupported format or an unknown encoding.
export function execFpOp(hartBase: usize, insn: u32): i32 {
  sf.fpFlags = 0;
  const opcode = insn & 0x7f;
  const result = opcode == 0x53 ? execOpFp(hartBase, insn) : execFused(hartBase, insn, opcode);
  if (result == EXEC_FP_OK) accrueFlags(hartBase);
  return result;
}

function execFused(hartBase: usize, insn: u32, opcode: u32): i32 {
  const rd = (insn >> 7) & 31;
  const rs1 = (insn >> 15) & 31;
  const rs2 = (insn >> 20) & 31;
  const rs3 = insn >> 27;
  const fmt = (insn >> 25) & 3;
  const rm = effectiveRm(hartBase, (insn >> 12) & 7);
  if (rm < 0 || fmt > FMT_D) return EXEC_FP_ILLEGAL;
  const r = <u32>rm;
  if (fmt == FMT_S) {
    const a = readS(hartBase, rs1);
    const b = readS(hartBase, rs2);
    const c = readS(hartBase, rs3);
    let v: u32;
    if (opcode == 0x43) v = sf.f32_fmadd(a, b, c, r);
    else if (opcode == 0x47) v = sf.f32_fmsub(a, b, c, r);
    else if (opcode == 0x4b) v = sf.f32_fnmsub(a, b, c, r);
    else if (opcode == 0x4f) v = sf.f32_fnmadd(a, b, c, r);
    else return EXEC_FP_ILLEGAL;
    writeS(hartBase, rd, v);
  } else {
    const a = readF(hartBase, rs1);
    const b = readF(hartBase, rs2);
    const c = readF(hartBase, rs3);
    let v: u64;
    if (opcode == 0x43) v = sf.f64_fmadd(a, b, c, r);
    else if (opcode == 0x47) v = sf.f64_fmsub(a, b, c, r);
    else if (opcode == 0x4b) v = sf.f64_fnmsub(a, b, c, r);
    else if (opcode == 0x4f) v = sf.f64_fnmadd(a, b, c, r);
    else return EXEC_FP_ILLEGAL;
    writeF(hartBase, rd, v);
  }
  return EXEC_FP_OK;
}

// funct5 (insn[31:27]) of OP-FP
const F5_ADD: u32 = 0x00;
const F5_SUB: u32 = 0x01;
const F5_MUL: u32 = 0x02;
const F5_DIV: u32 = 0x03;
const F5_SGNJ: u32 = 0x04;
const F5_MINMAX: u32 = 0x05;
const F5_CVT_FF: u32 = 0x08;
const F5_SQRT: u32 = 0x0b;
const F5_CMP: u32 = 0x14;
const F5_CVT_IF: u32 = 0x18; // float → integer
const F5_CVT_FI: u32 = 0x1a; // integer → float
const F5_MVXF_CLASS: u32 = 0x1c;
const F5_MVFX: u32 = 0x1e;

function execOpFp(hartBase: usize, insn: u32): i32 {
  const funct5 = insn >> 27;
  const fmt = (insn >> 25) & 3;
  if (fmt > FMT_D) return EXEC_FP_ILLEGAL;
  const rd = (insn >> 7) & 31;
  const funct3 = (insn >> 12) & 7;
  const rs1 = (insn >> 15) & 31;
  const rs2 = (insn >> 20) & 31;
  const single = fmt == FMT_S;

  switch (funct5) {
    case F5_ADD:
    case F5_SUB:
    case F5_MUL:
    case F5_DIV: {
      const rm = effectiveRm(hartBase, funct3);
      if (rm < 0) return EXEC_FP_ILLEGAL;
      if (single) {
        const a = readS(hartBase, rs1);
        const b = readS(hartBase, rs2);
        let v: u32;
        if (funct5 == F5_ADD) v = sf.f32_add(a, b, <u32>rm);
        else if (funct5 == F5_SUB) v = sf.f32_sub(a, b, <u32>rm);
        else if (funct5 == F5_MUL) v = sf.f32_mul(a, b, <u32>rm);
        else v = sf.f32_div(a, b, <u32>rm);
        writeS(hartBase, rd, v);
      } else {
        const a = readF(hartBase, rs1);
        const b = readF(hartBase, rs2);
        let v: u64;
        if (funct5 == F5_ADD) v = sf.f64_add(a, b, <u32>rm);
        else if (funct5 == F5_SUB) v = sf.f64_sub(a, b, <u32>rm);
        else if (funct5 == F5_MUL) v = sf.f64_mul(a, b, <u32>rm);
        else v = sf.f64_div(a, b, <u32>rm);
        writeF(hartBase, rd, v);
      }
      return EXEC_FP_OK;
    }
    case F5_SQRT: {
      const rm = effectiveRm(hartBase, funct3);
      if (rm < 0 || rs2 != 0) return EXEC_FP_ILLEGAL;
      if (single) writeS(hartBase, rd, sf.f32_sqrt(readS(hartBase, rs1), <u32>rm));
      else writeF(hartBase, rd, sf.f64_sqrt(readF(hartBase, rs1), <u32>rm));
      return EXEC_FP_OK;
    }
    case F5_SGNJ: {
      if (funct3 > 2) return EXEC_FP_ILLEGAL;
      if (single) {
        const a = readS(hartBase, rs1);
        const b = readS(hartBase, rs2);
        const sign = funct3 == 0 ? b : funct3 == 1 ? ~b : a ^ b;
        writeS(hartBase, rd, (a & ~F32_SIGN) | (sign & F32_SIGN));
      } else {
        const a = readF(hartBase, rs1);
        const b = readF(hartBase, rs2);
        const sign = funct3 == 0 ? b : funct3 == 1 ? ~b : a ^ b;
        writeF(hartBase, rd, (a & ~F64_SIGN) | (sign & F64_SIGN));
      }
      return EXEC_FP_OK;
    }
    case F5_MINMAX: {
      if (funct3 > 1) return EXEC_FP_ILLEGAL;
      if (single) {
        const a = readS(hartBase, rs1);
        const b = readS(hartBase, rs2);
        writeS(hartBase, rd, funct3 == 0 ? sf.f32_min(a, b) : sf.f32_max(a, b));
      } else {
        const a = readF(hartBase, rs1);
        const b = readF(hartBase, rs2);
        writeF(hartBase, rd, funct3 == 0 ? sf.f64_min(a, b) : sf.f64_max(a, b));
      }
      return EXEC_FP_OK;
    }
    case F5_CVT_FF: {
      const rm = effectiveRm(hartBase, funct3);
      if (rm < 0) return EXEC_FP_ILLEGAL;
      if (single && rs2 == FMT_D) writeS(hartBase, rd, sf.f64_to_f32(readF(hartBase, rs1), <u32>rm));
      else if (!single && rs2 == FMT_S) writeF(hartBase, rd, sf.f32_to_f64(readS(hartBase, rs1)));
      else return EXEC_FP_ILLEGAL;
      return EXEC_FP_OK;
    }
    case F5_CMP: {
      if (funct3 > 2) return EXEC_FP_ILLEGAL;
      let v: u32;
      if (single) {
        const a = readS(hartBase, rs1);
        const b = readS(hartBase, rs2);
        v = funct3 == 2 ? sf.f32_eq(a, b) : funct3 == 1 ? sf.f32_lt(a, b) : sf.f32_le(a, b);
      } else {
        const a = readF(hartBase, rs1);
        const b = readF(hartBase, rs2);
        v = funct3 == 2 ? sf.f64_eq(a, b) : funct3 == 1 ? sf.f64_lt(a, b) : sf.f64_le(a, b);
      }
      writeX(hartBase, rd, <u64>v);
      return EXEC_FP_OK;
    }
    case F5_CVT_IF: {
      const rm = effectiveRm(hartBase, funct3);
      if (rm < 0 || rs2 > 3) return EXEC_FP_ILLEGAL;
      const r = <u32>rm;
      let v: u64;
      if (single) {
        const a = readS(hartBase, rs1);
        if (rs2 == 0) v = <u64><i64>sf.f32_to_i32(a, r);
        else if (rs2 == 1) v = <u64><i64>sf.f32_to_u32(a, r);
        else if (rs2 == 2) v = <u64>sf.f32_to_i64(a, r);
        else v = sf.f32_to_u64(a, r);
      } else {
        const a = readF(hartBase, rs1);
        if (rs2 == 0) v = <u64><i64>sf.f64_to_i32(a, r);
        else if (rs2 == 1) v = <u64><i64>sf.f64_to_u32(a, r);
        else if (rs2 == 2) v = <u64>sf.f64_to_i64(a, r);
        else v = sf.f64_to_u64(a, r);
      }
      writeX(hartBase, rd, v);
      return EXEC_FP_OK;
    }
    case F5_CVT_FI: {
      const rm = effectiveRm(hartBase, funct3);
      if (rm < 0 || rs2 > 3) return EXEC_FP_ILLEGAL;
      const r = <u32>rm;
      const x = readX(hartBase, rs1);
      if (single) {
        let v: u32;
        if (rs2 == 0) v = sf.i32_to_f32(<i32>x, r);
        else if (rs2 == 1) v = sf.u32_to_f32(<u32>x, r);
        else if (rs2 == 2) v = sf.i64_to_f32(<i64>x, r);
        else v = sf.u64_to_f32(x, r);
        writeS(hartBase, rd, v);
      } else {
        let v: u64;
        if (rs2 == 0) v = sf.i32_to_f64(<i32>x, r);
        else if (rs2 == 1) v = sf.u32_to_f64(<u32>x, r);
        else if (rs2 == 2) v = sf.i64_to_f64(<i64>x, r);
        else v = sf.u64_to_f64(x, r);
        writeF(hartBase, rd, v);
      }
      return EXEC_FP_OK;
    }
    case F5_MVXF_CLASS: {
      if (rs2 != 0) return EXEC_FP_ILLEGAL;
      if (funct3 == 0) {
        // fmv.x.w moves the raw low half, NaN-boxed or not, sign-extended.
        const raw = readF(hartBase, rs1);
        writeX(hartBase, rd, single ? <u64><i64><i32><u32>raw : raw);
      } else if (funct3 == 1) {
        const c = single ? sf.f32_classify(readS(hartBase, rs1)) : sf.f64_classify(readF(hartBase, rs1));
        writeX(hartBase, rd, <u64>c);
      } else {
        return EXEC_FP_ILLEGAL;
      }
      return EXEC_FP_OK;
    }
    case F5_MVFX: {
      if (rs2 != 0 || funct3 != 0) return EXEC_FP_ILLEGAL;
      const x = readX(hartBase, rs1);
      if (single) writeS(hartBase, rd, <u32>x);
      else writeF(hartBase, rd, x);
      return EXEC_FP_OK;
    }
  }
  return EXEC_FP_ILLEGAL;
}
