// IEEE 754 binary32 / binary64 arithmetic on raw bit patterns, exactly as RISC-V F and D specify it:
// five rounding modes, the five exception flags, the canonical NaN for every NaN result, tininess
// detected after rounding, saturating float-to-integer conversions.
//
// Every operation has one exact "soft" path working on integer significands (exported as
// addSoft/mulSoft/divSoft/sqrtSoft/fmaSoft, with the fraction width 23 or 52 as the format). The common case
// (round-to-nearest-even, normal results) of add/sub/mul/div/sqrt takes the native WebAssembly
// instruction instead — which is exactly rounded in RNE — and derives the inexact flag from an exact
// integer or error-free check, falling back to the soft path for anything near a boundary.
//
// Values are passed as u64 for both formats (a single sits in the low 32 bits). Exception flags
// accumulate into `fpFlags`; the caller clears and reads it.

export const FLAG_NX: u32 = 1;
export const FLAG_UF: u32 = 2;
export const FLAG_OF: u32 = 4;
export const FLAG_DZ: u32 = 8;
export const FLAG_NV: u32 = 16;

export const RM_RNE: u32 = 0;
export const RM_RTZ: u32 = 1;
export const RM_RDN: u32 = 2;
export const RM_RUP: u32 = 3;
export const RM_RMM: u32 = 4;

export const F32_DEFAULT_NAN: u32 = 0x7fc00000;
export const F64_DEFAULT_NAN: u64 = 0x7ff8000000000000;

export let fpFlags: u32 = 0;

// A format is identified by its fraction width: 23 (binary32) or 52 (binary64).
const S: i32 = 23;
const D: i32 = 52;

@inline function expAllOnes(m: i32): i32 {
  return m == S ? 0xff : 0x7ff;
}
@inline function expBias(m: i32): i32 {
  return m == S ? 127 : 1023;
}
@inline function signPos(m: i32): u64 {
  return m == S ? 31 : 63;
}
@inline function defaultNaN(m: i32): u64 {
  return m == S ? <u64>F32_DEFAULT_NAN : F64_DEFAULT_NAN;
}
@inline function infBits(sign: u32, m: i32): u64 {
  return (<u64>sign << signPos(m)) | (<u64>expAllOnes(m) << m);
}
@inline function zeroBits(sign: u32, m: i32): u64 {
  return <u64>sign << signPos(m);
}
@inline function withSign(bits: u64, sign: u32, m: i32): u64 {
  const p = signPos(m);
  return (bits & ~(<u64>1 << p)) | (<u64>sign << p);
}

// ---- unpacking ----
// A finite nonzero operand unpacks to sign, exponent and a significand normalised so that its leading
// one is bit 62: value = sig × 2^(exp − 62). Bit 63 stays free for carries; the 62 − m bits below
// the fraction give room for round and sticky bits.

const CLASS_ZERO = 0;
const CLASS_FINITE = 1;
const CLASS_INF = 2;
const CLASS_QNAN = 3;
const CLASS_SNAN = 4;

let unpackedSign: u32 = 0;
let unpackedExp: i32 = 0;
let unpackedSig: u64 = 0;

function unpack(bits: u64, m: i32): i32 {
  unpackedSign = <u32>(bits >> signPos(m)) & 1;
  const e = <i32>(bits >> m) & expAllOnes(m);
  const frac = bits & ((<u64>1 << m) - 1);
  if (e == expAllOnes(m)) {
    if (frac == 0) return CLASS_INF;
    return (frac >> (m - 1)) & 1 ? CLASS_QNAN : CLASS_SNAN;
  }
  if (e == 0) {
    if (frac == 0) return CLASS_ZERO;
    const n = <i32>clz(frac) - 1;
    unpackedSig = frac << n;
    unpackedExp = 63 - expBias(m) - m - n;
    return CLASS_FINITE;
  }
  unpackedSig = (frac | (<u64>1 << m)) << (62 - m);
  unpackedExp = e - expBias(m);
  return CLASS_FINITE;
}

@inline function isNaNClass(c: i32): bool {
  return c >= CLASS_QNAN;
}

@inline function shiftRightJam(x: u64, d: i32): u64 {
  if (d == 0) return x;
  if (d < 64) return (x >> d) | <u64>((x << (64 - d)) != 0);
  return <u64>(x != 0);
}

// ---- rounding ----

@inline function roundsUp(sign: u32, odd: bool, rem: u64, half: u64, rm: u32): bool {
  if (rm == RM_RNE) return rem > half || (rem == half && odd);
  if (rm == RM_RTZ) return false;
  if (rm == RM_RDN) return rem != 0 && sign != 0;
  if (rm == RM_RUP) return rem != 0 && sign == 0;
  return rem >= half; // RMM
}

function overflowBits(sign: u32, m: i32, rm: u32): u64 {
  fpFlags |= FLAG_OF | FLAG_NX;
  const toInfinity =
    rm == RM_RNE || rm == RM_RMM || (rm == RM_RDN && sign != 0) || (rm == RM_RUP && sign == 0);
  const inf = infBits(sign, m);
  return toInfinity ? inf : inf - 1;
}

