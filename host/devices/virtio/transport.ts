// The virtio-mmio transport, version 2 (virtio 1.2 §4.2.2): the control plane. It presents a device's id,
// features and config space, negotiates features, runs the device status state machine, takes the ring
// addresses and hands each ready queue to the core's data plane. A transport with no device plugged in
// reads as device id 0, as QEMU's unused virt slots do.
//
// A guest mistake (a malformed ring, a bad request) never throws out of here: the device goes into
// DEVICE_NEEDS_RESET, the reason is logged, and the rest of the machine runs on.
import type { AccessSize, IrqLine, MmioDevice } from '../device.js';
import {
  Feature, Interrupt, MAX_QUEUES_PER_DEVICE, MmioReg, Status, TRANSPORT_FEATURES, VIRTIO_MMIO_MAGIC,
  VIRTIO_MMIO_SIZE, VIRTIO_MMIO_VENDOR, VIRTIO_MMIO_VERSION,
} from './constants.js';
import type { VirtioDevice, VirtioDeviceContext } from './device.js';
import { VirtqueueError } from './errors.js';
import { Virtqueue, type VirtioMemory } from './queue.js';
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
}

interface QueueRegisters {
  num: number;
  ready: boolean;
  desc: bigint;
  driver: bigint;
  device: bigint;
  ring: Virtqueue | null;
}

const LOW32 = 0xffffffffn;

export class VirtioMmioTransport implements MmioDevice {
  readonly size = VIRTIO_MMIO_SIZE;
  private device: VirtioDevice | null = null;
  private status = 0;
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private driverFeatures = 0n;
  private queueSel = 0;
  private queues: QueueRegisters[] = [];
  /** InterruptStatus: the word the core serves (in-core) or one of our own; changed only atomically. */
  private readonly interruptStatus: Int32Array;
  private configGeneration = 0;
  /** Bumped by every reset and failure: contexts of earlier activations are dead. */
  private activation = 0;
  private active = false;
  /** A reset waits for the device's in-flight I/O; the status reads non-zero until then. */
  private resetting = false;
  /** Settles when the I/O a stopped device had in flight is over. */
  private drain: Promise<void> | null = null;
  private readonly log: (message: string) => void;

  constructor(private readonly options: VirtioMmioTransportOptions) {
    if (!Number.isInteger(options.slot) || options.slot < 0 || options.slot >= layout.VIRTIO_MMIO_SLOTS) {
      throw new RangeError(`virtio-mmio slot ${options.slot} is not 0..${layout.VIRTIO_MMIO_SLOTS - 1}`);
    }
    this.log = options.log ?? ((message) => console.warn(message));
    if (options.inCoreInterrupt) {
      const buffer = options.memory.memory.buffer;
      this.interruptStatus = new Int32Array(buffer, layout.VIRTIO_MMIO_INTERRUPT + 4 * options.slot, 1);
      Atomics.store(this.interruptStatus, 0, 0);
      Atomics.or(new Int32Array(buffer, layout.VIRTIO_MMIO_IN_CORE, 1), 0, 1 << options.slot);
    } else {
      this.interruptStatus = new Int32Array(1);
    }
  }

  get name(): string {
    return `virtio-mmio.${this.options.slot}${this.device ? ` (${this.device.name})` : ''}`;
  }

  /** The device behind this transport, if any. */
  get plugged(): VirtioDevice | null {
    return this.device;
  }

  /** Puts a device behind the transport (before the guest runs). */
  plug(device: VirtioDevice): void {
    if (this.device !== null) throw new Error(`${this.name}: a device is already plugged in`);
    if (device.queueSizes.length === 0 || device.queueSizes.length > MAX_QUEUES_PER_DEVICE) {
      throw new RangeError(`${device.name}: ${device.queueSizes.length} queues (a device has 1..${MAX_QUEUES_PER_DEVICE})`);
    }
    this.device = device;
    this.resetRegisters();
  }

  /** I/O the plugged device has started and not completed. */
  get pendingIo(): number {
    return this.device?.requestsInFlight ?? 0;
  }

