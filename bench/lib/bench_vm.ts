// A bare VM for the microbenchmarks: one vCPU, one RAM slot at the virt board's DRAM base and nothing
// else, so any access outside RAM is an MMIO exit the benchmark handles itself.
import type { Hypervisor } from '../../host/kvm/hypervisor.js';
import type { Vm } from '../../host/kvm/vm.js';
import type { Vcpu } from '../../host/kvm/vcpu.js';

export const RAM_BASE = 0x8000_0000;
export const RAM_BYTES = 16 * 1024 * 1024;

export interface BenchVm {
  readonly vm: Vm;
  readonly vcpu: Vcpu;
  /** Copies bytes into guest-physical memory. */
  load(guestPhysAddr: number, bytes: Uint8Array): void;
  /** A little-endian view of guest-physical memory [guestPhysAddr, +length). */
  view(guestPhysAddr: number, length: number): DataView;
}

export function createBenchVm(hypervisor: Hypervisor): BenchVm {
  const vm = hypervisor.createVm();
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM_BASE, size: RAM_BYTES });
  const vcpu = vm.createVcpu(0);
  return {
    vm,
    vcpu,
    load: (addr, bytes) => vm.guestMemory(addr, bytes.length).set(bytes),
    view: (addr, length) => {
      const bytes = vm.guestMemory(addr, length);
      return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
  };
}

/** Sets x registers by number, leaving the others as they are. */
export function setRegisters(vcpu: Vcpu, values: Readonly<Record<number, bigint | number>>): void {
  const regs = vcpu.getRegs();
  for (const [reg, value] of Object.entries(values)) regs.x[Number(reg)] = BigInt(value);
  vcpu.setRegs(regs);
}

export function register(vcpu: Vcpu, reg: number): bigint {
  return vcpu.getRegs().x[reg]!;
}
