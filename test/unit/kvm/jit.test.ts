// The block translator (assembly/jit) against the interpreter: the same programs, run with translation
// off and with every block translated on its second visit, must end in the same state — registers, pc,
// instructions retired, memory — whatever the budget. The programs are random loops over everything the
// translator takes (ALU, Zba/Zbb/Zbs, loads and stores that hit and miss the TLB or are misaligned, branches,
// jumps, FENCE) mixed with what it leaves to the interpreter (MULH/DIV/REM, AMOs, LR/SC pairs, CSR reads).
import { describe, it, expect, beforeAll } from 'vitest';
import { Hypervisor, type Vm, type Vcpu } from '../../../host/kvm/index.js';
import { program } from '../../helpers/asm.js';
import { xorshift32 } from '../../helpers/xorshift.js';
import * as layout from '../../../assembly/abi/layout.js';

const RAM = 0x8000_0000;
const DATA = RAM + 0x8000; // 8 KiB of data the loads and stores use, across a page boundary
const RAM_SIZE = 1 << 16;

const rType = (f7: number, rs2: number, rs1: number, f3: number, rd: number, op: number) =>
  ((f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const iType = (imm: number, rs1: number, f3: number, rd: number, op: number) =>
  (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const sType = (imm: number, rs2: number, rs1: number, f3: number) =>
  ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 31) << 7) | 0x23) >>> 0;
