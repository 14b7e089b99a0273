// The guest side of PCI and of a virtio-pci driver, for tests: config cycles through the ECAM window,
// BAR sizing and placement as Linux's and U-Boot's PCI cores do it, the capability walk and the
// initialization sequence of virtio 1.2 §3.1.1 over the common configuration structure, as Linux's
// virtio_pci_modern.c performs them. Everything goes through an MmioBus, as a guest's loads and stores do.
import type { MmioBus } from '../../host/vmm/bus.js';
import { Status } from '../../host/devices/virtio/constants.js';
import { CommonCfg, VirtioPciCapType } from '../../host/devices/virtio/pci.js';
import type { MockSplitQueue } from './split_queue.js';

export const ECAM = 0x3000_0000;

/** A guest's view of one PCI function on bus 0. */
export class MockPciFunction {
  constructor(readonly bus: MmioBus, readonly slot: number) {}

  private address(register: number): number {
    return ECAM + (this.slot << 15) + register;
  }

  configRead(register: number, size: 1 | 2 | 4): number {
    return Number(this.bus.read(this.address(register), size));
  }

  configWrite(register: number, size: 1 | 2 | 4, value: number): void {
    this.bus.write(this.address(register), size, BigInt(value >>> 0));
  }

  /** Sizes BAR `index` (all-ones, read back, restore) as a PCI core does: its size and flag bits. */
  sizeBar(index: number): { size: number; flags: number } {
    const register = 0x10 + 4 * index;
    const original = this.configRead(register, 4);
    this.configWrite(register, 4, 0xffff_ffff);
    const low = this.configRead(register, 4);
    this.configWrite(register, 4, original);
    const flags = low & 0xf;
    const is64 = (flags & 0x6) === 0x4;
    let high = 0xffff_ffff;
    if (is64) {
      const originalHigh = this.configRead(register + 4, 4);
      this.configWrite(register + 4, 4, 0xffff_ffff);
      high = this.configRead(register + 4, 4);
      this.configWrite(register + 4, 4, originalHigh);
    }
    const mask = BigInt(high) << 32n | BigInt((low & ~0xf) >>> 0);
    const size = Number(((~mask) & ((1n << 64n) - 1n)) + 1n) ;
    return { size: is64 ? size : size % 2 ** 32, flags };
  }

  /** Places a 64-bit memory BAR at `address`. */
  placeBar64(index: number, address: number): void {
    const register = 0x10 + 4 * index;
    this.configWrite(register, 4, address % 2 ** 32);
    this.configWrite(register + 4, 4, Math.floor(address / 2 ** 32));
  }

  /** The capability list: [offset, id] from the pointer on. */
  capabilities(): Array<[offset: number, id: number]> {
    const found: Array<[number, number]> = [];
    let at = this.configRead(0x34, 1);
    while (at !== 0 && found.length < 48) {
      found.push([at, this.configRead(at, 1)]);
      at = this.configRead(at + 1, 1);
    }
    return found;
  }
}

/** A virtio structure a vendor capability points to. */
export interface VirtioPciStructure {
  readonly capability: number;
  readonly bar: number;
  readonly offset: number;
  readonly length: number;
}

/** A virtio-pci driver over one function whose BAR the caller has placed at `barBase`. */
export class MockVirtioPciDriver {
  readonly structures = new Map<number, VirtioPciStructure>();
  readonly notifyMultiplier: number;

  constructor(readonly fn: MockPciFunction, readonly barBase: number) {
    for (const [at, id] of fn.capabilities()) {
      if (id !== 0x09) continue;
      const type = fn.configRead(at + 3, 1);
      this.structures.set(type, { capability: at, bar: fn.configRead(at + 4, 1), offset: fn.configRead(at + 8, 4), length: fn.configRead(at + 12, 4) });
    }
    this.notifyMultiplier = fn.configRead(this.structure(VirtioPciCapType.notify).capability + 16, 4);
  }

