// The virtio-mmio transport, version 2 (virtio 1.2 §4.2.2): the register map over the shared control plane
// (control.ts: status machine, features, queues), and InterruptStatus/InterruptACK, which the core may
// serve itself. A transport with no device plugged in reads as device id 0, as QEMU's unused virt slots do.
// With `legacy` it is the version 1 interface instead (§4.2.4; QEMU's force-legacy=true, its default):
// a queue is one page-aligned area the driver names by page frame (QueuePFN), laid out by GuestPageSize
// and QueueAlign, and there is no FEATURES_OK step.
//
// A guest mistake (a malformed ring, a bad request) never throws out of here: the device goes into
// DEVICE_NEEDS_RESET, the reason is logged, and the rest of the machine runs on.
import type { AccessSize, IrqLine, MmioDevice } from '../device.js';
import {
  LegacyMmioReg, MAX_QUEUES_PER_DEVICE, MmioReg, VIRTIO_MMIO_LEGACY_VERSION, VIRTIO_MMIO_MAGIC, VIRTIO_MMIO_SIZE, VIRTIO_MMIO_VENDOR,
  VIRTIO_MMIO_VERSION,
} from './constants.js';
import { VirtioControl, type QueueArea, type VirtioRegister } from './control.js';
import type { VirtioDevice } from './device.js';
import type { VirtioMemory } from './queue.js';
import * as layout from '../../../assembly/abi/layout.js';

export interface VirtioMmioTransportOptions {
  /** The transport's slot on the board (0..7): its queues use core records 8·slot.. */
  readonly slot: number;
  readonly memory: VirtioMemory;
  readonly irq: IrqLine;
  /** Where guest errors are reported (default: console.warn). */
  readonly log?: (message: string) => void;
  /**
   * Let the core serve InterruptStatus and InterruptACK (layout.VIRTIO_MMIO_IN_CORE) without an exit. Only
   * for a transport at its board slot whose `irq` is PLIC source VIRTIO_MMIO_FIRST_IRQ + slot of the VM's
   * in-core PLIC, as on the virt machine: the core lowers that line itself when the guest acknowledges.
   */
  readonly inCoreInterrupt?: boolean;
  /** The legacy (version 1) interface (-global virtio-mmio.force-legacy=true). */
  readonly legacy?: boolean;
}

export class VirtioMmioTransport implements MmioDevice {
  readonly size = VIRTIO_MMIO_SIZE;
  private readonly control: VirtioControl;
  /** InterruptStatus: the word the core serves (in-core) or one of our own; changed only atomically. */
  private readonly interruptStatus: Int32Array;
  /** Legacy: GuestPageSize, and each queue's QueueAlign and QueuePFN as the driver wrote them. */
  private guestPageSize = 4096;
  private legacyQueues: Array<{ align: number; pfn: number }> = [];

  constructor(private readonly options: VirtioMmioTransportOptions) {
    if (!Number.isInteger(options.slot) || options.slot < 0 || options.slot >= layout.VIRTIO_MMIO_SLOTS) {
      throw new RangeError(`virtio-mmio slot ${options.slot} is not 0..${layout.VIRTIO_MMIO_SLOTS - 1}`);
    }
    if (options.inCoreInterrupt) {
      const buffer = options.memory.memory.buffer;
      this.interruptStatus = new Int32Array(buffer, layout.VIRTIO_MMIO_INTERRUPT + 4 * options.slot, 1);
      Atomics.store(this.interruptStatus, 0, 0);
      Atomics.or(new Int32Array(buffer, layout.VIRTIO_MMIO_IN_CORE, 1), 0, 1 << options.slot);
    } else {
      this.interruptStatus = new Int32Array(1);
    }
    this.control = new VirtioControl({
      memory: options.memory,
      firstRecord: options.slot * MAX_QUEUES_PER_DEVICE,
      name: () => this.name,
      log: options.log ?? ((message) => console.warn(message)),
      legacy: options.legacy ?? false,
      interrupts: {
        raise: (bits) => {
          // Bits first, then the line: an acknowledgement in the core that lowers the line in between sees them.
          Atomics.or(this.interruptStatus, 0, bits);
          options.irq.set(true);
        },
        clear: () => {
          Atomics.store(this.interruptStatus, 0, 0);
          options.irq.set(false);
          // A device reset forgets the legacy queue areas too.
          this.legacyQueues = [];
        },
      },
    });
  }

  get name(): string {
    const device = this.control.device;
    return `virtio-mmio.${this.options.slot}${device ? ` (${device.name})` : ''}`;
  }

