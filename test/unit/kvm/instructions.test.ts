// Instruction groups of RV64IMC and of Zba/Zbb/Zbc/Zbs checked one by one against a BigInt reference: each case runs a single
// instruction on preset registers through the real core.
import { describe, it, expect, beforeAll } from 'vitest';
import { Hypervisor } from '../../../host/kvm/index.js';
import { asm, program } from '../../helpers/asm.js';

const RAM = 0x8000_0000;
const M64 = (1n << 64n) - 1n;
const u = (v: bigint) => BigInt.asUintN(64, v);
const s = (v: bigint) => BigInt.asIntN(64, v);
const sx32 = (v: bigint) => u(BigInt.asIntN(32, v));

let hv: Hypervisor;
beforeAll(async () => {
  hv = await Hypervisor.create();
});

/** Runs `words` (then spins) with x10 = a, x11 = b; returns x12. */
function execute(words: number[], a: bigint, b: bigint, compressed?: Uint8Array, count = words.length): bigint {
  const vm = hv.createVm();
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, size: 1 << 16 });
  const code = compressed ?? program(words);
  vm.guestMemory(RAM, code.length + 4).set([...code, ...program([asm.jal(0, 0)])]);
  const vcpu = vm.createVcpu(0);
  vcpu.reset(BigInt(RAM));
  const regs = vcpu.getRegs();
  regs.x[10] = u(a);
  regs.x[11] = u(b);
  vcpu.setRegs(regs);
  vcpu.run(count);
  expect(vcpu.getCsr(0x342)).toBe(0n); // no trap
  return vcpu.getRegs().x[12]!;
}

const rType = (f7: number, f3: number, op: number) => (f7 << 25) | (11 << 20) | (10 << 15) | (f3 << 12) | (12 << 7) | op;
const OPERANDS = [0n, 1n, 2n, 3n, 7n, -1n, -2n, -7n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 1n << 63n, (1n << 63n) - 1n,
  0x123456789abcdef0n, -0x123456789abcdefn, 63n, 64n, 31n, 32n];

const R_OPS: Array<[string, number, number, number, (a: bigint, b: bigint) => bigint]> = [
  ['add', 0, 0, 0x33, (a, b) => u(a + b)],
  ['sub', 0x20, 0, 0x33, (a, b) => u(a - b)],
  ['sll', 0, 1, 0x33, (a, b) => u(a << (b & 63n))],
  ['slt', 0, 2, 0x33, (a, b) => (s(a) < s(b) ? 1n : 0n)],
  ['sltu', 0, 3, 0x33, (a, b) => (u(a) < u(b) ? 1n : 0n)],
  ['xor', 0, 4, 0x33, (a, b) => u(a ^ b)],
  ['srl', 0, 5, 0x33, (a, b) => u(a) >> (b & 63n)],
  ['sra', 0x20, 5, 0x33, (a, b) => u(s(a) >> (b & 63n))],
  ['or', 0, 6, 0x33, (a, b) => u(a | b)],
  ['and', 0, 7, 0x33, (a, b) => u(a & b)],
  ['mul', 1, 0, 0x33, (a, b) => u(a * b)],
  ['mulh', 1, 1, 0x33, (a, b) => u((s(a) * s(b)) >> 64n)],
  ['mulhsu', 1, 2, 0x33, (a, b) => u((s(a) * u(b)) >> 64n)],
  ['mulhu', 1, 3, 0x33, (a, b) => u((u(a) * u(b)) >> 64n)],
  ['div', 1, 4, 0x33, (a, b) => (s(b) === 0n ? M64 : s(a) === -(1n << 63n) && s(b) === -1n ? u(a) : u(s(a) / s(b)))],
  ['divu', 1, 5, 0x33, (a, b) => (u(b) === 0n ? M64 : u(a) / u(b))],
  ['rem', 1, 6, 0x33, (a, b) => (s(b) === 0n ? u(a) : s(a) === -(1n << 63n) && s(b) === -1n ? 0n : u(s(a) % s(b)))],
  ['remu', 1, 7, 0x33, (a, b) => (u(b) === 0n ? u(a) : u(a) % u(b))],
  ['addw', 0, 0, 0x3b, (a, b) => sx32(a + b)],
  ['subw', 0x20, 0, 0x3b, (a, b) => sx32(a - b)],
  ['sllw', 0, 1, 0x3b, (a, b) => sx32(a << (b & 31n))],
  ['srlw', 0, 5, 0x3b, (a, b) => sx32(BigInt.asUintN(32, a) >> (b & 31n))],
  ['sraw', 0x20, 5, 0x3b, (a, b) => sx32(BigInt.asIntN(32, a) >> (b & 31n))],
  ['mulw', 1, 0, 0x3b, (a, b) => sx32(a * b)],
  ['divw', 1, 4, 0x3b, (a, b) => {
    const x = BigInt.asIntN(32, a), y = BigInt.asIntN(32, b);
    return y === 0n ? M64 : x === -(1n << 31n) && y === -1n ? sx32(x) : sx32(x / y);
  }],
  ['divuw', 1, 5, 0x3b, (a, b) => {
    const x = BigInt.asUintN(32, a), y = BigInt.asUintN(32, b);
    return y === 0n ? M64 : sx32(x / y);
  }],
  ['remw', 1, 6, 0x3b, (a, b) => {
    const x = BigInt.asIntN(32, a), y = BigInt.asIntN(32, b);
    return y === 0n ? sx32(x) : x === -(1n << 31n) && y === -1n ? 0n : sx32(x % y);
  }],
  ['remuw', 1, 7, 0x3b, (a, b) => {
    const x = BigInt.asUintN(32, a), y = BigInt.asUintN(32, b);
    return y === 0n ? sx32(x) : sx32(x % y);
  }],
];

