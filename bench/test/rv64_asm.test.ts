// The encoder against the GNU assembler: every instruction the microbenchmarks use, with immediates at
// the edges of their ranges, must assemble to the same bytes.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findOnPath } from '../lib/paths.js';
import { CodeBuffer, EncodingError, R, add, addi, and, beq, bne, cAddi, cBnez, jal, jalr, ld, lw, sd, sw, xor } from '../lib/rv64_asm.js';

const as = findOnPath('riscv64-unknown-elf-as');
const objcopy = findOnPath('riscv64-unknown-elf-objcopy');

function assemble(source: string): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), 'wkvm-bench-asm-'));
  try {
    writeFileSync(join(dir, 'a.s'), `${source}\n`);
    execFileSync(as!, ['-march=rv64gc', '-mno-relax', '-o', join(dir, 'a.o'), join(dir, 'a.s')]);
    execFileSync(objcopy!, ['-O', 'binary', '-j', '.text', join(dir, 'a.o'), join(dir, 'a.bin')]);
    return new Uint8Array(readFileSync(join(dir, 'a.bin')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// Branch targets are written as labels: `0:` marks offset 0 and the tests branch back or forward to it.
const cases: readonly { asm: string; code: CodeBuffer }[] = [
  { asm: 'add t5, t4, t0', code: new CodeBuffer().emit(add(R.t5, R.t4, R.t0)) },
  { asm: 'and t0, t0, a0', code: new CodeBuffer().emit(and(R.t0, R.t0, R.a0)) },
  { asm: 'xor a3, s1, t6', code: new CodeBuffer().emit(xor(R.a3, R.s1, R.t6)) },
  { asm: 'addi t0, t0, 1\naddi sp, sp, -2048\naddi a0, zero, 2047', code: new CodeBuffer().emit(addi(R.t0, R.t0, 1), addi(R.sp, R.sp, -2048), addi(R.a0, R.zero, 2047)) },
  { asm: 'ld t2, 0(t5)\nld a1, -8(sp)\nlw t2, 2047(t1)', code: new CodeBuffer().emit(ld(R.t2, R.t5, 0), ld(R.a1, R.sp, -8), lw(R.t2, R.t1, 2047)) },
  { asm: 'sd t2, 0(t5)\nsd a1, -2048(sp)\nsw t0, 36(t1)', code: new CodeBuffer().emit(sd(R.t2, R.t5, 0), sd(R.a1, R.sp, -2048), sw(R.t0, R.t1, 36)) },
  { asm: 'jalr zero, 0(ra)\njalr ra, -4(t0)', code: new CodeBuffer().emit(jalr(R.zero, R.ra, 0), jalr(R.ra, R.t0, -4)) },
  { asm: '0: addi t0, t0, 1\nbne t0, zero, 0b\nbeq a0, a1, 0b', code: new CodeBuffer().emit(addi(R.t0, R.t0, 1), bne(R.t0, R.zero, -4), beq(R.a0, R.a1, -8)) },
  { asm: 'bne t0, zero, 0f\n.skip 4088\n0: nop', code: new CodeBuffer().emit(bne(R.t0, R.zero, 4092)) },
  { asm: '0: jal ra, 1f\njal zero, 0b\n1: nop', code: new CodeBuffer().emit(jal(R.ra, 8), jal(R.zero, -4)) },
  { asm: 'jal zero, 0f\n.skip 0x7fff8\n0: nop', code: new CodeBuffer().emit(jal(R.zero, 0x7fffc)) },
  { asm: '.option rvc\n0: c.addi a0, 1\nc.bnez a0, 0b\nc.addi t0, -32\nc.bnez s0, 0b', code: new CodeBuffer().emitCompressed(cAddi(R.a0, 1), cBnez(R.a0, -2), cAddi(R.t0, -32), cBnez(R.s0, -6)) },
  { asm: '.option rvc\nc.bnez a5, 0f\n.skip 250\n0: c.nop', code: new CodeBuffer().emitCompressed(cBnez(R.a5, 252)) },
];

describe.skipIf(as === null || objcopy === null)('rv64 encoder matches the GNU assembler', () => {
  for (const { asm, code } of cases) {
    it(asm.replace(/\n/g, '; '), () => {
      const expected = assemble(`.option norvc\n${asm}`);
      const ours = code.toBytes();
      expect(Array.from(expected.subarray(0, ours.length))).toEqual(Array.from(ours));
    });
  }
});

describe('rv64 encoder refuses what it cannot encode', () => {
  it('rejects out-of-range and misaligned immediates', () => {
    expect(() => addi(R.t0, R.t0, 2048)).toThrow(EncodingError);
    expect(() => sd(R.t0, R.t0, -2049)).toThrow(EncodingError);
    expect(() => bne(R.t0, R.zero, 3)).toThrow(/multiple of 2/);
    expect(() => bne(R.t0, R.zero, 4096)).toThrow(EncodingError);
    expect(() => jal(R.zero, 1 << 20)).toThrow(EncodingError);
    expect(() => cAddi(R.a0, 32)).toThrow(EncodingError);
  });

  it('rejects c.bnez on a register outside x8..x15', () => {
    expect(() => cBnez(R.t0 as never, -2)).toThrow(/x8\.\.x15/);
  });
});

