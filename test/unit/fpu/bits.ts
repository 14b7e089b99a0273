// Bit-pattern helpers for the FP tests.
const scratch = new DataView(new ArrayBuffer(8));

/** binary64 bits of a JS number. */
export function d(x: number): bigint {
  scratch.setFloat64(0, x);
  return scratch.getBigUint64(0);
}
/** JS number of binary64 bits. */
export function dv(bits: bigint): number {
  scratch.setBigUint64(0, BigInt.asUintN(64, bits));
  return scratch.getFloat64(0);
}
/** binary32 bits of a JS number (rounded to single first). */
export function s(x: number): number {
  scratch.setFloat32(0, x);
  return scratch.getUint32(0);
}
/** JS number of binary32 bits. */
export function sv(bits: number): number {
  scratch.setUint32(0, bits >>> 0);
  return scratch.getFloat32(0);
}
export const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);
export const u32 = (v: number): number => v >>> 0;
export const hex = (v: bigint | number): string => `0x${(typeof v === 'number' ? v >>> 0 : u64(v)).toString(16)}`;

export const NX = 1;
export const UF = 2;
export const OF = 4;
export const DZ = 8;
export const NV = 16;
export const RNE = 0;
export const RTZ = 1;
export const RDN = 2;
export const RUP = 3;
export const RMM = 4;
export const ROUNDING_MODES = [RNE, RTZ, RDN, RUP, RMM] as const;

export const D_QNAN = 0x7ff8000000000000n;
export const D_SNAN = 0x7ff0000000000001n;
export const D_INF = 0x7ff0000000000000n;
export const D_NEG_INF = 0xfff0000000000000n;
export const D_MAX = 0x7fefffffffffffffn;
export const D_NEG_MAX = 0xffefffffffffffffn;
export const D_MIN_NORMAL = 0x0010000000000000n;
export const D_MIN_SUB = 0x0000000000000001n;
export const D_MAX_SUB = 0x000fffffffffffffn;
export const D_NEG_ZERO = 0x8000000000000000n;
export const D_ONE = 0x3ff0000000000000n;

export const S_QNAN = 0x7fc00000;
export const S_SNAN = 0x7f800001;
export const S_INF = 0x7f800000;
export const S_NEG_INF = 0xff800000;
export const S_MAX = 0x7f7fffff;
export const S_MIN_NORMAL = 0x00800000;
export const S_MIN_SUB = 0x00000001;
export const S_NEG_ZERO = 0x80000000;
export const S_ONE = 0x3f800000;