  get deviceStatus(): number {
    return this.status;
  }

  get interrupts(): number {
    return Atomics.load(this.interruptStatus, 0);
  }

  get negotiatedFeatures(): bigint {
    return this.driverFeatures;
  }

  private get offeredFeatures(): bigint {
    return this.device === null ? 0n : this.device.features | TRANSPORT_FEATURES;
  }

  read(offset: number, size: AccessSize): number {
    if (offset >= MmioReg.config) {
      if (this.device === null) return 0;
      return this.device.readConfig(offset - MmioReg.config, size);
    }
    if (size !== 4 || offset % 4 !== 0) {
      this.guestError(`${size}-byte read of register 0x${offset.toString(16)} (registers are 32-bit)`);
      return 0;
    }
    switch (offset) {
      case MmioReg.magic:
        return VIRTIO_MMIO_MAGIC;
      case MmioReg.version:
        return VIRTIO_MMIO_VERSION;
      case MmioReg.vendorId:
        return VIRTIO_MMIO_VENDOR;
      case MmioReg.deviceId:
        return this.device?.deviceId ?? 0;
    }
    if (this.device === null) return 0;
    switch (offset) {
      case MmioReg.deviceFeatures:
        return this.deviceFeaturesSel > 1 ? 0 : Number((this.offeredFeatures >> BigInt(32 * this.deviceFeaturesSel)) & LOW32);
      case MmioReg.queueNumMax:
        return this.selectedQueueMax();
      case MmioReg.queueReady:
        return this.queues[this.queueSel]?.ready ? 1 : 0;
      case MmioReg.interruptStatus:
        return this.interrupts;
      case MmioReg.status:
        return this.status;
      case MmioReg.configGeneration:
        return this.configGeneration;
      case MmioReg.shmLenLow:
      case MmioReg.shmLenHigh:
        return 0xffffffff; // no shared memory regions
      default:
        return 0;
    }
  }

  write(offset: number, size: AccessSize, value: number): void {
    if (this.device === null) return;
    if (offset >= MmioReg.config) {
      this.device.writeConfig(offset - MmioReg.config, size, value);
      return;
    }
    if (size !== 4 || offset % 4 !== 0) {
      this.guestError(`${size}-byte write of register 0x${offset.toString(16)} (registers are 32-bit)`);
      return;
    }
    if (this.resetting && offset !== MmioReg.status) return;
    const queue = this.queues[this.queueSel];
    switch (offset) {
      case MmioReg.deviceFeaturesSel:
        this.deviceFeaturesSel = value;
        return;
      case MmioReg.driverFeaturesSel:
        this.driverFeaturesSel = value;
        return;
      case MmioReg.driverFeatures:
        this.writeDriverFeatures(value);
        return;
      case MmioReg.queueSel:
        this.queueSel = value;
        return;
      case MmioReg.queueNum:
        if (this.queueWritable(queue, 'QueueNum')) queue!.num = value;
        return;
      case MmioReg.queueDescLow:
      case MmioReg.queueDescHigh:
      case MmioReg.queueDriverLow:
      case MmioReg.queueDriverHigh:
      case MmioReg.queueDeviceLow:
      case MmioReg.queueDeviceHigh:
        if (this.queueWritable(queue, 'a queue address')) writeAddressHalf(queue!, offset, value);
        return;
      case MmioReg.queueReady:
        if (queue === undefined) return;
        if (value === 1) this.enableQueue(this.queueSel);
        else if (value === 0) this.disableQueue(this.queueSel);
        return;
      case MmioReg.queueNotify:
        this.notify(value);
        return;
      case MmioReg.interruptAck:
        if ((Atomics.and(this.interruptStatus, 0, ~value) & ~value) === 0) this.options.irq.set(false);
        return;
      case MmioReg.status:
        this.writeStatus(value);
        return;
      default:
        this.guestError(`write of 0x${value.toString(16)} to read-only or unknown register 0x${offset.toString(16)}`);
    }
  }

