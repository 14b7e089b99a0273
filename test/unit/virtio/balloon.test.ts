// virtio-balloon through the transport, with a mock driver doing what Linux's virtio_balloon does.
import { describe, it, expect, beforeEach } from 'vitest';
import { NullIrqLine } from '../../../host/devices/device.js';
import { VirtioMmioTransport } from '../../../host/devices/virtio/transport.js';
import { VirtioBalloon } from '../../../host/devices/virtio/balloon.js';
import { Interrupt, MmioReg } from '../../../host/devices/virtio/constants.js';
import { MockSplitQueue } from '../../mocks/split_queue.js';
import { MockVirtioDriver } from '../../mocks/virtio_driver.js';
import { createTestVm, RAM, RAM_SIZE, type TestVm } from './helpers.js';

const PFN_LIST = RAM + 0x10000;
let t: TestVm;
let balloon: VirtioBalloon;
let driver: MockVirtioDriver;
let inflate: MockSplitQueue;
let deflate: MockSplitQueue;

/** Puts `frames` (4 KiB page frame numbers) on `queue` as one chain, as the driver's tell_host does. */
function tell(queue: MockSplitQueue, index: number, frames: number[], at = PFN_LIST): number {
  const bytes = new Uint8Array(frames.length * 4);
  frames.forEach((frame, i) => new DataView(bytes.buffer).setUint32(i * 4, frame, true));
  t.vm.guestMemory(at, bytes.length).set(bytes);
  const head = queue.addChain([{ addr: at, len: bytes.length }]);
  driver.notify(index);
  return head;
}

beforeEach(async () => {
  t = await createTestVm();
  balloon = new VirtioBalloon({ ram: { base: RAM, size: RAM_SIZE } });
  const transport = new VirtioMmioTransport({ slot: 3, memory: t.vmem, irq: new NullIrqLine(), log: () => {} });
  transport.plug(balloon);
  driver = new MockVirtioDriver(transport);
  inflate = MockSplitQueue.at(t.vm, RAM, 16);
  deflate = MockSplitQueue.at(t.vm, RAM + 0x1000, 16);
});

describe('virtio-balloon', () => {
  it('is device 5 with an inflate and a deflate queue, no features of its own, and an empty balloon', () => {
    expect(driver.read(MmioReg.deviceId)).toBe(5);
    expect(driver.deviceFeatures() & 0xff_ffffn).toBe(0n); // device bits 0-23
    for (const [queue, max] of [[0, 128], [1, 128], [2, 0]] as const) {
      driver.write(MmioReg.queueSel, queue);
      expect(driver.read(MmioReg.queueNumMax)).toBe(max);
    }
    expect(driver.read(MmioReg.config + 0)).toBe(0); // num_pages
    expect(driver.read(MmioReg.config + 4)).toBe(0); // actual
  });

  it('asks for pages through num_pages with a config-change interrupt, and reads back actual', () => {
    driver.bringUp([inflate, deflate]);
    balloon.setTargetPages(3);
    expect(driver.read(MmioReg.config + 0)).toBe(3);
    expect(driver.takeInterrupts() & Interrupt.configChange).toBe(Interrupt.configChange);
    driver.write(MmioReg.config + 4, 3);
    expect(balloon.actualPages).toBe(3);
    driver.write(MmioReg.config + 0, 99); // num_pages is the host's
    expect(balloon.targetPages).toBe(3);
    expect(() => balloon.setTargetPages(-1)).toThrow(RangeError);
  });

  it('counts the frames the guest gives and takes back, ignoring frames outside its RAM', () => {
    driver.bringUp([inflate, deflate]);
    const first = RAM / 4096;
    const head = tell(inflate, 0, [first + 10, first + 11, first + 12, 0x10, first + RAM_SIZE / 4096]);
    expect(inflate.usedElement(0)).toEqual({ id: head, len: 0 });
    expect(driver.takeInterrupts() & Interrupt.usedBuffer).toBe(Interrupt.usedBuffer);
    expect(balloon.inflatedPages).toBe(3);
    tell(deflate, 1, [first + 11], PFN_LIST + 0x100);
    expect(balloon.inflatedPages).toBe(2);
    expect(deflate.usedElement(0).len).toBe(0);
  });

  it('empties on reset', () => {
    driver.bringUp([inflate, deflate]);
    tell(inflate, 0, [RAM / 4096]);
    driver.write(MmioReg.config + 4, 1);
    driver.write(MmioReg.status, 0);
    expect(balloon.inflatedPages).toBe(0);
    expect(balloon.actualPages).toBe(0);
  });
});