  /** The device behind this transport, if any. */
  get plugged(): VirtioDevice | null {
    return this.control.device;
  }

  /** Puts a device behind the transport (before the guest runs). */
  plug(device: VirtioDevice): void {
    this.control.plug(device);
  }

  /** I/O the plugged device has started and not completed. */
  get pendingIo(): number {
    return this.control.pendingIo;
  }

  get deviceStatus(): number {
    return this.control.status;
  }

  get interrupts(): number {
    return Atomics.load(this.interruptStatus, 0);
  }

  get negotiatedFeatures(): bigint {
    return this.control.negotiatedFeatures;
  }

  read(offset: number, size: AccessSize): number {
    const control = this.control;
    const device = control.device;
    if (offset >= MmioReg.config) {
      if (device === null) return 0;
      return device.readConfig(offset - MmioReg.config, size);
    }
    if (size !== 4 || offset % 4 !== 0) {
      control.guestError(`${size}-byte read of register 0x${offset.toString(16)} (registers are 32-bit)`);
      return 0;
    }
    switch (offset) {
      case MmioReg.magic:
        return VIRTIO_MMIO_MAGIC;
      case MmioReg.version:
        return this.options.legacy ? VIRTIO_MMIO_LEGACY_VERSION : VIRTIO_MMIO_VERSION;
      case MmioReg.vendorId:
        return VIRTIO_MMIO_VENDOR;
      case MmioReg.deviceId:
        return device?.deviceId ?? 0;
    }
    if (device === null) return 0;
    const legacy = this.options.legacy ?? false;
    const shared = (legacy ? LEGACY_READABLE_REGISTERS : READABLE_REGISTERS).get(offset);
    if (shared !== undefined) return control.readRegister(shared);
    switch (offset) {
      case MmioReg.interruptStatus:
        return this.interrupts;
      case LegacyMmioReg.queuePfn:
        return legacy ? (this.legacyQueue(control.queueSel)?.pfn ?? 0) : 0;
      case MmioReg.shmLenLow:
      case MmioReg.shmLenHigh:
        return legacy ? 0 : 0xffffffff; // no shared memory regions
      default:
        return 0;
    }
  }

  write(offset: number, size: AccessSize, value: number): void {
    const control = this.control;
    const device = control.device;
    if (device === null) return;
    if (offset >= MmioReg.config) {
      device.writeConfig(offset - MmioReg.config, size, value);
      return;
    }
    if (size !== 4 || offset % 4 !== 0) {
      control.guestError(`${size}-byte write of register 0x${offset.toString(16)} (registers are 32-bit)`);
      return;
    }
    if (control.resetting && offset !== MmioReg.status) return;
    if (this.options.legacy) {
      if (this.writeLegacyRegister(offset, value)) return;
      if (VERSION_2_ONLY.has(offset)) {
        control.guestError(`write of 0x${value.toString(16)} to register 0x${offset.toString(16)}, which the legacy interface does not have`);
        return;
      }
    }
    const area = QUEUE_ADDRESS_REGISTERS.get(offset);
    if (area !== undefined) {
      control.writeQueueAddressHalf(area.area, area.high, value);
      return;
    }
    const shared = WRITABLE_REGISTERS.get(offset);
    if (shared !== undefined) {
      control.writeRegister(shared, value);
      return;
    }
    switch (offset) {
      case MmioReg.queueReady:
        if (value === 1) control.enableSelectedQueue();
        else if (value === 0) control.disableSelectedQueue();
        return;
      case MmioReg.queueNotify:
        control.notify(value);
        return;
      case MmioReg.interruptAck:
        if ((Atomics.and(this.interruptStatus, 0, ~value) & ~value) === 0) this.options.irq.set(false);
        return;
      default:
        control.guestError(`write of 0x${value.toString(16)} to read-only or unknown register 0x${offset.toString(16)}`);
    }
  }

  /** A write to one of the legacy interface's own registers; false for any other register. */
  private writeLegacyRegister(offset: number, value: number): boolean {
    const control = this.control;
    switch (offset) {
      case LegacyMmioReg.guestPageSize:
        if (value === 0 || (value & (value - 1)) !== 0) control.guestError(`GuestPageSize ${value} is not a power of two`);
        else this.guestPageSize = value;
        return true;
      case LegacyMmioReg.queueAlign: {
        const queue = this.legacyQueue(control.queueSel);
        if (queue === undefined) control.guestError(`QueueAlign written for queue ${control.queueSel}, which does not exist`);
        else if (value === 0 || (value & (value - 1)) !== 0) control.guestError(`QueueAlign ${value} is not a power of two`);
        else queue.align = value;
        return true;
      }
      case LegacyMmioReg.queuePfn:
        this.writeQueuePfn(value >>> 0);
        return true;
      default:
        return false;
    }
  }

