// The virt board's PCIe host bridge as seen through its ECAM window (QEMU's gpex at 0x30000000), with no
// device plugged in. wkvm's own device tree leaves PCI out, but a device tree dumped from QEMU describes
// the bridge, and Linux's pci-host-generic then scans the bus: with nothing answering, its first config
// read is an access fault and the kernel panics. So the window answers as QEMU's does when no PCI device
// is plugged: the host bridge itself at 00:00.0 (1b36:0008, class 060000, no BARs) and all-ones, "no
// device", for every other function. A guest may write the bridge's command, cache-line, latency and
// interrupt-line registers; every other write is ignored, as read-only config bits are.

import type { AccessSize, MmioDevice } from '../device.js';

/** ECAM: 1 MiB of config space per bus, 256 buses. */
export const PCIE_ECAM_WINDOW_SIZE = 0x1000_0000;

/** A conventional PCI function's config space (the bridge has no PCIe capability, as QEMU's gpex-root). */
const CONFIG_SIZE = 256;

/** QEMU's PCI_VENDOR_ID_REDHAT / PCI_DEVICE_ID_REDHAT_PCIE_HOST, and its default subsystem ids. */
const HOST_BRIDGE_IDS = { vendor: 0x1b36, device: 0x0008, subsystemVendor: 0x1af4, subsystem: 0x1100 } as const;
/** PCI_CLASS_BRIDGE_HOST, as the class code's upper 16 bits. */
const CLASS_BRIDGE_HOST = 0x0600;

/** Config offsets a guest may change, and the bits of each it may change. */
const WRITABLE: ReadonlyArray<readonly [offset: number, mask: number]> = [
  [0x04, 0x47], // command: I/O space, memory space, bus master, parity error response
  [0x05, 0x05], // command: SERR# enable, INTx disable
  [0x0c, 0xff], // cache line size
  [0x0d, 0xff], // latency timer
  [0x3c, 0xff], // interrupt line
];

export class PcieHostBridge implements MmioDevice {
  readonly name = 'pcie-ecam';
  readonly size = PCIE_ECAM_WINDOW_SIZE;
  private readonly config = new Uint8Array(CONFIG_SIZE);
  private readonly writeMask = new Uint8Array(CONFIG_SIZE);

  constructor() {
    for (const [offset, mask] of WRITABLE) this.writeMask[offset] = mask;
    this.reset();
  }

  reset(): void {
    const view = new DataView(this.config.buffer);
    this.config.fill(0);
    view.setUint16(0x00, HOST_BRIDGE_IDS.vendor, true);
    view.setUint16(0x02, HOST_BRIDGE_IDS.device, true);
    view.setUint16(0x0a, CLASS_BRIDGE_HOST, true); // revision 0, programming interface 0
    view.setUint16(0x2c, HOST_BRIDGE_IDS.subsystemVendor, true);
    view.setUint16(0x2e, HOST_BRIDGE_IDS.subsystem, true);
  }

  read(offset: number, size: AccessSize): number {
    const register = offset & 0xfff;
    if (!isHostBridge(offset) || register + size > CONFIG_SIZE) return allOnes(size);
    let value = 0;
    for (let i = size - 1; i >= 0; i--) value = value * 256 + this.config[register + i]!;
    return value;
  }

  write(offset: number, size: AccessSize, value: number): void {
    const register = offset & 0xfff;
    if (!isHostBridge(offset) || register + size > CONFIG_SIZE) return;
    for (let i = 0; i < size; i++) {
      const mask = this.writeMask[register + i]!;
      const byte = Math.floor(value / 256 ** i) & 0xff;
      this.config[register + i] = (this.config[register + i]! & ~mask) | (byte & mask);
    }
  }
}

/** Whether an ECAM offset addresses bus 0, device 0, function 0. */
function isHostBridge(offset: number): boolean {
  return offset >>> 12 === 0;
}

function allOnes(size: AccessSize): number {
  return size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff;
}
