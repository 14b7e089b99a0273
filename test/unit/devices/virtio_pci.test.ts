// The PCIe host and virtio-pci driven as a guest drives them, through the MMIO bus: enumeration over ECAM,
// BAR sizing and placement, the capability walk, feature negotiation and queue setup in the common
// configuration, a virtio-blk read, INTx raised and lowered by the ISR's read-to-clear, reset; and what a
// hostile or careless guest does to the bus (BARs over RAM, other devices or nowhere, writes all over config
// space, rings outside RAM).
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NullIrqLine } from '../../../host/devices/device.js';
import { PciHostBridge, PciRootBus } from '../../../host/devices/pci/index.js';
import { VirtioPciTransport, CommonCfg, VirtioPciCapType, VIRTIO_MSI_NO_VECTOR } from '../../../host/devices/virtio/pci.js';
import { VirtioBlk } from '../../../host/devices/virtio/blk.js';
import { VirtioRng } from '../../../host/devices/virtio/rng.js';
import type { VirtioDevice } from '../../../host/devices/virtio/device.js';
import { BlkType } from '../../../host/devices/virtio/blk_request.js';
import { Feature, Interrupt, Status } from '../../../host/devices/virtio/constants.js';
import { openDiskImage, type DiskImage } from '../../../host/block/index.js';
import { Uart16550 } from '../../../host/devices/legacy/index.js';
import { MmioBus } from '../../../host/vmm/bus.js';
import { VIRT_MEMMAP, VIRT_PCI_WINDOWS } from '../../../host/vmm/memmap.js';
import { MockSplitQueue } from '../../mocks/split_queue.js';
import { MockPciFunction, MockVirtioPciDriver } from '../../mocks/virtio_pci_driver.js';
import { createTestVm, RAM, sectorPattern as pattern, type TestVm } from '../virtio/helpers.js';

const HIGH_WINDOW = VIRT_MEMMAP.pcieMmioHigh.base;
const LOW_WINDOW = VIRT_MEMMAP.pcieMmio.base;
const COMMAND_MEMORY_MASTER = 0x6;
const INTX_DISABLE = 0x400;
const DISK_SECTORS = 64;
const HEADER = RAM + 0x8000;
const STATUS = RAM + 0x8100;
const DATA = RAM + 0x10000;

let t: TestVm;
let dir: string;
let mmio: MmioBus;
let pci: PciRootBus;
let intx: NullIrqLine[];
let logs: string[];
let disk: DiskImage;

/** As VirtMachine.plugVirtioPci: the slot asked for or the first free one. */
function plug(device: VirtioDevice, slot?: number): VirtioPciTransport {
  const at = pci.freeSlot(slot, device.name);
  const transport = new VirtioPciTransport({ slot: at, memory: t.vmem, intx: pci.interruptPin(at), device, log: (m) => logs.push(m) });
  pci.plug(at, transport);
  return transport;
}

/** What a PCI core does before a driver probes: BAR 4 placed at `base`, memory decoding and bus mastering on. */
function enable(fn: MockPciFunction, base: number): void {
  fn.placeBar64(4, base);
  fn.configWrite(0x04, 2, COMMAND_MEMORY_MASTER);
}

beforeEach(async () => {
  t = await createTestVm();
  logs = [];
  mmio = new MmioBus();
  intx = [0, 1, 2, 3].map(() => new NullIrqLine());
  pci = new PciRootBus({ intx });
  pci.plug(0, new PciHostBridge());
  pci.mapWindows(mmio, VIRT_PCI_WINDOWS);
  mmio.register(VIRT_MEMMAP.uart0.base, new Uart16550({ irq: new NullIrqLine(), onTransmit: () => undefined }));
  dir = await mkdtemp(join(tmpdir(), 'wkvm-virtio-pci-'));
  const path = join(dir, 'disk.raw');
  await writeFile(path, pattern(0, DISK_SECTORS));
  disk = await openDiskImage(path, { format: 'raw' });
});

afterEach(async () => {
  await disk.close();
  await rm(dir, { recursive: true, force: true });
});