const bType = (offset: number, rs2: number, rs1: number, f3: number) =>
  ((((offset >> 12) & 1) << 31) | (((offset >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) |
    (((offset >> 1) & 0xf) << 8) | (((offset >> 11) & 1) << 7) | 0x63) >>> 0;
const uType = (imm20: number, rd: number, op: number) => (((imm20 & 0xfffff) << 12) | (rd << 7) | op) >>> 0;
const jType = (offset: number, rd: number) =>
  ((((offset >> 20) & 1) << 31) | (((offset >> 1) & 0x3ff) << 21) | (((offset >> 11) & 1) << 20) |
    (((offset >> 12) & 0xff) << 12) | (rd << 7) | 0x6f) >>> 0;

/** The random-program generator: xorshift32 (test/helpers/xorshift.ts) and picks from it. */
function rng(seed: number) {
  const next = xorshift32(seed);
  return { next, below: (n: number) => next() % n, pick: <T>(items: readonly T[]) => items[next() % items.length]! };
}

// x5 counts the loop down, x6 points into DATA; random code reads and writes x7..x15 (and writes x0).
const LOOP = 5;
const BASE = 6;
const WORK = [7, 8, 9, 10, 11, 12, 13, 14, 15];

/** One random instruction (or a short group ending in a forward jump or branch over the next one). */
function randomInstruction(g: ReturnType<typeof rng>): number[] {
  const rd = g.below(12) === 0 ? 0 : g.pick(WORK);
  const rs1 = g.pick(WORK);
  const rs2 = g.pick(WORK);
  const imm = (g.next() & 0xfff) - 0x800;
  switch (g.below(16)) {
    case 0: case 1: { // OP: base ops, SUB/SRA, MUL, and the M ops left to the interpreter
      const [f7, f3] = g.pick([[0, 0], [0x20, 0], [0, 1], [0, 2], [0, 3], [0, 4], [0, 5], [0x20, 5], [0, 6], [0, 7], [1, 0], [1, 1], [1, 4], [1, 7]] as const);
      return [rType(f7, rs2, rs1, f3, rd, 0x33)];
    }
    case 2: { // OP-32
      const [f7, f3] = g.pick([[0, 0], [0x20, 0], [0, 1], [0, 5], [0x20, 5], [1, 0], [1, 5]] as const);
      return [rType(f7, rs2, rs1, f3, rd, 0x3b)];
    }
    case 3: case 4: { // OP-IMM
      const f3 = g.below(8);
      if (f3 === 1) return [iType(g.below(64), rs1, 1, rd, 0x13)];
      if (f3 === 5) return [iType((g.below(2) << 10) | g.below(64), rs1, 5, rd, 0x13)];
      return [iType(imm, rs1, f3, rd, 0x13)];
    }
    case 5: { // OP-IMM-32
      const f3 = g.pick([0, 1, 5]);
      if (f3 === 0) return [iType(imm, rs1, 0, rd, 0x1b)];
      return [iType((f3 === 5 && g.below(2) ? 0x400 : 0) | g.below(32), rs1, f3, rd, 0x1b)];
    }
    case 6: case 7: { // LOAD: mostly aligned in DATA's two pages, sometimes misaligned
      const f3 = g.pick([0, 1, 2, 3, 4, 5, 6]);
      const size = 1 << (f3 & 3);
      const offset = g.below(8) === 0 ? g.below(4090) - 2048 : g.below(4096 / size) * size - 2048;
      return [iType(offset, BASE, f3, rd, 0x03)];
    }
    case 8: { // STORE
      const f3 = g.below(4);
      const size = 1 << f3;
      const offset = g.below(8) === 0 ? g.below(4090) - 2048 : g.below(4096 / size) * size - 2048;
      return [sType(offset, rs2, BASE, f3)];
    }
    case 9: // LUI, AUIPC
      return [uType(g.next() & 0xfffff, rd, g.below(2) ? 0x37 : 0x17)];
    case 10: { // a forward branch over the next instruction
      const f3 = g.pick([0, 1, 4, 5, 6, 7]);
      return [bType(8, rs2, rs1, f3), iType(1, rs1, 0, rs1, 0x13)];
    }
    case 11: // JAL over the next instruction (with or without a link)
      return [jType(8, g.below(2) ? rd : 0), iType(-1, rs1, 0, rs1, 0x13)];
    case 12: // AUIPC + JALR over the next instruction (target computed from a register, bit 0 set and cleared)
      return [uType(0, 16, 0x17), iType(13, 16, 0, g.below(2) ? rd : 0, 0x67), iType(5, rs1, 0, rs1, 0x13)];
    case 14: case 15: { // AMO, LR or SC on an address in x17 (rarely misaligned: the AMO then traps)
      const wide = g.below(2) === 1;
      const size = wide ? 8 : 4;
      const offset = g.below(4096 / size) * size - 2048 + (g.below(32) === 0 ? 2 : 0);
      const funct5 = g.pick([0x00, 0x01, 0x04, 0x08, 0x0c, 0x10, 0x14, 0x18, 0x1c, 0x02, 0x03, 0x03]);
      const amo = ((funct5 << 27) | (g.below(4) << 25) | ((funct5 === 2 ? 0 : rs2) << 20) | (17 << 15) |
        ((wide ? 3 : 2) << 12) | (rd << 7) | 0x2f) >>> 0;
      if (g.below(3) > 0) return [iType(offset, BASE, 0, 17, 0x13), amo];
      // An LR/SC pair on one address, sometimes with a store to it in between (the SC then fails), and
      // sometimes a second SC after it (which fails: the first one used up the reservation).
      const lr = ((0x02 << 27) | (17 << 15) | ((wide ? 3 : 2) << 12) | (rd << 7) | 0x2f) >>> 0;
      const sc = ((0x03 << 27) | (rs2 << 20) | (17 << 15) | ((wide ? 3 : 2) << 12) | (g.pick(WORK) << 7) | 0x2f) >>> 0;
      const between = g.below(3) === 0 ? [sType(0, rs1, 17, wide ? 3 : 2)] : [iType(1, rs1, 0, rs1, 0x13)];
      const again = g.below(3) === 0 ? [sc] : [];
      return [iType(offset & ~7, BASE, 0, 17, 0x13), lr, ...between, sc, ...again];
    }
    case 13: { // Zba/Zbb/Zbc/Zbs: most translated, clmul*, orc.b and rev8 left to the interpreter
      const sh = g.below(64);
      return [g.pick([
        ...([[0x10, 2], [0x10, 4], [0x10, 6], [0x20, 4], [0x20, 6], [0x20, 7], [0x05, 1], [0x05, 2], [0x05, 3], [0x05, 4], [0x05, 5],
          [0x05, 6], [0x05, 7], [0x30, 1], [0x30, 5], [0x24, 1], [0x24, 5], [0x34, 1], [0x14, 1]] as const).map(([f7, f3]) => rType(f7, rs2, rs1, f3, rd, 0x33)),
        ...([[0x04, 0], [0x10, 2], [0x10, 4], [0x10, 6], [0x30, 1], [0x30, 5]] as const).map(([f7, f3]) => rType(f7, rs2, rs1, f3, rd, 0x3b)),
        rType(0x04, 0, rs1, 4, rd, 0x3b), // zext.h
        ...[0x600, 0x601, 0x602, 0x604, 0x605, 0x280 | sh, 0x480 | sh, 0x680 | sh].map((imm) => iType(imm, rs1, 1, rd, 0x13)),
        ...[0x287, 0x6b8, 0x600 | sh, 0x480 | sh].map((imm) => iType(imm, rs1, 5, rd, 0x13)),
        ...[0x600, 0x601, 0x602, 0x080 | sh].map((imm) => iType(imm, rs1, 1, rd, 0x1b)),
        iType(0x600 | (sh & 31), rs1, 5, rd, 0x1b), // roriw
      ])];
    }
    default: // FENCE, or a CSR read (minstret), which the translator leaves to the interpreter
      return [g.below(2) ? 0x0ff0000f : iType(0xb02, 0, 2, rd, 0x73)];
  }
}

function randomProgram(seed: number, length: number, iterations: number): number[] {
  const g = rng(seed);
  const body: number[] = [];
  while (body.length < length) body.push(...randomInstruction(g));
  if (body.length * 4 >= 4000) {
    // Past a branch's reach: close the loop with `beqz x5, out; jal body` instead.
    const loop = [...body, iType(-1, LOOP, 0, LOOP, 0x13), bType(8, 0, LOOP, 0)];
    loop.push(jType(-4 * loop.length, 0));
    return [...loopSetup(iterations), ...loop, jType(0, 0)];
  }
  const loop = [...body, iType(-1, LOOP, 0, LOOP, 0x13)];
  loop.push(bType(-4 * loop.length, 0, LOOP, 1)); // bnez x5, body
  return [...loopSetup(iterations), ...loop, jType(0, 0)];
}

function loopSetup(iterations: number): number[] {
  // x6 = DATA + 4 KiB, so the 12-bit offsets reach both of DATA's pages.
  const setup = [uType((DATA + 0x1000) >>> 12, BASE, 0x37), iType(iterations, 0, 0, LOOP, 0x13)];
  // Zero-extend x6 (lui sign-extends bit 31).
  setup.push(iType(32, BASE, 1, BASE, 0x13), iType(32, BASE, 5, BASE, 0x13));
  for (const r of WORK) setup.push(iType((r * 0x135) & 0x7ff, 0, 0, r, 0x13));
  return setup;
}

interface FinalState {
  x: bigint[];
  pc: bigint;
  instret: bigint;
  mcause: bigint;
  data: number[];
}

let hv: Hypervisor;
beforeAll(async () => {
  hv = await Hypervisor.create();
});

function boot(words: number[], jit: boolean, jitBatch = 1, jitThreshold = 1, ramSize = RAM_SIZE): { vm: Vm; vcpu: Vcpu } {
  const vm = hv.createVm({ jit, jitThreshold, jitBatch });
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, size: ramSize });
  vm.guestMemory(RAM, words.length * 4).set(program(words));
  const data = vm.guestMemory(DATA, 8192);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + 11) & 0xff;
  const vcpu = vm.createVcpu(0);
  vcpu.reset(BigInt(RAM));
  return { vm, vcpu };
}

