// The microbenchmarks: small guest loops assembled straight into a bare VM's RAM and run through the KVM
// API. Each isolates one cost of the core (the dispatch loop, compressed decode, the TLB hit path, page
// walks, calls) or of the exit path (an MMIO round trip through JS, an empty run() call). Each also
// checks afterwards, from guest state, that the loop really did what it is said to measure.
import type { Hypervisor } from '../../host/kvm/hypervisor.js';
import type { Vcpu } from '../../host/kvm/vcpu.js';
import type { VcpuExit } from '../../host/kvm/exits.js';
import { createBenchVm, register, setRegisters, RAM_BASE, type BenchVm } from './bench_vm.js';
import { buildSv39IdentityMap, SMALL_PAGES_BASE, SMALL_PAGES_BYTES } from './sv39.js';
import { TLB_ENTRIES } from '../../assembly/abi/layout.js';
import { BenchGuestError } from './errors.js';
import { CodeBuffer, R, add, addi, and, bne, cAddi, cBnez, jal, jalr, ld, lw, sd, sw } from './rv64_asm.js';

/** Guest instructions per run() in the throughput loops: VirtMachine's default slice. */
export const SLICE_INSTRUCTIONS = 1_000_000;
/** Exits (or run() calls) per timed step in the exit-path benchmarks, to keep timer overhead out. */
export const EXITS_PER_STEP = 1000;
/** Guest-physical address with no RAM behind it in the bench VM: every access is an MMIO exit. */
const UNMAPPED = 0x1000_0000;
const BUFFER_64K = RAM_BASE + 0x1_0000;

export type MicroUnit = 'instruction' | 'exit' | 'run() call';

export interface MicroInstance {
  /** The VM the loop runs in. */
  readonly guest: BenchVm;
  /** One timed step: `unitsPerStep` units of work. */
  step(): void;
  /** Throws BenchGuestError unless the guest state shows the loop did the work the benchmark claims. */
  verify(): void;
}

export interface MicroBenchmark {
  readonly name: string;
  readonly measures: string;
  readonly unit: MicroUnit;
  readonly unitsPerStep: number;
  create(hypervisor: Hypervisor): MicroInstance;
}

/** How many times the instruction at `index` of an n-instruction loop body ran in `executed` instructions. */
export function timesExecuted(executed: number, bodyLength: number, index: number): number {
  return Math.floor(executed / bodyLength) + (executed % bodyLength > index ? 1 : 0);
}

function expectEqual(benchmark: string, what: string, actual: bigint | number, expected: bigint | number): void {
  if (BigInt(actual) !== BigInt(expected)) throw new BenchGuestError(benchmark, `${what} is ${actual}, expected ${expected}`);
}

function expectBudgetExit(benchmark: string, exit: VcpuExit, vcpu: Vcpu): void {
  if (exit.reason !== 'budget') {
    throw new BenchGuestError(benchmark, `run() ended with a ${exit.reason} exit at pc 0x${vcpu.pc.toString(16)}, not with the budget spent`);
  }
}

interface LoopSpec {
  readonly code: CodeBuffer;
  readonly supervisorSv39?: boolean;
  readonly registers?: Readonly<Record<number, bigint | number>>;
  readonly prepare?: (guest: BenchVm) => void;
}

function startLoop(hypervisor: Hypervisor, spec: LoopSpec): BenchVm {
  const guest = createBenchVm(hypervisor);
  guest.load(RAM_BASE, spec.code.toBytes());
  spec.prepare?.(guest);
  guest.vcpu.reset(BigInt(RAM_BASE));
  if (spec.registers) setRegisters(guest.vcpu, spec.registers);
  if (spec.supervisorSv39) {
    guest.vcpu.setCsr(0x180, buildSv39IdentityMap(guest));
    guest.vcpu.setPrivilege('S');
  }
  return guest;
}

/** A loop run in SLICE_INSTRUCTIONS slices; `check` inspects the guest after the instructions it ran. */
function throughputBenchmark(
  name: string,
  measures: string,
  spec: () => LoopSpec,
  check: (guest: BenchVm, executed: number) => void,
): MicroBenchmark {
  return {
    name,
    measures,
    unit: 'instruction',
    unitsPerStep: SLICE_INSTRUCTIONS,
    create(hypervisor) {
      const guest = startLoop(hypervisor, spec());
      return {
        guest,
        step: () => expectBudgetExit(name, guest.vcpu.run(SLICE_INSTRUCTIONS), guest.vcpu),
        verify: () => check(guest, Number(guest.vcpu.instructionsRetired)),
      };
    },
  };
}