describe('enumeration, BARs and capabilities', () => {
  it('shows the host bridge and each virtio device where a PCI core scanning bus 0 looks', () => {
    plug(new VirtioBlk({ disk, id: 'hd0' }));
    plug(new VirtioRng(), 5);
    const present = [];
    for (let slot = 0; slot < 32; slot++) {
      const ids = new MockPciFunction(mmio, slot).configRead(0, 4);
      if (ids !== 0xffff_ffff) present.push([slot, ids.toString(16)]);
    }
    expect(present).toEqual([[0, '81b36'], [1, '10421af4'], [5, '10441af4']]);
    const blk = new MockPciFunction(mmio, 1);
    expect(blk.configRead(0x08, 4)).toBe(0x0100_0001); // class 01/00/00 (SCSI storage, as QEMU), revision 1
    expect(blk.configRead(0x0e, 1)).toBe(0); // type-0 header, single function
    expect(blk.configRead(0x2c, 4)).toBe(0x1100_1af4); // subsystem 1af4:1100
    expect(blk.configRead(0x3d, 1)).toBe(1); // INTA#
    expect(blk.configRead(0x06, 2) & 0x10).toBe(0x10); // capability list
    expect(new MockPciFunction(mmio, 5).configRead(0x08, 4)).toBe(0x00ff_0001); // rng: QEMU's PCI_CLASS_OTHERS
    expect(blk.configRead(0x100, 4)).toBe(0xffff_ffff); // conventional: no extended config space
  });

  it('sizes BAR 4 as a 16 KiB 64-bit prefetchable memory BAR and has no other', () => {
    plug(new VirtioBlk({ disk, id: 'hd0' }));
    const fn = new MockPciFunction(mmio, 1);
    expect(fn.sizeBar(4)).toEqual({ size: 0x4000, flags: 0xc });
    for (const bar of [0, 1, 2, 3]) {
      fn.configWrite(0x10 + 4 * bar, 4, 0xffff_ffff);
      expect(fn.configRead(0x10 + 4 * bar, 4)).toBe(0);
    }
    fn.placeBar64(4, HIGH_WINDOW + 0x2345); // the bits below the size are not kept
    expect(fn.configRead(0x20, 4)).toBe(0x0000_000c);
    expect(fn.configRead(0x24, 4)).toBe(4);
  });

  it('lists the virtio structures as QEMU does: PCI_CFG at 0x84 first, then notify, device, ISR and common, 4 KiB each in BAR 4', () => {
    plug(new VirtioBlk({ disk, id: 'hd0' }));
    const fn = new MockPciFunction(mmio, 1);
    expect(fn.capabilities()).toEqual([[0x84, 9], [0x70, 9], [0x60, 9], [0x50, 9], [0x40, 9]]);
    enable(fn, HIGH_WINDOW);
    const driver = new MockVirtioPciDriver(fn, HIGH_WINDOW);
    const layout = (type: number) => { const s = driver.structure(type); return [s.capability, s.bar, s.offset, s.length]; };
    expect(layout(VirtioPciCapType.common)).toEqual([0x40, 4, 0x0000, 0x1000]);
    expect(layout(VirtioPciCapType.isr)).toEqual([0x50, 4, 0x1000, 0x1000]);
    expect(layout(VirtioPciCapType.device)).toEqual([0x60, 4, 0x2000, 0x1000]);
    expect(layout(VirtioPciCapType.notify)).toEqual([0x70, 4, 0x3000, 0x1000]);
    expect(driver.structure(VirtioPciCapType.pciCfg).capability).toBe(0x84);
    expect(driver.notifyMultiplier).toBe(4);
    expect([0x40, 0x70, 0x84].map((cap) => fn.configRead(cap + 2, 1))).toEqual([16, 20, 20]); // cap_len
  });

  it('decodes the BAR only where the guest placed it and only with memory space enabled', () => {
    plug(new VirtioBlk({ disk, id: 'hd0' }));
    const fn = new MockPciFunction(mmio, 1);
    fn.placeBar64(4, LOW_WINDOW + 0x4000);
    expect(mmio.read(LOW_WINDOW + 0x4000 + CommonCfg.numQueues, 2)).toBeNull(); // memory space off: an access fault
    fn.configWrite(0x04, 2, COMMAND_MEMORY_MASTER);
    expect(mmio.read(LOW_WINDOW + 0x4000 + CommonCfg.numQueues, 2)).toBe(1n);
    expect(mmio.read(LOW_WINDOW + 0x3ffe, 4)).toBeNull(); // straddles the BAR's start
    expect(mmio.read(LOW_WINDOW + 0x8000, 4)).toBeNull(); // past its end
    fn.placeBar64(4, HIGH_WINDOW + 0x10_0000); // moved into the 64-bit window
    expect(mmio.read(LOW_WINDOW + 0x4000 + CommonCfg.numQueues, 2)).toBeNull();
    expect(mmio.read(HIGH_WINDOW + 0x10_0000 + CommonCfg.numQueues, 2)).toBe(1n);
    fn.configWrite(0x04, 2, 0);
    expect(mmio.read(HIGH_WINDOW + 0x10_0000 + CommonCfg.numQueues, 2)).toBeNull();
  });
});

