// A fake VM for the monitor's protocol tests: a real RunControl over a machine that only counts what it
// is asked, one hart with chosen registers, and a few bytes of RAM at 0x80000000 that the hart also
// maps at 0xffffffff80000000.
import { RunControl } from '../../../../host/vmm/run_control.js';
import type { ControlledMachine } from '../../../../host/vmm/run_control.js';
import type { MachineOutcome } from '../../../../host/vmm/virt_machine.js';
import { virtBoardRegions, type MonitorCpu, type MonitorTarget } from '../../../../host/vmm/monitor/target.js';

export class FakeMachine implements ControlledMachine {
  pauses = 0;
  resumes = 0;
  clock = 1000n;
  clockSets: bigint[] = [];
  ended: MachineOutcome[] = [];
  async pauseHarts(): Promise<void> {
    this.pauses++;
  }
  resumeHarts(): void {
    this.resumes++;
  }
  endRun(outcome: MachineOutcome): void {
    this.ended.push(outcome);
  }
  getClock(): bigint {
    return this.clock;
  }
  setClock(ticks: bigint): void {
    this.clockSets.push(ticks);
  }
}

export const RAM_BASE = 0x8000_0000n;
export const KERNEL_VIRTUAL = 0xffff_ffff_8000_0000n;

export function fakeTarget(options: { control?: RunControl; name?: string; harts?: number } = {}): MonitorTarget & { ram: Uint8Array } {
  const control = options.control ?? new RunControl();
  const ram = Uint8Array.from({ length: 64 }, (_, i) => i * 3);
  const read = (offset: bigint, length: number) => {
    if (offset < 0n || offset >= BigInt(ram.length)) return new Uint8Array(0);
    return ram.slice(Number(offset), Math.min(ram.length, Number(offset) + length));
  };
  const cpu = (index: number): MonitorCpu => ({
    index,
    threadId: 4242,
    pc: 0xffff_ffff_8000_2ef0n + BigInt(index),
    x: Array.from({ length: 32 }, (_, i) => (i === 0 ? 0n : BigInt(i) * 0x1111n)),
    f: Array.from({ length: 32 }, () => 0n),
    csr: (number) => (number === 0xf14 ? BigInt(index) : number === 0x180 ? 0x9000_0000_0008_09dbn : 0n),
    readVirtual: (address, length) => read(address - KERNEL_VIRTUAL, length),
  });
  return {
    control,
    name: options.name,
    version: { major: 7, minor: 2, micro: 0, package: 'wkvm 0.1.0' },
    ram,
    cpus: () => Array.from({ length: options.harts ?? 1 }, (_, i) => cpu(i)),
    readPhysical: (address, length) => read(address - RAM_BASE, length),
    blockDevices: () => [{ device: 'hd0', file: '/images/disk.qcow2', format: 'qcow2', readOnly: false, cache: 'writeback', qdev: '/machine/peripheral-anon/device[0]' }],
    memoryRegions: () => virtBoardRegions(128 << 20),
  };
}
