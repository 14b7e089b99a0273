// The native fast paths (round-to-nearest-even) against the integer soft paths, value and flags, on
// seeded random operands concentrated on hard cases; and the values against the host's own IEEE
// arithmetic, which is exact for these operations in RNE (Math.fround of a binary64 result is
// exact for single add/sub/mul/div/sqrt: binary64 has more than 2×24+2 bits).
import { beforeAll, describe, expect, it } from 'vitest';
import { loadFpuCore, type FpuCore } from './build.js';
import { d, dv, hex, s, sv, RNE } from './bits.js';

let core: FpuCore;
beforeAll(async () => {
  core = await loadFpuCore();
}, 60_000);

// xorshift64*, seeded: reproducible operands.
function rng(seed: bigint): () => bigint {
  let x = seed;
  return () => {
    x ^= x >> 12n;
    x ^= (x << 25n) & 0xffffffffffffffffn;
    x ^= x >> 27n;
    return (x * 0x2545f4914f6cdd1dn) & 0xffffffffffffffffn;
  };
}

const SPECIAL_F64 = [0n, 1n, 0xfffffffffffffn, 0x10000000000000n, 0x3ff0000000000000n, 0x7fefffffffffffffn, 0x7ff0000000000000n, 0x7ff8000000000000n, 0x7ff0000000000001n, 0x3ca0000000000000n];

function f64Operand(next: () => bigint, previous: bigint): bigint {
  const r = next();
  const sign = (r & 1n) << 63n;
  const frac = next() & 0xfffffffffffffn;
  switch (Number((r >> 1n) % 8n)) {
    case 0: return SPECIAL_F64[Number(next() % BigInt(SPECIAL_F64.length))] | sign;
    case 1: return next();
    case 2: return sign | ((1019n + (next() % 9n)) << 52n) | frac;
    case 3: return sign | ((next() % 3n) << 52n) | (frac >> (next() % 53n));
    case 4: return sign | ((2044n + (next() % 3n)) << 52n) | frac;
    case 5: return sign | ((1023n + ((next() & 1n) === 0n ? 511n : -511n) + (next() % 5n) - 2n) << 52n) | frac;
    case 6: return sign | ((1000n + (next() % 40n)) << 52n) | ((0xfffffffffffffn >> (next() % 52n)) << (next() % 4n) & 0xfffffffffffffn);
    default: return (previous + (next() % 5n) - 2n) & 0xffffffffffffffffn;
  }
}

function f32Operand(next: () => bigint, previous: number): number {
  const r = next();
  const sign = Number(r & 1n) << 31;
  const frac = Number(next() & 0x7fffffn);
  let v: number;
  switch (Number((r >> 1n) % 7n)) {
    case 0: v = Number(next() & 0xffffffffn); break;
    case 1: v = sign | ((123 + Number(next() % 9n)) << 23) | frac; break;
    case 2: v = sign | (Number(next() % 3n) << 23) | (frac >> Number(next() % 24n)); break;
    case 3: v = sign | ((252 + Number(next() % 3n)) << 23) | frac; break;
    case 4: v = sign | ((127 + ((next() & 1n) === 0n ? 63 : -63) + Number(next() % 5n) - 2) << 23) | frac; break;
    case 5: v = [0, 0x7f800000, 0x7fc00000, 0x7f800001, 0x00800000, 1][Number(next() % 6n)] | sign; break;
    default: v = previous + Number(next() % 5n) - 2;
  }
  return v >>> 0;
}

type Call = (...args: (bigint | number)[]) => bigint | number;
// FP_FAST_PATH_CASES raises the count for local stress runs.
const CASES = Number(process.env.FP_FAST_PATH_CASES ?? 20000);

function outcome(fn: Call, args: (bigint | number)[]): string {
  core.clearFlags();
  const v = fn(...args);
  return `${hex(v)}/${core.flags()}`;
}

const isNaN64 = (b: bigint): boolean => (b & 0x7fffffffffffffffn) > 0x7ff0000000000000n;
const isNaN32 = (b: number): boolean => (b & 0x7fffffff) > 0x7f800000;

describe('binary64 fast paths', () => {
  const ops: [string, string, (x: number, y: number) => number, number][] = [
    ['f64_add', 'addSoft', (x, y) => x + y, 0],
    ['f64_sub', 'addSoft', (x, y) => x - y, 1],
    ['f64_mul', 'mulSoft', (x, y) => x * y, -1],
    ['f64_div', 'divSoft', (x, y) => x / y, -1],
    ['f64_sqrt', 'sqrtSoft', (x) => Math.sqrt(x), -1],
  ];
  for (const [fast, soft, host, negate] of ops) {
    it(`${fast} matches ${soft} and the host on ${CASES} cases`, () => {
      const next = rng(0x9e3779b97f4a7c15n ^ BigInt(fast.length * 7919));
      const mismatches: string[] = [];
      let a = 0n;
      let b = 0n;
      for (let i = 0; i < CASES && mismatches.length < 10; i++) {
        a = f64Operand(next, b);
        b = f64Operand(next, a);
        const unary = fast === 'f64_sqrt';
        const fastArgs = unary ? [a, RNE] : [a, b, RNE];
        const softArgs = unary ? [a, 52, RNE] : negate >= 0 ? [a, b, 52, RNE, negate] : [a, b, 52, RNE];
        const got = outcome(core[fast] as Call, fastArgs);
        const want = outcome(core[soft] as Call, softArgs);
        const hostBits = d(host(dv(a), dv(b)));
        const value = BigInt(`0x${got.split('/')[0].slice(2)}`);
        const hostAgrees = isNaN64(hostBits) ? value === 0x7ff8000000000000n : value === hostBits;
        if (got !== want || !hostAgrees) {
          mismatches.push(`${fast}(${hex(a)}, ${hex(b)}): fast ${got}, soft ${want}, host ${hex(hostBits)}`);
        }
      }
      expect(mismatches).toEqual([]);
    });
  }
});

