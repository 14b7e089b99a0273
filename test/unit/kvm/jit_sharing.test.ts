// Translations shared between harts (SMP): each vCPU thread runs its own instance of the core with its own
// function table, and a module of translated blocks one compiles is adopted by the others. Here two
// instances over one VM's memory stand for two vCPU threads: hart 0 runs and compiles on one, its batches
// go to hart 1 on the other.
import { describe, it, expect, beforeAll } from 'vitest';
import { Hypervisor, realTimeClock, type Vm, type Vcpu } from '../../../host/kvm/index.js';
import { createCoreInstance, type CoreInstance, type TranslatedBatch } from '../../../host/kvm/core.js';
import { asm, program } from '../../helpers/asm.js';
import * as layout from '../../../assembly/abi/layout.js';

const RAM = 0x8000_0000;
const ROUTINE_STEP = 0x100; // address of the routine's `addi x7, x7, 1`
const BUDGETS = [7, 333, 1001, 20_000];

/**
 * A loop of calls to a routine that branches over an instruction to its tail (so the tail is an inner
 * block of the routine's region), then an indirect jump to that tail: run on a hart that did not
 * translate it, the tail must be entered through the adopted region's entry point.
 */
function callLoop(step = 1): number[] {
  const words = [
    asm.addi(5, 0, 50), // x5 = 50
    asm.jal(1, 0x100 - 4), // loop (at 4): jal ra, routine
    asm.addi(5, 5, -1),
    asm.bne(5, 0, -8),
    asm.auipc(11, 0), // at 0x10
    asm.addi(11, 11, 0x10c - 0x10),
    asm.jalr(1, 11, 0), // jalr ra, 0x10c
    asm.jal(0, 0), // spin (at 0x1c)
  ];
  while (words.length < 0x100 / 4) words.push(asm.addi(0, 0, 0));
  words.push(asm.addi(7, 7, step), asm.bne(7, 0, 8), asm.addi(7, 7, 100)); // routine
  words.push(asm.auipc(9, 0), asm.add(10, 10, 9), asm.jalr(0, 1, 0)); // tail at 0x10c: x10 += its own address; ret
  return words;
}

let hv: Hypervisor;
beforeAll(async () => {
  hv = await Hypervisor.create();
});

interface TwoThreads {
  vm: Vm;
  harts: Vcpu[];
  /** Hart 0's instance; every batch it compiles lands in `batches`. */
  first: CoreInstance;
  second: CoreInstance;
  batches: TranslatedBatch[];
}

function twoThreads(words: number[]): TwoThreads {
  const vm = hv.createVm({ vcpus: 2, jit: true, jitThreshold: 1, jitBatch: 1 });
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, size: 1 << 16 });
  vm.guestMemory(RAM, words.length * 4).set(program(words));
  const harts = [0, 1].map((id) => vm.createVcpu(id));
  for (const hart of harts) hart.reset(BigInt(RAM));
  const batches: TranslatedBatch[] = [];
  const clock = realTimeClock(vm.epochMs);
  const first = createCoreInstance(vm.module, vm.memory, clock, { onCompiled: (batch) => batches.push(batch) });
  const second = createCoreInstance(vm.module, vm.memory, clock);
  return { vm, harts, first, second, batches };
}

function runBudgets(instance: CoreInstance, hartId: number): void {
  for (const budget of BUDGETS) expect(instance.exports.run(hartId, budget)).toBe(layout.EXIT_BUDGET);
}

function hartState(vcpu: Vcpu) {
  return { regs: vcpu.getRegs(), instret: vcpu.instructionsRetired };
}

describe('translations shared between harts', () => {
  it('runs another hart\'s translations without translating the code again, entry points included', () => {
    const { vm, harts, first, second, batches } = twoThreads(callLoop());
    runBudgets(first, 0);
    expect(harts[0]!.jitStatistics.blocks).toBeGreaterThan(0);
    expect(batches).toHaveLength(harts[0]!.jitStatistics.modules);

    const adopted = batches.reduce((sum, batch) => sum + second.adopt(1, batch), 0);
    expect(adopted).toBe(harts[0]!.jitStatistics.blocks);
    runBudgets(second, 1);
    expect(hartState(harts[1]!)).toEqual(hartState(harts[0]!));
    expect(harts[1]!.getRegs().x[10]).toBe(50n * BigInt(RAM + 0x10c) + BigInt(RAM + 0x10c));
    // Every start hart 1 reached, the tail at 0x10c too, was one hart 0 had translated.
    expect(harts[1]!.jitStatistics).toMatchObject({ blocks: 0, modules: 0, adopted });
  });

  it('checks an adopted region against the code in memory before it runs, and translates changed code itself', () => {
    const { vm, harts, first, second, batches } = twoThreads(callLoop(1));
    runBudgets(first, 0);
    // The routine changes after hart 0 translated it (hart 1 has never run it, so no FENCE.I is owed).
    vm.guestMemory(RAM + ROUTINE_STEP, 4).set(program([asm.addi(7, 7, 3)]));
    for (const batch of batches) second.adopt(1, batch);
    runBudgets(second, 1);

    const reference = hv.createVm({ jit: false });
    reference.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, size: 1 << 16 });
    reference.guestMemory(RAM, 0x120).set(program(callLoop(3)));
    const vcpu = reference.createVcpu(0);
    vcpu.reset(BigInt(RAM));
    for (const budget of BUDGETS) vcpu.run(budget);
    expect(hartState(harts[1]!)).toEqual({ regs: vcpu.getRegs(), instret: vcpu.instructionsRetired });
    expect(harts[1]!.getRegs().x[7]).toBe(150n);
    expect(harts[1]!.jitStatistics.blocks).toBeGreaterThan(0);
  });

  it('keeps what a hart already holds: a batch adopted twice goes in once', () => {
    const { vm, harts, first, second, batches } = twoThreads(callLoop());
    runBudgets(first, 0);
    const once = batches.reduce((sum, batch) => sum + second.adopt(1, batch), 0);
    expect(once).toBeGreaterThan(0);
    expect(batches.reduce((sum, batch) => sum + second.adopt(1, batch), 0)).toBe(0);
    expect(harts[1]!.jitStatistics.adopted).toBe(once);
  });

  it('ignores what is not a batch of this VM\'s translations, and the hart runs on', () => {
    const { vm, harts, first, second, batches } = twoThreads(callLoop());
    runBudgets(first, 0);
    const batch = batches[0]!;
    const empty = new WebAssembly.Module(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
    expect(second.adopt(1, { ...batch, module: empty })).toBe(0); // exports no functions
    expect(second.adopt(1, { ...batch, records: batch.records.subarray(0, 20) })).toBe(0); // not whole records
    expect(second.adopt(1, { ...batch, blocks: new Uint8Array(0) })).toBe(0); // records name blocks it lacks
    expect(second.adopt(layout.MAX_HARTS, batch)).toBe(0);
    expect(harts[1]!.jitStatistics.adopted).toBe(0);
    runBudgets(second, 1);
    expect(hartState(harts[1]!)).toEqual(hartState(harts[0]!));
  });
});
