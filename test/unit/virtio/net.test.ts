// virtio-net through the transport, with a mock driver and a backend that records what it is given.
import { describe, it, expect, beforeEach } from 'vitest';
import { NullIrqLine } from '../../../host/devices/device.js';
import { VirtioMmioTransport } from '../../../host/devices/virtio/transport.js';
import {
  MAX_PENDING_FRAMES, MacAddressError, NET_HEADER_SIZE, NetFeature, VirtioNet, formatMacAddress, parseMacAddress,
  type FrameReceiver, type NetBackend,
} from '../../../host/devices/virtio/net.js';
import { Feature, Interrupt, MmioReg, Status } from '../../../host/devices/virtio/constants.js';
import { MockSplitQueue } from '../../mocks/split_queue.js';
import { MockVirtioDriver } from '../../mocks/virtio_driver.js';
import { createTestVm, RAM, type TestVm } from './helpers.js';

const DATA = RAM + 0x10000;

class RecordingBackend implements NetBackend {
  readonly sent: Uint8Array[] = [];
  receiver: FrameReceiver | null = null;
  closed = false;
  send(frame: Uint8Array): void {
    this.sent.push(frame);
  }
  attach(receive: FrameReceiver): void {
    this.receiver = receive;
  }
  close(): void {
    this.closed = true;
  }
  /** A frame for the guest. */
  deliver(frame: Uint8Array): void {
    this.receiver!(frame);
  }
}

/** An Ethernet frame of `length` bytes whose bytes count up from `seed`. */
function frameOf(length: number, seed = 1): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (seed + i) & 0xff);
}

let t: TestVm;
let backend: RecordingBackend;
let net: VirtioNet;
let driver: MockVirtioDriver;
let rx: MockSplitQueue;
let tx: MockSplitQueue;
let logged: string[];

beforeEach(async () => {
  t = await createTestVm();
  backend = new RecordingBackend();
  logged = [];
  net = new VirtioNet({ backend, mac: parseMacAddress('52:54:00:ab:cd:ef'), id: 'n0', log: (m) => logged.push(m) });
  const transport = new VirtioMmioTransport({ slot: 5, memory: t.vmem, irq: new NullIrqLine(), log: () => {} });
  transport.plug(net);
  driver = new MockVirtioDriver(transport);
  rx = MockSplitQueue.at(t.vm, RAM, 256);
  tx = MockSplitQueue.at(t.vm, RAM + 0x2000, 256);
});

describe('MAC addresses', () => {
  it('parses and formats the -device mac= spelling', () => {
    expect(Array.from(parseMacAddress('52:54:00:AB:cd:0f'))).toEqual([0x52, 0x54, 0x00, 0xab, 0xcd, 0x0f]);
    expect(formatMacAddress(parseMacAddress('52:54:00:12:34:56'))).toBe('52:54:00:12:34:56');
  });

  it.each(['', '52:54:00:12:34', '52:54:00:12:34:56:78', '52:54:00:12:34:5g', '52:54:00:123:4:56', '01:00:5e:00:00:01'])(
    'refuses "%s" with a typed error',
    (text) => expect(() => parseMacAddress(text)).toThrow(MacAddressError),
  );

  it('defaults to QEMU 52:54:00:12:34:56', () => {
    expect(formatMacAddress(new VirtioNet({ backend: new RecordingBackend() }).mac)).toBe('52:54:00:12:34:56');
  });
});

