// The C extension as a table: every 16-bit encoding maps to the 32-bit instruction it stands for, so the
// interpreter executes one decoder. Entry 0 means illegal (the trap reports the original 16 bits).
// Built once per VM into RVC_TABLE (shared memory), before any hart runs.
import { RVC_TABLE, MACHINE_RVC_READY } from "../abi/layout";

@inline function bits(v: u32, hi: u32, lo: u32): u32 {
  return (v >> lo) & ((1 << (hi - lo + 1)) - 1);
}
@inline function sext(v: u32, width: u32): i32 {
  const shift = 32 - width;
  return (<i32>(v << shift)) >> shift;
}

@inline function encR(f7: u32, rs2: u32, rs1: u32, f3: u32, rd: u32, op: u32): u32 {
  return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}
@inline function encI(imm: i32, rs1: u32, f3: u32, rd: u32, op: u32): u32 {
  return ((<u32>imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}
@inline function encS(imm: i32, rs2: u32, rs1: u32, f3: u32, op: u32): u32 {
  const u = <u32>imm;
  return (bits(u, 11, 5) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (bits(u, 4, 0) << 7) | op;
}
@inline function encB(imm: i32, rs2: u32, rs1: u32, f3: u32): u32 {
  const u = <u32>imm;
  return (bits(u, 12, 12) << 31) | (bits(u, 10, 5) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) |
    (bits(u, 4, 1) << 8) | (bits(u, 11, 11) << 7) | 0x63;
}
@inline function encJ(imm: i32, rd: u32): u32 {
  const u = <u32>imm;
  return (bits(u, 20, 20) << 31) | (bits(u, 10, 1) << 21) | (bits(u, 11, 11) << 20) | (bits(u, 19, 12) << 12) |
    (rd << 7) | 0x6f;
}

const OP_LOAD: u32 = 0x03;
const OP_LOAD_FP: u32 = 0x07;
const OP_IMM: u32 = 0x13;
const OP_IMM_32: u32 = 0x1b;
const OP_STORE: u32 = 0x23;
const OP_STORE_FP: u32 = 0x27;
const OP_OP: u32 = 0x33;
const OP_LUI: u32 = 0x37;
const OP_OP_32: u32 = 0x3b;
const OP_JALR: u32 = 0x67;

export function expandCompressed(c: u32): u32 {
  const quadrant = c & 3;
  const funct3 = bits(c, 15, 13);
  const rdFull = bits(c, 11, 7);
  const rs2Full = bits(c, 6, 2);
  const rdPrime = bits(c, 4, 2) + 8;
  const rs1Prime = bits(c, 9, 7) + 8;
  if (quadrant == 0) {
    switch (funct3) {
      case 0: { // C.ADDI4SPN
        const imm = (bits(c, 12, 11) << 4) | (bits(c, 10, 7) << 6) | (bits(c, 6, 6) << 2) | (bits(c, 5, 5) << 3);
        return imm == 0 ? 0 : encI(<i32>imm, 2, 0, rdPrime, OP_IMM);
      }
      case 1: return encI(<i32>((bits(c, 12, 10) << 3) | (bits(c, 6, 5) << 6)), rs1Prime, 3, rdPrime, OP_LOAD_FP); // C.FLD
      case 2: return encI(<i32>((bits(c, 12, 10) << 3) | (bits(c, 6, 6) << 2) | (bits(c, 5, 5) << 6)), rs1Prime, 2, rdPrime, OP_LOAD); // C.LW
      case 3: return encI(<i32>((bits(c, 12, 10) << 3) | (bits(c, 6, 5) << 6)), rs1Prime, 3, rdPrime, OP_LOAD); // C.LD
      case 5: return encS(<i32>((bits(c, 12, 10) << 3) | (bits(c, 6, 5) << 6)), rdPrime, rs1Prime, 3, OP_STORE_FP); // C.FSD
      case 6: return encS(<i32>((bits(c, 12, 10) << 3) | (bits(c, 6, 6) << 2) | (bits(c, 5, 5) << 6)), rdPrime, rs1Prime, 2, OP_STORE); // C.SW
      case 7: return encS(<i32>((bits(c, 12, 10) << 3) | (bits(c, 6, 5) << 6)), rdPrime, rs1Prime, 3, OP_STORE); // C.SD
    }
    return 0;
  }
  if (quadrant == 1) {
    const imm6 = sext((bits(c, 12, 12) << 5) | bits(c, 6, 2), 6);
    switch (funct3) {
      case 0: return encI(imm6, rdFull, 0, rdFull, OP_IMM); // C.ADDI (C.NOP)
      case 1: return rdFull == 0 ? 0 : encI(imm6, rdFull, 0, rdFull, OP_IMM_32); // C.ADDIW
      case 2: return encI(imm6, 0, 0, rdFull, OP_IMM); // C.LI
      case 3: {
        if (rdFull == 2) { // C.ADDI16SP
          const imm = sext((bits(c, 12, 12) << 9) | (bits(c, 6, 6) << 4) | (bits(c, 5, 5) << 6) | (bits(c, 4, 3) << 7) |
            (bits(c, 2, 2) << 5), 10);
          return imm == 0 ? 0 : encI(imm, 2, 0, 2, OP_IMM);
        }
        if (imm6 == 0) return 0; // C.LUI with a zero immediate is reserved
        return ((<u32>imm6 & 0xfffff) << 12) | (rdFull << 7) | OP_LUI;
      }
      case 4: {
        const shamt = (bits(c, 12, 12) << 5) | bits(c, 6, 2);
        switch (bits(c, 11, 10)) {
          case 0: return encI(<i32>shamt, rs1Prime, 5, rs1Prime, OP_IMM); // C.SRLI
          case 1: return encI(<i32>(shamt | 0x400), rs1Prime, 5, rs1Prime, OP_IMM); // C.SRAI
          case 2: return encI(imm6, rs1Prime, 7, rs1Prime, OP_IMM); // C.ANDI
        }
        const rs2 = rdPrime;
        const rd = rs1Prime;
        if (bits(c, 12, 12) == 0) {
          switch (bits(c, 6, 5)) {
            case 0: return encR(0x20, rs2, rd, 0, rd, OP_OP); // C.SUB
            case 1: return encR(0, rs2, rd, 4, rd, OP_OP); // C.XOR
            case 2: return encR(0, rs2, rd, 6, rd, OP_OP); // C.OR
            default: return encR(0, rs2, rd, 7, rd, OP_OP); // C.AND
          }
        }
        switch (bits(c, 6, 5)) {
          case 0: return encR(0x20, rs2, rd, 0, rd, OP_OP_32); // C.SUBW
          case 1: return encR(0, rs2, rd, 0, rd, OP_OP_32); // C.ADDW
        }
        return 0;
      }
      case 5: { // C.J
        const imm = sext((bits(c, 12, 12) << 11) | (bits(c, 11, 11) << 4) | (bits(c, 10, 9) << 8) | (bits(c, 8, 8) << 10) |
          (bits(c, 7, 7) << 6) | (bits(c, 6, 6) << 7) | (bits(c, 5, 3) << 1) | (bits(c, 2, 2) << 5), 12);
        return encJ(imm, 0);
      }
      default: { // C.BEQZ / C.BNEZ
        const imm = sext((bits(c, 12, 12) << 8) | (bits(c, 11, 10) << 3) | (bits(c, 6, 5) << 6) | (bits(c, 4, 3) << 1) |
          (bits(c, 2, 2) << 5), 9);
        return encB(imm, 0, rs1Prime, funct3 == 6 ? 0 : 1);
      }
    }
  }
  if (quadrant == 2) {
    switch (funct3) {
      case 0: return encI(<i32>((bits(c, 12, 12) << 5) | bits(c, 6, 2)), rdFull, 1, rdFull, OP_IMM); // C.SLLI
      case 1: return encI(<i32>((bits(c, 12, 12) << 5) | (bits(c, 6, 5) << 3) | (bits(c, 4, 2) << 6)), 2, 3, rdFull, OP_LOAD_FP); // C.FLDSP
      case 2: { // C.LWSP
        if (rdFull == 0) return 0;
        return encI(<i32>((bits(c, 12, 12) << 5) | (bits(c, 6, 4) << 2) | (bits(c, 3, 2) << 6)), 2, 2, rdFull, OP_LOAD);
      }
      case 3: { // C.LDSP
        if (rdFull == 0) return 0;
        return encI(<i32>((bits(c, 12, 12) << 5) | (bits(c, 6, 5) << 3) | (bits(c, 4, 2) << 6)), 2, 3, rdFull, OP_LOAD);
      }
      case 4: {
        if (bits(c, 12, 12) == 0) {
          if (rs2Full == 0) return rdFull == 0 ? 0 : encI(0, rdFull, 0, 0, OP_JALR); // C.JR
          return encR(0, rs2Full, 0, 0, rdFull, OP_OP); // C.MV
        }
        if (rs2Full == 0) {
          if (rdFull == 0) return 0x00100073; // C.EBREAK
          return encI(0, rdFull, 0, 1, OP_JALR); // C.JALR
        }
        return encR(0, rs2Full, rdFull, 0, rdFull, OP_OP); // C.ADD
      }
      case 5: return encS(<i32>((bits(c, 12, 10) << 3) | (bits(c, 9, 7) << 6)), rs2Full, 2, 3, OP_STORE_FP); // C.FSDSP
      case 6: return encS(<i32>((bits(c, 12, 9) << 2) | (bits(c, 8, 7) << 6)), rs2Full, 2, 2, OP_STORE); // C.SWSP
      case 7: return encS(<i32>((bits(c, 12, 10) << 3) | (bits(c, 9, 7) << 6)), rs2Full, 2, 3, OP_STORE); // C.SDSP
    }
  }
  return 0;
}

export function buildRvcTable(): void {
  if (atomic.load<i32>(MACHINE_RVC_READY) != 0) return;
  for (let c: u32 = 0; c < 0x10000; c++) {
    store<u32>(RVC_TABLE + (<usize>c << 2), (c & 3) == 3 ? 0 : expandCompressed(c));
  }
  atomic.store<i32>(MACHINE_RVC_READY, 1);
}
