// The register side of a virtio-mmio driver, for tests: the initialization sequence of virtio 1.2
// §3.1.1 as Linux's virtio_mmio.c performs it, over any MmioDevice.
import type { MmioDevice } from '../../host/devices/device.js';
import { MmioReg, Status } from '../../host/devices/virtio/constants.js';
import type { MockSplitQueue } from './split_queue.js';

export class MockVirtioDriver {
  constructor(readonly transport: MmioDevice) {}

  read(offset: number): number {
    return this.transport.read(offset, 4);
  }

  write(offset: number, value: number): void {
    this.transport.write(offset, 4, value >>> 0);
  }

  deviceFeatures(): bigint {
    this.write(MmioReg.deviceFeaturesSel, 0);
    const low = BigInt(this.read(MmioReg.deviceFeatures));
    this.write(MmioReg.deviceFeaturesSel, 1);
    return (BigInt(this.read(MmioReg.deviceFeatures)) << 32n) | low;
  }

  writeDriverFeatures(features: bigint): void {
    this.write(MmioReg.driverFeaturesSel, 0);
    this.write(MmioReg.driverFeatures, Number(features & 0xffffffffn));
    this.write(MmioReg.driverFeaturesSel, 1);
    this.write(MmioReg.driverFeatures, Number(features >> 32n));
  }

  /** Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK; returns whether the device kept FEATURES_OK. */
  negotiate(features: bigint): boolean {
    this.write(MmioReg.status, 0);
    this.write(MmioReg.status, Status.acknowledge);
    this.write(MmioReg.status, Status.acknowledge | Status.driver);
    this.writeDriverFeatures(features);
    this.write(MmioReg.status, Status.acknowledge | Status.driver | Status.featuresOk);
    return (this.read(MmioReg.status) & Status.featuresOk) !== 0;
  }

  setupQueue(index: number, queue: MockSplitQueue): void {
    this.write(MmioReg.queueSel, index);
    this.write(MmioReg.queueNum, queue.size);
    this.write(MmioReg.queueDescLow, queue.desc);
    this.write(MmioReg.queueDescHigh, Math.floor(queue.desc / 2 ** 32));
    this.write(MmioReg.queueDriverLow, queue.avail);
    this.write(MmioReg.queueDriverHigh, Math.floor(queue.avail / 2 ** 32));
    this.write(MmioReg.queueDeviceLow, queue.used);
    this.write(MmioReg.queueDeviceHigh, Math.floor(queue.used / 2 ** 32));
    this.write(MmioReg.queueReady, 1);
  }

  driverOk(): void {
    this.write(MmioReg.status, this.read(MmioReg.status) | Status.driverOk);
  }

  /** Negotiates all offered features, sets up `queues` in order, then DRIVER_OK. */
  bringUp(queues: MockSplitQueue[], features?: bigint): void {
    if (!this.negotiate(features ?? this.deviceFeatures())) throw new Error('device refused FEATURES_OK');
    queues.forEach((q, i) => this.setupQueue(i, q));
    this.driverOk();
  }

  notify(index: number): void {
    this.write(MmioReg.queueNotify, index);
  }

  status(): number {
    return this.read(MmioReg.status);
  }

  /** Reads and acknowledges InterruptStatus, as the interrupt handler does. */
  takeInterrupts(): number {
    const bits = this.read(MmioReg.interruptStatus);
    if (bits !== 0) this.write(MmioReg.interruptAck, bits);
    return bits;
  }
}