const CODE_VA = 0x4000_0000;
const PAGED_RAM_SIZE = 1 << 18;
const CODE_PAGE_ORDER = [3, 1, 0, 2, 4, 5];

/**
 * `words` at CODE_VA in S-mode under Sv39, its 4 KiB pages on physical pages out of order (virtual page i
 * on physical page CODE_PAGE_ORDER[i], so virtual page 3 at page 2's host offset plus 4 KiB would be page
 * 1); RAM (with DATA) identity-mapped by a gigapage.
 */
function bootPaged(words: number[], jit: boolean): { vm: Vm; vcpu: Vcpu } {
  const vm = hv.createVm({ jit, jitThreshold: 1, jitBatch: 1 });
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, size: PAGED_RAM_SIZE });
  const mem = vm.guestMemory(RAM, PAGED_RAM_SIZE);
  const view = new DataView(mem.buffer, mem.byteOffset, mem.byteLength);
  const put64 = (pa: number, v: bigint) => view.setBigUint64(pa - RAM, v, true);
  const pte = (pa: number, flags: bigint) => (BigInt(pa >>> 12) << 10n) | flags;
  const [V, R, W, X, A, D] = [1n, 2n, 4n, 8n, 64n, 128n];
  const root = RAM + 0x10000, mid = RAM + 0x11000, table = RAM + 0x12000, code = RAM + 0x20000;
  put64(root + 2 * 8, pte(RAM, V | R | W | X | A | D));
  put64(root + 1 * 8, pte(mid, V));
  put64(mid, pte(table, V));
  const image = program(words);
  const pages = Math.ceil(image.length / 4096);
  for (let i = 0; i < pages; i++) {
    const pa = code + CODE_PAGE_ORDER[i]! * 4096;
    put64(table + i * 8, pte(pa, V | R | X | A));
    mem.set(image.subarray(i * 4096, (i + 1) * 4096), pa - RAM);
  }
  const data = vm.guestMemory(DATA, 8192);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + 11) & 0xff;
  const vcpu = vm.createVcpu(0);
  vcpu.reset(BigInt(CODE_VA));
  // The random code's rare misaligned AMO traps to M-mode, which steps over it (x31 is the handler's).
  const skip = [iType(0x341, 0, 2, 31, 0x73), iType(4, 31, 0, 31, 0x13), iType(0x341, 31, 1, 0, 0x73), 0x30200073];
  mem.set(program(skip), 0x13000);
  vcpu.setCsr(0x305, BigInt(RAM + 0x13000));
  vcpu.setCsr(0x180, (8n << 60n) | BigInt(root >>> 12));
  vcpu.setPrivilege('S');
  return { vm, vcpu };
}

