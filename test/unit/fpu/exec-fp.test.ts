// execFpOp: decoding, illegal encodings, rounding-mode selection, NaN-boxing, integer register
// writes (x0, sign extension) and fflags accrual.
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadFpuCore } from './build.js';
import { d, D_ONE, D_QNAN, NV, NX, DZ, s, S_ONE, S_QNAN } from './bits.js';
import { allFpMnemonics, fpSpec } from './encode.js';
import { TestHart } from './hart.js';

let hart: TestHart;
beforeAll(async () => {
  hart = new TestHart(await loadFpuCore());
}, 60_000);

const POISON = 0x5a5a5a5a5a5a5a5an;
beforeEach(() => {
  for (let r = 0; r < 32; r++) {
    hart.setF(r, POISON);
    hart.setX(r, r === 0 ? 0n : POISON);
  }
  hart.fcsr = 0n;
});

function snapshot(): bigint[] {
  const regs: bigint[] = [hart.fcsr];
  for (let r = 0; r < 32; r++) regs.push(hart.f(r), hart.x(r));
  return regs;
}

function expectIllegal(insn: number, why: string): void {
  const before = snapshot();
  expect(hart.exec(insn), why).toBe(1);
  expect(snapshot(), `${why}: state must be unchanged`).toEqual(before);
}

const fadd_d = fpSpec('fadd.d');
const fadd_s = fpSpec('fadd.s');

describe('rounding-mode selection', () => {
  it('rejects the reserved static modes 5 and 6', () => {
    hart.setF(1, D_ONE);
    hart.setF(2, D_ONE);
    for (const rm of [5, 6]) {
      expectIllegal(fadd_d.encode({ rd: 3, rs1: 1, rs2: 2, rm }), `fadd.d rm=${rm}`);
      expectIllegal(fpSpec('fmadd.s').encode({ rd: 3, rs1: 1, rs2: 2, rs3: 1, rm }), `fmadd.s rm=${rm}`);
      expectIllegal(fpSpec('fcvt.w.d').encode({ rd: 3, rs1: 1, rm }), `fcvt.w.d rm=${rm}`);
      expectIllegal(fpSpec('fcvt.d.s').encode({ rd: 3, rs1: 1, rm }), `fcvt.d.s rm=${rm}`);
      expectIllegal(fpSpec('fsqrt.s').encode({ rd: 3, rs1: 1, rm }), `fsqrt.s rm=${rm}`);
    }
  });
  it('rejects the dynamic mode when frm holds a reserved value', () => {
    hart.setF(1, D_ONE);
    hart.setF(2, d(2 ** -53));
    for (const frm of [5n, 6n, 7n]) {
      hart.fcsr = frm << 5n;
      expectIllegal(fadd_d.encode({ rd: 3, rs1: 1, rs2: 2, rm: 7 }), `dyn with frm=${frm}`);
      expectIllegal(fpSpec('fcvt.s.lu').encode({ rd: 3, rs1: 1, rm: 7 }), `fcvt.s.lu dyn frm=${frm}`);
    }
  });
  it('ignores frm for static modes and for instructions without a rounding mode', () => {
    hart.fcsr = 7n << 5n;
    hart.setF(1, D_ONE);
    hart.setF(2, d(2 ** -53));
    expect(hart.exec(fadd_d.encode({ rd: 3, rs1: 1, rs2: 2, rm: 3 }))).toBe(0);
    expect(hart.f(3)).toBe(d(1 + 2 ** -52));
    expect(hart.exec(fpSpec('fmin.d').encode({ rd: 4, rs1: 1, rs2: 2 }))).toBe(0);
    expect(hart.f(4)).toBe(d(2 ** -53));
  });
  it('uses frm for the dynamic mode', () => {
    hart.setF(1, D_ONE);
    hart.setF(2, d(2 ** -53));
    const want = [D_ONE, D_ONE, D_ONE, d(1 + 2 ** -52), d(1 + 2 ** -52)];
    for (let frm = 0; frm < 5; frm++) {
      hart.fcsr = BigInt(frm) << 5n;
      expect(hart.exec(fadd_d.encode({ rd: 3, rs1: 1, rs2: 2, rm: 7 }))).toBe(0);
      expect(hart.f(3), `frm=${frm}`).toBe(want[frm]);
      expect(hart.fcsr).toBe((BigInt(frm) << 5n) | BigInt(NX));
    }
  });
});

