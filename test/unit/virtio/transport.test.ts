// The virtio-mmio transport as a driver sees it: identification registers, feature negotiation, the
// status state machine, queue setup, notifications, interrupts, DEVICE_NEEDS_RESET and reset.
import { describe, it, expect, beforeEach } from 'vitest';
import { NullIrqLine } from '../../../host/devices/device.js';
import { VirtioMmioTransport } from '../../../host/devices/virtio/transport.js';
import { VirtioRng } from '../../../host/devices/virtio/rng.js';
import { Feature, Interrupt, MmioReg, Status } from '../../../host/devices/virtio/constants.js';
import { MockSplitQueue } from '../../mocks/split_queue.js';
import { MockVirtioDriver } from '../../mocks/virtio_driver.js';
import { createTestVm, RAM, type TestVm } from './helpers.js';
import { asm, li, program } from '../../helpers/asm.js';
import * as layout from '../../../assembly/abi/layout.js';
import type { Vcpu } from '../../../host/kvm/vcpu.js';

const DATA = RAM + 0x8000;

let t: TestVm;
let irq: NullIrqLine;
let logs: string[];
let transport: VirtioMmioTransport;
let driver: MockVirtioDriver;
let queue: MockSplitQueue;

function newTransport(slot = 0): VirtioMmioTransport {
  return new VirtioMmioTransport({ slot, memory: t.vmem, irq, log: (m) => logs.push(m) });
}

beforeEach(async () => {
  t = await createTestVm();
  irq = new NullIrqLine();
  logs = [];
  transport = newTransport();
  // A counting "random" source so the test can see exactly what was written.
  let counter = 0;
  transport.plug(new VirtioRng((bytes) => bytes.forEach((_, i) => (bytes[i] = counter++ & 0xff))));
  driver = new MockVirtioDriver(transport);
  queue = MockSplitQueue.at(t.vm, RAM, 16);
});

describe('identification', () => {
  it('an empty slot reads as device id 0 of a version-2 transport', () => {
    const empty = new MockVirtioDriver(newTransport(3));
    expect(empty.read(MmioReg.magic)).toBe(0x74726976);
    expect(empty.read(MmioReg.version)).toBe(2);
    expect(empty.read(MmioReg.deviceId)).toBe(0);
    expect(empty.read(MmioReg.vendorId)).toBe(0x554d4551);
    empty.write(MmioReg.status, 1);
    expect(empty.read(MmioReg.status)).toBe(0);
  });

  it('shows the device id and offers VERSION_1, EVENT_IDX and INDIRECT_DESC', () => {
    expect(driver.read(MmioReg.deviceId)).toBe(4);
    expect(driver.deviceFeatures()).toBe(Feature.version1 | Feature.ringEventIdx | Feature.ringIndirectDesc);
    driver.write(MmioReg.deviceFeaturesSel, 2);
    expect(driver.read(MmioReg.deviceFeatures)).toBe(0);
  });

  it('reports queue sizes for existing queues only, and no shared memory', () => {
    driver.write(MmioReg.queueSel, 0);
    expect(driver.read(MmioReg.queueNumMax)).toBe(64);
    driver.write(MmioReg.queueSel, 1);
    expect(driver.read(MmioReg.queueNumMax)).toBe(0);
    expect(driver.read(MmioReg.shmLenLow)).toBe(0xffffffff);
  });

  it('ignores and logs sub-word register accesses', () => {
    expect(transport.read(MmioReg.magic, 1)).toBe(0);
    transport.write(MmioReg.status, 2, 1);
    expect(driver.status()).toBe(0);
    expect(logs.some((l) => /registers are 32-bit/.test(l))).toBe(true);
  });
});

describe('feature negotiation and status', () => {
  it('accepts a subset of the offered features', () => {
    expect(driver.negotiate(Feature.version1 | Feature.ringEventIdx)).toBe(true);
    expect(transport.negotiatedFeatures).toBe(Feature.version1 | Feature.ringEventIdx);
    expect(driver.status()).toBe(Status.acknowledge | Status.driver | Status.featuresOk);
  });

  it('refuses FEATURES_OK for a feature it did not offer', () => {
    expect(driver.negotiate(Feature.version1 | (1n << 33n))).toBe(false);
    expect(logs.join('\n')).toMatch(/does not offer/);
  });

  it('takes FEATURES_OK without VERSION_1, as QEMU\'s modern transport does (xv6 negotiates only the low word)', () => {
    expect(driver.negotiate(Feature.ringEventIdx)).toBe(true);
    expect(transport.negotiatedFeatures).toBe(Feature.ringEventIdx);
    expect(logs).toEqual([]);
  });

  it('ignores feature writes after FEATURES_OK', () => {
    driver.negotiate(Feature.version1);
    driver.writeDriverFeatures(Feature.version1 | Feature.ringIndirectDesc);
    expect(transport.negotiatedFeatures).toBe(Feature.version1);
  });

  it('DRIVER_OK without FEATURES_OK puts the device in DEVICE_NEEDS_RESET', () => {
    driver.write(MmioReg.status, Status.acknowledge | Status.driver | Status.driverOk);
    expect(driver.status() & Status.deviceNeedsReset).toBe(Status.deviceNeedsReset);
  });

  it('writing 0 resets everything, including a DEVICE_NEEDS_RESET', () => {
    driver.write(MmioReg.status, Status.acknowledge | Status.driver | Status.driverOk);
    driver.write(MmioReg.status, 0);
    expect(driver.status()).toBe(0);
    expect(driver.negotiate(Feature.version1)).toBe(true);
  });
});