// Rounds sig × 2^(exp − 62) (leading one at bit 62, sticky bits OR-ed into bit 0) to format m.
function roundPack(sign: u32, exp: i32, sig: u64, m: i32, rm: u32): u64 {
  const shift = 62 - m;
  const half: u64 = <u64>1 << (shift - 1);
  const remMask: u64 = (<u64>1 << shift) - 1;
  let be = exp + expBias(m);
  if (be >= 1) {
    let q = sig >> shift;
    const rem = sig & remMask;
    if (roundsUp(sign, (q & 1) != 0, rem, half, rm)) q++;
    if (q >> (m + 1)) {
      q >>= 1;
      be++;
    }
    if (be >= expAllOnes(m)) return overflowBits(sign, m, rm);
    if (rem != 0) fpFlags |= FLAG_NX;
    return (<u64>sign << signPos(m)) | (<u64>be << m) | (q & ((<u64>1 << m) - 1));
  }
  // Tiny before rounding. Tininess after rounding: would rounding to full precision with an
  // unbounded exponent have reached 2^emin?
  let tiny = true;
  if (be == 0) {
    const q0 = sig >> shift;
    const rem0 = sig & remMask;
    if (roundsUp(sign, (q0 & 1) != 0, rem0, half, rm) && ((q0 + 1) >> (m + 1)) != 0) tiny = false;
  }
  const d = 1 - be;
  const s = d >= 64 ? <u64>(sig != 0) : shiftRightJam(sig, d);
  let q = s >> shift;
  const rem = s & remMask;
  if (roundsUp(sign, (q & 1) != 0, rem, half, rm)) q++;
  if (rem != 0) {
    fpFlags |= FLAG_NX;
    if (tiny) fpFlags |= FLAG_UF;
  }
  // A carry out of the subnormal fraction lands in the exponent field: the smallest normal.
  return (<u64>sign << signPos(m)) | q;
}

// ---- 128-bit helpers (results in globals: no allocation) ----

let wideHi: u64 = 0;
let wideLo: u64 = 0;

