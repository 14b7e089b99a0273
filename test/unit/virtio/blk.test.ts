// virtio-blk end to end below the guest: requests built by a mock driver in guest RAM, served by the
// device through the transport against real image files, completions checked in the used ring.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NullIrqLine } from '../../../host/devices/device.js';
import { VirtioMmioTransport } from '../../../host/devices/virtio/transport.js';
import { VirtioBlk, BlkFeature } from '../../../host/devices/virtio/blk.js';
import { parseBlkRequest, BlkType, BlkStatus } from '../../../host/devices/virtio/blk_request.js';
import { VirtioRequestError } from '../../../host/devices/virtio/errors.js';
import { Feature, MmioReg, Status } from '../../../host/devices/virtio/constants.js';
import { openDiskImage, createQcow2, type DiskImage } from '../../../host/block/index.js';
import { MockSplitQueue, type MockBuffer } from '../../mocks/split_queue.js';
import { MockVirtioDriver } from '../../mocks/virtio_driver.js';
import { createTestVm, RAM, sectorPattern as pattern, type TestVm } from './helpers.js';

const DISK_SECTORS = 2048; // 1 MiB
const HEADER = RAM + 0x8000;
const STATUS = RAM + 0x8100;
const DATA = RAM + 0x10000;

let t: TestVm;
let dir: string;
let logs: string[];
let queue: MockSplitQueue;

async function rawImage(): Promise<string> {
  const path = join(dir, 'disk.raw');
  await writeFile(path, pattern(0, DISK_SECTORS));
  return path;
}

interface Rig {
  blk: VirtioBlk;
  transport: VirtioMmioTransport;
  driver: MockVirtioDriver;
  irq: NullIrqLine;
}

function rig(disk: DiskImage, features?: bigint, serial?: string): Rig {
  const irq = new NullIrqLine();
  const blk = new VirtioBlk({ disk, id: 'd0', serial, log: (m) => logs.push(m) });
  const transport = new VirtioMmioTransport({ slot: 7, memory: t.vmem, irq, log: (m) => logs.push(m) });
  transport.plug(blk);
  const driver = new MockVirtioDriver(transport);
  driver.bringUp([queue], features);
  return { blk, transport, driver, irq };
}

function header(type: number, sector: bigint | number, at = HEADER): MockBuffer {
  const view = new DataView(new ArrayBuffer(16));
  view.setUint32(0, type, true);
  view.setBigUint64(8, BigInt(sector), true);
  t.vm.guestMemory(at, 16).set(new Uint8Array(view.buffer));
  return { addr: at, len: 16 };
}

function status(at = STATUS): MockBuffer {
  t.vm.guestMemory(at, 1)[0] = 0xee;
  return { addr: at, len: 1, write: true };
}

async function settle(blk: VirtioBlk): Promise<void> {
  while (blk.requestsInFlight > 0) await new Promise((resolve) => setTimeout(resolve, 1));
}

