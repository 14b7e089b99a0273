// A hart's register file in the test core's memory, for driving execFpOp.
import type { FpuCore } from './build.js';

export class TestHart {
  readonly base: number;
  private readonly view: DataView;
  private readonly fOffset: number;
  private readonly xOffset: number;
  private readonly fcsrOffset: number;

  constructor(private readonly core: FpuCore) {
    this.base = core.HARTS.value as number;
    this.fOffset = core.HART_F.value as number;
    this.xOffset = core.HART_X.value as number;
    this.fcsrOffset = core.CSR_FCSR.value as number;
    this.view = new DataView(core.memory.buffer);
  }

  setF(r: number, v: bigint): void {
    this.view.setBigUint64(this.base + this.fOffset + 8 * r, v, true);
  }
  f(r: number): bigint {
    return this.view.getBigUint64(this.base + this.fOffset + 8 * r, true);
  }
  /** Writes a single, NaN-boxed. */
  setS(r: number, v: number): void {
    this.setF(r, 0xffffffff00000000n | BigInt(v >>> 0));
  }
  setX(r: number, v: bigint): void {
    this.view.setBigUint64(this.base + this.xOffset + 8 * r, BigInt.asUintN(64, v), true);
  }
  x(r: number): bigint {
    return this.view.getBigUint64(this.base + this.xOffset + 8 * r, true);
  }
  get fcsr(): bigint {
    return this.view.getBigUint64(this.base + this.fcsrOffset, true);
  }
  set fcsr(v: bigint) {
    this.view.setBigUint64(this.base + this.fcsrOffset, v, true);
  }
  get fflags(): number {
    return Number(this.fcsr & 0x1fn);
  }
  /** Returns execFpOp's status: 0 executed, 1 illegal instruction. */
  exec(insn: number): number {
    return this.core.execFpOp(this.base, insn);
  }
}
