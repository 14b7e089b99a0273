// The PCIe bus behind QEMU's ECAM window with only its host bridge: what Linux's pci-host-generic reads
// when it scans it.
import { describe, it, expect } from 'vitest';
import { NullIrqLine, type MmioDevice } from '../../../host/devices/device.js';
import { PciHostBridge, PciRootBus, PCIE_ECAM_WINDOW_SIZE } from '../../../host/devices/pci/index.js';
import { VIRT_MEMMAP } from '../../../host/vmm/memmap.js';

/** Bus 0 with the host bridge in slot 0, as the virt machine builds it, seen through its ECAM window. */
function hostBridgeOnly(): MmioDevice {
  const bus = new PciRootBus({ intx: [0, 1, 2, 3].map(() => new NullIrqLine()) });
  bus.plug(0, new PciHostBridge());
  return bus.ecamWindow();
}

/** ECAM offset of config register `register` of bus:device.function. */
const ecam = (bus: number, device: number, fn: number, register: number) => (bus << 20) | (device << 15) | (fn << 12) | register;

describe('the PCIe host bridge (ECAM, nothing plugged)', () => {
  it('sits where QEMU\'s virt has its ECAM window: 256 buses at 0x30000000', () => {
    expect(VIRT_MEMMAP.pcieEcam).toEqual({ base: 0x3000_0000, size: 0x1000_0000 });
    expect(hostBridgeOnly().size).toBe(PCIE_ECAM_WINDOW_SIZE);
  });

  it('answers at 00:00.0 as QEMU\'s gpex-root: Red Hat 1b36:0008, a host bridge with no BARs', () => {
    const bridge = hostBridgeOnly();
    expect(bridge.read(ecam(0, 0, 0, 0x00), 4)).toBe(0x0008_1b36);
    expect(bridge.read(ecam(0, 0, 0, 0x00), 2)).toBe(0x1b36);
    expect(bridge.read(ecam(0, 0, 0, 0x02), 2)).toBe(0x0008);
    expect(bridge.read(ecam(0, 0, 0, 0x08), 4)).toBe(0x0600_0000); // class 06/00/00, revision 0
    expect(bridge.read(ecam(0, 0, 0, 0x0e), 1)).toBe(0); // header type 0, single function
    expect(bridge.read(ecam(0, 0, 0, 0x2c), 4)).toBe(0x1100_1af4);
    for (let bar = 0x10; bar <= 0x24; bar += 4) expect(bridge.read(ecam(0, 0, 0, bar), 4)).toBe(0);
    expect(bridge.read(ecam(0, 0, 0, 0x06), 2) & 0x10).toBe(0); // no capability list
  });

  it('says "no device" (all ones) for every other function, and past the bridge\'s 256 bytes', () => {
    const bridge = hostBridgeOnly();
    for (const [bus, device, fn] of [[0, 0, 1], [0, 1, 0], [0, 31, 7], [1, 0, 0], [255, 31, 7]] as const) {
      expect(bridge.read(ecam(bus, device, fn, 0), 4)).toBe(0xffff_ffff);
      expect(bridge.read(ecam(bus, device, fn, 0), 2)).toBe(0xffff);
      expect(bridge.read(ecam(bus, device, fn, 0x0e), 1)).toBe(0xff);
    }
    expect(bridge.read(ecam(0, 0, 0, 0x100), 4)).toBe(0xffff_ffff); // no extended config space
    expect(bridge.read(ecam(0, 0, 0, 0xffc), 4)).toBe(0xffff_ffff);
  });

  it('keeps the writable bits of command, cache line and interrupt line; ignores other writes, the latency timer\'s too', () => {
    const bridge = hostBridgeOnly();
    bridge.write(ecam(0, 0, 0, 0x04), 2, 0xffff);
    expect(bridge.read(ecam(0, 0, 0, 0x04), 2)).toBe(0x0547);
    bridge.write(ecam(0, 0, 0, 0x0c), 2, 0x4010);
    expect(bridge.read(ecam(0, 0, 0, 0x0c), 2)).toBe(0x0010);
    bridge.write(ecam(0, 0, 0, 0x3c), 1, 0x2a);
    expect(bridge.read(ecam(0, 0, 0, 0x3c), 1)).toBe(0x2a);
    bridge.write(ecam(0, 0, 0, 0x00), 4, 0x1234_5678); // ids are read-only
    bridge.write(ecam(0, 0, 0, 0x10), 4, 0xffff_ffff); // BAR sizing: there is no BAR
    bridge.write(ecam(0, 1, 0, 0x04), 2, 0xffff); // nobody there
    expect(bridge.read(ecam(0, 0, 0, 0x00), 4)).toBe(0x0008_1b36);
    expect(bridge.read(ecam(0, 0, 0, 0x10), 4)).toBe(0);
    expect(bridge.read(ecam(0, 1, 0, 0x04), 2)).toBe(0xffff);
    bridge.reset!();
    expect(bridge.read(ecam(0, 0, 0, 0x04), 2)).toBe(0);
    expect(bridge.read(ecam(0, 0, 0, 0x3c), 1)).toBe(0);
  });
});
