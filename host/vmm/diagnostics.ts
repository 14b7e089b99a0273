// What the VMM tells a user about a guest that is going wrong: a trace of exits on request (QEMU's `-d`),
// and a warning when a hart spins on the same exception (a guest stuck in a fault loop would otherwise
// look like a silent hang).
import type { Vcpu } from '../kvm/vcpu.js';
import type { VcpuExit } from '../kvm/exits.js';

export type DebugLog = (line: string) => void;

const CAUSE_NAMES: Record<number, string> = {
  0: 'instruction address misaligned', 1: 'instruction access fault', 2: 'illegal instruction', 3: 'breakpoint',
  4: 'load address misaligned', 5: 'load access fault', 6: 'store address misaligned', 7: 'store access fault',
  8: 'ecall from U', 9: 'ecall from S', 11: 'ecall from M', 12: 'instruction page fault', 13: 'load page fault',
  15: 'store page fault',
};

export function describeExit(vcpu: Vcpu, exit: VcpuExit): string {
  const where = `vcpu ${vcpu.id} pc=0x${vcpu.pc.toString(16)} ${vcpu.privilege}`;
  switch (exit.reason) {
    case 'mmio':
      return `${where} mmio ${exit.isWrite ? 'write' : 'read'} 0x${exit.addr.toString(16)}/${exit.size}${exit.isWrite ? ` = 0x${exit.data.toString(16)}` : ''}`;
    case 'sbi':
      return `${where} sbi ext=0x${exit.extension.toString(16)} fid=${exit.function}`;
    case 'system-event':
      return `${where} system-event ${exit.event}`;
    case 'internal-error':
      return `${where} internal-error ${exit.message}`;
    default:
      return `${where} ${exit.reason}`;
  }
}

/**
 * Watches one hart across run() slices (or periodic samples): many exceptions per slice, all at the same pc with the same cause,
 * for several slices in a row, is a fault loop. Reports it once per episode.
 */
export class FaultLoopDetector {
  private lastTraps = 0n;
  private lastRetired = 0n;
  private lastEpc = -1n;
  private lastCause = -1n;
  private streak = 0;
  private reported = false;

  constructor(private readonly vcpu: Vcpu, private readonly report: DebugLog) {}

  /**
   * For a hart that runs on another thread (SMP): called periodically, it judges the work done since the
   * last call, counted as instructions retired plus traps taken (a faulting instruction does not retire).
   */
  sample(): void {
    const retired = this.vcpu.instructionsRetired;
    const work = retired - this.lastRetired + (this.vcpu.trapsTaken - this.lastTraps);
    this.lastRetired = retired;
    this.afterSlice(Number(work));
  }

  afterSlice(instructions: number): void {
    const traps = this.vcpu.trapsTaken;
    const delta = traps - this.lastTraps;
    this.lastTraps = traps;
    // Many traps for the work done: at least one per 16 instructions, and not a handful in a short run.
    if (delta < 1000n || delta * 16n < BigInt(instructions)) {
      this.streak = 0;
      this.reported = false;
      return;
    }
    // Which trap CSRs were written last depends on the privilege that took it; M's are the fallback.
    const sCause = this.vcpu.getCsr(0x142);
    const useS = this.vcpu.privilege !== 'M' && sCause !== 0n;
    const cause = useS ? sCause : this.vcpu.getCsr(0x342);
    const epc = useS ? this.vcpu.getCsr(0x141) : this.vcpu.getCsr(0x341);
    if (cause >> 63n !== 0n) return; // interrupts are not a fault loop
    this.streak = cause === this.lastCause && epc === this.lastEpc ? this.streak + 1 : 0;
    this.lastCause = cause;
    this.lastEpc = epc;
    if (this.streak >= 3 && !this.reported) {
      this.reported = true;
      const tval = this.vcpu.getCsr(useS ? 0x143 : 0x343);
      this.report(
        `vcpu ${this.vcpu.id} appears stuck in a fault loop: ${CAUSE_NAMES[Number(cause)] ?? `cause ${cause}`} at ` +
        `pc 0x${epc.toString(16)} (tval 0x${tval.toString(16)}), ${delta} traps in the last ${instructions} instructions`,
      );
    }
  }
}
