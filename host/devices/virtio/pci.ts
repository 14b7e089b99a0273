// The virtio-pci transport, modern interface only (virtio 1.2 §4.1): a PCI function (vendor 0x1af4, device
// 0x1040 + virtio device id, revision 1; "non-transitional", with no legacy I/O BAR) whose vendor
// capabilities point into one 64-bit prefetchable memory BAR, laid out as QEMU lays out its own (BAR 4,
// 16 KiB, 4 KiB per structure): common configuration, ISR status, device configuration, notifications.
// A PCI_CFG capability gives access to the BAR through config space. The registers drive the same
// control plane as virtio-mmio (control.ts), and the devices and the in-core data plane are the same.
//
// There is no MSI-X: the virt board without AIA has no MSI controller, so drivers use INTx. msix_config
// and queue_msix_vector read VIRTIO_MSI_NO_VECTOR whatever is written, which tells a driver that tries
// them that no vector took. The INTx pin is asserted while the ISR is non-zero; reading the ISR clears it.
import type { AccessSize } from '../device.js';
import type { PciFunction, PciInterruptPin } from '../pci/bus.js';
import { PciCommand, PciConfigSpace } from '../pci/config_space.js';
import { DeviceId, MAX_QUEUES_PER_DEVICE } from './constants.js';
import { VirtioControl, type QueueArea, type VirtioRegister } from './control.js';
import type { VirtioDevice } from './device.js';
import type { VirtioMemory } from './queue.js';
import * as layout from '../../../assembly/abi/layout.js';

/** Red Hat / Qumranet: virtio's PCI vendor id, and the subsystem vendor QEMU gives its devices. */
export const VIRTIO_PCI_VENDOR = 0x1af4;
/** A modern device's PCI device id is this plus its virtio device id. */
export const VIRTIO_PCI_MODERN_DEVICE_BASE = 0x1040;
/** QEMU's PCI_SUBDEVICE_ID_QEMU: the subsystem id of its modern-only virtio devices. */
const QEMU_SUBSYSTEM_ID = 0x1100;

/** The BAR the structures live in (QEMU's modern_mem_bar_idx) and its layout. */
export const VIRTIO_PCI_BAR = 4;
export const VIRTIO_PCI_BAR_SIZE = 0x4000;
const REGION_SIZE = 0x1000;
export const VirtioPciRegion = { common: 0x0000, isr: 0x1000, device: 0x2000, notify: 0x3000 } as const;
/** Queue n is notified at notify region + n × this (queue_notify_off is the queue's index). */
export const VIRTIO_PCI_NOTIFY_MULTIPLIER = 4;
/** What msix_config and queue_msix_vector read: no MSI-X vector. */
export const VIRTIO_MSI_NO_VECTOR = 0xffff;

/** virtio_pci_cap.cfg_type. */
export const VirtioPciCapType = { common: 1, notify: 2, isr: 3, device: 4, pciCfg: 5 } as const;
/** PCI capability id of a vendor-specific capability. */
const PCI_CAP_ID_VENDOR = 0x09;

/** struct virtio_pci_common_cfg: each field's offset and width. */
export const CommonCfg = {
  deviceFeatureSelect: 0x00,
  deviceFeature: 0x04,
  driverFeatureSelect: 0x08,
  driverFeature: 0x0c,
  msixConfig: 0x10,
  numQueues: 0x12,
  deviceStatus: 0x14,
  configGeneration: 0x15,
  queueSelect: 0x16,
  queueSize: 0x18,
  queueMsixVector: 0x1a,
  queueEnable: 0x1c,
  queueNotifyOff: 0x1e,
  queueDesc: 0x20,
  queueDriver: 0x28,
  queueDevice: 0x30,
} as const;

const COMMON_FIELD_WIDTHS: ReadonlyArray<readonly [offset: number, width: number]> = [
  [CommonCfg.deviceFeatureSelect, 4], [CommonCfg.deviceFeature, 4], [CommonCfg.driverFeatureSelect, 4], [CommonCfg.driverFeature, 4],
  [CommonCfg.msixConfig, 2], [CommonCfg.numQueues, 2], [CommonCfg.deviceStatus, 1], [CommonCfg.configGeneration, 1],
  [CommonCfg.queueSelect, 2], [CommonCfg.queueSize, 2], [CommonCfg.queueMsixVector, 2], [CommonCfg.queueEnable, 2],
  [CommonCfg.queueNotifyOff, 2], [CommonCfg.queueDesc, 8], [CommonCfg.queueDriver, 8], [CommonCfg.queueDevice, 8],
];