  structure(type: number): VirtioPciStructure {
    const found = this.structures.get(type);
    if (found === undefined) throw new Error(`no virtio structure of type ${type}`);
    return found;
  }

  private at(type: number, offset: number): number {
    return this.barBase + this.structure(type).offset + offset;
  }

  read(type: number, offset: number, size: 1 | 2 | 4): number {
    const value = this.fn.bus.read(this.at(type, offset), size);
    if (value === null) throw new Error(`access fault reading structure ${type} at 0x${offset.toString(16)}`);
    return Number(value);
  }

  write(type: number, offset: number, size: 1 | 2 | 4, value: number): void {
    if (!this.fn.bus.write(this.at(type, offset), size, BigInt(value >>> 0))) throw new Error(`access fault writing structure ${type} at 0x${offset.toString(16)}`);
  }

  common(offset: number, size: 1 | 2 | 4): number {
    return this.read(VirtioPciCapType.common, offset, size);
  }

  setCommon(offset: number, size: 1 | 2 | 4, value: number): void {
    this.write(VirtioPciCapType.common, offset, size, value);
  }

  status(): number {
    return this.common(CommonCfg.deviceStatus, 1);
  }

  deviceFeatures(): bigint {
    this.setCommon(CommonCfg.deviceFeatureSelect, 4, 0);
    const low = BigInt(this.common(CommonCfg.deviceFeature, 4));
    this.setCommon(CommonCfg.deviceFeatureSelect, 4, 1);
    return (BigInt(this.common(CommonCfg.deviceFeature, 4)) << 32n) | low;
  }

  /** Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK; whether the device kept FEATURES_OK. */
  negotiate(features: bigint): boolean {
    this.setCommon(CommonCfg.deviceStatus, 1, 0);
    this.setCommon(CommonCfg.deviceStatus, 1, Status.acknowledge);
    this.setCommon(CommonCfg.deviceStatus, 1, Status.acknowledge | Status.driver);
    this.setCommon(CommonCfg.driverFeatureSelect, 4, 0);
    this.setCommon(CommonCfg.driverFeature, 4, Number(features & 0xffffffffn));
    this.setCommon(CommonCfg.driverFeatureSelect, 4, 1);
    this.setCommon(CommonCfg.driverFeature, 4, Number(features >> 32n));
    this.setCommon(CommonCfg.deviceStatus, 1, Status.acknowledge | Status.driver | Status.featuresOk);
    return (this.status() & Status.featuresOk) !== 0;
  }

  /** Queue setup as Linux does it: size, the three addresses as 32-bit halves, then queue_enable. */
  setupQueue(index: number, queue: MockSplitQueue): void {
    this.setCommon(CommonCfg.queueSelect, 2, index);
    this.setCommon(CommonCfg.queueSize, 2, queue.size);
    for (const [field, address] of [[CommonCfg.queueDesc, queue.desc], [CommonCfg.queueDriver, queue.avail], [CommonCfg.queueDevice, queue.used]] as const) {
      this.setCommon(field, 4, address % 2 ** 32);
      this.setCommon(field + 4, 4, Math.floor(address / 2 ** 32));
    }
    this.setCommon(CommonCfg.queueEnable, 2, 1);
  }

  driverOk(): void {
    this.setCommon(CommonCfg.deviceStatus, 1, this.status() | Status.driverOk);
  }

  /** Writes the queue's index at its notify address (queue_notify_off × multiplier). */
  notify(index: number): void {
    this.setCommon(CommonCfg.queueSelect, 2, index);
    const off = this.common(CommonCfg.queueNotifyOff, 2);
    this.write(VirtioPciCapType.notify, off * this.notifyMultiplier, 2, index);
  }

  /** The interrupt handler's one read: ISR status, cleared by the read. */
  readIsr(): number {
    return this.read(VirtioPciCapType.isr, 0, 1);
  }
}
