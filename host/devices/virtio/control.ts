// The transport-independent half of a virtio transport (virtio 1.2 §2-§3): the device status state
// machine, feature negotiation, the per-queue registers and handing each ready queue to the core's data
// plane, activation, notification, DEVICE_NEEDS_RESET and reset with I/O in flight. virtio-mmio
// (transport.ts) and virtio-pci (pci.ts) differ only in how the guest reaches these registers and in how an
// interrupt is delivered, so each keeps its register decode and its interrupt state and drives one of these.
//
// A guest mistake never throws out of here: it is logged, and a protocol violation puts the device into
// DEVICE_NEEDS_RESET while the rest of the machine runs on.
import { Feature, Interrupt, MAX_QUEUES_PER_DEVICE, Status, TRANSPORT_FEATURES } from './constants.js';
import type { VirtioDevice, VirtioDeviceContext } from './device.js';
import { VirtqueueError } from './errors.js';
import { Virtqueue, type VirtioMemory } from './queue.js';

/** How the control plane reaches its transport's interrupt state. */
export interface VirtioInterruptSink {
  /** Sets interrupt bits (Interrupt.*) and raises the transport's line. */
  raise(bits: number): void;
  /** Clears every interrupt bit and lowers the line (device reset). */
  clear(): void;
}

export interface VirtioControlOptions {
  readonly memory: VirtioMemory;
  /** The first of the MAX_QUEUES_PER_DEVICE core queue records this transport's queues use. */
  readonly firstRecord: number;
  readonly interrupts: VirtioInterruptSink;
  /** The transport's name for logs (it changes when a device is plugged in). */
  readonly name: () => string;
  readonly log: (message: string) => void;
  /**
   * A legacy (pre-1.0) transport: 32 feature bits (no VIRTIO_F_VERSION_1), and no FEATURES_OK step, so
   * DRIVER_OK alone accepts the driver's features.
   */
  readonly legacy?: boolean;
}

/** One queue's registers as the driver wrote them. */
export interface QueueRegisters {
  num: number;
  ready: boolean;
  desc: bigint;
  driver: bigint;
  device: bigint;
  ring: Virtqueue | null;
}

/** The three ring addresses of a queue. */
export type QueueArea = 'desc' | 'driver' | 'device';

/**
 * The registers every transport has, named by what they hold; each transport maps its own offsets to
 * these (virtio-mmio's DeviceFeaturesSel, virtio-pci's device_feature_select, ...).
 */
export type VirtioRegister =
  | 'deviceFeaturesSel' | 'deviceFeatures' | 'driverFeaturesSel' | 'driverFeatures' | 'queueSel' | 'queueSize'
  | 'queueSizeMax' | 'queueReady' | 'numQueues' | 'status' | 'configGeneration';

const LOW32 = 0xffffffffn;

export class VirtioControl {
  private plugged: VirtioDevice | null = null;
  private statusValue = 0;
  /** The selector registers: which 32-bit feature word and which queue the other registers show. */
  deviceFeaturesSel = 0;
  driverFeaturesSel = 0;
  queueSel = 0;
  private driverFeatures = 0n;
  private queues: QueueRegisters[] = [];
  private generation = 0;
  /** Bumped by every reset and failure: contexts of earlier activations are dead. */
  private activation = 0;
  private active = false;
  /** A reset waits for the device's in-flight I/O; the status reads non-zero until then. */
  private resetPending = false;
  /** Settles when the I/O a stopped device had in flight is over. */
  private drain: Promise<void> | null = null;

  constructor(private readonly options: VirtioControlOptions) {}

  get device(): VirtioDevice | null {
    return this.plugged;
  }

  /** Puts a device behind the transport (before the guest runs). */
  plug(device: VirtioDevice): void {
    if (this.plugged !== null) throw new Error(`${this.options.name()}: a device is already plugged in`);
    if (device.queueSizes.length === 0 || device.queueSizes.length > MAX_QUEUES_PER_DEVICE) {
      throw new RangeError(`${device.name}: ${device.queueSizes.length} queues (a device has 1..${MAX_QUEUES_PER_DEVICE})`);
    }
    this.plugged = device;
    this.resetRegisters();
  }

  get status(): number {
    return this.statusValue;
  }

  /** True while a driver reset waits for the device's I/O: only a status write is taken then. */
  get resetting(): boolean {
    return this.resetPending;
  }

  get negotiatedFeatures(): bigint {
    return this.driverFeatures;
  }

  get configGeneration(): number {
    return this.generation;
  }

  /** I/O the plugged device has started and not completed. */
  get pendingIo(): number {
    return this.plugged?.requestsInFlight ?? 0;
  }

  get queueCount(): number {
    return this.queues.length;
  }

  /** The selected queue's registers, undefined when queueSel names no queue. */
  get selectedQueue(): QueueRegisters | undefined {
    return this.queues[this.queueSel];
  }

