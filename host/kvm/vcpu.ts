// One virtual CPU (a RISC-V hart): registers, CSRs and run(), KVM_RUN style.
import * as layout from '../../assembly/abi/layout.js';
import { VcpuStateError } from './errors.js';
import type { DebugHit, VcpuExit } from './exits.js';
import type { Vm } from './vm.js';

export type Privilege = 'U' | 'S' | 'M';
const PRIV_CODE: Record<Privilege, number> = { U: 0, S: 1, M: 3 };

export interface Regs {
  pc: bigint;
  /** x0..x31 (x0 reads as 0 and ignores writes). */
  x: bigint[];
}

const DEFAULT_BUDGET = 200_000;
const SBI_ERR_NOT_SUPPORTED = -2n;

export class Vcpu {
  private view: DataView;
  private readonly base: number;
  private pendingMmio: 'read' | 'write' | null = null;
  private failed = false;

  constructor(readonly vm: Vm, readonly id: number) {
    this.base = layout.HARTS + id * layout.HART_SIZE;
    this.view = new DataView(vm.memory.buffer);
  }

  private get v(): DataView {
    if (this.view.buffer.byteLength !== this.vm.memory.buffer.byteLength) this.view = new DataView(this.vm.memory.buffer);
    return this.view;
  }

  getRegs(): Regs {
    const v = this.v;
    const x: bigint[] = [];
    for (let i = 0; i < 32; i++) x.push(v.getBigUint64(this.base + layout.HART_X + i * 8, true));
    return { pc: v.getBigUint64(this.base + layout.HART_PC, true), x };
  }

  setRegs(regs: Partial<Regs>): void {
    const v = this.v;
    if (regs.pc !== undefined) v.setBigUint64(this.base + layout.HART_PC, BigInt.asUintN(64, regs.pc), true);
    if (regs.x !== undefined) {
      if (regs.x.length !== 32) throw new VcpuStateError(this.id, `setRegs needs 32 x registers, got ${regs.x.length}`);
      for (let i = 1; i < 32; i++) v.setBigUint64(this.base + layout.HART_X + i * 8, BigInt.asUintN(64, regs.x[i]!), true);
    }
  }

  get pc(): bigint {
    return this.v.getBigUint64(this.base + layout.HART_PC, true);
  }

  /** f0..f31 as raw bits (singles NaN-boxed). */
  getFpRegs(): bigint[] {
    const out: bigint[] = [];
    for (let i = 0; i < 32; i++) out.push(this.v.getBigUint64(this.base + layout.HART_F + i * 8, true));
    return out;
  }

  /** Reads a CSR with M-mode rights (KVM_GET_ONE_REG). */
  getCsr(num: number): bigint {
    const value = this.vm.core.getCsr(this.id, num);
    if (this.vm.core.lastCsrIllegal()) throw new VcpuStateError(this.id, `CSR 0x${num.toString(16)} does not exist`);
    return BigInt.asUintN(64, value);
  }

  /** Writes a CSR with M-mode rights (KVM_SET_ONE_REG), applying its WARL rules. */
  setCsr(num: number, value: bigint): void {
    if (this.vm.core.setCsr(this.id, num, BigInt.asIntN(64, value)) !== 0) {
      throw new VcpuStateError(this.id, `CSR 0x${num.toString(16)} does not exist or is read-only`);
    }
  }

  get privilege(): Privilege {
    const code = this.v.getInt32(this.base + layout.HART_PRIV, true);
    return code === 0 ? 'U' : code === 1 ? 'S' : 'M';
  }

  setPrivilege(priv: Privilege): void {
    this.vm.core.setPrivilege(this.id, PRIV_CODE[priv]);
  }

  /**
   * Puts the vCPU where M-mode firmware leaves an S-mode kernel: S-mode, FP on, counters readable,
   * exceptions and supervisor interrupts delegated. For VMs whose SBI is served by the core.
   */
  enterSupervisor(): void {
    this.vm.core.enterSupervisor(this.id);
  }

  /** Power-on reset: M-mode at `pc`. `started: false` leaves the hart stopped until SBI HSM starts it. */
  reset(pc: bigint, started = true): void {
    this.vm.core.resetHart(this.id, pc, started ? 1 : 0);
    this.pendingMmio = null;
    this.failed = false;
  }

  get instructionsRetired(): bigint {
    return this.v.getBigUint64(this.base + layout.HART_INSTRET, true);
  }

  get trapsTaken(): bigint {
    return this.v.getBigUint64(this.base + layout.HART_TRAP_COUNT, true);
  }

  /**
   * What the block translator has done for this vCPU (read from shared memory, so valid for a vCPU that
   * runs on another thread): blocks compiled, the modules they came in, blocks whose module failed to
   * compile, regions taken from other vCPUs' modules (SMP) and FENCE.I generations.
   */
  get jitStatistics(): { blocks: number; modules: number; failed: number; adopted: number; fences: number } {
    const stats = layout.JIT_STATE + this.id * layout.JIT_STATE_SIZE + layout.JIT_STATS;
    return {
      blocks: this.v.getUint32(stats + layout.JIT_STATS_BLOCKS, true),
      modules: this.v.getUint32(stats + layout.JIT_STATS_MODULES, true),
      failed: this.v.getUint32(stats + layout.JIT_STATS_FAILED, true),
      adopted: this.v.getUint32(stats + layout.JIT_STATS_ADOPTED, true),
      fences: this.v.getUint32(this.base + layout.HART_FENCE_I_COUNT, true),
    };
  }

  /** Instructions executed by the last run(). */
  get lastRunInstructions(): number {
    return Number(this.v.getBigUint64(this.base + layout.RUN_BUDGET_USED, true));
  }