describe('illegal encodings', () => {
  it('rejects the H and Q formats', () => {
    for (const fmt of [2, 3]) {
      const insn = (fadd_s.encode({ rd: 1, rs1: 2, rs2: 3, rm: 0 }) | (fmt << 25)) >>> 0;
      expectIllegal(insn, `fadd fmt=${fmt}`);
      const fma = (fpSpec('fmadd.s').encode({ rd: 1, rs1: 2, rs2: 3, rs3: 4, rm: 0 }) | (fmt << 25)) >>> 0;
      expectIllegal(fma, `fmadd fmt=${fmt}`);
    }
  });
  it('rejects reserved funct3, rs2 and funct5 values', () => {
    const opFp = (funct7: number, rs2: number, funct3: number): number =>
      ((funct7 << 25) | (rs2 << 20) | (2 << 15) | (funct3 << 12) | (1 << 7) | 0x53) >>> 0;
    expectIllegal(opFp(0x2c, 1, 0), 'fsqrt.s with rs2=1');
    expectIllegal(opFp(0x10, 0, 3), 'fsgnj funct3=3');
    expectIllegal(opFp(0x14, 0, 2), 'fmin/fmax funct3=2');
    expectIllegal(opFp(0x50, 0, 3), 'compare funct3=3');
    expectIllegal(opFp(0x60, 4, 0), 'fcvt.int.s rs2=4');
    expectIllegal(opFp(0x68, 5, 0), 'fcvt.s.int rs2=5');
    expectIllegal(opFp(0x20, 0, 0), 'fcvt.s.s');
    expectIllegal(opFp(0x21, 1, 0), 'fcvt.d.d');
    expectIllegal(opFp(0x70, 0, 2), 'fmv.x.w funct3=2');
    expectIllegal(opFp(0x70, 1, 0), 'fmv.x.w rs2=1');
    expectIllegal(opFp(0x78, 0, 1), 'fmv.w.x funct3=1');
    expectIllegal(opFp(0x78, 1, 0), 'fmv.w.x rs2=1');
    for (const funct5 of [0x06, 0x07, 0x09, 0x0c, 0x10, 0x15, 0x19, 0x1b, 0x1d, 0x1f]) {
      expectIllegal(opFp(funct5 << 2, 0, 0), `funct5=${funct5.toString(16)}`);
    }
  });
  it('accepts every instruction of the test encoder', () => {
    for (const m of allFpMnemonics()) {
      const spec = fpSpec(m);
      const insn = spec.encode({ rd: 1, rs1: 2, rs2: 3, rs3: 4, rm: 0 });
      expect(hart.exec(insn), m).toBe(0);
    }
  });
});