describe('queues and notifications', () => {
  it('serves a request: buffer filled, used ring written, interrupt raised and acknowledged', () => {
    driver.bringUp([queue]);
    expect(driver.read(MmioReg.queueReady)).toBe(1);
    const head = queue.addChain([{ addr: DATA, len: 8, write: true }]);
    driver.notify(0);
    expect(queue.usedIdx()).toBe(1);
    expect(queue.usedElement(0)).toEqual({ id: head, len: 8 });
    expect([...t.vm.guestMemory(DATA, 8)]).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(irq.level).toBe(true);
    expect(driver.takeInterrupts()).toBe(Interrupt.usedBuffer);
    expect(irq.level).toBe(false);
  });

  it('ignores notifications before DRIVER_OK', () => {
    driver.negotiate(Feature.version1);
    driver.setupQueue(0, queue);
    queue.addChain([{ addr: DATA, len: 8, write: true }]);
    driver.notify(0);
    expect(queue.usedIdx()).toBe(0);
    driver.driverOk();
    driver.notify(0);
    expect(queue.usedIdx()).toBe(1);
  });

  it('ignores queue register writes while the queue is ready', () => {
    driver.bringUp([queue]);
    driver.write(MmioReg.queueNum, 4);
    driver.write(MmioReg.queueDescLow, 0x1000);
    queue.addChain([{ addr: DATA, len: 4, write: true }]);
    driver.notify(0);
    expect(queue.usedIdx()).toBe(1);
    expect(logs.some((l) => /while it is ready/.test(l))).toBe(true);
  });

  it('a ring outside RAM makes QueueReady fail into DEVICE_NEEDS_RESET', () => {
    driver.negotiate(Feature.version1);
    driver.setupQueue(0, new MockSplitQueue(t.vm, 16, 0x4000_0000, RAM + 0x100, RAM + 0x200));
    expect(driver.read(MmioReg.queueReady)).toBe(0);
    expect(driver.status() & Status.deviceNeedsReset).toBe(Status.deviceNeedsReset);
    expect(logs.join('\n')).toMatch(/not inside guest RAM/);
  });

  it('a queue size above QueueNumMax is refused', () => {
    driver.negotiate(Feature.version1);
    driver.setupQueue(0, MockSplitQueue.at(t.vm, RAM, 128));
    expect(driver.status() & Status.deviceNeedsReset).toBe(Status.deviceNeedsReset);
  });

  it('a hostile chain stops the device with a logged reason and a config interrupt; reset recovers it', () => {
    driver.bringUp([queue]);
    queue.addChain([{ addr: 0x4000_0000, len: 8, write: true }]);
    driver.notify(0);
    expect(driver.status() & Status.deviceNeedsReset).toBe(Status.deviceNeedsReset);
    expect(logs.join('\n')).toMatch(/virtio-mmio\.0 \(virtio-rng\): queue 0: a buffer is not inside guest RAM.*device needs reset/);
    expect(driver.takeInterrupts()).toBe(Interrupt.configChange);
    // Later notifications are ignored: nothing is used.
    queue.addChain([{ addr: DATA, len: 8, write: true }]);
    driver.notify(0);
    expect(queue.usedIdx()).toBe(0);
    t.checkCanaries();
    // The driver resets and starts over with fresh rings.
    queue = MockSplitQueue.at(t.vm, RAM + 0x2000, 16);
    driver.bringUp([queue]);
    expect(driver.status()).toBe(Status.acknowledge | Status.driver | Status.featuresOk | Status.driverOk);
    queue.addChain([{ addr: DATA, len: 8, write: true }]);
    driver.notify(0);
    expect(queue.usedIdx()).toBe(1);
  });

  it('a driver reset releases the rings', () => {
    driver.bringUp([queue]);
    driver.write(MmioReg.status, 0);
    expect(driver.read(MmioReg.queueReady)).toBe(0);
    queue.addChain([{ addr: DATA, len: 8, write: true }]);
    driver.notify(0);
    expect(queue.usedIdx()).toBe(0);
  });

  it('honours used_event with EVENT_IDX', () => {
    driver.bringUp([queue], Feature.version1 | Feature.ringEventIdx);
    queue.addChain([{ addr: DATA, len: 1, write: true }]);
    driver.notify(0);
    expect(driver.takeInterrupts()).toBe(Interrupt.usedBuffer);
    // The driver asks to hear only after the third used buffer.
    queue.setUsedEvent(2);
    queue.addChain([{ addr: DATA, len: 1, write: true }]);
    driver.notify(0);
    expect(driver.takeInterrupts()).toBe(0);
    queue.addChain([{ addr: DATA, len: 1, write: true }]);
    driver.notify(0);
    expect(driver.takeInterrupts()).toBe(Interrupt.usedBuffer);
  });

  it('config generation is readable and stable', () => {
    expect(driver.read(MmioReg.configGeneration)).toBe(driver.read(MmioReg.configGeneration));
  });
});