  /** QueueNumMax / the largest queue_size of the selected queue; 0 when it does not exist. */
  get selectedQueueMax(): number {
    return this.plugged?.queueSizes[this.queueSel] ?? 0;
  }

  private get offeredFeatures(): bigint {
    if (this.plugged === null) return 0n;
    const features = this.plugged.features | TRANSPORT_FEATURES;
    return this.options.legacy ? features & LOW32 : features;
  }

  /** Features the driver accepted that the device did not offer (0 when it kept to the offer). */
  private get unofferedFeatures(): bigint {
    return this.driverFeatures & ~this.offeredFeatures;
  }

  /** The offered feature word deviceFeaturesSel selects (words past the second read 0). */
  get deviceFeatureWord(): number {
    return this.deviceFeaturesSel > 1 ? 0 : Number((this.offeredFeatures >> BigInt(32 * this.deviceFeaturesSel)) & LOW32);
  }

  /** The accepted feature word driverFeaturesSel selects. */
  get driverFeatureWord(): number {
    return this.driverFeaturesSel > 1 ? 0 : Number((this.driverFeatures >> BigInt(32 * this.driverFeaturesSel)) & LOW32);
  }

  /** A guest read of a shared register (an unknown queue reads 0). */
  readRegister(register: VirtioRegister): number {
    const queue = this.queues[this.queueSel];
    switch (register) {
      case 'deviceFeaturesSel': return this.deviceFeaturesSel >>> 0;
      case 'deviceFeatures': return this.deviceFeatureWord;
      case 'driverFeaturesSel': return this.driverFeaturesSel >>> 0;
      case 'driverFeatures': return this.driverFeatureWord;
      case 'queueSel': return this.queueSel;
      case 'queueSize': return queue?.num ?? 0;
      case 'queueSizeMax': return this.selectedQueueMax;
      case 'queueReady': return queue?.ready ? 1 : 0;
      case 'numQueues': return this.queues.length;
      case 'status': return this.statusValue;
      case 'configGeneration': return this.generation;
    }
  }

  /** A guest write of a shared register; read-only ones log a guest error. */
  writeRegister(register: VirtioRegister, value: number): void {
    switch (register) {
      case 'deviceFeaturesSel':
        this.deviceFeaturesSel = value;
        return;
      case 'driverFeaturesSel':
        this.driverFeaturesSel = value;
        return;
      case 'driverFeatures':
        this.writeDriverFeatureWord(value);
        return;
      case 'queueSel':
        this.queueSel = value;
        return;
      case 'queueSize':
        this.writeQueueSize(value);
        return;
      case 'status':
        this.writeStatus(value);
        return;
      default:
        this.guestError(`write of 0x${value.toString(16)} to the read-only ${register}`);
    }
  }

  writeDriverFeatureWord(value: number): void {
    if ((this.statusValue & Status.featuresOk) !== 0) {
      this.guestError('driver features written after FEATURES_OK');
      return;
    }
    if (this.driverFeaturesSel > 1) return;
    const shift = BigInt(32 * this.driverFeaturesSel);
    this.driverFeatures = (this.driverFeatures & ~(LOW32 << shift)) | (BigInt(value >>> 0) << shift);
  }

  // ---- status ----

  writeStatus(value: number): void {
    if (value === 0) {
      this.startReset();
      return;
    }
    if (this.resetPending) return;
    const old = this.statusValue;
    let next = (value & 0xff & ~Status.deviceNeedsReset) | (old & Status.deviceNeedsReset);
    const setting = (bit: number) => (next & bit) !== 0 && (old & bit) === 0;
    if (setting(Status.featuresOk)) {
      const unknown = this.unofferedFeatures;
      if (unknown !== 0n) {
        this.guestError(`driver accepted features the device does not offer (0x${unknown.toString(16)}); FEATURES_OK refused`);
        next &= ~Status.featuresOk;
      }
      // A driver that leaves VIRTIO_F_VERSION_1 out (xv6 writes only the low feature word) is served as
      // QEMU's modern transports serve it: same registers and rings, fields little-endian, which on RISC-V
      // is what legacy means too. A device whose format differs without it (virtio-net's 10-byte header)
      // looks at the negotiated features.
    }
    if ((old & Status.featuresOk) !== 0 && (next & Status.featuresOk) === 0 && (next & Status.deviceNeedsReset) === 0) {
      this.guestError('driver cleared FEATURES_OK without a reset');
      next |= Status.featuresOk;
    }
    this.statusValue = next;
    if ((next & Status.failed) !== 0) {
      this.stopDevice();
      return;
    }
    if (setting(Status.driverOk)) {
      if (this.options.legacy) {
        const unknown = this.unofferedFeatures;
        if (unknown !== 0n) {
          this.fail(`driver accepted features the device does not offer (0x${unknown.toString(16)})`);
          return;
        }
      } else if ((next & Status.featuresOk) === 0) {
        this.fail('DRIVER_OK without FEATURES_OK');
        return;
      }
      this.activate();
    }
  }