  /** The guest broke the protocol: the device stops and says DEVICE_NEEDS_RESET. */
  fail(reason: string): void {
    if ((this.status & Status.deviceNeedsReset) !== 0) return;
    this.log(`${this.name}: ${reason}; device needs reset`);
    this.stopDevice();
    this.status |= Status.deviceNeedsReset;
    // A driver that has finished setting up learns it from a configuration change interrupt.
    if ((this.status & Status.driverOk) !== 0) this.raise(Interrupt.configChange);
  }

  /** Machine reset (power cycle): like a driver reset, without waiting for the device. */
  reset(): void {
    this.stopDevice();
    this.resetRegisters();
  }

  // ---- features and status ----

  private writeDriverFeatures(value: number): void {
    if ((this.status & Status.featuresOk) !== 0) {
      this.guestError('driver features written after FEATURES_OK');
      return;
    }
    if (this.driverFeaturesSel > 1) return;
    const shift = BigInt(32 * this.driverFeaturesSel);
    this.driverFeatures = (this.driverFeatures & ~(LOW32 << shift)) | (BigInt(value >>> 0) << shift);
  }

  private writeStatus(value: number): void {
    if (value === 0) {
      this.startReset();
      return;
    }
    if (this.resetting) return;
    const old = this.status;
    let next = (value & 0xff & ~Status.deviceNeedsReset) | (old & Status.deviceNeedsReset);
    const setting = (bit: number) => (next & bit) !== 0 && (old & bit) === 0;
    if (setting(Status.featuresOk)) {
      const unknown = this.driverFeatures & ~this.offeredFeatures;
      if (unknown !== 0n) {
        this.guestError(`driver accepted features the device does not offer (0x${unknown.toString(16)}); FEATURES_OK refused`);
        next &= ~Status.featuresOk;
      }
      // A driver that leaves VIRTIO_F_VERSION_1 out (xv6 writes only the low feature word) is served as
      // QEMU's modern transport serves it: same registers and rings, fields little-endian, which on RISC-V
      // is what legacy means too. A device whose format differs without it (virtio-net's 10-byte header)
      // looks at the negotiated features.
    }
    if ((old & Status.featuresOk) !== 0 && (next & Status.featuresOk) === 0 && (next & Status.deviceNeedsReset) === 0) {
      this.guestError('driver cleared FEATURES_OK without a reset');
      next |= Status.featuresOk;
    }
    this.status = next;
    if ((next & Status.failed) !== 0) {
      this.stopDevice();
      return;
    }
    if (setting(Status.driverOk)) {
      if ((next & Status.featuresOk) === 0) {
        this.fail('DRIVER_OK without FEATURES_OK');
        return;
      }
      this.activate();
    }
  }

  private startReset(): void {
    this.stopDevice();
    const drain = this.drain;
    if (drain === null) {
      this.resetRegisters();
      return;
    }
    this.resetting = true;
    drain.then(() => {
      this.resetting = false;
      this.resetRegisters();
    });
  }

  /** Stops the device model and releases the rings; a device with I/O in flight leaves `drain` set. */
  private stopDevice(): void {
    this.activation++;
    const wasActive = this.active;
    this.active = false;
    for (const queue of this.queues) {
      queue.ring?.reset();
      queue.ring = null;
    }
    if (!wasActive || this.device === null) return;
    const stopped = this.device.reset();
    if (!(stopped instanceof Promise)) return;
    const drain: Promise<void> = stopped.catch((error: unknown) => {
      this.log(`${this.name}: error while stopping: ${(error as Error).message}`);
    }).then(() => {
      if (this.drain === drain) this.drain = null;
    });
    this.drain = drain;
  }

  private resetRegisters(): void {
    this.status = 0;
    this.deviceFeaturesSel = 0;
    this.driverFeaturesSel = 0;
    this.driverFeatures = 0n;
    this.queueSel = 0;
    Atomics.store(this.interruptStatus, 0, 0);
    this.options.irq.set(false);
    this.queues = (this.device?.queueSizes ?? []).map((max) => ({ num: max, ready: false, desc: 0n, driver: 0n, device: 0n, ring: null }));
  }