function mul64x64(a: u64, b: u64): void {
  const a0 = a & 0xffffffff;
  const a1 = a >> 32;
  const b0 = b & 0xffffffff;
  const b1 = b >> 32;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const p11 = a1 * b1;
  const mid = (p00 >> 32) + (p01 & 0xffffffff) + (p10 & 0xffffffff);
  wideLo = (mid << 32) | (p00 & 0xffffffff);
  wideHi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

// (hi, lo) >> d with the shifted-out bits OR-ed into bit 0; result in wideHi/wideLo.
function shiftRightJam128(hi: u64, lo: u64, d: i32): void {
  if (d == 0) {
    wideHi = hi;
    wideLo = lo;
  } else if (d < 64) {
    wideLo = (lo >> d) | (hi << (64 - d)) | <u64>((lo << (64 - d)) != 0);
    wideHi = hi >> d;
  } else if (d < 128) {
    const e = d - 64;
    const lost = e == 0 ? lo : lo | (hi << (64 - e));
    wideLo = (e == 0 ? hi : hi >> e) | <u64>(e == 0 ? lo != 0 : lost != 0);
    wideHi = 0;
  } else {
    wideLo = <u64>((hi | lo) != 0);
    wideHi = 0;
  }
}

// ---- classification helpers on bits ----

@inline function isNaNBits(bits: u64, m: i32): bool {
  const mag = bits & ~(<u64>1 << signPos(m));
  return mag > (<u64>expAllOnes(m) << m);
}
@inline function isSNaNBits(bits: u64, m: i32): bool {
  return isNaNBits(bits, m) && ((bits >> (m - 1)) & 1) == 0;
}

// ---- add / sub ----

export function addSoft(a: u64, b: u64, m: i32, rm: u32, negateB: u32): u64 {
  const ca = unpack(a, m);
  const sa = unpackedSign;
  const ea = unpackedExp;
  const ma = unpackedSig;
  const cb = unpack(b, m);
  const sb = unpackedSign ^ negateB;
  const eb = unpackedExp;
  const mb = unpackedSig;
  if (isNaNClass(ca) || isNaNClass(cb)) {
    if (ca == CLASS_SNAN || cb == CLASS_SNAN) fpFlags |= FLAG_NV;
    return defaultNaN(m);
  }
  if (ca == CLASS_INF) {
    if (cb == CLASS_INF && sa != sb) {
      fpFlags |= FLAG_NV;
      return defaultNaN(m);
    }
    return infBits(sa, m);
  }
  if (cb == CLASS_INF) return infBits(sb, m);
  if (ca == CLASS_ZERO) {
    if (cb == CLASS_ZERO) return zeroBits(sa == sb ? sa : <u32>(rm == RM_RDN), m);
    return withSign(b, sb, m);
  }
  if (cb == CLASS_ZERO) return a;

  let sign = sa;
  let exp = ea;
  let big = ma;
  let small = mb;
  let d = ea - eb;
  if (ea < eb || (ea == eb && ma < mb)) {
    sign = sb;
    exp = eb;
    big = mb;
    small = ma;
    d = eb - ea;
  }
  small = d >= 64 ? <u64>(small != 0) : shiftRightJam(small, d);
  if (sa == sb) {
    let sum = big + small;
    if (sum >> 63) {
      sum = (sum >> 1) | (sum & 1);
      exp++;
    }
    return roundPack(sign, exp, sum, m, rm);
  }
  let diff = big - small;
  if (diff == 0) return zeroBits(<u32>(rm == RM_RDN), m);
  const n = <i32>clz(diff) - 1;
  return roundPack(sign, exp - n, diff << n, m, rm);
}

// ---- mul ----

export function mulSoft(a: u64, b: u64, m: i32, rm: u32): u64 {
  const ca = unpack(a, m);
  const sa = unpackedSign;
  const ea = unpackedExp;
  const ma = unpackedSig;
  const cb = unpack(b, m);
  const sign = sa ^ unpackedSign;
  const eb = unpackedExp;
  const mb = unpackedSig;
  if (isNaNClass(ca) || isNaNClass(cb)) {
    if (ca == CLASS_SNAN || cb == CLASS_SNAN) fpFlags |= FLAG_NV;
    return defaultNaN(m);
  }
  if (ca == CLASS_INF || cb == CLASS_INF) {
    if (ca == CLASS_ZERO || cb == CLASS_ZERO) {
      fpFlags |= FLAG_NV;
      return defaultNaN(m);
    }
    return infBits(sign, m);
  }
  if (ca == CLASS_ZERO || cb == CLASS_ZERO) return zeroBits(sign, m);
  // ma × mb has its leading one at bit 124 or 125 of the 128-bit product.
  mul64x64(ma, mb);
  const hi = wideHi;
  const lo = wideLo;
  if (hi >> 61) {
    return roundPack(sign, ea + eb + 1, (hi << 1) | (lo >> 63) | <u64>((lo << 1) != 0), m, rm);
  }
  return roundPack(sign, ea + eb, (hi << 2) | (lo >> 62) | <u64>((lo << 2) != 0), m, rm);
}

// ---- fused multiply-add: (±a × b) ± c with one rounding ----

export function fmaSoft(a: u64, b: u64, c: u64, m: i32, rm: u32, negateProduct: u32, negateAddend: u32): u64 {
  const ca = unpack(a, m);
  const sa = unpackedSign;
  const ea = unpackedExp;
  const ma = unpackedSig;
  const cb = unpack(b, m);
  const sp = sa ^ unpackedSign ^ negateProduct;
  const eb = unpackedExp;
  const mb = unpackedSig;
  const cc = unpack(c, m);
  const sc = unpackedSign ^ negateAddend;
  const ec = unpackedExp;
  const mc = unpackedSig;
  const infTimesZero =
    (ca == CLASS_INF && cb == CLASS_ZERO) || (ca == CLASS_ZERO && cb == CLASS_INF);
  if (isNaNClass(ca) || isNaNClass(cb) || isNaNClass(cc)) {
    // RISC-V: ∞ × 0 is invalid even when the addend is a quiet NaN.
    if (ca == CLASS_SNAN || cb == CLASS_SNAN || cc == CLASS_SNAN || infTimesZero) fpFlags |= FLAG_NV;
    return defaultNaN(m);
  }
  if (infTimesZero) {
    fpFlags |= FLAG_NV;
    return defaultNaN(m);
  }
  if (ca == CLASS_INF || cb == CLASS_INF) {
    if (cc == CLASS_INF && sc != sp) {
      fpFlags |= FLAG_NV;
      return defaultNaN(m);
    }
    return infBits(sp, m);
  }
  if (cc == CLASS_INF) return infBits(sc, m);
  if (ca == CLASS_ZERO || cb == CLASS_ZERO) {
    if (cc == CLASS_ZERO) return zeroBits(sp == sc ? sp : <u32>(rm == RM_RDN), m);
    return withSign(c, sc, m);
  }

  // Exact product P × 2^(ep − 125), leading one at bit 125.
  mul64x64(ma, mb);
  let pHi = wideHi;
  let pLo = wideLo;
  let ep = ea + eb + 1;
  if ((pHi >> 61) == 0) {
    pHi = (pHi << 1) | (pLo >> 63);
    pLo <<= 1;
    ep--;
  }
  if (cc == CLASS_ZERO) {
    return roundPack(sp, ep, (pHi << 1) | (pLo >> 63) | <u64>((pLo << 1) != 0), m, rm);
  }
  // Addend C × 2^(ec − 125), leading one at bit 125.
  let cHi = mc >> 1;
  let cLo = mc << 63;

  let exp = ep;
  if (ep >= ec) {
    shiftRightJam128(cHi, cLo, ep - ec);
    cHi = wideHi;
    cLo = wideLo;
  } else {
    exp = ec;
    shiftRightJam128(pHi, pLo, ec - ep);
    pHi = wideHi;
    pLo = wideLo;
  }

  let sign = sp;
  let rHi: u64;
  let rLo: u64;
  if (sp == sc) {
    rLo = pLo + cLo;
    rHi = pHi + cHi + <u64>(rLo < pLo);
    if (rHi >> 62) {
      rLo = (rLo >> 1) | (rHi << 63) | (rLo & 1);
      rHi >>= 1;
      exp++;
    }
  } else {
    const productLarger = pHi > cHi || (pHi == cHi && pLo >= cLo);
    if (productLarger) {
      rLo = pLo - cLo;
      rHi = pHi - cHi - <u64>(pLo < cLo);
    } else {
      sign = sc;
      rLo = cLo - pLo;
      rHi = cHi - pHi - <u64>(cLo < pLo);
    }
    if ((rHi | rLo) == 0) return zeroBits(<u32>(rm == RM_RDN), m);
    // Bring the leading one back to bit 125.
    const lz = rHi != 0 ? <i32>clz(rHi) : 64 + <i32>clz(rLo);
    const n = lz - 2;
    if (n > 0) {
      if (n >= 64) {
        rHi = rLo << (n - 64);
        rLo = 0;
      } else {
        rHi = (rHi << n) | (rLo >> (64 - n));
        rLo <<= n;
      }
      exp -= n;
    }
  }
  return roundPack(sign, exp, (rHi << 1) | (rLo >> 63) | <u64>((rLo << 1) != 0), m, rm);
}

// ---- div ----

export function divSoft(a: u64, b: u64, m: i32, rm: u32): u64 {
  const ca = unpack(a, m);
  const sa = unpackedSign;
  const ea = unpackedExp;
  let ma = unpackedSig;
  const cb = unpack(b, m);
  const sign = sa ^ unpackedSign;
  const eb = unpackedExp;
  const mb = unpackedSig;
  if (isNaNClass(ca) || isNaNClass(cb)) {
    if (ca == CLASS_SNAN || cb == CLASS_SNAN) fpFlags |= FLAG_NV;
    return defaultNaN(m);
  }
  if (ca == CLASS_INF) {
    if (cb == CLASS_INF) {
      fpFlags |= FLAG_NV;
      return defaultNaN(m);
    }
    return infBits(sign, m);
  }
  if (cb == CLASS_INF) return zeroBits(sign, m);
  if (cb == CLASS_ZERO) {
    if (ca == CLASS_ZERO) {
      fpFlags |= FLAG_NV;
      return defaultNaN(m);
    }
    fpFlags |= FLAG_DZ;
    return infBits(sign, m);
  }
  if (ca == CLASS_ZERO) return zeroBits(sign, m);
  let exp = ea - eb;
  if (ma < mb) {
    ma <<= 1;
    exp--;
  }
  // Restoring division: m + 3 quotient bits, then the remainder as sticky.
  const bits = m + 3;
  let rem = ma;
  let q: u64 = 0;
  for (let i = 0; i < bits; i++) {
    q <<= 1;
    if (rem >= mb) {
      rem -= mb;
      q |= 1;
    }
    rem <<= 1;
  }
  return roundPack(sign, exp, (q << (63 - bits)) | <u64>(rem != 0), m, rm);
}

// ---- sqrt ----

export function sqrtSoft(a: u64, m: i32, rm: u32): u64 {
  const ca = unpack(a, m);
  const sa = unpackedSign;
  const ea = unpackedExp;
  const ma = unpackedSig;
  if (isNaNClass(ca)) {
    if (ca == CLASS_SNAN) fpFlags |= FLAG_NV;
    return defaultNaN(m);
  }
  if (ca == CLASS_ZERO) return a;
  if (sa != 0) {
    fpFlags |= FLAG_NV;
    return defaultNaN(m);
  }
  if (ca == CLASS_INF) return a;
  // radicand N with value N × 2^(2k); the root of N is produced two input bits per step.
  const n: u64 = ea & 1 ? ma << 1 : ma;
  const steps = m + 4;
  let rem: u64 = 0;
  let root: u64 = 0;
  for (let i = 0; i < steps; i++) {
    const pair: u64 = i < 32 ? (n >> (62 - 2 * i)) & 3 : 0;
    rem = (rem << 2) | pair;
    const trial = (root << 2) | 1;
    root <<= 1;
    if (rem >= trial) {
      rem -= trial;
      root |= 1;
    }
  }
  return roundPack(0, ea >> 1, (root << (63 - steps)) | <u64>(rem != 0), m, rm);
}

// ---- public arithmetic: native fast path in RNE, soft path otherwise ----

const F64_FRAC: u64 = 0x000fffffffffffff;
const F64_HIDDEN: u64 = 0x0010000000000000;

@inline function f64Exp(bits: u64): u32 {
  return <u32>(bits >> 52) & 0x7ff;
}
@inline function f32Exp(bits: u32): u32 {
  return (bits >> 23) & 0xff;
}
// The odd integer o such that |x| = o × 2^k (x finite, nonzero).
@inline function f64OddSignificand(bits: u64): u64 {
  let sig = bits & F64_FRAC;
  if (f64Exp(bits) != 0) sig |= F64_HIDDEN;
  return sig >> ctz(sig);
}

export function f64_add(a: u64, b: u64, rm: u32): u64 {
  if (rm == RM_RNE) {
    const x = reinterpret<f64>(a);
    const y = reinterpret<f64>(b);
    const s = x + y;
    if (f64Exp(reinterpret<u64>(s)) != 0x7ff) {
      // TwoSum: s + err == x + y exactly (sums that land in the subnormal range are exact too).
      const bv = s - x;
      const err = (x - (s - bv)) + (y - bv);
      if (err == 0) return reinterpret<u64>(s);
      if (err - err == 0) {
        fpFlags |= FLAG_NX;
        return reinterpret<u64>(s);
      }
    }
  }
  return addSoft(a, b, D, rm, 0);
}

export function f64_sub(a: u64, b: u64, rm: u32): u64 {
  return f64_add(a, b ^ (<u64>1 << 63), rm);
}

export function f64_mul(a: u64, b: u64, rm: u32): u64 {
  if (rm == RM_RNE) {
    const p = reinterpret<f64>(a) * reinterpret<f64>(b);
    const pb = reinterpret<u64>(p);
    const e = f64Exp(pb);
    if (e >= 2 && e <= 0x7fe) {
      // Normal, not near underflow or overflow: exact iff the odd significands' product fits 53 bits.
      const oa = f64OddSignificand(a);
      const ob = f64OddSignificand(b);
      const bits = 128 - <i32>clz(oa) - <i32>clz(ob);
      if (bits > 54 || (oa * ob) >> 53 != 0) fpFlags |= FLAG_NX;
      return pb;
    }
    if ((pb << 1) == 0 && ((a << 1) == 0 || (b << 1) == 0)) return pb;
  }
  return mulSoft(a, b, D, rm);
}

export function f64_div(a: u64, b: u64, rm: u32): u64 {
  if (rm == RM_RNE) {
    const q = reinterpret<f64>(a) / reinterpret<f64>(b);
    const qb = reinterpret<u64>(q);
    const e = f64Exp(qb);
    if (e >= 2 && e <= 0x7fe) {
      // Normal quotient: exact iff the divisor's odd significand divides the dividend's.
      if (f64OddSignificand(a) % f64OddSignificand(b) != 0) fpFlags |= FLAG_NX;
      return qb;
    }
    if ((a << 1) == 0 && (qb << 1) == 0) return qb;
  }
  return divSoft(a, b, D, rm);
}

export function f64_sqrt(a: u64, rm: u32): u64 {
  if (rm == RM_RNE && (a >> 63) == 0 && f64Exp(a) != 0x7ff && a != 0) {
    const r = reinterpret<u64>(Math.sqrt(reinterpret<f64>(a)));
    const or = f64OddSignificand(r);
    if (or >= (<u64>1 << 27) || or * or != f64OddSignificand(a)) fpFlags |= FLAG_NX;
    return r;
  }
  return sqrtSoft(a, D, rm);
}

export function f32_add(a: u32, b: u32, rm: u32): u32 {
  if (rm == RM_RNE) {
    const x = reinterpret<f32>(a);
    const y = reinterpret<f32>(b);
    const s = x + y;
    if (f32Exp(reinterpret<u32>(s)) != 0xff) {
      const bv = s - x;
      const err = (x - (s - bv)) + (y - bv);
      if (err == 0) return reinterpret<u32>(s);
      if (err - err == 0) {
        fpFlags |= FLAG_NX;
        return reinterpret<u32>(s);
      }
    }
  }
  return <u32>addSoft(a, b, S, rm, 0);
}

export function f32_sub(a: u32, b: u32, rm: u32): u32 {
  return f32_add(a, b ^ 0x80000000, rm);
}

export function f32_mul(a: u32, b: u32, rm: u32): u32 {
  if (rm == RM_RNE) {
    const x = reinterpret<f32>(a);
    const y = reinterpret<f32>(b);
    const p = x * y;
    const pb = reinterpret<u32>(p);
    const e = f32Exp(pb);
    if (e >= 2 && e <= 0xfe) {
      // The binary64 product of two singles is exact.
      if (<f64>p != <f64>x * <f64>y) fpFlags |= FLAG_NX;
      return pb;
    }
    if ((pb << 1) == 0 && ((a << 1) == 0 || (b << 1) == 0)) return pb;
  }
  return <u32>mulSoft(a, b, S, rm);
}

export function f32_div(a: u32, b: u32, rm: u32): u32 {
  if (rm == RM_RNE) {
    const x = reinterpret<f32>(a);
    const y = reinterpret<f32>(b);
    const q = x / y;
    const qb = reinterpret<u32>(q);
    const e = f32Exp(qb);
    if (e >= 2 && e <= 0xfe) {
      if (<f64>q * <f64>y != <f64>x) fpFlags |= FLAG_NX;
      return qb;
    }
    if ((a << 1) == 0 && (qb << 1) == 0) return qb;
  }
  return <u32>divSoft(a, b, S, rm);
}

export function f32_sqrt(a: u32, rm: u32): u32 {
  if (rm == RM_RNE && (a >> 31) == 0 && f32Exp(a) != 0xff && a != 0) {
    const r = Mathf.sqrt(reinterpret<f32>(a));
    if (<f64>r * <f64>r != <f64>reinterpret<f32>(a)) fpFlags |= FLAG_NX;
    return reinterpret<u32>(r);
  }
  return <u32>sqrtSoft(a, S, rm);
}

// ---- fused multiply-add fast paths (RNE) ----
// Both rest on rounding to odd: if RO(x) keeps at least two more bits than the target precision,
// RN(RO(x)) = RN(x) (Boldo & Melquiond). RO(s + err) is emulated from a nearest-rounded sum s and its
// exact error: when err ≠ 0 and s is even, step s one ulp toward err.

let fastPathTaken: bool = false;

@inline function twoSumError(x: f64, y: f64, sum: f64): f64 {
  const bv = sum - x;
  return (x - (sum - bv)) + (y - bv);
}

@inline function roundToOddBits(sum: f64, err: f64): u64 {
  let bits = reinterpret<u64>(sum);
  if (err != 0 && (bits & 1) == 0) {
    bits = (bits >> 63) == (reinterpret<u64>(err) >> 63) ? bits + 1 : bits - 1;
  }
  return bits;
}

// Singles: the binary64 product is exact, the binary64 sum is made round-to-odd (53 ≥ 24 + 2), and
// the narrowing rounds once. Every finite operand qualifies.
function f32FmaFast(a: u32, b: u32, c: u32): u32 {
  fastPathTaken = false;
  if (f32Exp(a) == 0xff || f32Exp(b) == 0xff || f32Exp(c) == 0xff) return 0;
  fastPathTaken = true;
  const p = <f64>reinterpret<f32>(a) * <f64>reinterpret<f32>(b);
  const z = <f64>reinterpret<f32>(c);
  const sum = p + z;
  const err = twoSumError(p, z, sum);
  const odd = roundToOddBits(sum, err);
  const r = <f32>reinterpret<f64>(odd);
  const rb = reinterpret<u32>(r);
  const e = f32Exp(rb);
  if (e < 2 || e == 0xff) return f64_to_f32(odd, RM_RNE); // zero, tiny or overflowing: exact flags
  if (err != 0 || <f64>r != reinterpret<f64>(odd)) fpFlags |= FLAG_NX;
  return rb;
}

const VELTKAMP_SPLITTER: f64 = 134217729.0; // 2^27 + 1
// Biased-exponent windows in which the error-free transformations below neither overflow nor
// underflow: |a|, |b| within 2^±400, |c| within 2^±800. Zeros, subnormals, infinities and NaNs fall
// outside and take the soft path.
const FMA_FACTOR_EXP_MIN: u32 = 1023 - 400;
const FMA_FACTOR_EXP_SPAN: u32 = 800;
const FMA_ADDEND_EXP_MIN: u32 = 1023 - 800;
const FMA_ADDEND_EXP_SPAN: u32 = 1600;

// Doubles: Dekker's exact product uh + ul = a × b, TwoSum th + tl = c + uh, v = RO(tl + ul), result
// RN(th + v). Inexact iff tl + ul was inexact (then the exact sum is not a double: see below) or the
// final addition was.
function f64FmaFast(a: u64, b: u64, c: u64): u64 {
  fastPathTaken = false;
  if (
    f64Exp(a) - FMA_FACTOR_EXP_MIN > FMA_FACTOR_EXP_SPAN ||
    f64Exp(b) - FMA_FACTOR_EXP_MIN > FMA_FACTOR_EXP_SPAN ||
    f64Exp(c) - FMA_ADDEND_EXP_MIN > FMA_ADDEND_EXP_SPAN
  ) {
    return 0;
  }
  const x = reinterpret<f64>(a);
  const y = reinterpret<f64>(b);
  const z = reinterpret<f64>(c);
  const uh = x * y;
  const xs = VELTKAMP_SPLITTER * x;
  const xh = xs - (xs - x);
  const xl = x - xh;
  const ys = VELTKAMP_SPLITTER * y;
  const yh = ys - (ys - y);
  const yl = y - yh;
  const ul = ((xh * yh - uh) + xh * yl + xl * yh) + xl * yl;
  const th = z + uh;
  const tl = twoSumError(z, uh, th);
  const low = tl + ul;
  const lowErr = twoSumError(tl, ul, low);
  const v = reinterpret<f64>(roundToOddBits(low, lowErr));
  const r = th + v;
  const rb = reinterpret<u64>(r);
  // Zero and tiny results need the soft path's signed-zero and underflow rules.
  if (f64Exp(rb) < 64) return 0;
  fastPathTaken = true;
  // lowErr ≠ 0 means c + uh did not cancel (else it is exact and tl = 0), so |tl + ul| is within a
  // few ulps of |th|; were the exact sum a double, Sterbenz would make tl + ul exact. Hence inexact.
  if (lowErr != 0 || twoSumError(th, v, r) != 0) fpFlags |= FLAG_NX;
  return rb;
}

// Fused multiply-add family, named as the RISC-V instructions:
//   fmadd = a×b + c, fmsub = a×b − c, fnmsub = −(a×b) + c, fnmadd = −(a×b) − c.
// Negating an operand's sign bit is exact, and NaNs never reach the fast paths.
@inline function f64Fma(a: u64, b: u64, c: u64, rm: u32, negateProduct: u32, negateAddend: u32): u64 {
  if (rm == RM_RNE) {
    const r = f64FmaFast(
      a ^ (<u64>negateProduct << 63),
      b,
      c ^ (<u64>negateAddend << 63),
    );
    if (fastPathTaken) return r;
  }
  return fmaSoft(a, b, c, D, rm, negateProduct, negateAddend);
}

@inline function f32Fma(a: u32, b: u32, c: u32, rm: u32, negateProduct: u32, negateAddend: u32): u32 {
  if (rm == RM_RNE) {
    const r = f32FmaFast(a ^ (negateProduct << 31), b, c ^ (negateAddend << 31));
    if (fastPathTaken) return r;
  }
  return <u32>fmaSoft(a, b, c, S, rm, negateProduct, negateAddend);
}

export function f64_fmadd(a: u64, b: u64, c: u64, rm: u32): u64 {
  return f64Fma(a, b, c, rm, 0, 0);
}
export function f64_fmsub(a: u64, b: u64, c: u64, rm: u32): u64 {
  return f64Fma(a, b, c, rm, 0, 1);
}
export function f64_fnmsub(a: u64, b: u64, c: u64, rm: u32): u64 {
  return f64Fma(a, b, c, rm, 1, 0);
}
export function f64_fnmadd(a: u64, b: u64, c: u64, rm: u32): u64 {
  return f64Fma(a, b, c, rm, 1, 1);
}
export function f32_fmadd(a: u32, b: u32, c: u32, rm: u32): u32 {
  return f32Fma(a, b, c, rm, 0, 0);
}
export function f32_fmsub(a: u32, b: u32, c: u32, rm: u32): u32 {
  return f32Fma(a, b, c, rm, 0, 1);
}
export function f32_fnmsub(a: u32, b: u32, c: u32, rm: u32): u32 {
  return f32Fma(a, b, c, rm, 1, 0);
}
export function f32_fnmadd(a: u32, b: u32, c: u32, rm: u32): u32 {
  return f32Fma(a, b, c, rm, 1, 1);
}

// ---- min / max (IEEE 754-2019 minimumNumber / maximumNumber, −0 < +0) ----

function minMax(a: u64, b: u64, m: i32, wantMax: bool): u64 {
  const aNaN = isNaNBits(a, m);
  const bNaN = isNaNBits(b, m);
  if (isSNaNBits(a, m) || isSNaNBits(b, m)) fpFlags |= FLAG_NV;
  if (aNaN && bNaN) return defaultNaN(m);
  if (aNaN) return b;
  if (bNaN) return a;
  const sp = signPos(m);
  const sa = a >> sp;
  const sb = b >> sp;
  let aLess: bool;
  if (sa != sb) aLess = sa != 0;
  else aLess = sa != 0 ? a > b : a < b;
  if (a == b) return a;
  return aLess != wantMax ? a : b;
}

export function f64_min(a: u64, b: u64): u64 {
  return minMax(a, b, D, false);
}
export function f64_max(a: u64, b: u64): u64 {
  return minMax(a, b, D, true);
}
export function f32_min(a: u32, b: u32): u32 {
  return <u32>minMax(a, b, S, false);
}
export function f32_max(a: u32, b: u32): u32 {
  return <u32>minMax(a, b, S, true);
}

// ---- comparisons: feq is quiet (NV only for sNaN), flt/fle signal on any NaN ----

export function f64_eq(a: u64, b: u64): u32 {
  if (isSNaNBits(a, D) || isSNaNBits(b, D)) fpFlags |= FLAG_NV;
  return <u32>(reinterpret<f64>(a) == reinterpret<f64>(b));
}
export function f64_lt(a: u64, b: u64): u32 {
  if (isNaNBits(a, D) || isNaNBits(b, D)) fpFlags |= FLAG_NV;
  return <u32>(reinterpret<f64>(a) < reinterpret<f64>(b));
}
export function f64_le(a: u64, b: u64): u32 {
  if (isNaNBits(a, D) || isNaNBits(b, D)) fpFlags |= FLAG_NV;
  return <u32>(reinterpret<f64>(a) <= reinterpret<f64>(b));
}
export function f32_eq(a: u32, b: u32): u32 {
  if (isSNaNBits(a, S) || isSNaNBits(b, S)) fpFlags |= FLAG_NV;
  return <u32>(reinterpret<f32>(a) == reinterpret<f32>(b));
}
export function f32_lt(a: u32, b: u32): u32 {
  if (isNaNBits(a, S) || isNaNBits(b, S)) fpFlags |= FLAG_NV;
  return <u32>(reinterpret<f32>(a) < reinterpret<f32>(b));
}
export function f32_le(a: u32, b: u32): u32 {
  if (isNaNBits(a, S) || isNaNBits(b, S)) fpFlags |= FLAG_NV;
  return <u32>(reinterpret<f32>(a) <= reinterpret<f32>(b));
}

// ---- classify: the fclass 10-bit mask ----

function classify(bits: u64, m: i32): u32 {
  const c = unpack(bits, m);
  const neg = unpackedSign != 0;
  if (c == CLASS_INF) return neg ? 1 << 0 : 1 << 7;
  if (c == CLASS_ZERO) return neg ? 1 << 3 : 1 << 4;
  if (c == CLASS_SNAN) return 1 << 8;
  if (c == CLASS_QNAN) return 1 << 9;
  const subnormal = ((bits >> m) & <u64>expAllOnes(m)) == 0;
  if (subnormal) return neg ? 1 << 2 : 1 << 5;
  return neg ? 1 << 1 : 1 << 6;
}

export function f64_classify(a: u64): u32 {
  return classify(a, D);
}
export function f32_classify(a: u32): u32 {
  return classify(a, S);
}

// ---- format conversions ----

export function f32_to_f64(a: u32): u64 {
  if (!isNaNBits(a, S)) return reinterpret<u64>(<f64>reinterpret<f32>(a));
  if (isSNaNBits(a, S)) fpFlags |= FLAG_NV;
  return F64_DEFAULT_NAN;
}

export function f64_to_f32(a: u64, rm: u32): u32 {
  const c = unpack(a, D);
  const sign = unpackedSign;
  if (isNaNClass(c)) {
    if (c == CLASS_SNAN) fpFlags |= FLAG_NV;
    return F32_DEFAULT_NAN;
  }
  if (c == CLASS_INF) return <u32>infBits(sign, S);
  if (c == CLASS_ZERO) return <u32>zeroBits(sign, S);
  return <u32>roundPack(sign, unpackedExp, unpackedSig, S, rm);
}

// ---- integer → float ----

function fromMagnitude(sign: u32, mag: u64, m: i32, rm: u32): u64 {
  if (mag == 0) return 0;
  if (mag >> 63) return roundPack(sign, 63, (mag >> 1) | (mag & 1), m, rm);
  const n = <i32>clz(mag) - 1;
  return roundPack(sign, 62 - n, mag << n, m, rm);
}

export function i32_to_f64(v: i32, rm: u32): u64 {
  return fromMagnitude(<u32>(v < 0), <u64>(v < 0 ? -<i64>v : <i64>v), D, rm);
}
export function u32_to_f64(v: u32, rm: u32): u64 {
  return fromMagnitude(0, <u64>v, D, rm);
}
export function i64_to_f64(v: i64, rm: u32): u64 {
  return fromMagnitude(<u32>(v < 0), v < 0 ? <u64>0 - <u64>v : <u64>v, D, rm);
}
export function u64_to_f64(v: u64, rm: u32): u64 {
  return fromMagnitude(0, v, D, rm);
}
export function i32_to_f32(v: i32, rm: u32): u32 {
  return <u32>fromMagnitude(<u32>(v < 0), <u64>(v < 0 ? -<i64>v : <i64>v), S, rm);
}
export function u32_to_f32(v: u32, rm: u32): u32 {
  return <u32>fromMagnitude(0, <u64>v, S, rm);
}
export function i64_to_f32(v: i64, rm: u32): u32 {
  return <u32>fromMagnitude(<u32>(v < 0), v < 0 ? <u64>0 - <u64>v : <u64>v, S, rm);
}
export function u64_to_f32(v: u64, rm: u32): u32 {
  return <u32>fromMagnitude(0, v, S, rm);
}

// ---- float → integer, saturating as RISC-V specifies ----
// Rounds |value| to an integer magnitude; sets `roundedInexact`, and `magnitudeTooLarge` when it
// does not fit 64 bits (out of range for every destination).

let roundedInexact: bool = false;
let magnitudeTooLarge: bool = false;
let convertSign: u32 = 0;
const CONVERT_NAN = 2;
const CONVERT_INF = 1;
const CONVERT_FINITE = 0;
let convertKind: i32 = 0;

function roundToIntegerMagnitude(bits: u64, m: i32, rm: u32): u64 {
  const c = unpack(bits, m);
  convertSign = unpackedSign;
  roundedInexact = false;
  magnitudeTooLarge = false;
  if (isNaNClass(c)) {
    convertKind = CONVERT_NAN;
    return 0;
  }
  if (c == CLASS_INF) {
    convertKind = CONVERT_INF;
    return 0;
  }
  convertKind = CONVERT_FINITE;
  if (c == CLASS_ZERO) return 0;
  const e = unpackedExp;
  const sig = unpackedSig;
  if (e > 63) {
    magnitudeTooLarge = true;
    return 0;
  }
  if (e >= 62) return sig << (e - 62);
  // sig × 2^(e − 62): integer part sig >> s, fraction as a 64-bit binary fraction.
  const s = 62 - e;
  let q: u64;
  let frac: u64;
  if (s < 64) {
    q = sig >> s;
    frac = sig << (64 - s);
  } else {
    q = 0;
    frac = s == 64 ? sig : shiftRightJam(sig, s - 64 > 63 ? 63 : s - 64);
  }
  roundedInexact = frac != 0;
  if (roundsUp(convertSign, (q & 1) != 0, frac, <u64>1 << 63, rm)) q++;
  return q;
}

// Converts to a signed integer of `width` bits (32 or 64), saturating; 32-bit results sign-extended.
function toSigned(bits: u64, m: i32, rm: u32, width: i32): i64 {
  const q = roundToIntegerMagnitude(bits, m, rm);
  const maxPos: u64 = (<u64>1 << (width - 1)) - 1;
  if (convertKind == CONVERT_NAN) {
    fpFlags |= FLAG_NV;
    return <i64>maxPos;
  }
  const neg = convertSign != 0;
  if (convertKind == CONVERT_INF || magnitudeTooLarge || (neg ? q > maxPos + 1 : q > maxPos)) {
    fpFlags |= FLAG_NV;
    return neg ? -<i64>maxPos - 1 : <i64>maxPos;
  }
  if (roundedInexact) fpFlags |= FLAG_NX;
  return neg ? -<i64>q : <i64>q;
}

function toUnsigned(bits: u64, m: i32, rm: u32, width: i32): u64 {
  const q = roundToIntegerMagnitude(bits, m, rm);
  const max: u64 = width == 64 ? <u64>-1 : 0xffffffff;
  if (convertKind == CONVERT_NAN) {
    fpFlags |= FLAG_NV;
    return max;
  }
  const neg = convertSign != 0;
  if (convertKind == CONVERT_INF) {
    fpFlags |= FLAG_NV;
    return neg ? 0 : max;
  }
  if (magnitudeTooLarge || (neg && q != 0) || q > max) {
    fpFlags |= FLAG_NV;
    return neg ? 0 : max;
  }
  if (roundedInexact) fpFlags |= FLAG_NX;
  return q;
}

export function f64_to_i32(a: u64, rm: u32): i32 {
  return <i32>toSigned(a, D, rm, 32);
}
export function f64_to_u32(a: u64, rm: u32): i32 {
  return <i32>toUnsigned(a, D, rm, 32);
}
export function f64_to_i64(a: u64, rm: u32): i64 {
  return toSigned(a, D, rm, 64);
}
export function f64_to_u64(a: u64, rm: u32): u64 {
  return toUnsigned(a, D, rm, 64);
}
export function f32_to_i32(a: u32, rm: u32): i32 {
  return <i32>toSigned(a, S, rm, 32);
}
export function f32_to_u32(a: u32, rm: u32): i32 {
  return <i32>toUnsigned(a, S, rm, 32);
}
export function f32_to_i64(a: u32, rm: u32): i64 {
  return toSigned(a, S, rm, 64);
}
export function f32_to_u64(a: u32, rm: u32): u64 {
  return toUnsigned(a, S, rm, 64);
}
