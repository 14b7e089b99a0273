// The host bridge in slot 0 of the virt board's PCIe bus, as QEMU's gpex-root shows it: Red Hat 1b36:0008,
// class 060000 (host bridge), no BARs, no capabilities and no PCIe capability. Linux's pci-host-generic
// and U-Boot's pci_generic_ecam find it first when they scan the bus.
import type { AccessSize } from '../device.js';
import type { PciFunction } from './bus.js';
import { PciConfigSpace } from './config_space.js';

/** QEMU's PCI_VENDOR_ID_REDHAT / PCI_DEVICE_ID_REDHAT_PCIE_HOST, and its default subsystem ids. */
const HOST_BRIDGE_IDENTITY = {
  vendorId: 0x1b36, deviceId: 0x0008, revision: 0, classCode: 0x06_00_00, subsystemVendorId: 0x1af4, subsystemId: 0x1100, interruptPin: 0,
} as const;

export class PciHostBridge implements PciFunction {
  readonly name = 'gpex-root';
  readonly config = new PciConfigSpace(this.name, HOST_BRIDGE_IDENTITY);

  /** It has no BARs: the bus never calls these. */
  readBar(_bar: number, _offset: number, _size: AccessSize): number {
    return 0;
  }

  writeBar(): void {}
}