describe('binary32 fast paths', () => {
  const ops: [string, string, (x: number, y: number) => number, number][] = [
    ['f32_add', 'addSoft', (x, y) => x + y, 0],
    ['f32_sub', 'addSoft', (x, y) => x - y, 1],
    ['f32_mul', 'mulSoft', (x, y) => x * y, -1],
    ['f32_div', 'divSoft', (x, y) => x / y, -1],
    ['f32_sqrt', 'sqrtSoft', (x) => Math.sqrt(x), -1],
  ];
  for (const [fast, soft, host, negate] of ops) {
    it(`${fast} matches ${soft} and the host on ${CASES} cases`, () => {
      const next = rng(0x243f6a8885a308d3n ^ BigInt(fast.length * 104729));
      const mismatches: string[] = [];
      let a = 0;
      let b = 0;
      for (let i = 0; i < CASES && mismatches.length < 10; i++) {
        a = f32Operand(next, b);
        b = f32Operand(next, a);
        const unary = fast === 'f32_sqrt';
        const fastArgs = unary ? [a, RNE] : [a, b, RNE];
        const wa = BigInt(a);
        const wb = BigInt(b);
        const softArgs = unary ? [wa, 23, RNE] : negate >= 0 ? [wa, wb, 23, RNE, negate] : [wa, wb, 23, RNE];
        const got = outcome(core[fast] as Call, fastArgs);
        const want = outcome(core[soft] as Call, softArgs);
        const hostBits = s(host(sv(a), sv(b)));
        const value = Number.parseInt(got.split('/')[0].slice(2), 16);
        const hostAgrees = isNaN32(hostBits) ? value === 0x7fc00000 : value === hostBits;
        if (got !== want || !hostAgrees) {
          mismatches.push(`${fast}(${hex(a)}, ${hex(b)}): fast ${got}, soft ${want}, host ${hex(hostBits)}`);
        }
      }
      expect(mismatches).toEqual([]);
    });
  }
});

// Fused multiply-add: fast (RNE) against soft. A third of the addends cancel the product to within a
// few ulps, where a double rounding would show.
describe('fused multiply-add fast paths', () => {
  const variants: [string, number, number][] = [
    ['fmadd', 0, 0],
    ['fmsub', 0, 1],
    ['fnmsub', 1, 0],
    ['fnmadd', 1, 1],
  ];
  for (const [name, negP, negC] of variants) {
    it(`f64_${name} matches fmaSoft on ${CASES} cases`, () => {
      const next = rng(0x51ed270b27ce5e3dn ^ BigInt(negP * 2 + negC + 1));
      const mul = core.f64_mul as Call;
      const mismatches: string[] = [];
      let c = 0n;
      for (let i = 0; i < CASES && mismatches.length < 10; i++) {
        const a = f64Operand(next, c);
        const b = f64Operand(next, a);
        c = f64Operand(next, b);
        if (next() % 3n === 0n) {
          const p = BigInt(mul(a, b, RNE)) ^ (BigInt(negP ^ negC ^ 1) << 63n);
          c = (p + (next() % 5n) - 2n) & 0xffffffffffffffffn;
        }
        const got = outcome(core[`f64_${name}`] as Call, [a, b, c, RNE]);
        const want = outcome(core.fmaSoft as Call, [a, b, c, 52, RNE, negP, negC]);
        if (got !== want) mismatches.push(`f64_${name}(${hex(a)}, ${hex(b)}, ${hex(c)}): fast ${got}, soft ${want}`);
      }
      expect(mismatches).toEqual([]);
    });
    it(`f32_${name} matches fmaSoft on ${CASES} cases`, () => {
      const next = rng(0x6a09e667f3bcc909n ^ BigInt(negP * 2 + negC + 1));
      const mul = core.f32_mul as Call;
      const mismatches: string[] = [];
      let c = 0;
      for (let i = 0; i < CASES && mismatches.length < 10; i++) {
        const a = f32Operand(next, c);
        const b = f32Operand(next, a);
        c = f32Operand(next, b);
        if (next() % 3n === 0n) {
          const p = (Number(mul(a, b, RNE)) ^ ((negP ^ negC ^ 1) << 31)) >>> 0;
          c = (p + Number(next() % 5n) - 2) >>> 0;
        }
        const got = outcome(core[`f32_${name}`] as Call, [a, b, c, RNE]);
        const want = outcome(core.fmaSoft as Call, [BigInt(a), BigInt(b), BigInt(c), 23, RNE, negP, negC]);
        if (got !== want) mismatches.push(`f32_${name}(${hex(a)}, ${hex(b)}, ${hex(c)}): fast ${got}, soft ${want}`);
      }
      expect(mismatches).toEqual([]);
    });
  }
});