  /**
   * QueuePFN: the selected queue lives at page `pfn` (0 takes it back). The legacy layout: the descriptor
   * table, then the available ring (flags, idx, ring, used_event), then, at the next QueueAlign boundary,
   * the used ring.
   */
  private writeQueuePfn(pfn: number): void {
    const control = this.control;
    const queue = this.legacyQueue(control.queueSel);
    if (queue === undefined) {
      control.guestError(`QueuePFN written for queue ${control.queueSel}, which does not exist`);
      return;
    }
    if (pfn === 0) {
      queue.pfn = 0;
      control.disableSelectedQueue();
      return;
    }
    const num = BigInt(control.readRegister('queueSize'));
    const desc = BigInt(pfn) * BigInt(this.guestPageSize);
    const driver = desc + 16n * num;
    const align = BigInt(queue.align);
    const device = (driver + 6n + 2n * num + align - 1n) / align * align;
    for (const [area, address] of [['desc', desc], ['driver', driver], ['device', device]] as const) {
      control.writeQueueAddressHalf(area, false, Number(address & 0xffffffffn));
      control.writeQueueAddressHalf(area, true, Number(address >> 32n));
    }
    queue.pfn = pfn;
    control.enableSelectedQueue();
  }

  private legacyQueue(index: number): { align: number; pfn: number } | undefined {
    if (index >= this.control.queueCount) return undefined;
    while (this.legacyQueues.length <= index) this.legacyQueues.push({ align: 4096, pfn: 0 });
    return this.legacyQueues[index];
  }

  /** The guest broke the protocol: the device stops and says DEVICE_NEEDS_RESET. */
  fail(reason: string): void {
    this.control.fail(reason);
  }

  /** Machine reset (power cycle): like a driver reset, without waiting for the device. */
  reset(): void {
    this.control.reset();
  }
}

/**
 * The registers virtio-mmio shares with every transport (control.ts), by offset: those a driver reads, and
 * those it writes (the selectors, DriverFeatures and QueueNum are write-only here and read 0).
 */
const READABLE_REGISTERS = new Map<number, VirtioRegister>([
  [MmioReg.deviceFeatures, 'deviceFeatures'],
  [MmioReg.queueNumMax, 'queueSizeMax'],
  [MmioReg.queueReady, 'queueReady'],
  [MmioReg.status, 'status'],
  [MmioReg.configGeneration, 'configGeneration'],
]);
const WRITABLE_REGISTERS = new Map<number, VirtioRegister>([
  [MmioReg.deviceFeaturesSel, 'deviceFeaturesSel'],
  [MmioReg.driverFeatures, 'driverFeatures'],
  [MmioReg.driverFeaturesSel, 'driverFeaturesSel'],
  [MmioReg.queueSel, 'queueSel'],
  [MmioReg.queueNum, 'queueSize'],
  [MmioReg.status, 'status'],
]);

/** Version 2's registers the legacy interface has not (its queues are placed by QueuePFN instead). */
const VERSION_2_ONLY = new Set<number>([
  MmioReg.queueReady, MmioReg.queueDescLow, MmioReg.queueDescHigh, MmioReg.queueDriverLow, MmioReg.queueDriverHigh,
  MmioReg.queueDeviceLow, MmioReg.queueDeviceHigh, MmioReg.shmSel, MmioReg.shmLenLow, MmioReg.shmLenHigh,
  MmioReg.shmBaseLow, MmioReg.shmBaseHigh, MmioReg.configGeneration,
]);
/** What a legacy driver reads of the shared registers: version 2's but those. */
const LEGACY_READABLE_REGISTERS = new Map([...READABLE_REGISTERS].filter(([offset]) => !VERSION_2_ONLY.has(offset)));

/** The registers that hold one half of a ring address. */
const QUEUE_ADDRESS_REGISTERS = new Map<number, { area: QueueArea; high: boolean }>([
  [MmioReg.queueDescLow, { area: 'desc', high: false }],
  [MmioReg.queueDescHigh, { area: 'desc', high: true }],
  [MmioReg.queueDriverLow, { area: 'driver', high: false }],
  [MmioReg.queueDriverHigh, { area: 'driver', high: true }],
  [MmioReg.queueDeviceLow, { area: 'device', high: false }],
  [MmioReg.queueDeviceHigh, { area: 'device', high: true }],
]);
