// A tiny RV64 assembler for tests that put a few instructions straight into guest RAM.

const r = (n: number) => n & 31;

export const asm = {
  addi: (rd: number, rs1: number, imm: number) => ((imm & 0xfff) << 20) | (r(rs1) << 15) | (r(rd) << 7) | 0x13,
  lui: (rd: number, imm20: number) => ((imm20 & 0xfffff) << 12) | (r(rd) << 7) | 0x37,
  ld: (rd: number, rs1: number, imm: number) => ((imm & 0xfff) << 20) | (r(rs1) << 15) | (3 << 12) | (r(rd) << 7) | 0x03,
  lw: (rd: number, rs1: number, imm: number) => ((imm & 0xfff) << 20) | (r(rs1) << 15) | (2 << 12) | (r(rd) << 7) | 0x03,
  lb: (rd: number, rs1: number, imm: number) => ((imm & 0xfff) << 20) | (r(rs1) << 15) | (0 << 12) | (r(rd) << 7) | 0x03,
  sd: (rs2: number, rs1: number, imm: number) =>
    (((imm >> 5) & 0x7f) << 25) | (r(rs2) << 20) | (r(rs1) << 15) | (3 << 12) | ((imm & 31) << 7) | 0x23,
  sw: (rs2: number, rs1: number, imm: number) =>
    (((imm >> 5) & 0x7f) << 25) | (r(rs2) << 20) | (r(rs1) << 15) | (2 << 12) | ((imm & 31) << 7) | 0x23,
  slli: (rd: number, rs1: number, sh: number) => ((sh & 63) << 20) | (r(rs1) << 15) | (1 << 12) | (r(rd) << 7) | 0x13,
  add: (rd: number, rs1: number, rs2: number) => (r(rs2) << 20) | (r(rs1) << 15) | (r(rd) << 7) | 0x33,
  jal: (rd: number, offset: number) =>
    (((offset >> 20) & 1) << 31) | (((offset >> 1) & 0x3ff) << 21) | (((offset >> 11) & 1) << 20) |
    (((offset >> 12) & 0xff) << 12) | (r(rd) << 7) | 0x6f,
  bne: (rs1: number, rs2: number, offset: number) =>
    (((offset >> 12) & 1) << 31) | (((offset >> 5) & 0x3f) << 25) | (r(rs2) << 20) | (r(rs1) << 15) | (1 << 12) |
    (((offset >> 1) & 0xf) << 8) | (((offset >> 11) & 1) << 7) | 0x63,
  lbu: (rd: number, rs1: number, imm: number) => ((imm & 0xfff) << 20) | (r(rs1) << 15) | (4 << 12) | (r(rd) << 7) | 0x03,
  sb: (rs2: number, rs1: number, imm: number) =>
    (((imm >> 5) & 0x7f) << 25) | (r(rs2) << 20) | (r(rs1) << 15) | ((imm & 31) << 7) | 0x23,
  andi: (rd: number, rs1: number, imm: number) => ((imm & 0xfff) << 20) | (r(rs1) << 15) | (7 << 12) | (r(rd) << 7) | 0x13,
  beq: (rs1: number, rs2: number, offset: number) =>
    (((offset >> 12) & 1) << 31) | (((offset >> 5) & 0x3f) << 25) | (r(rs2) << 20) | (r(rs1) << 15) |
    (((offset >> 1) & 0xf) << 8) | (((offset >> 11) & 1) << 7) | 0x63,
  jalr: (rd: number, rs1: number, imm: number) => ((imm & 0xfff) << 20) | (r(rs1) << 15) | (r(rd) << 7) | 0x67,
  auipc: (rd: number, imm20: number) => ((imm20 & 0xfffff) << 12) | (r(rd) << 7) | 0x17,
  csrrw: (rd: number, csr: number, rs1: number) => (csr << 20) | (r(rs1) << 15) | (1 << 12) | (r(rd) << 7) | 0x73,
  csrrs: (rd: number, csr: number, rs1: number) => (csr << 20) | (r(rs1) << 15) | (2 << 12) | (r(rd) << 7) | 0x73,
  ecall: () => 0x00000073,
  ebreak: () => 0x00100073,
  wfi: () => 0x10500073,
  mret: () => 0x30200073,
};

/** Little-endian bytes of 32-bit instruction words. */
export function program(words: number[]): Uint8Array {
  const out = new Uint8Array(words.length * 4);
  const view = new DataView(out.buffer);
  words.forEach((w, i) => view.setUint32(i * 4, w >>> 0, true));
  return out;
}

/** Loads a 64-bit constant below 2^31 (lui + addi). */
export function li(rd: number, value: number): number[] {
  const lo = ((value & 0xfff) << 20) >> 20;
  const hi = ((value - lo) >>> 12) & 0xfffff;
  return hi === 0 ? [asm.addi(rd, 0, lo)] : [asm.lui(rd, hi), asm.addi(rd, rd, lo)];
}