describe('RV64IM register-register instructions', () => {
  for (const [name, f7, f3, op, reference] of R_OPS) {
    it(name, () => {
      for (const a of OPERANDS) {
        for (const b of [0n, 1n, -1n, 7n, 31n, 0x80000000n, 1n << 63n, 0x123456789abcdef0n]) {
          expect(execute([rType(f7, f3, op)], a, b), `${name} ${a} ${b}`).toBe(reference(a, b));
        }
      }
    });
  }
});

describe('immediates and shifts by immediate', () => {
  const iType = (imm: number, f3: number, op: number) => ((imm & 0xfff) << 20) | (10 << 15) | (f3 << 12) | (12 << 7) | op;
  it('addi/slti/sltiu/xori/ori/andi sign-extend their 12-bit immediate', () => {
    for (const a of OPERANDS) {
      expect(execute([iType(-1, 0, 0x13)], a, 0n)).toBe(u(a - 1n));
      expect(execute([iType(-2048, 2, 0x13)], a, 0n)).toBe(s(a) < -2048n ? 1n : 0n);
      expect(execute([iType(-1, 3, 0x13)], a, 0n)).toBe(u(a) < M64 ? 1n : 0n); // sltiu compares with 2^64-1
      expect(execute([iType(0x7ff, 4, 0x13)], a, 0n)).toBe(u(a ^ 0x7ffn));
      expect(execute([iType(-0x800, 6, 0x13)], a, 0n)).toBe(u(a | -0x800n));
      expect(execute([iType(-16, 7, 0x13)], a, 0n)).toBe(u(a & -16n));
    }
  });
  it('slli/srli/srai use six shift bits, the W forms five and sign-extend', () => {
    for (const a of OPERANDS) {
      for (const sh of [0, 1, 31, 32, 63]) {
        expect(execute([iType(sh, 1, 0x13)], a, 0n)).toBe(u(a << BigInt(sh)));
        expect(execute([iType(sh, 5, 0x13)], a, 0n)).toBe(u(a) >> BigInt(sh));
        expect(execute([iType(0x400 | sh, 5, 0x13)], a, 0n)).toBe(u(s(a) >> BigInt(sh)));
        if (sh < 32) {
          expect(execute([iType(sh, 1, 0x1b)], a, 0n)).toBe(sx32(a << BigInt(sh)));
          expect(execute([iType(0x400 | sh, 5, 0x1b)], a, 0n)).toBe(sx32(BigInt.asIntN(32, a) >> BigInt(sh)));
        }
      }
    }
  });
});

describe('compressed instructions', () => {
  const halves = (...h: number[]) => {
    const out = new Uint8Array(h.length * 2);
    h.forEach((v, i) => new DataView(out.buffer).setUint16(i * 2, v, true));
    return out;
  };
  const C_MV_A2_A0 = 0x862a;
  it('c.sub, c.addiw, c.slli, c.li behave as their 32-bit forms', () => {
    for (const a of OPERANDS) {
      expect(execute([], a, 3n, halves(0x8d0d, C_MV_A2_A0), 2)).toBe(u(a - 3n)); // c.sub a0, a1
      expect(execute([], a, 0n, halves(0x2505, C_MV_A2_A0), 2)).toBe(sx32(a + 1n)); // c.addiw a0, 1
      expect(execute([], a, 0n, halves(0x0512, C_MV_A2_A0), 2)).toBe(u(a << 4n)); // c.slli a0, 4
    }
    expect(execute([], 0n, 0n, halves(0x567d), 1)).toBe(M64); // c.li a2, -1
  });
});