describe('a virtio-blk driver over virtio-pci', () => {
  async function bringUp(slot?: number): Promise<{ driver: MockVirtioPciDriver; fn: MockPciFunction; queue: MockSplitQueue; transport: VirtioPciTransport; blk: VirtioBlk }> {
    const blk = new VirtioBlk({ disk, id: 'hd0', log: (m) => logs.push(m) });
    const transport = plug(blk, slot);
    const at = slot ?? 1;
    const fn = new MockPciFunction(mmio, at);
    enable(fn, HIGH_WINDOW + at * 0x4000);
    const driver = new MockVirtioPciDriver(fn, HIGH_WINDOW + at * 0x4000);
    const queue = MockSplitQueue.at(t.vm, RAM + at * 0x2000, 16);
    expect(driver.negotiate(Feature.version1 | Feature.ringIndirectDesc)).toBe(true);
    driver.setupQueue(0, queue);
    driver.driverOk();
    return { driver, fn, queue, transport, blk };
  }

  async function read(queue: MockSplitQueue, blk: VirtioBlk, sector: number, sectors: number, notify: () => void): Promise<number> {
    const view = new DataView(new ArrayBuffer(16));
    view.setUint32(0, BlkType.in, true);
    view.setBigUint64(8, BigInt(sector), true);
    t.vm.guestMemory(HEADER, 16).set(new Uint8Array(view.buffer));
    t.vm.guestMemory(STATUS, 1)[0] = 0xee;
    const head = queue.addChain([{ addr: HEADER, len: 16 }, { addr: DATA, len: sectors * 512, write: true }, { addr: STATUS, len: 1, write: true }]);
    notify();
    while (blk.requestsInFlight > 0) await new Promise((resolve) => setTimeout(resolve, 1));
    return head;
  }

  it('negotiates, reads sectors through the ring, raises INTx, and the ISR read lowers it', async () => {
    const { driver, fn, queue, blk, transport } = await bringUp();
    expect(driver.deviceFeatures() & Feature.version1).toBe(Feature.version1);
    expect(driver.status()).toBe(Status.acknowledge | Status.driver | Status.featuresOk | Status.driverOk);
    expect(driver.read(VirtioPciCapType.device, 0, 4)).toBe(DISK_SECTORS); // capacity, low word
    // Slot 1, pin INTA: line (1 + 1 - 1) % 4 = INTB, PLIC source 33.
    expect(intx.map((line) => line.level)).toEqual([false, false, false, false]);
    const head = await read(queue, blk, 3, 2, () => driver.notify(0));
    expect(queue.usedElement(0)).toEqual({ id: head, len: 2 * 512 + 1 });
    expect(t.vm.guestMemory(STATUS, 1)[0]).toBe(0); // VIRTIO_BLK_S_OK
    expect([...t.vm.guestMemory(DATA, 1024)]).toEqual([...pattern(3, 2)]);
    expect(intx.map((line) => line.level)).toEqual([false, true, false, false]);
    expect(fn.configRead(0x06, 2) & 0x08).toBe(0x08); // status: interrupt pending
    expect(transport.interruptStatus).toBe(Interrupt.usedBuffer);
    expect(driver.readIsr()).toBe(Interrupt.usedBuffer);
    expect(intx[1]!.level).toBe(false);
    expect(fn.configRead(0x06, 2) & 0x08).toBe(0);
    expect(driver.readIsr()).toBe(0);
    t.checkCanaries();
  });

  it('keeps the line low while INTx is disabled in the command register, with the status bit still set', async () => {
    const { driver, fn, queue, blk } = await bringUp();
    fn.configWrite(0x04, 2, COMMAND_MEMORY_MASTER | INTX_DISABLE);
    await read(queue, blk, 0, 1, () => driver.notify(0));
    expect(intx[1]!.level).toBe(false);
    expect(fn.configRead(0x06, 2) & 0x08).toBe(0x08);
    fn.configWrite(0x04, 2, COMMAND_MEMORY_MASTER);
    expect(intx[1]!.level).toBe(true);
    driver.readIsr();
    expect(intx[1]!.level).toBe(false);
  });

  it('holds a shared line up until every device on it has been served', async () => {
    const first = await bringUp(1);
    const second = await bringUp(5); // (5 + 1 - 1) % 4 = 1: INTB as well
    await read(first.queue, first.blk, 0, 1, () => first.driver.notify(0));
    await read(second.queue, second.blk, 1, 1, () => second.driver.notify(0));
    expect(intx[1]!.level).toBe(true);
    first.driver.readIsr();
    expect(intx[1]!.level).toBe(true);
    second.driver.readIsr();
    expect(intx[1]!.level).toBe(false);
  });

  it('has no MSI-X: the vectors read back NO_VECTOR', async () => {
    const { driver } = await bringUp();
    driver.setCommon(CommonCfg.msixConfig, 2, 0);
    driver.setCommon(CommonCfg.queueMsixVector, 2, 1);
    expect(driver.common(CommonCfg.msixConfig, 2)).toBe(VIRTIO_MSI_NO_VECTOR);
    expect(driver.common(CommonCfg.queueMsixVector, 2)).toBe(VIRTIO_MSI_NO_VECTOR);
  });

  it('reads the structures through the PCI_CFG capability with the BAR not mapped', () => {
    plug(new VirtioBlk({ disk, id: 'hd0' }));
    const fn = new MockPciFunction(mmio, 1);
    const cap = 0x84;
    fn.configWrite(cap + 4, 1, 4); // bar
    fn.configWrite(cap + 8, 4, 0x2000); // offset: the device configuration (capacity)
    fn.configWrite(cap + 12, 4, 4); // length
    expect(fn.configRead(cap + 16, 4)).toBe(DISK_SECTORS);
    fn.configWrite(cap + 8, 4, CommonCfg.deviceStatus);
    fn.configWrite(cap + 12, 4, 1);
    fn.configWrite(cap + 16, 4, Status.acknowledge);
    expect(fn.configRead(cap + 16, 1)).toBe(Status.acknowledge);
    fn.configWrite(cap + 4, 1, 0); // a BAR without virtio structures: nothing happens
    fn.configWrite(cap + 16, 4, 0);
    fn.configWrite(cap + 4, 1, 4);
    expect(fn.configRead(cap + 16, 1)).toBe(Status.acknowledge);
  });

  it('resets on status 0: queues released, ISR and line cleared, the queue registers back to their defaults', async () => {
    const { driver, queue, blk } = await bringUp();
    await read(queue, blk, 0, 1, () => driver.notify(0));
    expect(intx[1]!.level).toBe(true);
    driver.setCommon(CommonCfg.deviceStatus, 1, 0);
    expect(driver.status()).toBe(0);
    expect(intx[1]!.level).toBe(false);
    driver.setCommon(CommonCfg.queueSelect, 2, 0);
    expect(driver.common(CommonCfg.queueEnable, 2)).toBe(0);
    expect(driver.common(CommonCfg.queueSize, 2)).toBe(blk.queueSizes[0]);
    expect(driver.common(CommonCfg.queueDesc, 4)).toBe(0);
    // Notifications after the reset touch nothing.
    queue.addChain([{ addr: HEADER, len: 16 }, { addr: STATUS, len: 1, write: true }]);
    driver.notify(0);
    expect(queue.usedIdx()).toBe(1);
  });
});