  private activate(): void {
    const device = this.device;
    if (device === null) return;
    const generation = this.activation;
    const transport = this;
    const context: VirtioDeviceContext = {
      features: this.driverFeatures,
      get live() {
        return transport.activation === generation && transport.active;
      },
      queue: (index) => (this.activation === generation ? (this.queues[index]?.ring ?? null) : null),
      signalUsed: (index) => {
        if (this.activation === generation) this.signalUsed(index);
      },
      fail: (reason) => {
        if (this.activation === generation) this.fail(reason);
      },
      configChanged: () => {
        if (this.activation !== generation) return;
        this.configGeneration = (this.configGeneration + 1) >>> 0;
        this.raise(Interrupt.configChange);
      },
    };
    this.active = true;
    try {
      device.activate(context);
    } catch (error) {
      this.fail(`activation failed: ${(error as Error).message}`);
    }
  }

  // ---- queues ----

  private selectedQueueMax(): number {
    return this.device?.queueSizes[this.queueSel] ?? 0;
  }

  private queueWritable(queue: QueueRegisters | undefined, what: string): boolean {
    if (queue === undefined) {
      this.guestError(`${what} written for queue ${this.queueSel}, which does not exist`);
      return false;
    }
    if (queue.ready) {
      this.guestError(`${what} written for queue ${this.queueSel} while it is ready`);
      return false;
    }
    return true;
  }

  private enableQueue(index: number): void {
    const queue = this.queues[index]!;
    if (queue.ready) return;
    const max = this.device!.queueSizes[index]!;
    if (queue.num > max) {
      this.fail(`queue ${index}: size ${queue.num} is above QueueNumMax ${max}`);
      return;
    }
    try {
      queue.ring = Virtqueue.configure(this.options.memory, this.options.slot * MAX_QUEUES_PER_DEVICE + index, index, {
        size: queue.num,
        desc: queue.desc,
        driver: queue.driver,
        device: queue.device,
        eventIdx: (this.driverFeatures & Feature.ringEventIdx) !== 0n,
        indirect: (this.driverFeatures & Feature.ringIndirectDesc) !== 0n,
      });
      queue.ready = true;
    } catch (error) {
      if (!(error instanceof VirtqueueError)) throw error;
      this.fail(error.message);
    }
  }

  private disableQueue(index: number): void {
    const queue = this.queues[index]!;
    queue.ring?.reset();
    queue.ring = null;
    queue.ready = false;
  }

  private notify(index: number): void {
    if (!this.active || this.device === null) return;
    if (this.queues[index]?.ring == null) {
      this.guestError(`notify for queue ${index}, which is not ready`);
      return;
    }
    try {
      this.device.notify(index);
    } catch (error) {
      if (error instanceof VirtqueueError) this.fail(error.message);
      else throw error;
    }
  }

  private signalUsed(index: number): void {
    const ring = this.queues[index]?.ring;
    if (ring != null && ring.needsInterrupt()) this.raise(Interrupt.usedBuffer);
  }

  private raise(bits: number): void {
    // Bits first, then the line: an acknowledgement in the core that lowers the line in between sees them.
    Atomics.or(this.interruptStatus, 0, bits);
    this.options.irq.set(true);
  }

  private guestError(message: string): void {
    this.log(`${this.name}: guest error: ${message}`);
  }
}

function writeAddressHalf(queue: QueueRegisters, offset: number, value: number): void {
  const half = BigInt(value >>> 0);
  const set = (old: bigint, high: boolean) => (high ? (old & LOW32) | (half << 32n) : (old & ~LOW32) | half);
  switch (offset) {
    case MmioReg.queueDescLow: queue.desc = set(queue.desc, false); break;
    case MmioReg.queueDescHigh: queue.desc = set(queue.desc, true); break;
    case MmioReg.queueDriverLow: queue.driver = set(queue.driver, false); break;
    case MmioReg.queueDriverHigh: queue.driver = set(queue.driver, true); break;
    case MmioReg.queueDeviceLow: queue.device = set(queue.device, false); break;
    case MmioReg.queueDeviceHigh: queue.device = set(queue.device, true); break;
  }
}
