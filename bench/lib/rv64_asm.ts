// A minimal RV64 encoder for the microbenchmark programs: the handful of instructions they use, each
// checked against the GNU assembler in bench/test/rv64_asm.test.ts. Not a general assembler.

/** Integer register numbers by ABI name. */
export const R = {
  zero: 0, ra: 1, sp: 2, t0: 5, t1: 6, t2: 7, s0: 8, s1: 9, a0: 10, a1: 11, a2: 12, a3: 13, a4: 14, a5: 15,
  t3: 28, t4: 29, t5: 30, t6: 31,
} as const;
export type Reg = (typeof R)[keyof typeof R];

export class EncodingError extends Error {
  constructor(readonly instruction: string, readonly reason: string) {
    super(`${instruction}: ${reason}`);
    this.name = 'EncodingError';
  }
}

function checkSigned(instruction: string, value: number, bits: number, align = 1): void {
  const limit = 2 ** (bits - 1);
  if (!Number.isInteger(value) || value < -limit || value >= limit || value % align !== 0) {
    throw new EncodingError(instruction, `immediate ${value} does not fit ${bits} signed bits (multiple of ${align})`);
  }
}

const rType = (f7: number, rs2: Reg, rs1: Reg, f3: number, rd: Reg, op: number): number =>
  ((f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;

function iType(name: string, imm: number, rs1: Reg, f3: number, rd: Reg, op: number): number {
  checkSigned(name, imm, 12);
  return (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
}

function sType(name: string, imm: number, rs2: Reg, rs1: Reg, f3: number): number {
  checkSigned(name, imm, 12);
  return ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | 0x23) >>> 0;
}

function bType(name: string, offset: number, rs2: Reg, rs1: Reg, f3: number): number {
  checkSigned(name, offset, 13, 2);
  const bit12 = (offset >> 12) & 1;
  const bits10to5 = (offset >> 5) & 0x3f;
  const bits4to1 = (offset >> 1) & 0xf;
  const bit11 = (offset >> 11) & 1;
  return ((bit12 << 31) | (bits10to5 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (bits4to1 << 8) | (bit11 << 7) | 0x63) >>> 0;
}

export const add = (rd: Reg, rs1: Reg, rs2: Reg): number => rType(0, rs2, rs1, 0, rd, 0x33);
export const and = (rd: Reg, rs1: Reg, rs2: Reg): number => rType(0, rs2, rs1, 7, rd, 0x33);
export const xor = (rd: Reg, rs1: Reg, rs2: Reg): number => rType(0, rs2, rs1, 4, rd, 0x33);
export const addi = (rd: Reg, rs1: Reg, imm: number): number => iType('addi', imm, rs1, 0, rd, 0x13);
export const ld = (rd: Reg, rs1: Reg, imm: number): number => iType('ld', imm, rs1, 3, rd, 0x03);
export const lw = (rd: Reg, rs1: Reg, imm: number): number => iType('lw', imm, rs1, 2, rd, 0x03);
export const sd = (rs2: Reg, rs1: Reg, imm: number): number => sType('sd', imm, rs2, rs1, 3);
export const sw = (rs2: Reg, rs1: Reg, imm: number): number => sType('sw', imm, rs2, rs1, 2);
export const jalr = (rd: Reg, rs1: Reg, imm: number): number => iType('jalr', imm, rs1, 0, rd, 0x67);
export const bne = (rs1: Reg, rs2: Reg, offset: number): number => bType('bne', offset, rs2, rs1, 1);
export const beq = (rs1: Reg, rs2: Reg, offset: number): number => bType('beq', offset, rs2, rs1, 0);

export function jal(rd: Reg, offset: number): number {
  checkSigned('jal', offset, 21, 2);
  const bit20 = (offset >> 20) & 1;
  const bits10to1 = (offset >> 1) & 0x3ff;
  const bit11 = (offset >> 11) & 1;
  const bits19to12 = (offset >> 12) & 0xff;
  return ((bit20 << 31) | (bits10to1 << 21) | (bit11 << 20) | (bits19to12 << 12) | (rd << 7) | 0x6f) >>> 0;
}

/** c.addi rd, imm (rd != 0, imm in -32..31). */
export function cAddi(rd: Reg, imm: number): number {
  checkSigned('c.addi', imm, 6);
  return (((imm >> 5) & 1) << 12) | (rd << 7) | ((imm & 0x1f) << 2) | 0x1;
}

/** c.bnez rs1', offset (rs1' one of s0, s1, a0..a5). */
export function cBnez(rs1: Reg, offset: number): number {
  if (rs1 < 8 || rs1 > 15) throw new EncodingError('c.bnez', `x${rs1} is not one of x8..x15`);
  checkSigned('c.bnez', offset, 9, 2);
  const o = offset & 0x1ff;
  const high = (((o >> 8) & 1) << 2) | ((o >> 3) & 3); // offset[8|4:3] in bits 12:10
  const low = (((o >> 6) & 3) << 3) | (((o >> 1) & 3) << 1) | ((o >> 5) & 1); // offset[7:6|2:1|5] in bits 6:2
  return (0b111 << 13) | (high << 10) | ((rs1 - 8) << 7) | (low << 2) | 0x1;
}

/**
 * Machine code laid out at increasing offsets; `here` is the next instruction's offset so branch
 * targets read as `label - code.here`.
 */
export class CodeBuffer {
  private readonly bytes: number[] = [];

  get here(): number {
    return this.bytes.length;
  }

  emit(...words: number[]): this {
    for (const word of words) {
      for (let i = 0; i < 4; i++) this.bytes.push((word >>> (8 * i)) & 0xff);
    }
    return this;
  }

  emitCompressed(...halves: number[]): this {
    for (const half of halves) this.bytes.push(half & 0xff, (half >>> 8) & 0xff);
    return this;
  }

  toBytes(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}