function finalState(vm: Vm, vcpu: Vcpu): FinalState {
  const regs = vcpu.getRegs();
  return {
    x: [...regs.x],
    pc: regs.pc,
    instret: vcpu.getCsr(0xb02),
    mcause: vcpu.getCsr(0x342),
    data: [...vm.guestMemory(DATA, 8192)],
  };
}

function runBoth(
  words: number[], budgets: number[], jitBatch = 1, jitThreshold = 1, ramSize = RAM_SIZE,
): { interpreted: FinalState; translated: FinalState; compiled: number; vm: Vm } {
  const a = boot(words, false, 1, 1, ramSize);
  const b = boot(words, true, jitBatch, jitThreshold, ramSize);
  for (const budget of budgets) {
    a.vcpu.run(budget);
    b.vcpu.run(budget);
  }
  return { interpreted: finalState(a.vm, a.vcpu), translated: finalState(b.vm, b.vcpu), compiled: b.vcpu.jitStatistics.blocks, vm: b.vm };
}

/**
 * Runs the same machine interpreted and translated (`start(jit)` builds it) budget by budget, expects
 * the same final state, and returns the translated one (with how many blocks it compiled) and its VM.
 */
function runAlike(
  start: (jit: boolean) => { vm: Vm; vcpu: Vcpu }, budgets = [7, 333, 1001, 50_000],
): { translated: FinalState & { compiled: number }; vm: Vm } {
  const a = start(false);
  const b = start(true);
  for (const budget of budgets) {
    a.vcpu.run(budget);
    b.vcpu.run(budget);
  }
  const translated = finalState(b.vm, b.vcpu);
  expect(translated).toEqual(finalState(a.vm, a.vcpu));
  return { translated: { ...translated, compiled: b.vcpu.jitStatistics.blocks }, vm: b.vm };
}