describe('interrupt registers served by the core', () => {
  // As the virt machine wires a transport: its line is the core PLIC's source VIRTIO_MMIO_FIRST_IRQ + slot.
  const SLOT = 2;
  const WINDOW = layout.VIRTIO_MMIO_BASE + SLOT * layout.VIRTIO_MMIO_STRIDE;
  const SOURCE = layout.VIRTIO_MMIO_FIRST_IRQ + SLOT;
  const CODE = RAM + 0x10000;
  const T0 = 5;

  let vcpu: Vcpu | undefined;
  beforeEach(() => {
    vcpu = undefined;
  });
  const plicPending = () => (new Uint32Array(t.vm.memory.buffer, layout.PLIC_PENDING, 4)[SOURCE >> 5]! >>> (SOURCE & 31)) & 1;

  function inCoreTransport(slot = SLOT, inCoreInterrupt = true): VirtioMmioTransport {
    const line = { set: (level: boolean) => t.vm.setIrqLine(layout.VIRTIO_MMIO_FIRST_IRQ + slot, level) };
    const inCore = new VirtioMmioTransport({ slot, memory: t.vmem, irq: line, log: (m) => logs.push(m), inCoreInterrupt });
    inCore.plug(new VirtioRng((bytes) => bytes.fill(7)));
    return inCore;
  }

  /** Runs `words` at CODE (M-mode, bare) with t0 = `window`. */
  function runGuest(window: number, words: number[]) {
    const code = program([...li(T0, window), ...words, asm.jal(0, 0)]);
    t.vm.guestMemory(CODE, code.length).set(code);
    vcpu ??= t.vm.createVcpu(0);
    vcpu.reset(BigInt(CODE));
    return { vcpu, exit: vcpu.run(200) };
  }

  it('answers InterruptStatus and takes InterruptACK without an exit, lowering the line when no bit is left', () => {
    const inCore = inCoreTransport();
    const d = new MockVirtioDriver(inCore);
    d.bringUp([queue]);
    queue.addChain([{ addr: DATA, len: 8, write: true }]);
    d.notify(0);
    expect(inCore.interrupts).toBe(Interrupt.usedBuffer);
    expect(plicPending()).toBe(1);
    // a0 = InterruptStatus; InterruptACK = a0; a1 = InterruptStatus
    const { vcpu, exit } = runGuest(WINDOW, [asm.lw(10, T0, MmioReg.interruptStatus), asm.sw(10, T0, MmioReg.interruptAck), asm.lw(11, T0, MmioReg.interruptStatus)]);
    expect(exit.reason).toBe('budget');
    expect(vcpu.getRegs().x[10]).toBe(BigInt(Interrupt.usedBuffer));
    expect(vcpu.getRegs().x[11]).toBe(0n);
    expect(inCore.interrupts).toBe(0);
    expect(plicPending()).toBe(0);
  });

  it('keeps the line up while a bit is left unacknowledged', () => {
    const inCore = inCoreTransport();
    new MockVirtioDriver(inCore).bringUp([queue]);
    inCore.fail('a test stops the device'); // a configuration change interrupt
    expect(inCore.interrupts & Interrupt.configChange).toBe(Interrupt.configChange);
    runGuest(WINDOW, [asm.addi(10, 0, Interrupt.usedBuffer), asm.sw(10, T0, MmioReg.interruptAck)]);
    expect(inCore.interrupts).toBe(Interrupt.configChange);
    expect(plicPending()).toBe(1);
  });

  it('leaves sub-word accesses, other registers and transports the VMM serves to MMIO exits', () => {
    inCoreTransport();
    expect(runGuest(WINDOW, [asm.lb(10, T0, MmioReg.interruptStatus)]).exit).toMatchObject({ reason: 'mmio', addr: WINDOW + 0x60, size: 1 });
    expect(runGuest(WINDOW, [asm.lw(10, T0, MmioReg.status)]).exit).toMatchObject({ reason: 'mmio', addr: WINDOW + 0x70 });
    inCoreTransport(SLOT + 1, false);
    const other = WINDOW + layout.VIRTIO_MMIO_STRIDE;
    expect(runGuest(other, [asm.lw(10, T0, MmioReg.interruptStatus)]).exit).toMatchObject({ reason: 'mmio', addr: other + 0x60, size: 4 });
  });
});