/** The common configuration fields every transport has (control.ts); writes to the read-only ones are logged there. */
const COMMON_REGISTERS = new Map<number, VirtioRegister>([
  [CommonCfg.deviceFeatureSelect, 'deviceFeaturesSel'],
  [CommonCfg.deviceFeature, 'deviceFeatures'],
  [CommonCfg.driverFeatureSelect, 'driverFeaturesSel'],
  [CommonCfg.driverFeature, 'driverFeatures'],
  [CommonCfg.numQueues, 'numQueues'],
  [CommonCfg.deviceStatus, 'status'],
  [CommonCfg.queueSelect, 'queueSel'],
  [CommonCfg.queueSize, 'queueSize'],
  [CommonCfg.queueEnable, 'queueReady'],
]);

const QUEUE_AREAS = new Map<number, QueueArea>([
  [CommonCfg.queueDesc, 'desc'], [CommonCfg.queueDriver, 'driver'], [CommonCfg.queueDevice, 'device'],
]);

/** QEMU's PCI class for each virtio device (class << 8 | subclass; programming interface 0). */
const CLASS_OF_DEVICE = new Map<number, number>([
  [DeviceId.block, 0x0100], // mass storage, SCSI
  [DeviceId.network, 0x0200], // network, Ethernet
  [DeviceId.console, 0x0780], // communication, other
  [DeviceId.entropy, 0x00ff], // QEMU's PCI_CLASS_OTHERS
  [DeviceId.balloon, 0x00ff],
  [DeviceId.ninePTransport, 0x0002], // what QEMU's virtio-9p-pci sets
]);

/** The offset of each capability's fields (struct virtio_pci_cap, after the id and next bytes). */
const Cap = { length: 2, cfgType: 3, bar: 4, id: 5, offset: 8, regionLength: 12, notifyMultiplier: 16, pciCfgData: 16 } as const;

export interface VirtioPciTransportOptions {
  /** The slot on bus 0: its queues use the core records layout.VIRTQ_PCI_FIRST_RECORD + 8·slot.. */
  readonly slot: number;
  readonly memory: VirtioMemory;
  readonly intx: PciInterruptPin;
  readonly device: VirtioDevice;
  /** Where guest errors are reported (default: console.warn). */
  readonly log?: (message: string) => void;
}

export class VirtioPciTransport implements PciFunction {
  readonly name: string;
  readonly config: PciConfigSpace;
  private readonly control: VirtioControl;
  /** The ISR status byte: Interrupt.* bits since the driver last read it. */
  private isr = 0;
  /** Where the PCI_CFG capability is in config space. */
  private readonly pciCfgCap: number;

  constructor(private readonly options: VirtioPciTransportOptions) {
    const { slot, device } = options;
    if (!Number.isInteger(slot) || slot < 1 || slot >= layout.VIRTQ_PCI_SLOTS) throw new RangeError(`virtio-pci slot ${slot} is not 1..${layout.VIRTQ_PCI_SLOTS - 1}`);
    this.name = `virtio-pci.${slot} (${device.name})`;
    this.config = new PciConfigSpace(this.name, {
      vendorId: VIRTIO_PCI_VENDOR,
      deviceId: VIRTIO_PCI_MODERN_DEVICE_BASE + device.deviceId,
      revision: 1,
      classCode: (CLASS_OF_DEVICE.get(device.deviceId) ?? 0x00ff) << 8,
      subsystemVendorId: VIRTIO_PCI_VENDOR,
      subsystemId: QEMU_SUBSYSTEM_ID,
      interruptPin: 1,
    }, [{ index: VIRTIO_PCI_BAR, size: VIRTIO_PCI_BAR_SIZE, kind: 'mem64', prefetchable: true }]);
    // QEMU's order, each new capability first in the list: common at 0x40, ISR 0x50, device 0x60, notify 0x70, PCI_CFG 0x84.
    this.addStructureCap(VirtioPciCapType.common, VirtioPciRegion.common);
    this.addStructureCap(VirtioPciCapType.isr, VirtioPciRegion.isr);
    this.addStructureCap(VirtioPciCapType.device, VirtioPciRegion.device);
    this.addStructureCap(VirtioPciCapType.notify, VirtioPciRegion.notify, VIRTIO_PCI_NOTIFY_MULTIPLIER);
    // PCI_CFG: bar, offset, length and the data window are the driver's to write.
    this.pciCfgCap = this.config.addCapability(PCI_CAP_ID_VENDOR, capabilityBody(VirtioPciCapType.pciCfg, 0, 0, 0, 0), [
      [Cap.bar, 1], [Cap.offset, 4], [Cap.regionLength, 4], [Cap.pciCfgData, 4],
    ]);
    this.control = new VirtioControl({
      memory: options.memory,
      firstRecord: layout.VIRTQ_PCI_FIRST_RECORD + slot * MAX_QUEUES_PER_DEVICE,
      name: () => this.name,
      log: options.log ?? ((message) => console.warn(message)),
      interrupts: {
        raise: (bits) => this.setIsr(this.isr | bits),
        clear: () => this.setIsr(0),
      },
    });
    this.control.plug(device);
  }