describe('a hostile guest', () => {
  it('a BAR placed over RAM, over another device or past the address space never reaches the function', () => {
    const transport = plug(new VirtioBlk({ disk, id: 'hd0' }));
    const fn = new MockPciFunction(mmio, 1);
    fn.configWrite(0x04, 2, COMMAND_MEMORY_MASTER);
    const uartLineStatus = mmio.read(VIRT_MEMMAP.uart0.base + 5, 1);
    for (const base of [RAM, VIRT_MEMMAP.uart0.base, VIRT_MEMMAP.pcieEcam.base, 0xffff_ffff_ffff_c000, 2 ** 52]) {
      fn.placeBar64(4, base);
      // RAM is served before an exit (the bus has nothing there); the UART and the ECAM stay what they are.
      expect(mmio.read(RAM, 4)).toBeNull();
      expect(mmio.read(VIRT_MEMMAP.uart0.base + 5, 1)).toBe(uartLineStatus);
      expect(mmio.read(VIRT_MEMMAP.pcieEcam.base + (1 << 15), 2)).toBe(0x1af4n);
      mmio.write(base + CommonCfg.deviceStatus, 1, BigInt(Status.acknowledge));
      expect(transport.deviceStatus).toBe(0);
    }
    // A BAR is size-aligned, so one the guest means to straddle the window's end lands at its last 16 KiB.
    fn.placeBar64(4, 0x7fff_e000);
    expect(fn.configRead(0x20, 4)).toBe(0x7fff_c00c);
    expect(mmio.read(0x7fff_c000 + CommonCfg.numQueues, 2)).toBe(1n);
    t.checkCanaries();
  });

  it('config writes past the header change nothing but the PCI_CFG window; past 256 bytes they go nowhere', () => {
    plug(new VirtioRng());
    const fn = new MockPciFunction(mmio, 1);
    const before = Array.from({ length: 64 }, (_, i) => fn.configRead(4 * i, 4));
    for (let register = 0x40; register < 0x100; register += 4) fn.configWrite(register, 4, 0xffff_ffff);
    for (let register = 0x100; register < 0x1000; register += 4) fn.configWrite(register, 4, 0x1234_5678);
    fn.configWrite(0x00, 4, 0); // ids
    fn.configWrite(0x34, 1, 0x44); // the capability pointer
    fn.configWrite(0x3d, 1, 4); // the interrupt pin
    const after = Array.from({ length: 64 }, (_, i) => fn.configRead(4 * i, 4));
    const changed = after.flatMap((value, i) => (value === before[i] ? [] : [(4 * i).toString(16)]));
    expect(changed).toEqual(['88', '8c', '90', '94']); // PCI_CFG's bar, offset, length and data
    expect(fn.configRead(0x100, 4)).toBe(0xffff_ffff);
    expect(fn.capabilities().length).toBe(5);
  });

  it('ring addresses outside RAM put the device in DEVICE_NEEDS_RESET, and the rest of the bus runs on', () => {
    plug(new VirtioBlk({ disk, id: 'hd0' }));
    const fn = new MockPciFunction(mmio, 1);
    enable(fn, HIGH_WINDOW);
    const driver = new MockVirtioPciDriver(fn, HIGH_WINDOW);
    expect(driver.negotiate(Feature.version1)).toBe(true);
    driver.setupQueue(0, new MockSplitQueue(t.vm, 16, HIGH_WINDOW, RAM + 0x100, RAM + 0x200));
    expect(driver.status() & Status.deviceNeedsReset).toBe(Status.deviceNeedsReset);
    expect(driver.common(CommonCfg.queueEnable, 2)).toBe(0);
    expect(logs.join('\n')).toMatch(/virtio-pci\.1 \(virtio-blk\(hd0\)\): queue 0: a ring that is not inside guest RAM/);
    // queue_enable = 0 is no way to disable a queue either.
    driver.setCommon(CommonCfg.deviceStatus, 1, 0);
    expect(driver.negotiate(Feature.version1)).toBe(true);
    driver.setCommon(CommonCfg.queueEnable, 2, 0);
    expect(driver.status() & Status.deviceNeedsReset).toBe(Status.deviceNeedsReset);
    t.checkCanaries();
  });

  it('ignores notifications with bus mastering off, misaligned notifications and straddling common-config accesses', async () => {
    const blk = new VirtioBlk({ disk, id: 'hd0', log: (m) => logs.push(m) });
    plug(blk);
    const fn = new MockPciFunction(mmio, 1);
    enable(fn, HIGH_WINDOW);
    const driver = new MockVirtioPciDriver(fn, HIGH_WINDOW);
    const queue = MockSplitQueue.at(t.vm, RAM, 16);
    driver.negotiate(Feature.version1);
    driver.setupQueue(0, queue);
    driver.driverOk();
    t.vm.guestMemory(HEADER, 16).fill(0);
    queue.addChain([{ addr: HEADER, len: 16 }, { addr: DATA, len: 512, write: true }, { addr: STATUS, len: 1, write: true }]);
    fn.configWrite(0x04, 2, 0x2); // memory space only
    driver.notify(0);
    driver.write(VirtioPciCapType.notify, 2, 2, 0);
    expect(driver.common(CommonCfg.deviceFeature + 2, 4)).toBe(0); // straddles two fields
    driver.setCommon(CommonCfg.deviceStatus, 2, 0); // a 2-byte write to a 1-byte field
    expect(blk.requestsInFlight).toBe(0);
    expect(queue.usedIdx()).toBe(0);
    expect(driver.status() & Status.driverOk).toBe(Status.driverOk);
    expect(logs.join('\n')).toMatch(/bus mastering is disabled/);
    expect(logs.join('\n')).toMatch(/no queue's notify address/);
    expect(logs.join('\n')).toMatch(/straddles its fields/);
    expect(logs.join('\n')).toMatch(/does not fit a field/);
  });
});
