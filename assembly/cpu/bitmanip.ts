// Zba, Zbb, Zbc and Zbs: the bit-manipulation extensions QEMU's rv64 CPU has and its device tree
// advertises, so a kernel or program built for them (Linux >= 6.2 patches in Zbb string functions when
// the ISA string names zbb) runs on both. They share OP, OP-IMM, OP-32 and OP-IMM-32 with the base ISA;
// the interpreter decodes the base encodings inline and sends only the rest here, out of its loop.

/** Set by execBitmanip when `insn` is none of these extensions' instructions (the caller raises illegal instruction). */
export let notBitmanip = false;

/**
 * The result of bit-manipulation instruction `insn` on rs1 = `a`, rs2 = `b` (unused by the immediate
 * forms), or notBitmanip. OP-32/OP-IMM-32 results are sign-extended as the W forms are.
 */
export function execBitmanip(insn: u32, a: u64, b: u64): u64 {
  notBitmanip = false;
  const funct3 = (insn >> 12) & 7;
  switch ((insn >> 2) & 31) {
    case 0x0c: return op(insn >> 25, funct3, a, b);
    case 0x0e: return op32(insn, funct3, a, b);
    case 0x04: return opImm(insn, funct3, a);
    case 0x06: return opImm32(insn, funct3, a);
  }
  return refuse();
}

function refuse(): u64 {
  notBitmanip = true;
  return 0;
}

function op(funct7: u32, funct3: u32, a: u64, b: u64): u64 {
  const bit: u64 = <u64>1 << (b & 63);
  switch (funct7) {
    case 0x05: // Zbc clmul*, Zbb min/max
      switch (funct3) {
        case 1: return clmul(a, b);
        case 2: return clmulr(a, b);
        case 3: return clmulh(a, b);
        case 4: return <i64>a < <i64>b ? a : b; // min
        case 5: return a < b ? a : b; // minu
        case 6: return <i64>a > <i64>b ? a : b; // max
        case 7: return a > b ? a : b; // maxu
      }
      break;
    case 0x10: // Zba sh1add, sh2add, sh3add
      if (funct3 == 2 || funct3 == 4 || funct3 == 6) return (a << (funct3 >> 1)) + b;
      break;
    case 0x20: // Zbb xnor, orn, andn (sub and sra are the base ISA's)
      if (funct3 == 4) return ~(a ^ b);
      if (funct3 == 6) return a | ~b;
      if (funct3 == 7) return a & ~b;
      break;
    case 0x30: // Zbb rol, ror
      if (funct3 == 1) return rotl<u64>(a, b & 63);
      if (funct3 == 5) return rotr<u64>(a, b & 63);
      break;
    case 0x24: // Zbs bclr, bext
      if (funct3 == 1) return a & ~bit;
      if (funct3 == 5) return (a >> (b & 63)) & 1;
      break;
    case 0x34: // Zbs binv
      if (funct3 == 1) return a ^ bit;
      break;
    case 0x14: // Zbs bset
      if (funct3 == 1) return a | bit;
      break;
  }
  return refuse();
}

function op32(insn: u32, funct3: u32, a: u64, b: u64): u64 {
  const funct7 = insn >> 25;
  const low = a & 0xffff_ffff;
  if (funct7 == 0x04) {
    if (funct3 == 0) return low + b; // add.uw
    if (funct3 == 4 && ((insn >> 20) & 31) == 0) return a & 0xffff; // zext.h
  } else if (funct7 == 0x10) {
    if (funct3 == 2 || funct3 == 4 || funct3 == 6) return (low << (funct3 >> 1)) + b; // sh1add.uw, sh2add.uw, sh3add.uw
  } else if (funct7 == 0x30) {
    if (funct3 == 1) return <u64><i64><i32>rotl<u32>(<u32>a, <u32>b & 31); // rolw
    if (funct3 == 5) return <u64><i64><i32>rotr<u32>(<u32>a, <u32>b & 31); // rorw
  }
  return refuse();
}

function opImm(insn: u32, funct3: u32, a: u64): u64 {
  const imm12 = insn >> 20;
  const funct6 = insn >> 26;
  const shamt: u64 = (insn >> 20) & 63;
  const bit: u64 = <u64>1 << shamt;
  if (funct3 == 1) {
    switch (imm12) {
      case 0x600: return clz<u64>(a);
      case 0x601: return ctz<u64>(a);
      case 0x602: return popcnt<u64>(a);
      case 0x604: return <u64><i64><i8>a; // sext.b
      case 0x605: return <u64><i64><i16>a; // sext.h
    }
    if (funct6 == 0x0a) return a | bit; // bseti
    if (funct6 == 0x12) return a & ~bit; // bclri
    if (funct6 == 0x1a) return a ^ bit; // binvi
  } else if (funct3 == 5) {
    if (imm12 == 0x287) return orcB(a);
    if (imm12 == 0x6b8) return bswap<u64>(a); // rev8
    if (funct6 == 0x18) return rotr<u64>(a, shamt); // rori
    if (funct6 == 0x12) return (a >> shamt) & 1; // bexti
  }
  return refuse();
}

function opImm32(insn: u32, funct3: u32, a: u64): u64 {
  const imm12 = insn >> 20;
  const low = <u32>a;
  if (funct3 == 1) {
    switch (imm12) {
      case 0x600: return <u64>clz<u32>(low); // clzw
      case 0x601: return <u64>ctz<u32>(low); // ctzw
      case 0x602: return <u64>popcnt<u32>(low); // cpopw
    }
    if ((insn >> 26) == 0x02) return (a & 0xffff_ffff) << ((insn >> 20) & 63); // slli.uw
  } else if (funct3 == 5 && (insn >> 25) == 0x30) {
    return <u64><i64><i32>rotr<u32>(low, (insn >> 20) & 31); // roriw
  }
  return refuse();
}

/** orc.b: each byte becomes 0xff if any of its bits is set, else stays 0. */
function orcB(a: u64): u64 {
  let result: u64 = 0;
  for (let shift: u64 = 0; shift < 64; shift += 8) {
    if (((a >> shift) & 0xff) != 0) result |= <u64>0xff << shift;
  }
  return result;
}

/** Carry-less product, low 64 bits. */
function clmul(a: u64, b: u64): u64 {
  let result: u64 = 0;
  for (let i: u64 = 0; i < 64; i++) {
    if (((b >> i) & 1) != 0) result ^= a << i;
  }
  return result;
}

/** Carry-less product, high 64 bits. */
function clmulh(a: u64, b: u64): u64 {
  let result: u64 = 0;
  for (let i: u64 = 1; i < 64; i++) {
    if (((b >> i) & 1) != 0) result ^= a >> (64 - i);
  }
  return result;
}

/** Carry-less product, bits 126..63 (clmulr). */
function clmulr(a: u64, b: u64): u64 {
  let result: u64 = 0;
  for (let i: u64 = 0; i < 64; i++) {
    if (((b >> i) & 1) != 0) result ^= a >> (63 - i);
  }
  return result;
}