  private addStructureCap(type: number, region: number, notifyMultiplier?: number): void {
    this.config.addCapability(PCI_CAP_ID_VENDOR, capabilityBody(type, VIRTIO_PCI_BAR, region, REGION_SIZE, notifyMultiplier));
  }

  get device(): VirtioDevice {
    return this.options.device;
  }

  /** I/O the device has started and not completed. */
  get pendingIo(): number {
    return this.control.pendingIo;
  }

  get deviceStatus(): number {
    return this.control.status;
  }

  get negotiatedFeatures(): bigint {
    return this.control.negotiatedFeatures;
  }

  /** The ISR byte as it stands (without the read that clears it). */
  get interruptStatus(): number {
    return this.isr;
  }

  private setIsr(value: number): void {
    this.isr = value & 0xff;
    this.options.intx.set(this.isr !== 0);
  }

  /** Machine reset. */
  reset(): void {
    this.control.reset();
  }

  // ---- the BAR ----

  readBar(bar: number, offset: number, size: AccessSize): number {
    if (bar !== VIRTIO_PCI_BAR) return 0;
    const inner = offset % REGION_SIZE;
    switch (offset - inner) {
      case VirtioPciRegion.common:
        return this.readCommon(inner, size);
      case VirtioPciRegion.isr: {
        if (inner !== 0) return 0;
        // Read-to-clear: the driver's interrupt handler learns the cause and lowers INTx with one read.
        const isr = this.isr;
        this.setIsr(0);
        return isr;
      }
      case VirtioPciRegion.device:
        return this.options.device.readConfig(inner, size);
      default:
        return 0; // notifications are write-only
    }
  }

  writeBar(bar: number, offset: number, size: AccessSize, value: number): void {
    if (bar !== VIRTIO_PCI_BAR) return;
    const inner = offset % REGION_SIZE;
    switch (offset - inner) {
      case VirtioPciRegion.common:
        this.writeCommon(inner, size, value);
        return;
      case VirtioPciRegion.device:
        if (!this.control.resetting) this.options.device.writeConfig(inner, size, value);
        return;
      case VirtioPciRegion.notify:
        this.notify(inner);
        return;
      default:
        this.control.guestError(`write to the read-only ISR status at 0x${inner.toString(16)}`);
    }
  }

  private notify(inner: number): void {
    if (inner % VIRTIO_PCI_NOTIFY_MULTIPLIER !== 0) {
      this.control.guestError(`notification at 0x${inner.toString(16)}, which is no queue's notify address`);
      return;
    }
    // A device may not touch memory while bus mastering is off (Linux turns it on in probe).
    if ((this.config.command & PciCommand.busMaster) === 0) {
      this.control.guestError('notification while bus mastering is disabled in the command register');
      return;
    }
    this.control.notify(inner / VIRTIO_PCI_NOTIFY_MULTIPLIER);
  }

  /** The common-configuration field holding [offset, offset + size), and where in it; null for a straddling access. */
  private commonField(offset: number, size: number): { start: number; width: number } | null {
    for (const [start, width] of COMMON_FIELD_WIDTHS) {
      if (offset >= start && offset + size <= start + width) return { start, width };
    }
    return null;
  }

  private readCommon(offset: number, size: AccessSize): number {
    const field = this.commonField(offset, size);
    if (field === null) {
      if (offset < CommonCfg.queueDevice + 8) this.control.guestError(`${size}-byte read at 0x${offset.toString(16)} of the common configuration straddles its fields`);
      return 0;
    }
    const value = this.commonFieldValue(field.start);
    return Number((value >> BigInt(8 * (offset - field.start))) & ((1n << BigInt(8 * size)) - 1n));
  }

  private commonFieldValue(field: number): bigint {
    const shared = COMMON_REGISTERS.get(field);
    if (shared !== undefined) return BigInt(this.control.readRegister(shared));
    const queue = this.control.selectedQueue;
    switch (field) {
      case CommonCfg.msixConfig:
      case CommonCfg.queueMsixVector:
        return BigInt(VIRTIO_MSI_NO_VECTOR);
      case CommonCfg.configGeneration:
        return BigInt(this.control.configGeneration & 0xff);
      case CommonCfg.queueNotifyOff:
        return queue === undefined ? 0n : BigInt(this.control.queueSel);
      default: {
        const area = QUEUE_AREAS.get(field);
        return area === undefined || queue === undefined ? 0n : queue[area];
      }
    }
  }