describe('the block translator', () => {
  it('ends every random program in the interpreter\'s state, budget by budget', () => {
    let compiled = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const words = randomProgram(seed, 8 + (seed % 24), 50);
      // Odd budgets end slices inside blocks and loops; the last one runs the program to its end.
      const { interpreted, translated, compiled: n } = runBoth(words, [7, 333, 1001, 50_000]);
      expect(translated, `seed ${seed}`).toEqual(interpreted);
      compiled += n;
    }
    expect(compiled).toBeGreaterThan(40);
  });

  it('ends in the interpreter\'s state when regions take only the code already run often (threshold 16)', () => {
    // Above a threshold of 1 a region grows only into starts whose heat counters show visits, so which
    // blocks a region holds depends on the path taken so far: a branch to a start left out must leave.
    let compiled = 0;
    for (let seed = 201; seed <= 230; seed++) {
      const words = randomProgram(seed, 8 + (seed % 24), 400);
      const { interpreted, translated, compiled: n } = runBoth(words, [7, 333, 1001, 4099, 50_000, 400_000], 1, 16);
      expect(translated, `seed ${seed}`).toEqual(interpreted);
      compiled += n;
    }
    expect(compiled).toBeGreaterThan(100); // 195 at this threshold; 28 with one of 65535
  });

  it('ends in the interpreter\'s state when the code spans pages mapped out of order (blocks chain from page to page)', () => {
    // Loops of 2,100 to 2,500 instructions cover three code pages, which Sv39 maps onto physical pages out
    // of order: a block runs off the end of its page into the next, and the loop's jump goes back pages.
    // Translated blocks go on into the next page's block through the fetch TLB; had they kept the previous
    // page's host address, the fourth page would run the second's code (see bootPaged). The state after
    // every odd budget must be the interpreter's.
    let compiled = 0;
    for (let seed = 301; seed <= 306; seed++) {
      // The loop starts on the second page and reaches into the fourth. The hart runs in S-mode, so the
      // random M-mode CSR reads become NOPs.
      const random = randomProgram(seed, 2100 + (seed % 5) * 100, 12).map((w) => ((w & 0x7f) === 0x73 ? 0x13 : w));
      const setup = loopSetup(12).length;
      const words = [...random.slice(0, setup), ...new Array<number>(1024 - setup).fill(0x13), ...random.slice(setup)];
      expect(words.length, `seed ${seed}`).toBeGreaterThan(3 * 1024);
      const a = bootPaged(words, false);
      const b = bootPaged(words, true);
      for (const budget of [7, 333, 1001, 4099, 50_000]) {
        a.vcpu.run(budget);
        b.vcpu.run(budget);
      }
      const interpreted = finalState(a.vm, a.vcpu);
      expect(interpreted.pc, `seed ${seed} ran to its end`).toBe(BigInt(CODE_VA + (words.length - 1) * 4));
      expect(finalState(b.vm, b.vcpu), `seed ${seed}`).toEqual(interpreted);
      compiled += b.vcpu.jitStatistics.blocks;
    }
    expect(compiled).toBeGreaterThan(30);
  });

  it('compiles blocks in batches, running them interpreted until their batch is compiled', () => {
    // Many short slices: blocks join the batch as they get hot, and the batch is compiled when it is
    // old enough; the state must match the interpreter's all along.
    let compiled = 0;
    let modules = 0;
    for (let seed = 101; seed <= 110; seed++) {
      const words = randomProgram(seed, 24, 20_000);
      const a = boot(words, false);
      const b = boot(words, true, 128);
      for (let slice = 0; slice < 60; slice++) {
        a.vcpu.run(100_003);
        b.vcpu.run(100_003);
      }
      expect(finalState(b.vm, b.vcpu), `seed ${seed}`).toEqual(finalState(a.vm, a.vcpu));
      compiled += b.vcpu.jitStatistics.blocks;
      modules += b.vcpu.jitStatistics.modules;
    }
    expect(compiled).toBeGreaterThan(modules);
    expect(modules).toBeGreaterThan(0);
  });

  it('keeps translations across a FENCE.I when the code did not change', () => {
    // A loop that runs FENCE.I every iteration: each FENCE.I starts a new generation, and the loop's
    // blocks are checked against their code and kept, not translated again.
    const words = [
      iType(1000, 0, 0, LOOP, 0x13),
      iType(1, 7, 0, 7, 0x13), // loop: addi x7, x7, 1
      0x0000100f, // fence.i
      iType(-1, LOOP, 0, LOOP, 0x13),
      bType(-12, 0, LOOP, 1),
      jType(0, 0),
    ];
    const { vm, vcpu } = boot(words, true);
    vcpu.run(100_000);
    expect(vcpu.getRegs().x[7]).toBe(1000n);
    expect(vcpu.jitStatistics.blocks).toBeGreaterThan(0);
    expect(vcpu.jitStatistics.blocks).toBeLessThan(10);
  });

  it('enters a region at an inner block instead of translating that block again', () => {
    // A routine at 0x100 branches over an instruction to its tail at 0x10c, so the tail is a block of the
    // routine's region. After a loop of calls, an indirect jump goes to the tail itself: the region's
    // function must run from that block, with pc-relative values (auipc) of the tail's address. The same
    // jump to a copy of the tail that no region holds (0x200) needs a translation of its own.
    const program = (target: number): number[] => {
      const words = [
        iType(50, 0, 0, LOOP, 0x13), // x5 = 50
        jType(0x100 - 4, 1), // loop (at 4): jal ra, routine
        iType(-1, LOOP, 0, LOOP, 0x13),
        bType(-8, 0, LOOP, 1), // bnez x5, loop
        uType(RAM >>> 12, 11, 0x37), iType(32, 11, 1, 11, 0x13), iType(32, 11, 5, 11, 0x13), // x11 = RAM
        iType(target, 11, 0, 11, 0x13),
        iType(0, 11, 0, 1, 0x67), // jalr ra, x11 (at 32)
        jType(0, 0), // spin (at 36)
      ];
      const tail = [uType(0, 9, 0x17), rType(0, 9, 10, 0, 10, 0x33), 0x00008067]; // auipc x9, 0; add x10, x10, x9; ret
      while (words.length < 0x100 / 4) words.push(0x00000013);
      words.push(iType(1, 7, 0, 7, 0x13), bType(8, 0, 7, 1), iType(100, 7, 0, 7, 0x13), ...tail); // routine; tail at 0x10c
      while (words.length < 0x200 / 4) words.push(0x00000013);
      words.push(...tail);
      return words;
    };
    const compiled: number[] = [];
    for (const target of [0x10c, 0x200]) {
      const { interpreted, translated, compiled: n } = runBoth(program(target), [1000]);
      expect(translated, `jump to 0x${target.toString(16)}`).toEqual(interpreted);
      expect(translated.pc).toBe(BigInt(RAM + 36));
      expect(translated.x[9]).toBe(BigInt(RAM + target));
      compiled.push(n);
    }
    expect(compiled[1]).toBe(compiled[0]! + 1);
  });

  it('forgets a region\'s entry points when its cache entry is taken, so a later translation of the same start cannot be entered at the wrong block', () => {
    // Routine A: `bltz a0, F; bnez a0, C; x11 += 1; j D; C: x11 += 100; D: x12 += 1; F: ret`. Called
    // with a0 = -1, then 0, until hot, its region holds A, F and D (C never ran), and D becomes an entry
    // point at block 2. Two routines E1 and E2 whose starts share A's cache set then take the set, E2
    // evicting A. Calls with a0 = 1 (which reach D by falling through from C, so nothing visits D's entry
    // point) make C warm and A hot again, and A is translated back into the same entry: same start, same
    // bytes, but now blocks A, F, C, D. A call to D must run D only; an entry point kept from the first
    // translation would run C first (x11 one hundred too high).
    const threshold = 16;
    const ramSize = 1 << 20;
    const A = 0x1000;
    const host = boot([], true, 1, threshold, ramSize).vm.guestMemory(RAM, 4).byteOffset;
    // The core's hashes (assembly/jit/heat.ts spread): the cache set and the heat counter of a start.
    const spread = (offset: number, slots: number) => Math.imul((host + offset) >>> 1, 0x9e3779b1) >>> (32 - Math.log2(slots));
    const setOf = (offset: number) => spread(offset, layout.JIT_ENTRIES / 2);
    const counterOf = (offset: number) => spread(offset, layout.JIT_HEAT_COUNTERS);
    const used = new Set([A, A + 16, A + 20, A + 24].map(counterOf));
    const AGAIN = threshold / 2 + 2; // calls with a0 = 1: enough to make A hot again from half its count
    const sharers: number[] = [];
    for (let at = 0x2000; at < ramSize && sharers.length < 2; at += 4) {
      const clear = at >= DATA - RAM + 0x2000 || at + 8 <= DATA - RAM; // boot() fills DATA
      if (clear && setOf(at) === setOf(A) && !used.has(counterOf(at)) && (sharers.length === 0 || at >= sharers[0]! + 8)) sharers.push(at);
    }
    expect(sharers).toHaveLength(2);
    const [E1, E2] = sharers as [number, number];
    const words: number[] = [];
    const at = () => words.length * 4;
    const call = (target: number) => words.push(jType(target - at(), 1));
    const loop = (count: number, body: () => void) => {
      words.push(iType(count, 0, 0, LOOP, 0x13));
      const top = at();
      body();
      words.push(iType(-1, LOOP, 0, LOOP, 0x13));
      words.push(bType(top - at(), 0, LOOP, 1));
    };
    loop(4, () => { words.push(iType(-1, 0, 0, 10, 0x13)); call(A); });
    loop(threshold, () => { words.push(iType(0, 0, 0, 10, 0x13)); call(A); });
    // One more call each: a start on a page the fetch TLB does not hold yet is not counted.
    loop(threshold + 1, () => call(E1));
    loop(threshold + 1, () => call(E2));
    call(E1); // E1's way becomes the recent one: A comes back into the way E2 took from it
    loop(AGAIN, () => { words.push(iType(1, 0, 0, 10, 0x13)); call(A); });
    call(A + 20); // D
    words.push(jType(0, 0));
    const place = (offset: number, code: number[]) => {
      while (words.length < offset / 4) words.push(0x00000013);
      words.splice(offset / 4, code.length, ...code);
    };
    const ret = 0x00008067;
    place(A, [bType(24, 0, 10, 4), bType(12, 0, 10, 1), iType(1, 11, 0, 11, 0x13), jType(8, 0), iType(100, 11, 0, 11, 0x13), iType(1, 12, 0, 12, 0x13), ret]);
    for (const e of [E1, E2]) place(e, [iType(1, 13, 0, 13, 0x13), ret]);

    const { interpreted, translated, vm } = runBoth(words, [1_000_000], 1, threshold, ramSize);
    expect(translated).toEqual(interpreted);
    expect(translated.x[11]).toBe(BigInt(threshold + 100 * AGAIN));
    expect(translated.x[12]).toBe(BigInt(threshold + AGAIN + 1));
    // The scenario happened as planned: A's start is cached in the set computed above.
    const cache = new DataView(vm.memory.buffer, layout.JIT_STATE + layout.JIT_CACHE + setOf(A) * 2 * layout.JIT_ENTRY_SIZE);
    const keys = [0, 1].map((way) => cache.getUint32(way * layout.JIT_ENTRY_SIZE + layout.JIT_KEY, true));
    expect(keys).toContain(host + A);
  });

  it('refuses thresholds and batch sizes out of range', () => {
    expect(() => hv.createVm({ jitThreshold: 0 })).toThrow(/jitThreshold: must be a whole number from 1 to 65535/);
    expect(() => hv.createVm({ jitThreshold: 70000 })).toThrow(/jitThreshold/);
    expect(() => hv.createVm({ jitBatch: 0 })).toThrow(/jitBatch: must be a whole number from 1 to 128/);
    expect(() => hv.createVm({ jitBatch: 1.5 })).toThrow(/jitBatch/);
  });

  it('reports no module the host failed to compile', () => {
    const { vm, vcpu } = boot(randomProgram(7, 30, 20), true);
    vcpu.run(100_000);
    expect(vcpu.jitStatistics.failed).toBe(0);
    expect(vm.jitCompileError).toBeNull();
    expect(vcpu.jitStatistics.blocks).toBeGreaterThan(0);
  });

  it('translates sstatus.SIE reads, sets and clears, taking an interrupt right after the instruction that enables it', () => {
    // Linux's irq save / restore / enable / disable in S-mode, with a supervisor software interrupt
    // raised while SIE is clear: it must be taken right after the instruction that sets SIE again (sepc),
    // whether that instruction ran translated or interpreted. SUM changes are the interpreter's.
    const csr = (f3: number, rd: number, rs1OrImm: number, num = 0x100) => iType(num, rs1OrImm, f3, rd, 0x73);
    const SUM = 15; // x15 = sstatus.SUM
    const loop = [
      csr(7, 10, 2), // csrrci a0, sstatus, SIE      (irq save)
      csr(6, 0, 2, 0x144), // csrrsi x0, sip, SSIP: pending, not deliverable
      csr(2, 11, 0), // csrr a1, sstatus
      iType(2, 10, 7, 12, 0x13), // andi a2, a0, SIE
      csr(2, 0, 12), // csrs sstatus, a2              (irq restore): the interrupt comes here
      csr(3, 14, SUM), // csrrc a4, sstatus, x15    (SUM: left to the interpreter)
      csr(2, 0, SUM), // csrs sstatus, x15
      csr(7, 0, 2), // csrci sstatus, SIE
      csr(6, 0, 2, 0x144), // csrsi sip, SSIP
      csr(6, 13, 2), // csrrsi a3, sstatus, SIE    (irq enable): and here
      iType(1, 16, 0, 16, 0x13), // addi x16, x16, 1
      iType(-1, LOOP, 0, LOOP, 0x13),
    ];
    const words = [iType(300, 0, 0, LOOP, 0x13), uType(0x40, SUM, 0x37), ...loop];
    words.push(bType(-4 * loop.length, 0, LOOP, 1), jType(0, 0));
    const handler = words.length * 4;
    words.push(
      iType(1, 20, 0, 20, 0x13), // addi x20, x20, 1
      csr(2, 21, 0, 0x141), // csrr x21, sepc
      rType(0, 21, 22, 0, 22, 0x33), // add x22, x22, x21
      csr(7, 0, 2, 0x144), // csrci sip, SSIP
      0x10200073, // sret
    );
    const start = (jit: boolean) => {
      const { vm, vcpu } = boot(words, jit);
      vcpu.setCsr(0x303, 2n); // mideleg: SSIP
      vcpu.setCsr(0x104, 2n); // sie.SSIE
      vcpu.setCsr(0x105, BigInt(RAM + handler)); // stvec
      vcpu.setCsr(0x100, 0x6002n); // sstatus: FS dirty (so SD reads set), SIE
      vcpu.setPrivilege('S');
      return { vm, vcpu };
    };
    const { translated, vm } = runAlike(start);
    expect(translated.compiled).toBeGreaterThan(0);
    const x = translated.x;
    expect(x[16]).toBe(300n);
    expect(x[20]).toBe(600n); // two interrupts per iteration...
    const loopStart = RAM + 8;
    expect(x[22]).toBe(300n * BigInt(2 * loopStart + 4 * 5 + 4 * 10)); // ...each right after the instruction that set SIE
    expect(x[11]! >> 63n).toBe(1n); // SD: FS is dirty
    expect(x[11]! & 2n).toBe(0n); // read with SIE clear
    expect(x[11]! & (1n << 18n)).toBe(1n << 18n); // SUM, set again by the interpreter
  });

  it('leaves sstatus writes of other bits than SIE (SUM) to the interpreter, which switches the data TLB', () => {
    // S-mode under Sv39 reads a user page only while SUM is set: a SUM write the translated code did
    // itself, without the interpreter's TLB switch, would fault the load or let the last one through.
    const USER_PAGE = 10; // virtual page CODE_VA + 10 pages: DATA, user-accessible
    const words = [
      uType((CODE_VA + USER_PAGE * 4096) >>> 12, 6, 0x37), // x6 = the user page
      uType(0x40, 7, 0x37), // x7 = sstatus.SUM
      iType(100, 0, 0, LOOP, 0x13),
      iType(0x100, 7, 2, 0, 0x73), // loop: csrs sstatus, x7
      iType(0, 6, 3, 10, 0x03), // ld x10, 0(x6)
      rType(0, 10, 11, 0, 11, 0x33), // add x11, x11, x10
      iType(0x100, 7, 3, 0, 0x73), // csrc sstatus, x7
      iType(-1, LOOP, 0, LOOP, 0x13),
      bType(-20, 0, LOOP, 1),
      iType(0, 6, 3, 12, 0x03), // ld x12, 0(x6): SUM is clear, a load page fault (M steps over it)
      jType(0, 0),
    ];
    const start = (jit: boolean) => {
      const booted = bootPaged(words, jit);
      const pteAt = RAM + 0x12000 + USER_PAGE * 8; // bootPaged's level-0 table
      const [V, R, W, U, A, D] = [1n, 2n, 4n, 16n, 64n, 128n];
      const view = booted.vm.guestMemory(pteAt, 8);
      new DataView(view.buffer, view.byteOffset, 8).setBigUint64(0, (BigInt(DATA >>> 12) << 10n) | V | R | W | U | A | D, true);
      return booted;
    };
    const { translated, vm } = runAlike(start);
    const first = new DataView(vm.guestMemory(DATA, 8).buffer, vm.guestMemory(DATA, 8).byteOffset, 8).getBigUint64(0, true);
    expect(translated.x[11]).toBe(BigInt.asUintN(64, 100n * first));
    expect(translated.x[12]).toBe(0n);
    expect(translated.mcause).toBe(13n);
  });

  it('leaves an sstatus access in U-mode to the interpreter, which raises illegal instruction', () => {
    // The same code page, translated while it ran in S-mode, is then run in U-mode: translations follow
    // host addresses, not privilege, so the translated code itself must refuse.
    const words = [
      iType(1, 16, 0, 16, 0x13), // loop: addi x16, x16, 1
      iType(0x100, 0, 2, 11, 0x73), // csrr a1, sstatus
      jType(-8, 0),
      jType(0, 0), // M-mode's trap handler: spin
    ];
    const { vcpu } = boot(words, true);
    vcpu.setCsr(0x305, BigInt(RAM + 12));
    vcpu.setPrivilege('S');
    vcpu.run(5000);
    expect(vcpu.jitStatistics.blocks).toBeGreaterThan(0);
    expect(vcpu.getCsr(0x342)).toBe(0n); // no trap in S-mode
    const counted = vcpu.getRegs().x[16]!;
    vcpu.setPrivilege('U');
    vcpu.setRegs({ pc: BigInt(RAM) });
    vcpu.run(5000);
    expect(vcpu.getRegs().x[16]).toBe(counted + 1n); // the first csrr traps
    expect(vcpu.getCsr(0x342)).toBe(2n); // illegal instruction, taken to M
    expect(vcpu.getCsr(0x341)).toBe(BigInt(RAM + 4));
    expect(vcpu.privilege).toBe('M');
  });

  it('runs rewritten code after FENCE.I, and the translation before it until then', () => {
    // A hot loop calls a routine that sets x10 to 1; the loop then rewrites the routine to set 2.
    // Before FENCE.I a hart may still run the old code; after it, it must run the new code.
    const routine = 0x200; // byte offset of the routine
    const newInsn = iType(2, 0, 0, 10, 0x13); // addi x10, x0, 2
    const words: number[] = [
      iType(20, 0, 0, LOOP, 0x13), // x5 = 20
      uType(RAM >>> 12, BASE, 0x37), iType(32, BASE, 1, BASE, 0x13), iType(32, BASE, 5, BASE, 0x13), // x6 = RAM
      // loop: call the routine, count down
      jType(routine - 16, 1), // jal ra, routine   (at 16)
      iType(-1, LOOP, 0, LOOP, 0x13),
      bType(-8, 0, LOOP, 1),
      // rewrite the routine's first instruction, then fence.i, then call it once more
      uType(newInsn >>> 12, 11, 0x37), iType(newInsn & 0xfff, 11, 0, 11, 0x13), // x11 = addi x10, x0, 2 (+ sign fix below)
      iType(32, 11, 1, 11, 0x13), iType(32, 11, 5, 11, 0x13),
      sType(routine, 11, BASE, 2), // sw x11, routine(x6)
      0x0000100f, // fence.i
      jType(routine - 4 * 13, 1), // jal ra, routine   (at 52)
      jType(0, 0), // spin (at 56)
    ];
    while (words.length < routine / 4) words.push(0x00000013);
    words.push(iType(1, 0, 0, 10, 0x13), 0x00008067); // routine: addi x10, x0, 1; ret
    // newInsn's low 12 bits are 0x513, positive, so lui+addi build it exactly.
    expect(newInsn & 0x800).toBe(0);
    const { vm, vcpu } = boot(words, true);
    vcpu.run(10_000);
    expect(vcpu.getRegs().x[10]).toBe(2n);
    expect(vcpu.getRegs().pc).toBe(BigInt(RAM + 56));
    expect(vcpu.jitStatistics.blocks).toBeGreaterThan(0);
  });
});