function sumDwords(guest: BenchVm, addr: number, bytes: number): bigint {
  const view = guest.view(addr, bytes);
  let sum = 0n;
  for (let i = 0; i < bytes; i += 8) sum += view.getBigUint64(i, true);
  return sum;
}

// addi t0, t0, 1; bne t0, zero, loop
const aluLoop = (): LoopSpec => ({ code: new CodeBuffer().emit(addi(R.t0, R.t0, 1), bne(R.t0, R.zero, -4)) });

// ld/addi/sd over a 64 KiB buffer, one dword per iteration: 7 instructions, 2 memory accesses.
function loadStoreLoop(base: number, supervisorSv39: boolean): LoopSpec {
  const code = new CodeBuffer().emit(
    add(R.t5, R.t4, R.t0),
    ld(R.t2, R.t5, 0),
    addi(R.t2, R.t2, 1),
    sd(R.t2, R.t5, 0),
    addi(R.t0, R.t0, 8),
    and(R.t0, R.t0, R.a0),
    jal(R.zero, -24),
  );
  return { code, supervisorSv39, registers: { [R.t4]: base, [R.t0]: 0, [R.a0]: 0xffff } };
}

function checkLoadStore(name: string, base: number) {
  return (guest: BenchVm, executed: number) =>
    expectEqual(name, 'sum of the buffer (one increment per sd)', sumDwords(guest, base, 0x1_0000), timesExecuted(executed, 7, 3));
}

// Loads at `stride` across `span` bytes of 4 KiB pages, each page's first dword 1 (so t6 counts loads).
function strideLoadLoop(stride: number, span: number): LoopSpec {
  const code = new CodeBuffer().emit(
    add(R.t5, R.t4, R.t0),
    ld(R.t2, R.t5, 0),
    add(R.t6, R.t6, R.t2),
    add(R.t0, R.t0, R.t3),
    and(R.t0, R.t0, R.a0),
    jal(R.zero, -20),
  );
  return {
    code,
    supervisorSv39: true,
    registers: { [R.t4]: SMALL_PAGES_BASE, [R.t0]: 0, [R.t3]: stride, [R.a0]: span - 1, [R.t6]: 0 },
    prepare: (guest) => {
      const view = guest.view(SMALL_PAGES_BASE, span);
      for (let offset = 0; offset < span; offset += stride) view.setBigUint64(offset, offset % 4096 === 0 ? 1n : 0n, true);
    },
  };
}

function checkStrideLoads(name: string, stride: number) {
  return (guest: BenchVm, executed: number) => {
    const loads = timesExecuted(executed, 6, 2);
    // Only loads at a page start read 1.
    const perPage = 4096 / Math.min(stride, 4096);
    expectEqual(name, 't6 (ones loaded)', register(guest.vcpu, R.t6), Math.floor((loads + perPage - 1) / perPage));
  };
}

/** An exit-path benchmark: EXITS_PER_STEP round trips per step, each checked as it comes. */
function exitBenchmark(name: string, measures: string, unit: MicroUnit, spec: () => LoopSpec,
  roundTrip: (guest: BenchVm, index: number) => void, check: (guest: BenchVm, roundTrips: number) => void): MicroBenchmark {
  return {
    name,
    measures,
    unit,
    unitsPerStep: EXITS_PER_STEP,
    create(hypervisor) {
      const guest = startLoop(hypervisor, spec());
      let done = 0;
      return {
        guest,
        step: () => {
          for (let i = 0; i < EXITS_PER_STEP; i++) roundTrip(guest, done++);
        },
        verify: () => check(guest, done),
      };
    },
  };
}

function expectMmio(name: string, exit: VcpuExit, isWrite: boolean): Extract<VcpuExit, { reason: 'mmio' }> {
  if (exit.reason !== 'mmio' || exit.isWrite !== isWrite || exit.addr !== UNMAPPED) {
    throw new BenchGuestError(name, `expected an MMIO ${isWrite ? 'write' : 'read'} exit at 0x${UNMAPPED.toString(16)}, got ${JSON.stringify(exit, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`);
  }
  return exit;
}