  private writeCommon(offset: number, size: AccessSize, value: number): void {
    const control = this.control;
    const field = this.commonField(offset, size);
    const area = field === null ? undefined : QUEUE_AREAS.get(field.start);
    // A field is written whole, but a 64-bit ring address may come as two 32-bit halves (Linux writes it so).
    const whole = field !== null && offset === field.start && size === field.width;
    const half = area !== undefined && size === 4 && (offset - field!.start) % 4 === 0;
    if (field === null || (!whole && !half)) {
      control.guestError(`${size}-byte write at 0x${offset.toString(16)} of the common configuration does not fit a field`);
      return;
    }
    if (control.resetting && field.start !== CommonCfg.deviceStatus) return;
    if (area !== undefined) {
      control.writeQueueAddressHalf(area, offset !== field.start, value);
      return;
    }
    const shared = COMMON_REGISTERS.get(field.start);
    switch (field.start) {
      case CommonCfg.msixConfig:
      case CommonCfg.queueMsixVector:
        return; // no MSI-X: the vector reads back NO_VECTOR
      case CommonCfg.queueEnable:
        // The driver may only enable a queue (§4.1.4.3.2); QEMU treats anything else as a device error too.
        if (value === 1) control.enableSelectedQueue();
        else control.fail(`queue_enable written with ${value} for queue ${control.queueSel}`);
        return;
      default:
        if (shared !== undefined) control.writeRegister(shared, value);
        else control.guestError(`write of 0x${value.toString(16)} to the read-only common configuration field at 0x${field.start.toString(16)}`);
    }
  }

  // ---- PCI_CFG: the BAR through config space ----

  /** The access the PCI_CFG capability describes, if it names a window of our BAR a driver may use. */
  private pciCfgAccess(): { offset: number; size: AccessSize } | null {
    const cap = this.pciCfgCap;
    const bar = this.config.u8(cap + Cap.bar);
    const offset = this.config.u32(cap + Cap.offset);
    const size = this.config.u32(cap + Cap.regionLength);
    // Length 0 is the state after reset: a dump of config space (lspci -xxx, sysfs) reads the data, and that is no error.
    if (size === 0) return null;
    if (bar !== VIRTIO_PCI_BAR || (size !== 1 && size !== 2 && size !== 4) || offset % size !== 0 || offset + size > VIRTIO_PCI_BAR_SIZE) {
      this.control.guestError(`PCI_CFG access of ${size} bytes at BAR ${bar} offset 0x${offset.toString(16)}, which is not a window into BAR ${VIRTIO_PCI_BAR}`);
      return null;
    }
    return { offset, size };
  }

  private overlapsPciCfgData(offset: number, size: number): boolean {
    const data = this.pciCfgCap + Cap.pciCfgData;
    return offset < data + 4 && offset + size > data;
  }

  beforeConfigRead(offset: number, size: number): void {
    if (!this.overlapsPciCfgData(offset, size)) return;
    const access = this.pciCfgAccess();
    if (access === null) return;
    const value = this.readBar(VIRTIO_PCI_BAR, access.offset, access.size);
    for (let i = 0; i < access.size; i++) this.config.setU8(this.pciCfgCap + Cap.pciCfgData + i, Math.floor(value / 256 ** i));
  }

  afterConfigWrite(offset: number, size: number): void {
    if (!this.overlapsPciCfgData(offset, size)) return;
    const access = this.pciCfgAccess();
    if (access === null) return;
    const data = this.config.u32(this.pciCfgCap + Cap.pciCfgData);
    this.writeBar(VIRTIO_PCI_BAR, access.offset, access.size, access.size === 4 ? data : data % 2 ** (8 * access.size));
  }
}

/** struct virtio_pci_cap after the id and next bytes (cap_len counts them), plus the notify multiplier or PCI_CFG data. */
function capabilityBody(type: number, bar: number, offset: number, length: number, notifyMultiplier?: number): Uint8Array {
  const extra = type === VirtioPciCapType.notify || type === VirtioPciCapType.pciCfg;
  const body = new Uint8Array(extra ? 18 : 14);
  const view = new DataView(body.buffer);
  const at = (field: number) => field - 2;
  view.setUint8(at(Cap.length), body.length + 2);
  view.setUint8(at(Cap.cfgType), type);
  view.setUint8(at(Cap.bar), bar);
  view.setUint32(at(Cap.offset), offset, true);
  view.setUint32(at(Cap.regionLength), length, true);
  if (notifyMultiplier !== undefined) view.setUint32(at(Cap.notifyMultiplier), notifyMultiplier, true);
  return body;
}