describe('the legacy interface (-global virtio-mmio.force-legacy=true, QEMU\'s default)', () => {
  let legacy: VirtioMmioTransport;
  let legacyDriver: MockVirtioDriver;
  beforeEach(() => {
    legacy = new VirtioMmioTransport({ slot: 1, memory: t.vmem, irq, log: (m) => logs.push(m), legacy: true });
    let counter = 100;
    legacy.plug(new VirtioRng((bytes) => bytes.forEach((_, i) => (bytes[i] = counter++ & 0xff))));
    legacyDriver = new MockVirtioDriver(legacy);
  });

  it('is version 1 and offers 32 feature bits, without VIRTIO_F_VERSION_1', () => {
    expect(legacyDriver.read(MmioReg.version)).toBe(1);
    expect(legacyDriver.read(MmioReg.deviceId)).toBe(4);
    legacyDriver.write(MmioReg.deviceFeaturesSel, 1);
    expect(legacyDriver.read(MmioReg.deviceFeatures)).toBe(0);
    legacyDriver.write(MmioReg.deviceFeaturesSel, 0);
    expect(legacyDriver.read(MmioReg.deviceFeatures)).toBe(Number(Feature.ringEventIdx | Feature.ringIndirectDesc));
  });

  it('takes a queue by page frame (GuestPageSize, QueueAlign, QueuePFN), starts at DRIVER_OK without FEATURES_OK, and serves it', () => {
    const size = 8;
    const base = RAM + 0x4000;
    // The legacy layout: the used ring at the next QueueAlign (here 4096) boundary after the avail ring.
    const ring = new MockSplitQueue(t.vm, size, base, base + 16 * size, base + 0x1000);
    t.vm.guestMemory(base, 0x2000).fill(0);
    legacyDriver.write(MmioReg.status, Status.acknowledge | Status.driver);
    legacyDriver.write(MmioReg.driverFeatures, 0);
    legacyDriver.write(0x028, 4096); // GuestPageSize
    legacyDriver.write(MmioReg.queueSel, 0);
    expect(legacyDriver.read(MmioReg.queueNumMax)).toBeGreaterThanOrEqual(size);
    legacyDriver.write(MmioReg.queueNum, size);
    legacyDriver.write(0x03c, 4096); // QueueAlign
    legacyDriver.write(0x040, base / 4096); // QueuePFN
    expect(legacyDriver.read(0x040)).toBe(base / 4096);
    legacyDriver.write(MmioReg.status, Status.acknowledge | Status.driver | Status.driverOk);
    expect(legacyDriver.status() & Status.deviceNeedsReset).toBe(0);
    const head = ring.addChain([{ addr: DATA, len: 4, write: true }]);
    legacyDriver.write(MmioReg.queueNotify, 0);
    expect(ring.usedElement(0)).toEqual({ id: head, len: 4 });
    expect([...t.vm.guestMemory(DATA, 4)]).toEqual([100, 101, 102, 103]);
    expect(legacyDriver.takeInterrupts()).toBe(Interrupt.usedBuffer);
    // QueuePFN 0 takes the queue back; the version 2 queue registers are not there.
    legacyDriver.write(0x040, 0);
    expect(legacyDriver.read(0x040)).toBe(0);
    legacyDriver.write(MmioReg.queueReady, 1);
    expect(logs.some((l) => /legacy interface does not have/.test(l))).toBe(true);
  });

  it('refuses a page size or alignment that is not a power of two, and a ring outside RAM', () => {
    legacyDriver.write(0x028, 3000);
    legacyDriver.write(0x03c, 100);
    expect(logs.filter((l) => /not a power of two/.test(l))).toHaveLength(2);
    legacyDriver.write(MmioReg.status, Status.acknowledge | Status.driver);
    legacyDriver.write(MmioReg.queueNum, 8);
    legacyDriver.write(0x040, 0x4000_0000 / 4096);
    expect(legacyDriver.status() & Status.deviceNeedsReset).toBe(Status.deviceNeedsReset);
  });
});