describe('Zba, Zbb, Zbc and Zbs (QEMU\'s rv64 CPU has them, and the virt device tree says so)', () => {
  const z32 = (v: bigint) => BigInt.asUintN(32, v);
  const rotl = (a: bigint, n: bigint) => u((u(a) << n) | (u(a) >> ((64n - n) & 63n)));
  const rotl32 = (a: bigint, n: bigint) => sx32((z32(a) << n) | (z32(a) >> ((32n - n) & 31n)));
  const clmulFull = (a: bigint, b: bigint) => {
    let r = 0n;
    for (let i = 0n; i < 64n; i++) if ((u(b) >> i) & 1n) r ^= u(a) << i;
    return r;
  };
  const B_R_OPS: Array<[string, number, number, number, (a: bigint, b: bigint) => bigint]> = [
    ['sh1add', 0x10, 2, 0x33, (a, b) => u((a << 1n) + b)],
    ['sh2add', 0x10, 4, 0x33, (a, b) => u((a << 2n) + b)],
    ['sh3add', 0x10, 6, 0x33, (a, b) => u((a << 3n) + b)],
    ['add.uw', 0x04, 0, 0x3b, (a, b) => u(z32(a) + b)],
    ['sh1add.uw', 0x10, 2, 0x3b, (a, b) => u((z32(a) << 1n) + b)],
    ['sh2add.uw', 0x10, 4, 0x3b, (a, b) => u((z32(a) << 2n) + b)],
    ['sh3add.uw', 0x10, 6, 0x3b, (a, b) => u((z32(a) << 3n) + b)],
    ['andn', 0x20, 7, 0x33, (a, b) => u(a & ~b)],
    ['orn', 0x20, 6, 0x33, (a, b) => u(a | ~b)],
    ['xnor', 0x20, 4, 0x33, (a, b) => u(~(a ^ b))],
    ['min', 0x05, 4, 0x33, (a, b) => u(s(a) < s(b) ? a : b)],
    ['minu', 0x05, 5, 0x33, (a, b) => (u(a) < u(b) ? u(a) : u(b))],
    ['max', 0x05, 6, 0x33, (a, b) => u(s(a) > s(b) ? a : b)],
    ['maxu', 0x05, 7, 0x33, (a, b) => (u(a) > u(b) ? u(a) : u(b))],
    ['rol', 0x30, 1, 0x33, (a, b) => rotl(a, b & 63n)],
    ['ror', 0x30, 5, 0x33, (a, b) => rotl(a, (64n - (b & 63n)) & 63n)],
    ['rolw', 0x30, 1, 0x3b, (a, b) => rotl32(a, b & 31n)],
    ['rorw', 0x30, 5, 0x3b, (a, b) => rotl32(a, (32n - (b & 31n)) & 31n)],
    ['clmul', 0x05, 1, 0x33, (a, b) => u(clmulFull(a, b))],
    ['clmulh', 0x05, 3, 0x33, (a, b) => clmulFull(a, b) >> 64n],
    ['clmulr', 0x05, 2, 0x33, (a, b) => (clmulFull(a, b) >> 63n) & M64],
    ['bclr', 0x24, 1, 0x33, (a, b) => u(a & ~(1n << (b & 63n)))],
    ['bext', 0x24, 5, 0x33, (a, b) => (u(a) >> (b & 63n)) & 1n],
    ['binv', 0x34, 1, 0x33, (a, b) => u(a ^ (1n << (b & 63n)))],
    ['bset', 0x14, 1, 0x33, (a, b) => u(a | (1n << (b & 63n)))],
  ];
  for (const [name, f7, f3, op, reference] of B_R_OPS) {
    it(name, () => {
      for (const a of OPERANDS) {
        for (const b of [0n, 1n, -1n, 32n, 63n, 0x123456789abcdef0n]) {
          expect(execute([rType(f7, f3, op)], a, b), `${name} ${a} ${b}`).toBe(reference(a, b));
        }
      }
    });
  }

  const iType = (imm: number, f3: number, op: number) => ((imm & 0xfff) << 20) | (10 << 15) | (f3 << 12) | (12 << 7) | op;
  const orcB = (a: bigint) => {
    let r = 0n;
    for (let i = 0n; i < 64n; i += 8n) if ((u(a) >> i) & 0xffn) r |= 0xffn << i;
    return r;
  };
  const bytesReversed = (a: bigint) => {
    let r = 0n;
    for (let i = 0n; i < 64n; i += 8n) r = (r << 8n) | ((u(a) >> i) & 0xffn);
    return r;
  };
  const countLeadingZeros = (a: bigint, bits: bigint) => {
    let n = 0n;
    for (let i = bits - 1n; i >= 0n && ((a >> i) & 1n) === 0n; i--) n++;
    return n;
  };
  const countTrailingZeros = (a: bigint, bits: bigint) => {
    let n = 0n;
    while (n < bits && ((a >> n) & 1n) === 0n) n++;
    return n;
  };
  const popCount = (a: bigint) => [...a.toString(2)].filter((c) => c === '1').length;
  const zextH = (0x04 << 25) | (10 << 15) | (4 << 12) | (12 << 7) | 0x3b;

  it('the unary Zbb instructions: clz, ctz, cpop (and their W forms), sext.b, sext.h, zext.h, orc.b, rev8', () => {
    for (const a of OPERANDS) {
      expect(execute([iType(0x600, 1, 0x13)], a, 0n), `clz ${a}`).toBe(countLeadingZeros(u(a), 64n));
      expect(execute([iType(0x601, 1, 0x13)], a, 0n), `ctz ${a}`).toBe(countTrailingZeros(u(a), 64n));
      expect(execute([iType(0x602, 1, 0x13)], a, 0n), `cpop ${a}`).toBe(BigInt(popCount(u(a))));
      expect(execute([iType(0x600, 1, 0x1b)], a, 0n), `clzw ${a}`).toBe(countLeadingZeros(z32(a), 32n));
      expect(execute([iType(0x601, 1, 0x1b)], a, 0n), `ctzw ${a}`).toBe(countTrailingZeros(z32(a), 32n));
      expect(execute([iType(0x602, 1, 0x1b)], a, 0n), `cpopw ${a}`).toBe(BigInt(popCount(z32(a))));
      expect(execute([iType(0x604, 1, 0x13)], a, 0n), `sext.b ${a}`).toBe(u(BigInt.asIntN(8, a)));
      expect(execute([iType(0x605, 1, 0x13)], a, 0n), `sext.h ${a}`).toBe(u(BigInt.asIntN(16, a)));
      expect(execute([zextH], a, 0n), `zext.h ${a}`).toBe(BigInt.asUintN(16, a));
      expect(execute([iType(0x287, 5, 0x13)], a, 0n), `orc.b ${a}`).toBe(orcB(a));
      expect(execute([iType(0x6b8, 5, 0x13)], a, 0n), `rev8 ${a}`).toBe(bytesReversed(a));
    }
  });

  it('the immediate forms: rori, roriw, slli.uw, bseti, bclri, binvi, bexti', () => {
    for (const a of OPERANDS) {
      for (const sh of [0, 1, 31, 32, 63]) {
        const n = BigInt(sh);
        expect(execute([iType(0x600 | sh, 5, 0x13)], a, 0n), `rori ${a} ${sh}`).toBe(rotl(a, (64n - n) & 63n));
        expect(execute([iType(0x080 | sh, 1, 0x1b)], a, 0n), `slli.uw ${a} ${sh}`).toBe(u(z32(a) << n));
        expect(execute([iType(0x280 | sh, 1, 0x13)], a, 0n), `bseti ${a} ${sh}`).toBe(u(a | (1n << n)));
        expect(execute([iType(0x480 | sh, 1, 0x13)], a, 0n), `bclri ${a} ${sh}`).toBe(u(a & ~(1n << n)));
        expect(execute([iType(0x680 | sh, 1, 0x13)], a, 0n), `binvi ${a} ${sh}`).toBe(u(a ^ (1n << n)));
        expect(execute([iType(0x480 | sh, 5, 0x13)], a, 0n), `bexti ${a} ${sh}`).toBe((u(a) >> n) & 1n);
        if (sh < 32) expect(execute([iType(0x600 | sh, 5, 0x1b)], a, 0n), `roriw ${a} ${sh}`).toBe(rotl32(a, (32n - n) & 31n));
      }
    }
  });

  it('encodings next to them stay illegal instructions', () => {
    const illegal = [
      rType(0x05, 0, 0x33), // funct7 0000101 funct3 0: nothing
      rType(0x10, 3, 0x33), // between sh1add and sh2add
      rType(0x20, 1, 0x33), // funct7 0100000 with sll's funct3
      rType(0x04, 4, 0x3b), // zext.h with rs2 != 0
      rType(0x05, 4, 0x3b), // min has no W form
      iType(0x603, 1, 0x13), // between cpop and sext.b
      iType(0x604, 1, 0x1b), // sext.b has no W form
      iType(0x620, 5, 0x1b), // roriw with shamt[5] set
      iType(0x288, 5, 0x13), // orc.b's neighbour
      iType(0x7ff, 1, 0x13),
    ];
    for (const insn of illegal) {
      const vm = hv.createVm();
      vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, size: 1 << 16 });
      vm.guestMemory(RAM, 8).set(program([insn, asm.jal(0, 0)]));
      const vcpu = vm.createVcpu(0);
      vcpu.reset(BigInt(RAM));
      vcpu.run(1);
      expect(vcpu.getCsr(0x342), `0x${(insn >>> 0).toString(16)}`).toBe(2n); // illegal instruction
      expect(vcpu.getCsr(0x343), `0x${(insn >>> 0).toString(16)}`).toBe(BigInt(insn >>> 0)); // mtval holds the instruction
    }
  });
});