beforeEach(async () => {
  t = await createTestVm();
  dir = await mkdtemp(join(tmpdir(), 'wkvm-blk-'));
  logs = [];
  queue = MockSplitQueue.at(t.vm, RAM, 256);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('request parsing', () => {
  it('reads type and sector from the header; data length from the right side', async () => {
    const { blk } = rig(await openDiskImage(await rawImage(), { format: 'raw' }));
    // Parse a chain directly from a queue of our own.
    const q2 = MockSplitQueue.at(t.vm, RAM + 0x20000, 8);
    const { Virtqueue } = await import('../../../host/devices/virtio/queue.js');
    const vq = Virtqueue.configure(t.vmem, 9, 0, { size: 8, desc: BigInt(q2.desc), driver: BigInt(q2.avail), device: BigInt(q2.used), eventIdx: false, indirect: false });
    q2.addChain([header(BlkType.in, 42n), { addr: DATA, len: 4096, write: true }, { addr: DATA + 8192, len: 512, write: true }, status()]);
    const request = parseBlkRequest(vq.pop()!, blk.name);
    expect(request).toMatchObject({ type: BlkType.in, sector: 42n, dataLength: 4608, statusOffset: 4608 });
    q2.addChain([header(BlkType.out, 3n), { addr: DATA, len: 1024 }, status()]);
    expect(parseBlkRequest(vq.pop()!, blk.name)).toMatchObject({ type: BlkType.out, sector: 3n, dataLength: 1024, statusOffset: 0 });
    q2.addChain([{ addr: HEADER, len: 16, write: true }, status()]);
    expect(() => parseBlkRequest(vq.pop()!, blk.name)).toThrow(/header needs 16 device-readable bytes, got 0 \(the header is device-writable\)/);
    q2.addChain([header(BlkType.flush, 0)]);
    expect(() => parseBlkRequest(vq.pop()!, blk.name)).toThrow(VirtioRequestError);
    await blk.close();
  });
});

describe('virtio-blk on a raw image', () => {
  it('publishes capacity, seg_max and blk_size, and the features it implements', async () => {
    const { driver, blk } = rig(await openDiskImage(await rawImage(), { format: 'raw' }));
    expect(driver.read(MmioReg.deviceId)).toBe(2);
    expect(driver.read(MmioReg.config)).toBe(DISK_SECTORS);
    expect(driver.read(MmioReg.config + 4)).toBe(0);
    driver.write(MmioReg.queueSel, 0);
    expect(driver.read(MmioReg.queueNumMax)).toBe(1024);
    expect(driver.read(MmioReg.config + 0x0c)).toBe(1022); // seg_max: the queue size less header and status
    expect(driver.read(MmioReg.config + 0x14)).toBe(512);
    const features = driver.deviceFeatures();
    expect(features & BlkFeature.flush).toBe(BlkFeature.flush);
    expect(features & BlkFeature.writeZeroes).toBe(BlkFeature.writeZeroes);
    expect(features & BlkFeature.ro).toBe(0n);
    await blk.close();
  });

  it('reads sectors into scattered and contiguous guest buffers', async () => {
    const { blk, driver, irq } = rig(await openDiskImage(await rawImage(), { format: 'raw' }));
    const head = queue.addChain([
      header(BlkType.in, 10),
      { addr: DATA, len: 512, write: true },
      { addr: DATA + 512, len: 1024, write: true }, // adjacent to the previous one: merged
      { addr: DATA + 0x4000, len: 2048, write: true },
      status(),
    ]);
    driver.notify(0);
    expect(blk.requestsInFlight).toBe(1);
    await settle(blk);
    expect(queue.usedElement(0)).toEqual({ id: head, len: 3584 + 1 });
    expect(t.vm.guestMemory(STATUS, 1)[0]).toBe(BlkStatus.ok);
    expect(t.vm.guestMemory(DATA, 1536)).toEqual(pattern(10, 3));
    expect(t.vm.guestMemory(DATA + 0x4000, 2048)).toEqual(pattern(13, 4));
    expect(irq.level).toBe(true);
    await blk.close();
  });

  it('offers a smaller queue when asked (QEMU\'s queue-size), with seg_max two less, and refuses a bad size', async () => {
    const disk = await openDiskImage(await rawImage(), { format: 'raw' });
    const blk = new VirtioBlk({ disk, id: 'd1', queueSize: 256 });
    const transport = new VirtioMmioTransport({ slot: 6, memory: t.vmem, irq: new NullIrqLine(), log: (m) => logs.push(m) });
    transport.plug(blk);
    const driver = new MockVirtioDriver(transport);
    driver.write(MmioReg.queueSel, 0);
    expect(driver.read(MmioReg.queueNumMax)).toBe(256);
    expect(driver.read(MmioReg.config + 0x0c)).toBe(254);
    expect(() => new VirtioBlk({ disk, id: 'd2', queueSize: 96 })).toThrow(/queue size 96 is not a power of two from 4 to 1024/);
    await blk.close();
  });

  it('serves a request of seg_max pieces through an indirect table', async () => {
    // 1022 pieces of one sector each, in descending addresses so that none joins its neighbour: the
    // chain Linux sends for a 1 MiB O_DIRECT read of scattered pages is 256 of them, in one request.
    const { blk, driver } = rig(await openDiskImage(await rawImage(), { format: 'raw' }));
    const pieces = 1022;
    const data = (i: number) => DATA + (pieces - 1 - i) * 512;
    const buffers: MockBuffer[] = [header(BlkType.in, 100)];
    for (let i = 0; i < pieces; i++) buffers.push({ addr: data(i), len: 512, write: true });
    buffers.push(status());
    const head = queue.addIndirectChain(RAM + 0x9000, buffers);
    driver.notify(0);
    await settle(blk);
    expect(queue.usedElement(0)).toEqual({ id: head, len: pieces * 512 + 1 });
    expect(t.vm.guestMemory(STATUS, 1)[0]).toBe(BlkStatus.ok);
    for (const i of [0, 1, 511, 1020, 1021]) expect(t.vm.guestMemory(data(i), 512), `piece ${i}`).toEqual(pattern(100 + i, 1));
    await blk.close();
  });

  it('writes guest data to the image and flushes', async () => {
    const path = await rawImage();
    const { blk, driver } = rig(await openDiskImage(path, { format: 'raw' }));
    const data = new Uint8Array(1536).map((_, i) => (i * 13) & 0xff);
    t.vm.guestMemory(DATA, 512).set(data.subarray(0, 512));
    t.vm.guestMemory(DATA + 0x2000, 1024).set(data.subarray(512));
    queue.addChain([header(BlkType.out, 100), { addr: DATA, len: 512 }, { addr: DATA + 0x2000, len: 1024 }, status()]);
    queue.addChain([header(BlkType.flush, 0, HEADER + 0x20), status(STATUS + 1)]);
    driver.notify(0);
    await settle(blk);
    expect(queue.usedIdx()).toBe(2);
    expect([...t.vm.guestMemory(STATUS, 2)]).toEqual([BlkStatus.ok, BlkStatus.ok]);
    await blk.close();
    const file = new Uint8Array(await readFile(path));
    expect(file.subarray(100 * 512, 103 * 512)).toEqual(data);
    expect(file.subarray(99 * 512, 100 * 512)).toEqual(pattern(99, 1));
    expect(file.subarray(103 * 512, 104 * 512)).toEqual(pattern(103, 1));
  });

  it('answers IOERR for requests outside the disk or not in whole sectors', async () => {
    const { blk, driver } = rig(await openDiskImage(await rawImage(), { format: 'raw' }));
    queue.addChain([header(BlkType.in, DISK_SECTORS - 1), { addr: DATA, len: 1024, write: true }, status()]);
    queue.addChain([header(BlkType.in, 1n << 62n, HEADER + 0x20), { addr: DATA, len: 512, write: true }, status(STATUS + 1)]);
    queue.addChain([header(BlkType.out, 0, HEADER + 0x40), { addr: DATA, len: 100 }, status(STATUS + 2)]);
    driver.notify(0);
    await settle(blk);
    expect([...t.vm.guestMemory(STATUS, 3)]).toEqual([BlkStatus.ioErr, BlkStatus.ioErr, BlkStatus.ioErr]);
    await blk.close();
  });

  it('answers GET_ID with the serial, UNSUPP for unknown types and DISCARD on raw', async () => {
    const { blk, driver } = rig(await openDiskImage(await rawImage(), { format: 'raw' }), undefined, 'wkvm-disk-0');
    t.vm.guestMemory(DATA, 20).fill(0xff);
    queue.addChain([header(BlkType.getId, 0), { addr: DATA, len: 20, write: true }, status()]);
    queue.addChain([header(99, 0, HEADER + 0x20), status(STATUS + 1)]);
    queue.addChain([header(BlkType.discard, 0, HEADER + 0x40), { addr: HEADER + 0x60, len: 16 }, status(STATUS + 2)]);
    driver.notify(0);
    await settle(blk);
    const id = t.vm.guestMemory(DATA, 20);
    expect(new TextDecoder().decode(id.subarray(0, 11))).toBe('wkvm-disk-0');
    expect([...id.subarray(11)]).toEqual(new Array(9).fill(0));
    expect(queue.usedElement(0).len).toBe(21);
    expect([...t.vm.guestMemory(STATUS, 3)]).toEqual([BlkStatus.ok, BlkStatus.unsupported, BlkStatus.unsupported]);
    await blk.close();
  });

  it('zeroes ranges with WRITE_ZEROES', async () => {
    const path = await rawImage();
    const { blk, driver } = rig(await openDiskImage(path, { format: 'raw' }));
    const range = new DataView(new ArrayBuffer(16));
    range.setBigUint64(0, 5n, true);
    range.setUint32(8, 3, true);
    t.vm.guestMemory(HEADER + 0x60, 16).set(new Uint8Array(range.buffer));
    queue.addChain([header(BlkType.writeZeroes, 0), { addr: HEADER + 0x60, len: 16 }, status()]);
    driver.notify(0);
    await settle(blk);
    expect(t.vm.guestMemory(STATUS, 1)[0]).toBe(BlkStatus.ok);
    await blk.close();
    const file = new Uint8Array(await readFile(path));
    expect(file.subarray(5 * 512, 8 * 512).every((b) => b === 0)).toBe(true);
    expect(file.subarray(8 * 512, 9 * 512)).toEqual(pattern(8, 1));
  });

  it('a read-only drive offers VIRTIO_BLK_F_RO and fails writes without touching the file', async () => {
    const path = await rawImage();
    const { blk, driver } = rig(await openDiskImage(path, { format: 'raw', readOnly: true }));
    expect(driver.deviceFeatures() & BlkFeature.ro).toBe(BlkFeature.ro);
    t.vm.guestMemory(DATA, 512).fill(0x11);
    queue.addChain([header(BlkType.out, 0), { addr: DATA, len: 512 }, status()]);
    driver.notify(0);
    await settle(blk);
    expect(t.vm.guestMemory(STATUS, 1)[0]).toBe(BlkStatus.ioErr);
    await blk.close();
    expect(new Uint8Array(await readFile(path)).subarray(0, 512)).toEqual(pattern(0, 1));
  });

  it('keeps many requests in flight and completes them all', async () => {
    const { blk, driver } = rig(await openDiskImage(await rawImage(), { format: 'raw' }));
    for (let i = 0; i < 32; i++) {
      queue.addChain([header(BlkType.in, i * 8, HEADER + 32 * i), { addr: DATA + 4096 * i, len: 4096, write: true }, status(RAM + 0xa000 + i)]);
    }
    driver.notify(0);
    expect(blk.requestsInFlight).toBe(32);
    await settle(blk);
    expect(queue.usedIdx()).toBe(32);
    const heads = new Set(Array.from({ length: 32 }, (_, i) => queue.usedElement(i).id));
    expect(heads.size).toBe(32);
    for (let i = 0; i < 32; i++) expect(t.vm.guestMemory(DATA + 4096 * i, 4096)).toEqual(pattern(i * 8, 8));
    await blk.close();
  });

  it('a header in device-writable memory puts the device in DEVICE_NEEDS_RESET', async () => {
    const { blk, driver } = rig(await openDiskImage(await rawImage(), { format: 'raw' }));
    queue.addChain([{ addr: HEADER, len: 16, write: true }, status()]);
    driver.notify(0);
    expect(driver.status() & Status.deviceNeedsReset).toBe(Status.deviceNeedsReset);
    expect(logs.join('\n')).toMatch(/header is device-writable/);
    expect(blk.requestsInFlight).toBe(0);
    t.checkCanaries();
    await blk.close();
  });

  it('a request with no status byte puts the device in DEVICE_NEEDS_RESET', async () => {
    const { blk, driver } = rig(await openDiskImage(await rawImage(), { format: 'raw' }));
    queue.addChain([header(BlkType.in, 0), { addr: DATA, len: 512 }]);
    driver.notify(0);
    expect(driver.status() & Status.deviceNeedsReset).toBe(Status.deviceNeedsReset);
    await blk.close();
  });
});

describe('virtio-blk reset with I/O in flight', () => {
  it('keeps the status non-zero until the I/O is over, then drops the reply', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const reads: number[] = [];
    const disk: DiskImage = {
      path: 'slow', format: 'raw', size: 1 << 20, readOnly: false,
      read: async (offset, dst) => {
        reads.push(offset);
        await gate;
        dst.fill(0x77);
      },
      write: async () => {},
      flush: async () => {},
      close: async () => {},
    };
    const { blk, driver } = rig(disk);
    queue.addChain([header(BlkType.in, 1), { addr: DATA, len: 512, write: true }, status()]);
    driver.notify(0);
    expect(reads).toEqual([512]);
    driver.write(MmioReg.status, 0);
    expect(driver.status()).not.toBe(0);
    release();
    await settle(blk);
    await new Promise((resolve) => setTimeout(resolve, 1));
    expect(driver.status()).toBe(0);
    expect(queue.usedIdx()).toBe(0);
    expect(t.vm.guestMemory(STATUS, 1)[0]).toBe(0xee);
  });
});

describe('virtio-blk on qcow2', () => {
  it('round-trips data through a fresh qcow2 image', async () => {
    const path = join(dir, 'disk.qcow2');
    await createQcow2(path, { size: 4 << 20 });
    const { blk, driver } = rig(await openDiskImage(path), Feature.version1 | Feature.ringEventIdx | Feature.ringIndirectDesc);
    const data = pattern(3, 16);
    t.vm.guestMemory(DATA, data.length).set(data);
    queue.addIndirectChain(RAM + 0x9000, [header(BlkType.out, 4096), { addr: DATA, len: data.length }, status()]);
    driver.notify(0);
    await settle(blk);
    expect(t.vm.guestMemory(STATUS, 1)[0]).toBe(BlkStatus.ok);
    queue.addChain([header(BlkType.in, 4096, HEADER + 0x20), { addr: DATA + 0x10000, len: data.length, write: true }, status(STATUS + 1)]);
    queue.addChain([header(BlkType.in, 0, HEADER + 0x40), { addr: DATA + 0x20000, len: 512, write: true }, status(STATUS + 2)]);
    driver.notify(0);
    await settle(blk);
    expect([...t.vm.guestMemory(STATUS, 3)]).toEqual([0, 0, 0]);
    expect(t.vm.guestMemory(DATA + 0x10000, data.length)).toEqual(data);
    expect(t.vm.guestMemory(DATA + 0x20000, 512).every((b) => b === 0)).toBe(true);
    await blk.close();
    const again = await openDiskImage(path);
    const back = new Uint8Array(data.length);
    await again.read(4096 * 512, back);
    await again.close();
    expect(back).toEqual(data);
  });
});