describe('registers', () => {
  it('NaN-boxes single results and reads improperly boxed singles as the canonical NaN', () => {
    hart.setS(1, S_ONE);
    hart.setS(2, S_ONE);
    expect(hart.exec(fadd_s.encode({ rd: 3, rs1: 1, rs2: 2, rm: 0 }))).toBe(0);
    expect(hart.f(3)).toBe(0xffffffff40000000n);
    hart.setF(2, 0x000000003f800000n);
    expect(hart.exec(fadd_s.encode({ rd: 3, rs1: 1, rs2: 2, rm: 0 }))).toBe(0);
    expect(hart.f(3)).toBe(0xffffffff00000000n | BigInt(S_QNAN));
    expect(hart.exec(fpSpec('fsgnjn.s').encode({ rd: 4, rs1: 2, rs2: 1 }))).toBe(0);
    expect(hart.f(4)).toBe(0xffffffffffc00000n);
    expect(hart.fflags).toBe(0);
  });
  it('moves raw bits with fmv, sign-extending fmv.x.w without unboxing', () => {
    hart.setF(1, 0x12345678_87654321n);
    expect(hart.exec(fpSpec('fmv.x.w').encode({ rd: 5, rs1: 1 }))).toBe(0);
    expect(hart.x(5)).toBe(0xffffffff87654321n);
    expect(hart.exec(fpSpec('fmv.x.d').encode({ rd: 6, rs1: 1 }))).toBe(0);
    expect(hart.x(6)).toBe(0x1234567887654321n);
    hart.setX(7, 0xdeadbeef_7fc00001n);
    expect(hart.exec(fpSpec('fmv.w.x').encode({ rd: 2, rs1: 7 }))).toBe(0);
    expect(hart.f(2)).toBe(0xffffffff7fc00001n);
    expect(hart.exec(fpSpec('fmv.d.x').encode({ rd: 3, rs1: 7 }))).toBe(0);
    expect(hart.f(3)).toBe(0xdeadbeef7fc00001n);
  });
  it('never writes x0', () => {
    hart.setF(1, D_ONE);
    for (const m of ['feq.d', 'fclass.d', 'fcvt.l.d', 'fmv.x.d', 'fcvt.wu.d']) {
      expect(hart.exec(fpSpec(m).encode({ rd: 0, rs1: 1, rs2: 1, rm: 0 }))).toBe(0);
      expect(hart.x(0), m).toBe(0n);
    }
  });
  it('uses only the low 32 bits of a 32-bit integer source and sign-extends 32-bit results', () => {
    hart.setX(5, 0xabcdef00_fffffffen); // low word −2
    expect(hart.exec(fpSpec('fcvt.d.w').encode({ rd: 1, rs1: 5, rm: 0 }))).toBe(0);
    expect(hart.f(1)).toBe(d(-2));
    expect(hart.exec(fpSpec('fcvt.d.wu').encode({ rd: 1, rs1: 5, rm: 0 }))).toBe(0);
    expect(hart.f(1)).toBe(d(4294967294));
    hart.setF(2, d(3e9));
    expect(hart.exec(fpSpec('fcvt.wu.d').encode({ rd: 6, rs1: 2, rm: 1 }))).toBe(0);
    expect(hart.x(6)).toBe(0xffffffffb2d05e00n);
    hart.setS(3, s(-7.75));
    expect(hart.exec(fpSpec('fcvt.w.s').encode({ rd: 7, rs1: 3, rm: 1 }))).toBe(0);
    expect(hart.x(7)).toBe(0xfffffffffffffff9n);
    expect(hart.fflags).toBe(NX);
  });
  it('allows the destination to be a source', () => {
    hart.setF(1, d(3));
    const fmadd = fpSpec('fmadd.d');
    expect(hart.exec(fmadd.encode({ rd: 1, rs1: 1, rs2: 1, rs3: 1, rm: 0 }))).toBe(0);
    expect(hart.f(1)).toBe(d(12));
  });
});

describe('fflags', () => {
  it('accrues into fcsr and keeps frm', () => {
    hart.fcsr = (2n << 5n) | BigInt(NV);
    hart.setF(1, D_ONE);
    hart.setF(2, 0n);
    expect(hart.exec(fpSpec('fdiv.d').encode({ rd: 3, rs1: 1, rs2: 2, rm: 0 }))).toBe(0);
    expect(hart.fcsr).toBe((2n << 5n) | BigInt(NV | DZ));
    hart.setF(2, D_QNAN);
    expect(hart.exec(fpSpec('feq.d').encode({ rd: 5, rs1: 2, rs2: 2 }))).toBe(0);
    expect(hart.x(5)).toBe(0n);
    expect(hart.fcsr).toBe((2n << 5n) | BigInt(NV | DZ));
  });
});