describe('virtio-net', () => {
  it('is device 1 with two 256-entry queues, MAC and STATUS, and the MAC and link-up in its config', () => {
    expect(driver.read(MmioReg.deviceId)).toBe(1);
    const features = driver.deviceFeatures();
    expect(features & (NetFeature.mac | NetFeature.status)).toBe(NetFeature.mac | NetFeature.status);
    expect(features & Feature.version1).toBe(Feature.version1);
    expect(features & 0xffffn & ~(1n << 5n)).toBe(0n); // no checksum, GSO or MRG_RXBUF offload
    for (const index of [0, 1]) {
      driver.write(MmioReg.queueSel, index);
      expect(driver.read(MmioReg.queueNumMax)).toBe(256);
    }
    driver.write(MmioReg.queueSel, 2);
    expect(driver.read(MmioReg.queueNumMax)).toBe(0);
    const config = Array.from({ length: 8 }, (_, i) => driver.transport.read(MmioReg.config + i, 1));
    expect(config).toEqual([0x52, 0x54, 0x00, 0xab, 0xcd, 0xef, 1, 0]);
    expect(driver.transport.read(MmioReg.config + 4, 4)).toBe(0x0001efcd);
    expect(driver.transport.read(MmioReg.config + 8, 4)).toBe(0);
  });

  it('hands transmitted frames to the backend without the virtio-net header, across segments', () => {
    driver.bringUp([rx, tx]);
    const frame = frameOf(60);
    t.vm.guestMemory(DATA, NET_HEADER_SIZE).fill(0xee); // the header's content is not part of the frame
    t.vm.guestMemory(DATA + NET_HEADER_SIZE, 20).set(frame.subarray(0, 20));
    t.vm.guestMemory(DATA + 0x400, 40).set(frame.subarray(20));
    const head = tx.addChain([{ addr: DATA, len: NET_HEADER_SIZE + 20 }, { addr: DATA + 0x400, len: 40 }]);
    const second = tx.addChain([{ addr: DATA + 0x800, len: NET_HEADER_SIZE }, { addr: DATA + 0x900, len: 14 }]);
    t.vm.guestMemory(DATA + 0x900, 14).set(frameOf(14, 99));
    driver.notify(1);
    expect(backend.sent.map((f) => Array.from(f))).toEqual([Array.from(frame), Array.from(frameOf(14, 99))]);
    expect(tx.usedElement(0)).toEqual({ id: head, len: 0 });
    expect(tx.usedElement(1)).toEqual({ id: second, len: 0 });
    expect(driver.takeInterrupts()).toBe(Interrupt.usedBuffer);
  });

  it('drops transmitted chains too short to hold a header and an Ethernet header, but completes them', () => {
    driver.bringUp([rx, tx]);
    tx.addChain([{ addr: DATA, len: 5 }]);
    tx.addChain([{ addr: DATA, len: NET_HEADER_SIZE + 13 }]);
    driver.notify(1);
    expect(backend.sent).toHaveLength(0);
    expect(tx.usedIdx()).toBe(2);
    expect(driver.status() & Status.deviceNeedsReset).toBe(0);
  });

  it('uses the 10-byte header without num_buffers for a driver that did not accept VERSION_1, both ways', () => {
    driver.bringUp([rx, tx], NetFeature.mac | NetFeature.status);
    const out = frameOf(60, 3);
    t.vm.guestMemory(DATA, 10).fill(0xee);
    t.vm.guestMemory(DATA + 10, 60).set(out);
    tx.addChain([{ addr: DATA, len: 70 }]);
    driver.notify(1);
    expect(backend.sent.map((f) => Array.from(f))).toEqual([Array.from(out)]);
    t.vm.guestMemory(DATA + 0x400, 0x200).fill(0xcc);
    const head = rx.addChain([{ addr: DATA + 0x400, len: 0x200, write: true }]);
    driver.notify(0);
    const frame = frameOf(98, 7);
    backend.deliver(frame);
    expect(rx.usedElement(0)).toEqual({ id: head, len: 10 + 98 });
    expect(Array.from(t.vm.guestMemory(DATA + 0x400, 10))).toEqual(new Array(10).fill(0));
    expect(Array.from(t.vm.guestMemory(DATA + 0x40a, 98))).toEqual(Array.from(frame));
  });

  it('writes a received frame after a zero header with num_buffers = 1 and reports its length', () => {
    driver.bringUp([rx, tx]);
    t.vm.guestMemory(DATA, 0x1000).fill(0xcc);
    const head = rx.addChain([{ addr: DATA, len: 8, write: true }, { addr: DATA + 0x100, len: 1526, write: true }]);
    driver.notify(0);
    driver.takeInterrupts();
    const frame = frameOf(98, 7);
    backend.deliver(frame);
    expect(rx.usedElement(0)).toEqual({ id: head, len: NET_HEADER_SIZE + 98 });
    const header = [...t.vm.guestMemory(DATA, 8), ...t.vm.guestMemory(DATA + 0x100, 4)];
    expect(header).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    expect(Array.from(t.vm.guestMemory(DATA + 0x104, 98))).toEqual(Array.from(frame));
    expect(t.vm.guestMemory(DATA + 0x104 + 98, 1)[0]).toBe(0xcc);
    expect(driver.takeInterrupts()).toBe(Interrupt.usedBuffer);
  });

  it('keeps frames until the guest posts receive buffers, then delivers them in order', () => {
    backend.deliver(frameOf(40, 1)); // before the driver is up
    driver.bringUp([rx, tx]);
    backend.deliver(frameOf(50, 2));
    backend.deliver(frameOf(60, 3));
    expect(rx.usedIdx()).toBe(0);
    expect(net.pendingFrames).toBe(3);
    for (let i = 0; i < 2; i++) rx.addChain([{ addr: DATA + i * 0x800, len: 1526, write: true }]);
    driver.notify(0);
    expect(rx.usedIdx()).toBe(2);
    expect(rx.usedElement(0).len).toBe(NET_HEADER_SIZE + 40);
    expect(rx.usedElement(1).len).toBe(NET_HEADER_SIZE + 50);
    expect(t.vm.guestMemory(DATA + 0x800 + NET_HEADER_SIZE, 1)[0]).toBe(2);
    rx.addChain([{ addr: DATA + 0x1000, len: 1526, write: true }]);
    driver.notify(0);
    expect(rx.usedElement(2).len).toBe(NET_HEADER_SIZE + 60);
    expect(net.pendingFrames).toBe(0);
  });

  it(`holds at most ${MAX_PENDING_FRAMES} frames for a guest without buffers`, () => {
    driver.bringUp([rx, tx]);
    for (let i = 0; i < MAX_PENDING_FRAMES + 10; i++) backend.deliver(frameOf(20, i));
    expect(net.pendingFrames).toBe(MAX_PENDING_FRAMES);
    rx.addChain([{ addr: DATA, len: 1526, write: true }]);
    driver.notify(0);
    expect(t.vm.guestMemory(DATA + NET_HEADER_SIZE, 1)[0]).toBe(0); // the oldest frame survived
  });

  it('drops a frame larger than the receive buffer and gives that buffer to the next frame', () => {
    driver.bringUp([rx, tx]);
    const head = rx.addChain([{ addr: DATA, len: NET_HEADER_SIZE + 100, write: true }]);
    driver.notify(0);
    backend.deliver(frameOf(101));
    expect(rx.usedIdx()).toBe(0);
    expect(net.pendingFrames).toBe(0);
    backend.deliver(frameOf(100, 5));
    expect(rx.usedElement(0)).toEqual({ id: head, len: NET_HEADER_SIZE + 100 });
    expect(t.vm.guestMemory(DATA + NET_HEADER_SIZE, 1)[0]).toBe(5);
    expect(logged.some((m) => m.includes('virtio-net(n0)') && m.includes('101-byte frame'))).toBe(true);
  });

  it('a receive chain outside guest RAM found while delivering puts the device in DEVICE_NEEDS_RESET', () => {
    driver.bringUp([rx, tx]);
    rx.addChain([{ addr: 0x4000_0000, len: 1526, write: true }]);
    expect(() => backend.deliver(frameOf(60))).not.toThrow();
    expect(driver.status() & Status.deviceNeedsReset).toBe(Status.deviceNeedsReset);
    t.checkCanaries();
  });

  it('a malformed transmit chain does not throw out of QueueNotify', () => {
    driver.bringUp([rx, tx]);
    tx.writeDescriptor(0, { addr: DATA, len: 64, flags: 1, next: 0 }); // a loop
    tx.publish(0);
    expect(() => driver.notify(1)).not.toThrow();
    expect(backend.sent).toHaveLength(0);
    expect(driver.status() & Status.deviceNeedsReset).toBe(Status.deviceNeedsReset);
  });

  it('forgets pending frames on reset and closes the backend on close', async () => {
    driver.bringUp([rx, tx]);
    backend.deliver(frameOf(40));
    driver.write(MmioReg.status, 0);
    expect(net.pendingFrames).toBe(0);
    await net.close();
    expect(backend.closed).toBe(true);
  });
});
