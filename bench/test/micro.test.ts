// The microbenchmark loops run on the real core: each must do the work it claims (its own verify passes
// after a few steps), and verify must notice when guest state says otherwise.
import { beforeAll, describe, expect, it } from 'vitest';
import { Hypervisor } from '../../host/kvm/hypervisor.js';
import { MICRO_BENCHMARKS, timesExecuted } from '../lib/micro_programs.js';
import { runMicroBenchmarks } from '../lib/micro.js';
import { createBenchVm, register, setRegisters, RAM_BASE } from '../lib/bench_vm.js';
import { buildSv39IdentityMap, SMALL_PAGES_BASE, SMALL_PAGES_BYTES } from '../lib/sv39.js';
import { BenchError, BenchGuestError } from '../lib/errors.js';
import { CodeBuffer, R, jal, ld } from '../lib/rv64_asm.js';

let hypervisor: Hypervisor;
beforeAll(async () => {
  hypervisor = await Hypervisor.create();
});

describe('timesExecuted', () => {
  it('counts complete iterations plus the partial one up to the instruction', () => {
    expect(timesExecuted(0, 7, 3)).toBe(0);
    expect(timesExecuted(3, 7, 3)).toBe(0);
    expect(timesExecuted(4, 7, 3)).toBe(1);
    expect(timesExecuted(14, 7, 3)).toBe(2);
    expect(timesExecuted(18, 7, 3)).toBe(3);
  });
});

describe('each microbenchmark', () => {
  for (const benchmark of MICRO_BENCHMARKS) {
    it(`${benchmark.name}: runs and verifies`, () => {
      const instance = benchmark.create(hypervisor);
      for (let i = 0; i < 3; i++) instance.step();
      expect(() => instance.verify()).not.toThrow();
    });
  }
});

describe('verify notices guest state that contradicts the benchmark', () => {
  const byName = (prefix: string) => MICRO_BENCHMARKS.find((b) => b.name.startsWith(prefix))!;

  it('alu loop: a counter that does not match the instructions retired', () => {
    const instance = byName('alu loop').create(hypervisor);
    instance.step();
    setRegisters(instance.guest.vcpu, { [R.t0]: register(instance.guest.vcpu, R.t0) + 1n });
    expect(() => instance.verify()).toThrow(BenchGuestError);
  });

  it('load/store loop: a buffer changed behind the guest', () => {
    const instance = byName('load/store 64 KiB (M, bare)').create(hypervisor);
    instance.step();
    instance.guest.view(RAM_BASE + 0x1_0000, 8).setBigUint64(0, 1000n, true);
    expect(() => instance.verify()).toThrow(/sum of the buffer/);
  });

  it('TLB-miss loop: loads that did not read the page-start marker', () => {
    const instance = byName('sv39 loads, 4 KiB stride').create(hypervisor);
    instance.step();
    setRegisters(instance.guest.vcpu, { [R.t6]: 0 });
    expect(() => instance.verify()).toThrow(/ones loaded/);
  });

  it('MMIO write loop: a guest that is not where the exits left it', () => {
    const instance = byName('MMIO write').create(hypervisor);
    instance.step();
    setRegisters(instance.guest.vcpu, { [R.t0]: 5 });
    expect(() => instance.verify()).toThrow(BenchGuestError);
  });
});

describe('the Sv39 identity map', () => {
  it('translates the 4 KiB pages and the megapage to the same physical addresses', () => {
    const guest = createBenchVm(hypervisor);
    // ld t2, 0(t4) from S-mode through the tables; the dword at the target says which page was read.
    guest.load(RAM_BASE, new CodeBuffer().emit(ld(R.t2, R.t4, 0)).toBytes());
    guest.view(SMALL_PAGES_BASE + 0x3000, 8).setBigUint64(0, 0x1234_5678n, true);
    guest.vcpu.reset(BigInt(RAM_BASE));
    setRegisters(guest.vcpu, { [R.t4]: SMALL_PAGES_BASE + 0x3000 });
    guest.vcpu.setCsr(0x180, buildSv39IdentityMap(guest));
    guest.vcpu.setPrivilege('S');
    expect(guest.vcpu.run(1).reason).toBe('budget');
    expect(register(guest.vcpu, R.t2)).toBe(0x1234_5678n);
    expect(guest.vcpu.privilege).toBe('S');
  });

  it('faults (no exit, no value) on an address it does not map', () => {
    const guest = createBenchVm(hypervisor);
    const handler = RAM_BASE + 0x100;
    guest.load(RAM_BASE, new CodeBuffer().emit(ld(R.t2, R.t4, 0)).toBytes());
    guest.load(handler, new CodeBuffer().emit(jal(R.zero, 0)).toBytes());
    guest.vcpu.reset(BigInt(RAM_BASE));
    guest.vcpu.setCsr(0x305, BigInt(handler)); // mtvec
    setRegisters(guest.vcpu, { [R.t4]: SMALL_PAGES_BASE + SMALL_PAGES_BYTES, [R.t2]: 7 }); // just past the 4 KiB pages
    guest.vcpu.setCsr(0x180, buildSv39IdentityMap(guest));
    guest.vcpu.setPrivilege('S');
    expect(guest.vcpu.run(1).reason).toBe('budget');
    expect(guest.vcpu.pc).toBe(BigInt(handler));
    expect(register(guest.vcpu, R.t2)).toBe(7n);
    expect(guest.vcpu.getCsr(0x342)).toBe(13n); // load page fault, taken in M-mode (nothing delegated)
  });
});

describe('runMicroBenchmarks', () => {
  it('reports MIPS for loops and ns per exit for exits, from tinybench timings', async () => {
    const results = await runMicroBenchmarks({ hypervisor, timeMs: 50, filter: 'alu loop' });
    expect(results).toHaveLength(1);
    const [alu] = results;
    expect(alu!.unit).toBe('instruction');
    expect(alu!.mips).toBeCloseTo(1000 / alu!.nsPerUnit, 6);
    expect(alu!.samples).toBeGreaterThan(0);
    const [exit] = await runMicroBenchmarks({ hypervisor, timeMs: 50, filter: 'MMIO write' });
    expect(exit!.mips).toBeNull();
    expect(exit!.nsPerUnit).toBeCloseTo((exit!.stepMs * 1e6) / 1000, 6);
  });

  it('refuses a filter that matches nothing', async () => {
    await expect(runMicroBenchmarks({ hypervisor, timeMs: 50, filter: 'no such benchmark' })).rejects.toThrow(BenchError);
  });
});
