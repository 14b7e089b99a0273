// A VM with guest RAM laid out to catch stray accesses: a main RAM slot, a second slot right after it
// in guest-physical space (so buffers can straddle slots), a read-only slot, and canary bytes in every
// host byte that is not guest RAM above GUEST_RAM (the guard pages and the memory's tail).
import { Hypervisor } from '../../../host/kvm/hypervisor.js';
import type { Vm } from '../../../host/kvm/vm.js';
import { virtioMemoryOf, type VirtioMemory } from '../../../host/devices/virtio/queue.js';
import * as layout from '../../../assembly/abi/layout.js';

export const RAM = 0x8000_0000;
export const RAM_SIZE = 1 << 20;
/** Adjacent to RAM in guest-physical space, elsewhere in host memory. */
export const RAM2 = RAM + RAM_SIZE;
export const RAM2_SIZE = 64 * 1024;
export const ROM = 0x9000_0000;
export const ROM_SIZE = 4096;
const CANARY = 0xa5;

let hypervisor: Hypervisor | null = null;

export interface TestVm {
  readonly vm: Vm;
  readonly vmem: VirtioMemory;
  /** Throws if any canary byte changed. */
  checkCanaries(): void;
}

export async function createTestVm(): Promise<TestVm> {
  hypervisor ??= await Hypervisor.create();
  const vm = hypervisor.createVm();
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, size: RAM_SIZE });
  vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: RAM2, size: RAM2_SIZE });
  vm.setUserMemoryRegion({ slot: 2, guestPhysAddr: ROM, size: ROM_SIZE, readonly: true });
  vm.guestMemory(ROM, ROM_SIZE).fill(0x5a);
  const ram = [
    hostRange(vm, RAM, RAM_SIZE),
    hostRange(vm, RAM2, RAM2_SIZE),
    hostRange(vm, ROM, ROM_SIZE),
  ].sort((a, b) => a.start - b.start);
  const all = new Uint8Array(vm.memory.buffer);
  const holes: Array<{ start: number; end: number }> = [];
  let at = layout.GUEST_RAM;
  for (const r of ram) {
    if (r.start > at) holes.push({ start: at, end: r.start });
    at = r.end;
  }
  holes.push({ start: at, end: all.length });
  for (const h of holes) all.fill(CANARY, h.start, h.end);
  return {
    vm,
    vmem: virtioMemoryOf(vm),
    checkCanaries() {
      const now = new Uint8Array(vm.memory.buffer);
      for (const h of holes) {
        for (let i = h.start; i < h.end; i++) {
          if (now[i] !== CANARY) throw new Error(`canary at host 0x${i.toString(16)} changed to 0x${now[i]!.toString(16)}`);
        }
      }
      const rom = vm.guestMemory(ROM, ROM_SIZE);
      if (rom.some((b) => b !== 0x5a)) throw new Error('the read-only slot was written');
    },
  };
}

function hostRange(vm: Vm, gpa: number, size: number): { start: number; end: number } {
  const view = vm.guestMemory(gpa, size);
  return { start: view.byteOffset, end: view.byteOffset + size };
}

/** The host address of guest-physical `gpa` (which must be RAM). */
export function hostOf(vm: Vm, gpa: number): number {
  return vm.guestMemory(gpa, 1).byteOffset;
}

/** The test disks' content: sector s holds bytes (s * 7 + i) & 0xff, so every sector differs. */
export function sectorPattern(sector: number, count: number): Uint8Array {
  const out = new Uint8Array(count * 512);
  for (let s = 0; s < count; s++) for (let i = 0; i < 512; i++) out[s * 512 + i] = ((sector + s) * 7 + i) & 0xff;
  return out;
}
