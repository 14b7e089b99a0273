// What the monitor (HMP) and QMP see of the VM: its run state, its harts, memory, disks and memory map.
// An interface so the protocols can be tested over a fake VM; `MachineMonitorTarget` is the real one,
// over the run state and whichever VirtMachine is running (a new one after each reboot). Node-free.
import type { RunControl } from '../run_control.js';
import type { VirtMachine } from '../virt_machine.js';
import { DRAM_BASE, VIRT_MEMMAP, VIRT_VIRTIO_COUNT, virtioMmioSlot } from '../memmap.js';
import { readGuestBytes } from '../guest_view.js';

/** One hart as the monitor shows it. */
export interface MonitorCpu {
  readonly index: number;
  /** The host thread it runs on, as QEMU's thread_id (the process id where threads have no OS id to give). */
  readonly threadId: number;
  readonly pc: bigint;
  /** x0..x31 */
  readonly x: readonly bigint[];
  /** f0..f31, raw bits */
  readonly f: readonly bigint[];
  /** A CSR's value, read with M-mode rights; null if the hart has no such CSR. */
  csr(number: number): bigint | null;
  /** The bytes at virtual `address` as this hart would load them, up to the first it cannot reach. */
  readVirtual(address: bigint, length: number): Uint8Array;
}

/** A -drive as query-block and `info block` describe it. */
export interface MonitorBlockDevice {
  readonly device: string;
  readonly file: string;
  readonly format: string;
  readonly readOnly: boolean;
  /** QEMU's cache mode name: writeback, writethrough, none, unsafe. */
  readonly cache: string;
  /** Where it is attached, a QOM path like QEMU's. */
  readonly qdev: string;
}

/** A region of the board's address space, `info mtree` style: inclusive end. */
export interface MonitorMemoryRegion {
  readonly start: bigint;
  readonly last: bigint;
  readonly kind: 'ram' | 'i/o';
  readonly name: string;
}

/** The run state commands the monitor gives (RunControl implements them). */
export type MonitorRunControl = Pick<RunControl, 'status' | 'stop' | 'cont' | 'systemReset' | 'systemPowerdown' | 'quit' | 'subscribe'>;

export interface MonitorTarget {
  readonly control: MonitorRunControl;
  /** -name */
  readonly name: string | undefined;
  /** The QEMU version whose behaviour wkvm follows, and wkvm's own as QEMU's `package`. */
  readonly version: { readonly major: number; readonly minor: number; readonly micro: number; readonly package: string };
  /** The harts, or none while no machine runs (between a reset and the next boot). */
  cpus(): readonly MonitorCpu[];
  /** The bytes at physical `address`, up to the first that is not RAM. */
  readPhysical(address: bigint, length: number): Uint8Array;
  blockDevices(): readonly MonitorBlockDevice[];
  memoryRegions(): readonly MonitorMemoryRegion[];
}

/** QEMU 7.2 is the QEMU wkvm's CLI, board and monitor follow; management tools check the version for features. */
export const FOLLOWED_QEMU_VERSION = { major: 7, minor: 2, micro: 0 } as const;

export interface MachineMonitorOptions {
  readonly control: RunControl;
  readonly name?: string;
  /** wkvm's version string, reported as QEMU's `package`. */
  readonly package: string;
  readonly blockDevices?: readonly MonitorBlockDevice[];
  /** What `info cpus` gives as each hart's thread_id. */
  readonly threadId?: (hart: number) => number;
}

/** The monitor's view of the running VirtMachine (`machine` follows reboots). */
export class MachineMonitorTarget implements MonitorTarget {
  readonly control: RunControl;
  readonly name: string | undefined;
  readonly version: MonitorTarget['version'];
  machine: VirtMachine | null = null;

  constructor(private readonly options: MachineMonitorOptions) {
    this.control = options.control;
    this.name = options.name;
    this.version = { ...FOLLOWED_QEMU_VERSION, package: options.package };
  }

  cpus(): readonly MonitorCpu[] {
    const machine = this.machine;
    if (machine === null) return [];
    return machine.vcpus.map((vcpu) => {
      const regs = vcpu.getRegs();
      return {
        index: vcpu.id,
        threadId: this.options.threadId?.(vcpu.id) ?? 0,
        pc: regs.pc,
        x: regs.x,
        f: vcpu.getFpRegs(),
        csr: (number: number) => {
          try {
            return vcpu.getCsr(number);
          } catch {
            return null;
          }
        },
        readVirtual: (address: bigint, length: number) => readGuestBytes(machine.vm, vcpu, address, length),
      };
    });
  }

  readPhysical(address: bigint, length: number): Uint8Array {
    return this.machine === null ? new Uint8Array(0) : readGuestBytes(this.machine.vm, null, address, length);
  }

  blockDevices(): readonly MonitorBlockDevice[] {
    return this.options.blockDevices ?? [];
  }

  memoryRegions(): readonly MonitorMemoryRegion[] {
    const ramBytes = this.machine?.config.memoryBytes ?? 0;
    return virtBoardRegions(ramBytes);
  }
}

/** The `virt` board's address space as wkvm decodes it, named as QEMU's `info mtree` names the regions. */
export function virtBoardRegions(ramBytes: number): MonitorMemoryRegion[] {
  const io = (base: number, size: number, name: string): MonitorMemoryRegion =>
    ({ start: BigInt(base), last: BigInt(base + size - 1), kind: 'i/o', name });
  const { test, rtc, clint, plic, uart0, pcieEcam } = VIRT_MEMMAP;
  // The CLINT is QEMU's two ACLINT devices: the software interrupts, then the timer.
  const swiSize = 0x4000;
  const regions = [
    io(test.base, test.size, 'riscv.sifive.test'),
    io(rtc.base, rtc.size, 'goldfish_rtc'),
    io(clint.base, swiSize, 'riscv.aclint.swi'),
    io(clint.base + swiSize, clint.size - swiSize, 'riscv.aclint.mtimer'),
    io(plic.base, plic.size, 'riscv.sifive.plic'),
    io(uart0.base, uart0.size, 'serial'),
    ...Array.from({ length: VIRT_VIRTIO_COUNT }, (_, slot) => {
      const { base, size } = virtioMmioSlot(slot);
      return io(base, size, 'virtio-mmio');
    }),
    io(pcieEcam.base, pcieEcam.size, 'pcie-ecam'),
  ];
  if (ramBytes > 0) regions.push({ start: BigInt(DRAM_BASE), last: BigInt(DRAM_BASE + ramBytes - 1), kind: 'ram', name: 'riscv_virt_board.ram' });
  return regions;
}