  /** The mtime at which this vCPU's next timer interrupt is due, or Infinity. */
  timerDeadline(): number {
    return this.vm.core.timerDeadline(this.id);
  }

  /** Completes the MMIO read of the last exit with `value` (zero- or sign-extended by the core). */
  completeMmioRead(value: bigint | number): void {
    if (this.pendingMmio !== 'read') throw new VcpuStateError(this.id, 'no MMIO read is waiting for data');
    this.v.setBigUint64(this.base + layout.RUN_MMIO_DATA, BigInt.asUintN(64, BigInt(value)), true);
    this.pendingMmio = null;
  }

  /** The last exit's MMIO access hits no device: the guest takes a load/store access fault. */
  failMmio(): void {
    if (this.pendingMmio === null) throw new VcpuStateError(this.id, 'no MMIO access is pending');
    this.v.setInt32(this.base + layout.RUN_MMIO_FAULT, 1, true);
    this.pendingMmio = null;
  }

  /** Answers the SBI call of the last exit. */
  setSbiResult(error: bigint | number, value: bigint | number = 0n): void {
    this.v.setBigUint64(this.base + layout.RUN_SBI_RET, BigInt.asUintN(64, BigInt(error)), true);
    this.v.setBigUint64(this.base + layout.RUN_SBI_RET + 8, BigInt.asUintN(64, BigInt(value)), true);
  }

  /** KVM_RUN: executes up to `budget` instructions and says why it stopped. */
  run(budget: number = DEFAULT_BUDGET): VcpuExit {
    if (this.failed) throw new VcpuStateError(this.id, 'the vCPU hit an internal error and cannot run');
    if (this.pendingMmio === 'read') throw new VcpuStateError(this.id, 'complete the pending MMIO read before running');
    this.pendingMmio = null;
    const code = this.vm.core.run(this.id, budget | 0);
    return this.decodeExit(code);
  }

  /**
   * The exit a vCPU worker has just left in this vCPU's run area (SMP: the worker runs the core, the VMM
   * handles the exit on its thread through this object).
   */
  exitFromRunArea(): VcpuExit {
    return this.decodeExit(this.v.getInt32(this.base + layout.RUN_EXIT_REASON, true));
  }

  private decodeExit(code: number): VcpuExit {
    const v = this.v;
    const b = this.base;
    switch (code) {
      case layout.EXIT_BUDGET:
        return BUDGET_EXIT;
      case layout.EXIT_MMIO: {
        const isWrite = v.getInt32(b + layout.RUN_MMIO_IS_WRITE, true) !== 0;
        this.pendingMmio = isWrite ? 'write' : 'read';
        if (!isWrite) v.setBigUint64(b + layout.RUN_MMIO_DATA, 0n, true);
        return {
          reason: 'mmio',
          isWrite,
          addr: Number(v.getBigUint64(b + layout.RUN_MMIO_ADDR, true)),
          size: v.getInt32(b + layout.RUN_MMIO_SIZE, true) as 1 | 2 | 4 | 8,
          data: isWrite ? v.getBigUint64(b + layout.RUN_MMIO_DATA, true) : 0n,
        };
      }
      case layout.EXIT_SBI: {
        const args: bigint[] = [];
        for (let i = 0; i < 8; i++) args.push(v.getBigUint64(b + layout.RUN_SBI_ARGS + i * 8, true));
        this.setSbiResult(SBI_ERR_NOT_SUPPORTED, 0n);
        return { reason: 'sbi', extension: Number(args[7]!), function: Number(args[6]!), args: args.slice(0, 6) };
      }
      case layout.EXIT_HALT:
        return HALT_EXIT;
      case layout.EXIT_SYSTEM_EVENT:
        return {
          reason: 'system-event',
          event: v.getInt32(b + layout.RUN_SYSTEM_EVENT, true) === layout.SYSTEM_EVENT_SHUTDOWN ? 'shutdown' : 'reset',
        };
      case layout.EXIT_HART_STOPPED:
        return STOPPED_EXIT;
      case layout.EXIT_DEBUG:
        return { reason: 'debug', hit: debugHit(v) };
      case layout.EXIT_INTERNAL_ERROR: {
        this.failed = true;
        const kind = v.getInt32(b + layout.RUN_INTERNAL_ERROR, true);
        return { reason: 'internal-error', message: INTERNAL_ERRORS[kind] ?? `internal error ${kind}` };
      }
      default:
        this.failed = true;
        return { reason: 'internal-error', message: `unknown exit code ${code}` };
    }
  }
}

const BUDGET_EXIT: VcpuExit = Object.freeze({ reason: 'budget' });
const HALT_EXIT: VcpuExit = Object.freeze({ reason: 'halt' });
const STOPPED_EXIT: VcpuExit = Object.freeze({ reason: 'hart-stopped' });

function debugHit(v: DataView): DebugHit {
  switch (v.getInt32(layout.MACHINE_DEBUG_HIT_KIND, true)) {
    case layout.DEBUG_HIT_HARDWARE_BREAKPOINT:
      return { kind: 'hardware-breakpoint' };
    case layout.DEBUG_HIT_WATCH_WRITE:
      return { kind: 'watch-write', address: v.getBigUint64(layout.MACHINE_DEBUG_HIT_ADDRESS, true) };
    case layout.DEBUG_HIT_WATCH_READ:
      return { kind: 'watch-read', address: v.getBigUint64(layout.MACHINE_DEBUG_HIT_ADDRESS, true) };
    default:
      return { kind: 'software-breakpoint' };
  }
}

const INTERNAL_ERRORS: Record<number, string> = {
  [layout.INTERNAL_ERROR_NO_RVC_TABLE]: 'the VM was not initialised (no compressed-instruction table)',
};
