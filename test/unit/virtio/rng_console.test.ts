// virtio-rng and virtio-console through the transport, with a mock driver.
import { describe, it, expect, beforeEach } from 'vitest';
import { NullIrqLine } from '../../../host/devices/device.js';
import { VirtioMmioTransport } from '../../../host/devices/virtio/transport.js';
import { VirtioRng } from '../../../host/devices/virtio/rng.js';
import { VirtioConsole } from '../../../host/devices/virtio/console.js';
import { Interrupt, MmioReg, Status } from '../../../host/devices/virtio/constants.js';
import { MockSplitQueue } from '../../mocks/split_queue.js';
import { MockVirtioDriver } from '../../mocks/virtio_driver.js';
import { createTestVm, RAM, type TestVm } from './helpers.js';

const DATA = RAM + 0x10000;
let t: TestVm;
let irq: NullIrqLine;

function plug(device: VirtioRng | VirtioConsole): MockVirtioDriver {
  const transport = new VirtioMmioTransport({ slot: 5, memory: t.vmem, irq, log: () => {} });
  transport.plug(device);
  return new MockVirtioDriver(transport);
}

beforeEach(async () => {
  t = await createTestVm();
  irq = new NullIrqLine();
});

describe('virtio-rng', () => {
  it('fills every writable buffer of a chain from the random source', () => {
    const driver = plug(new VirtioRng());
    const queue = MockSplitQueue.at(t.vm, RAM, 16);
    driver.bringUp([queue]);
    t.vm.guestMemory(DATA, 0x3000).fill(0);
    const head = queue.addChain([{ addr: DATA, len: 100, write: true }, { addr: DATA + 0x1000, len: 0x1800, write: true }]);
    driver.notify(0);
    expect(queue.usedElement(0)).toEqual({ id: head, len: 100 + 0x1800 });
    // 6244 random bytes that are all zero would be a broken source, not bad luck.
    expect(t.vm.guestMemory(DATA, 100).some((b) => b !== 0)).toBe(true);
    expect(t.vm.guestMemory(DATA + 0x1000, 0x1800).some((b) => b !== 0)).toBe(true);
    expect(t.vm.guestMemory(DATA + 100, 0x1000 - 100).every((b) => b === 0)).toBe(true);
    expect(driver.takeInterrupts()).toBe(Interrupt.usedBuffer);
  });

  it('gives a read-only chain nothing', () => {
    const driver = plug(new VirtioRng(() => { throw new Error('must not be called'); }));
    const queue = MockSplitQueue.at(t.vm, RAM, 16);
    driver.bringUp([queue]);
    const head = queue.addChain([{ addr: DATA, len: 64 }]);
    driver.notify(0);
    expect(queue.usedElement(0)).toEqual({ id: head, len: 0 });
  });
});

describe('virtio-console', () => {
  let output: number[];
  let port: VirtioConsole;
  let driver: MockVirtioDriver;
  let rx: MockSplitQueue;
  let tx: MockSplitQueue;

  beforeEach(() => {
    output = [];
    port = new VirtioConsole({ output: (bytes) => output.push(...bytes) });
    driver = plug(port);
    rx = MockSplitQueue.at(t.vm, RAM, 8);
    tx = MockSplitQueue.at(t.vm, RAM + 0x1000, 8);
  });

  it('is device 3 with two queues and a zeroed config', () => {
    expect(driver.read(MmioReg.deviceId)).toBe(3);
    driver.write(MmioReg.queueSel, 1);
    expect(driver.read(MmioReg.queueNumMax)).toBe(128);
    driver.write(MmioReg.queueSel, 2);
    expect(driver.read(MmioReg.queueNumMax)).toBe(0);
    expect(driver.read(MmioReg.config + 4)).toBe(0);
  });

  it('sends transmitted bytes to the output, in order across chains', () => {
    driver.bringUp([rx, tx]);
    t.vm.guestMemory(DATA, 5).set(new TextEncoder().encode('hello'));
    t.vm.guestMemory(DATA + 0x100, 6).set(new TextEncoder().encode(' world'));
    tx.addChain([{ addr: DATA, len: 3 }, { addr: DATA + 3, len: 2 }]);
    tx.addChain([{ addr: DATA + 0x100, len: 6 }]);
    driver.notify(1);
    expect(new TextDecoder().decode(Uint8Array.from(output))).toBe('hello world');
    expect(tx.usedIdx()).toBe(2);
  });

  it('keeps input until the guest posts receive buffers, then splits it across them', () => {
    port.receive(new TextEncoder().encode('early'));
    driver.bringUp([rx, tx]);
    port.receive(new TextEncoder().encode('+late'));
    expect(rx.usedIdx()).toBe(0);
    const a = rx.addChain([{ addr: DATA, len: 4, write: true }]);
    const b = rx.addChain([{ addr: DATA + 0x100, len: 64, write: true }]);
    driver.notify(0);
    expect(rx.usedElement(0)).toEqual({ id: a, len: 4 });
    expect(rx.usedElement(1)).toEqual({ id: b, len: 6 });
    const text = new TextDecoder().decode(t.vm.guestMemory(DATA, 4)) + new TextDecoder().decode(t.vm.guestMemory(DATA + 0x100, 6));
    expect(text).toBe('early+late');
    expect(driver.takeInterrupts()).toBe(Interrupt.usedBuffer);
    // Buffers already posted take input as it comes.
    rx.addChain([{ addr: DATA + 0x200, len: 64, write: true }]);
    port.receive(Uint8Array.of(0x41));
    expect(rx.usedElement(2).len).toBe(1);
  });

  it('a hostile receive ring found while delivering input puts the device in DEVICE_NEEDS_RESET', () => {
    driver.bringUp([rx, tx]);
    rx.addChain([{ addr: 0x4000_0000, len: 64, write: true }]);
    expect(() => port.receive(Uint8Array.of(1, 2, 3))).not.toThrow();
    expect(driver.status() & Status.deviceNeedsReset).toBe(Status.deviceNeedsReset);
    t.checkCanaries();
  });
});