  /** The guest broke the protocol: the device stops and says DEVICE_NEEDS_RESET. */
  fail(reason: string): void {
    if ((this.statusValue & Status.deviceNeedsReset) !== 0) return;
    this.options.log(`${this.options.name()}: ${reason}; device needs reset`);
    this.stopDevice();
    this.statusValue |= Status.deviceNeedsReset;
    // A driver that has finished setting up learns it from a configuration change interrupt.
    if ((this.statusValue & Status.driverOk) !== 0) this.options.interrupts.raise(Interrupt.configChange);
  }

  /** Machine reset (power cycle): like a driver reset, without waiting for the device. */
  reset(): void {
    this.stopDevice();
    this.resetRegisters();
  }

  private startReset(): void {
    this.stopDevice();
    const drain = this.drain;
    if (drain === null) {
      this.resetRegisters();
      return;
    }
    this.resetPending = true;
    drain.then(() => {
      this.resetPending = false;
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
    if (!wasActive || this.plugged === null) return;
    const stopped = this.plugged.reset();
    if (!(stopped instanceof Promise)) return;
    const drain: Promise<void> = stopped.catch((error: unknown) => {
      this.options.log(`${this.options.name()}: error while stopping: ${(error as Error).message}`);
    }).then(() => {
      if (this.drain === drain) this.drain = null;
    });
    this.drain = drain;
  }

  private resetRegisters(): void {
    this.statusValue = 0;
    this.deviceFeaturesSel = 0;
    this.driverFeaturesSel = 0;
    this.driverFeatures = 0n;
    this.queueSel = 0;
    this.options.interrupts.clear();
    this.queues = (this.plugged?.queueSizes ?? []).map((max) => ({ num: max, ready: false, desc: 0n, driver: 0n, device: 0n, ring: null }));
  }

  private activate(): void {
    const device = this.plugged;
    if (device === null) return;
    const generation = this.activation;
    const control = this;
    const context: VirtioDeviceContext = {
      features: this.driverFeatures,
      get live() {
        return control.activation === generation && control.active;
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
        this.generation = (this.generation + 1) >>> 0;
        this.options.interrupts.raise(Interrupt.configChange);
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

  /** QueueNum / queue_size of the selected queue (refused while the queue is ready). */
  writeQueueSize(value: number): void {
    const queue = this.writableQueue('the queue size');
    if (queue !== undefined) queue.num = value;
  }

  /** One 32-bit half of a ring address of the selected queue (refused while the queue is ready). */
  writeQueueAddressHalf(area: QueueArea, high: boolean, value: number): void {
    const queue = this.writableQueue('a queue address');
    if (queue === undefined) return;
    const half = BigInt(value >>> 0);
    const old = queue[area];
    queue[area] = high ? (old & LOW32) | (half << 32n) : (old & ~LOW32) | half;
  }

  private writableQueue(what: string): QueueRegisters | undefined {
    const queue = this.queues[this.queueSel];
    if (queue === undefined) {
      this.guestError(`${what} written for queue ${this.queueSel}, which does not exist`);
      return undefined;
    }
    if (queue.ready) {
      this.guestError(`${what} written for queue ${this.queueSel} while it is ready`);
      return undefined;
    }
    return queue;
  }

  /** QueueReady = 1 / queue_enable = 1: hands the selected queue's rings to the data plane. */
  enableSelectedQueue(): void {
    const index = this.queueSel;
    const queue = this.queues[index];
    if (queue === undefined || queue.ready) return;
    const max = this.plugged!.queueSizes[index]!;
    if (queue.num > max) {
      this.fail(`queue ${index}: size ${queue.num} is above the largest, ${max}`);
      return;
    }
    try {
      queue.ring = Virtqueue.configure(this.options.memory, this.options.firstRecord + index, index, {
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

  /** QueueReady = 0 (virtio-mmio): the driver takes the selected queue back. */
  disableSelectedQueue(): void {
    const queue = this.queues[this.queueSel];
    if (queue === undefined) return;
    queue.ring?.reset();
    queue.ring = null;
    queue.ready = false;
  }

  /** The driver notified queue `index`: the device processes it (only while active). */
  notify(index: number): void {
    if (!this.active || this.plugged === null) return;
    if (this.queues[index]?.ring == null) {
      this.guestError(`notify for queue ${index}, which is not ready`);
      return;
    }
    try {
      this.plugged.notify(index);
    } catch (error) {
      if (error instanceof VirtqueueError) this.fail(error.message);
      else throw error;
    }
  }

  private signalUsed(index: number): void {
    const ring = this.queues[index]?.ring;
    if (ring != null && ring.needsInterrupt()) this.options.interrupts.raise(Interrupt.usedBuffer);
  }

  guestError(message: string): void {
    this.options.log(`${this.options.name()}: guest error: ${message}`);
  }
}