export const MICRO_BENCHMARKS: readonly MicroBenchmark[] = [
  throughputBenchmark('alu loop (addi/bne)', 'the dispatch loop: fetch through the fetch-page cache, decode, one ALU op, a taken branch',
    aluLoop,
    (guest, executed) => expectEqual('alu loop', 't0', register(guest.vcpu, R.t0), timesExecuted(executed, 2, 0))),
  throughputBenchmark('rvc loop (c.addi/c.bnez)', 'the same loop from compressed instructions (RVC expansion table lookup)',
    () => ({ code: new CodeBuffer().emitCompressed(cAddi(R.a0, 1), cBnez(R.a0, -2)) }),
    (guest, executed) => expectEqual('rvc loop', 'a0', register(guest.vcpu, R.a0), timesExecuted(executed, 2, 0))),
  throughputBenchmark('load/store 64 KiB (M, bare)', 'ld+sd on the inlined TLB-hit path, no translation (M-mode)',
    () => loadStoreLoop(BUFFER_64K, false), checkLoadStore('load/store 64 KiB (M, bare)', BUFFER_64K)),
  throughputBenchmark('load/store 64 KiB (S, Sv39)', 'ld+sd on the inlined TLB-hit path with Sv39 on: 16 pages, all TLB hits',
    () => loadStoreLoop(SMALL_PAGES_BASE, true), checkLoadStore('load/store 64 KiB (S, Sv39)', SMALL_PAGES_BASE)),
  throughputBenchmark('call/return (jal/jalr)', 'jal to a leaf function and jalr back: pc redirects every other instruction',
    () => ({ code: new CodeBuffer().emit(jal(R.ra, 8), jal(R.zero, -4), addi(R.a1, R.a1, 1), jalr(R.zero, R.ra, 0)) }),
    (guest, executed) => expectEqual('call/return', 'a1 (calls)', register(guest.vcpu, R.a1), timesExecuted(executed, 4, 1))),
  throughputBenchmark('sv39 loads, 8 B stride (TLB hits)', 'control for the next row: the same 6-instruction loop, every load a TLB hit',
    () => strideLoadLoop(8, 0x1_0000), checkStrideLoads('sv39 loads, 8 B stride', 8)),
  throughputBenchmark('sv39 loads, 4 KiB stride (TLB misses)',
    `${SMALL_PAGES_BYTES / 4096} pages round robin through the ${TLB_ENTRIES}-entry direct-mapped TLB: every load walks 3 levels`,
    () => strideLoadLoop(4096, SMALL_PAGES_BYTES), checkStrideLoads('sv39 loads, 4 KiB stride', 4096)),
  exitBenchmark('MMIO write exit round trip', 'sw to an unmapped address: exit to JS, decode, next run() completes it', 'exit',
    () => ({ code: new CodeBuffer().emit(sw(R.t0, R.t1, 0), addi(R.t0, R.t0, 1), jal(R.zero, -8)), registers: { [R.t1]: UNMAPPED, [R.t0]: 0 } }),
    (guest, index) => {
      const exit = expectMmio('MMIO write exit', guest.vcpu.run(SLICE_INSTRUCTIONS), true);
      if (exit.data !== BigInt(index)) throw new BenchGuestError('MMIO write exit', `store ${index} wrote ${exit.data}`);
    },
    // The addi after the last store runs only when the guest is resumed, hence one fewer.
    (guest, roundTrips) => expectEqual('MMIO write exit', 't0 (increments after completed stores)', register(guest.vcpu, R.t0), roundTrips - 1)),
  exitBenchmark('MMIO read exit round trip', 'lw from an unmapped address: exit to JS, completeMmioRead, next run() writes rd', 'exit',
    () => ({ code: new CodeBuffer().emit(lw(R.t2, R.t1, 0), add(R.t6, R.t6, R.t2), jal(R.zero, -8)), registers: { [R.t1]: UNMAPPED, [R.t6]: 0 } }),
    (guest) => {
      expectMmio('MMIO read exit', guest.vcpu.run(SLICE_INSTRUCTIONS), false);
      guest.vcpu.completeMmioRead(1);
    },
    (guest, roundTrips) => {
      // The last read's value reaches t6 only when the guest runs on to its next read.
      expectMmio('MMIO read exit', guest.vcpu.run(SLICE_INSTRUCTIONS), false);
      expectEqual('MMIO read exit', 't6 (ones read)', register(guest.vcpu, R.t6), roundTrips);
    }),
  exitBenchmark('run(1) call', 'entering and leaving the core for a single instruction: the fixed cost of a run() slice', 'run() call',
    aluLoop,
    (guest) => expectBudgetExit('run(1) call', guest.vcpu.run(1), guest.vcpu),
    (guest, roundTrips) => expectEqual('run(1) call', 'instructions retired', guest.vcpu.instructionsRetired, roundTrips)),
];
