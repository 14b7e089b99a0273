// The core's split-virtqueue walker, driven from the driver side with a mock queue: chains come back as
// the right guest-RAM segments, the used ring and event indexes are written as a driver expects, and
// every malformed ring a hostile guest could build is refused with its own error, without the queue
// moving and without a byte outside guest RAM changing.
import { describe, it, expect, beforeEach } from 'vitest';
import * as layout from '../../../assembly/abi/layout.js';
import { Virtqueue, type QueueSetup } from '../../../host/devices/virtio/queue.js';
import { VirtqueueError } from '../../../host/devices/virtio/errors.js';
import { MockSplitQueue, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE } from '../../mocks/split_queue.js';
import { createTestVm, hostOf, RAM, RAM_SIZE, RAM2, ROM, type TestVm } from './helpers.js';

const SIZE = 8;
const RINGS = RAM; // the rings at the start of RAM
const TABLE = RAM + 0x4000; // indirect tables
const DATA = RAM + 0x8000; // buffers

let t: TestVm;
let mock: MockSplitQueue;

function setupFor(q: MockSplitQueue, extra: Partial<QueueSetup> = {}): QueueSetup {
  return { size: q.size, desc: BigInt(q.desc), driver: BigInt(q.avail), device: BigInt(q.used), eventIdx: false, indirect: true, ...extra };
}

function configure(extra: Partial<QueueSetup> = {}): Virtqueue {
  return Virtqueue.configure(t.vmem, 0, 0, setupFor(mock, extra));
}

function popError(queue: Virtqueue): VirtqueueError {
  try {
    queue.pop();
  } catch (error) {
    if (error instanceof VirtqueueError) return error;
    throw error;
  }
  throw new Error('pop succeeded');
}

beforeEach(async () => {
  t = await createTestVm();
  mock = MockSplitQueue.at(t.vm, RINGS, SIZE);
});

describe('queue setup', () => {
  it.each([
    ['size 0', { size: 0 }, layout.VIRTQ_ERR_SIZE],
    ['size not a power of two', { size: 6 }, layout.VIRTQ_ERR_SIZE],
    ['size above the maximum', { size: 2048 }, layout.VIRTQ_ERR_SIZE],
    ['misaligned descriptor table', { desc: BigInt(RAM + 8) }, layout.VIRTQ_ERR_ALIGN],
    ['misaligned avail ring', { driver: BigInt(RAM + 0x1001) }, layout.VIRTQ_ERR_ALIGN],
    ['misaligned used ring', { device: BigInt(RAM + 0x1002) }, layout.VIRTQ_ERR_ALIGN],
    ['descriptor table outside RAM', { desc: 0x1000_0000n }, layout.VIRTQ_ERR_RING],
    ['descriptor table running off the end of RAM', { desc: BigInt(RAM2 + 0x10000 - 64) }, layout.VIRTQ_ERR_RING],
    ['avail ring at an absurd address', { driver: 0xffff_ffff_ffff_fff0n }, layout.VIRTQ_ERR_RING],
    ['used ring in read-only memory', { device: BigInt(ROM) }, layout.VIRTQ_ERR_RING],
  ] as const)('refuses %s', (_name, extra, code) => {
    expect(() => configure(extra)).toThrow(VirtqueueError);
    try {
      configure(extra);
    } catch (error) {
      expect((error as VirtqueueError).code).toBe(code);
    }
    t.checkCanaries();
  });

  it('accepts rings in read-only memory for the driver side', () => {
    expect(() => configure({ desc: BigInt(ROM), driver: BigInt(ROM + 0x200) })).not.toThrow();
  });
});

describe('popping chains', () => {
  it('returns nothing while the driver has published nothing', () => {
    const queue = configure();
    expect(queue.pop()).toBeNull();
    expect(queue.pop()).toBeNull();
  });

  it('returns readable then writable segments as host addresses of the buffers', () => {
    const queue = configure();
    t.vm.guestMemory(DATA, 4).set([1, 2, 3, 4]);
    const head = mock.addChain([
      { addr: DATA, len: 4 },
      { addr: DATA + 0x100, len: 16 },
      { addr: DATA + 0x200, len: 512, write: true },
      { addr: DATA + 0x800, len: 1, write: true },
    ]);
    const chain = queue.pop()!;
    expect(chain.head).toBe(head);
    expect(chain.readable.map((s) => [s.host, s.length, s.gpa])).toEqual([
      [hostOf(t.vm, DATA), 4, DATA],
      [hostOf(t.vm, DATA + 0x100), 16, DATA + 0x100],
    ]);
    expect(chain.writable.map((s) => [s.host, s.length])).toEqual([
      [hostOf(t.vm, DATA + 0x200), 512],
      [hostOf(t.vm, DATA + 0x800), 1],
    ]);
    expect([...chain.read(0, 4)]).toEqual([1, 2, 3, 4]);
    chain.write(511, Uint8Array.of(7, 8));
    expect([...t.vm.guestMemory(DATA + 0x200 + 511, 1)]).toEqual([7]);
    expect([...t.vm.guestMemory(DATA + 0x800, 1)]).toEqual([8]);
    expect(queue.pop()).toBeNull();
  });

  it('gives views that join buffers adjacent in memory and find bytes near the end from the back', () => {
    const queue = configure();
    mock.addChain([
      { addr: DATA, len: 16 },
      { addr: DATA + 0x1000, len: 4096, write: true },
      { addr: DATA + 0x2000, len: 4096, write: true }, // right after the one before: one view
      { addr: DATA + 0x5000, len: 100, write: true },
      { addr: DATA + 0x3000, len: 1, write: true },
    ]);
    const chain = queue.pop()!;
    const spans = (views: Uint8Array[]) => views.map((v) => [v.byteOffset, v.length]);
    const host = (gpa: number) => hostOf(t.vm, gpa);
    expect(spans(chain.views('writable', 0, 8292))).toEqual([[host(DATA + 0x1000), 8192], [host(DATA + 0x5000), 100]]);
    expect(spans(chain.views('writable', 4000, 200))).toEqual([[host(DATA + 0x1000) + 4000, 200]]);
    expect(spans(chain.views('writable', 8200, 50))).toEqual([[host(DATA + 0x5000) + 8, 50]]);
    expect(spans(chain.views('writable', 8292, 1))).toEqual([[host(DATA + 0x3000), 1]]);
    expect(spans(chain.views('writable', 8190, 200))).toEqual([[host(DATA + 0x2000) + 4094, 2], [host(DATA + 0x5000), 100], [host(DATA + 0x3000), 1]]);
    expect(chain.views('writable', 8293, 1)).toEqual([]);
    expect(spans(chain.views('readable', 4, 8))).toEqual([[host(DATA) + 4, 8]]);
  });

  it('follows next indexes in any order and skips zero-length buffers', () => {
    const queue = configure();
    mock.writeDescriptor(5, { addr: DATA, len: 10, flags: DESC_F_NEXT, next: 2 });
    mock.writeDescriptor(2, { addr: 0xdead_0000, len: 0, flags: DESC_F_NEXT, next: 7 });
    mock.writeDescriptor(7, { addr: DATA + 64, len: 20, flags: DESC_F_WRITE });
    mock.publish(5);
    const chain = queue.pop()!;
    expect(chain.head).toBe(5);
    expect(chain.readableLength).toBe(10);
    expect(chain.writableLength).toBe(20);
  });

  it('walks indirect tables', () => {
    const queue = configure();
    const head = mock.addIndirectChain(TABLE, [
      { addr: DATA, len: 16 },
      { addr: DATA + 0x1000, len: 4096, write: true },
      { addr: DATA + 0x3000, len: 1, write: true },
    ]);
    const chain = queue.pop()!;
    expect(chain.head).toBe(head);
    expect(chain.readable.map((s) => s.length)).toEqual([16]);
    expect(chain.writable.map((s) => [s.host, s.length])).toEqual([
      [hostOf(t.vm, DATA + 0x1000), 4096],
      [hostOf(t.vm, DATA + 0x3000), 1],
    ]);
  });

  it('splits a buffer that crosses from one RAM slot into the next', () => {
    const queue = configure();
    mock.addChain([{ addr: RAM + RAM_SIZE - 100, len: 300, write: true }]);
    const chain = queue.pop()!;
    expect(chain.writable.map((s) => [s.host, s.length, s.gpa])).toEqual([
      [hostOf(t.vm, RAM + RAM_SIZE - 100), 100, RAM + RAM_SIZE - 100],
      [hostOf(t.vm, RAM2), 200, RAM2],
    ]);
  });

  it('accepts a chain exactly as long as the queue', () => {
    const queue = configure();
    mock.addChain(Array.from({ length: SIZE }, (_, i) => ({ addr: DATA + 16 * i, len: 16 })));
    expect(queue.pop()!.readable).toHaveLength(SIZE);
  });

  it('lets device-readable buffers live in read-only memory', () => {
    const queue = configure();
    mock.addChain([{ addr: ROM, len: 64 }]);
    expect(queue.pop()!.readableLength).toBe(64);
  });

  it('wraps the 16-bit ring indexes', () => {
    const small = MockSplitQueue.at(t.vm, RINGS, 2);
    const queue = Virtqueue.configure(t.vmem, 0, 0, setupFor(small));
    for (let i = 0; i < 0x10005; i++) {
      const head = small.addChain([{ addr: DATA, len: 8, write: true }]);
      const chain = queue.pop()!;
      expect(chain.head).toBe(head);
      queue.pushUsed(chain.head, i & 0xff);
      if (small.usedIdx() !== ((i + 1) & 0xffff)) throw new Error(`used idx ${small.usedIdx()} after ${i + 1} pushes`);
    }
    expect(small.usedElement(0x10004)).toEqual({ id: 0, len: 4 });
    expect(queue.pop()).toBeNull();
  });
});

describe('hostile chains', () => {
  const outside = 0x4000_0000;
  const cases: Array<[string, () => void, number]> = [
    ['a readable buffer outside RAM', () => mock.addChain([{ addr: outside, len: 16 }]), layout.VIRTQ_ERR_BUFFER],
    ['a writable buffer outside RAM', () => mock.addChain([{ addr: outside, len: 16, write: true }]), layout.VIRTQ_ERR_BUFFER],
    ['a writable buffer just past the end of RAM', () => mock.addChain([{ addr: RAM2 + 0x10000, len: 1, write: true }]), layout.VIRTQ_ERR_BUFFER],
    ['a buffer whose end runs past RAM', () => mock.addChain([{ addr: RAM2 + 0x10000 - 8, len: 16, write: true }]), layout.VIRTQ_ERR_BUFFER],
    ['a buffer whose address + length overflows', () => {
      mock.writeDescriptor(0, { addr: 0xffff_ffff_ffff_fff0n, len: 0x20, flags: DESC_F_WRITE });
      mock.publish(0);
    }, layout.VIRTQ_ERR_BUFFER],
    ['an absurd length', () => mock.addChain([{ addr: DATA, len: 0xffff_ffff, write: true }]), layout.VIRTQ_ERR_BUFFER],
    ['a device-writable buffer in read-only memory', () => mock.addChain([{ addr: ROM, len: 16, write: true }]), layout.VIRTQ_ERR_BUFFER],
    ['a descriptor loop', () => {
      mock.writeDescriptor(0, { addr: DATA, len: 16, flags: DESC_F_NEXT, next: 1 });
      mock.writeDescriptor(1, { addr: DATA, len: 16, flags: DESC_F_NEXT, next: 0 });
      mock.publish(0);
    }, layout.VIRTQ_ERR_CHAIN_LENGTH],
    ['a descriptor that chains to itself', () => {
      mock.writeDescriptor(3, { addr: DATA, len: 16, flags: DESC_F_WRITE | DESC_F_NEXT, next: 3 });
      mock.publish(3);
    }, layout.VIRTQ_ERR_CHAIN_LENGTH],
    ['a chain longer than the queue (it must loop)', () => {
      for (let i = 0; i < SIZE; i++) mock.writeDescriptor(i, { addr: DATA, len: 1, flags: DESC_F_NEXT, next: (i + 1) % SIZE });
      mock.publish(0);
    }, layout.VIRTQ_ERR_CHAIN_LENGTH],
    ['a next index beyond the table', () => {
      mock.writeDescriptor(0, { addr: DATA, len: 16, flags: DESC_F_NEXT, next: SIZE });
      mock.publish(0);
    }, layout.VIRTQ_ERR_NEXT],
    ['a head index beyond the table', () => mock.publish(SIZE + 3), layout.VIRTQ_ERR_HEAD],
    ['avail.idx more than a queue ahead', () => mock.setAvailIdx(SIZE + 1), layout.VIRTQ_ERR_AVAIL_IDX],
    ['a readable buffer after a writable one', () => mock.addChain([
      { addr: DATA, len: 16, write: true },
      { addr: DATA + 16, len: 16 },
    ]), layout.VIRTQ_ERR_ORDER],
    ['a nested indirect table', () => {
      MockSplitQueue.writeDescriptorAt(t.vm, TABLE, { addr: TABLE + 0x100, len: 16, flags: DESC_F_INDIRECT });
      mock.writeDescriptor(0, { addr: TABLE, len: 16, flags: DESC_F_INDIRECT });
      mock.publish(0);
    }, layout.VIRTQ_ERR_INDIRECT_NESTED],
    ['an indirect table of length 0', () => {
      mock.writeDescriptor(0, { addr: TABLE, len: 0, flags: DESC_F_INDIRECT });
      mock.publish(0);
    }, layout.VIRTQ_ERR_INDIRECT_SIZE],
    ['an indirect table whose length is not a multiple of 16', () => {
      mock.writeDescriptor(0, { addr: TABLE, len: 24, flags: DESC_F_INDIRECT });
      mock.publish(0);
    }, layout.VIRTQ_ERR_INDIRECT_SIZE],
    ['an indirect table larger than the maximum', () => {
      mock.writeDescriptor(0, { addr: RAM + 0x10000, len: 16 * 1025, flags: DESC_F_INDIRECT });
      mock.publish(0);
    }, layout.VIRTQ_ERR_INDIRECT_SIZE],
    ['an indirect table outside RAM', () => {
      mock.writeDescriptor(0, { addr: outside, len: 64, flags: DESC_F_INDIRECT });
      mock.publish(0);
    }, layout.VIRTQ_ERR_INDIRECT_TABLE],
    ['an indirect table running past the end of RAM', () => {
      mock.writeDescriptor(0, { addr: RAM2 + 0x10000 - 32, len: 64, flags: DESC_F_INDIRECT });
      mock.publish(0);
    }, layout.VIRTQ_ERR_INDIRECT_TABLE],
    ['INDIRECT together with NEXT', () => {
      mock.writeDescriptor(0, { addr: TABLE, len: 16, flags: DESC_F_INDIRECT | DESC_F_NEXT, next: 1 });
      mock.publish(0);
    }, layout.VIRTQ_ERR_INDIRECT_PLACE],
    ['an indirect descriptor after direct ones', () => {
      mock.writeDescriptor(0, { addr: DATA, len: 16, flags: DESC_F_NEXT, next: 1 });
      mock.writeDescriptor(1, { addr: TABLE, len: 16, flags: DESC_F_INDIRECT });
      mock.publish(0);
    }, layout.VIRTQ_ERR_INDIRECT_PLACE],
    ['a loop inside an indirect table', () => {
      MockSplitQueue.writeDescriptorAt(t.vm, TABLE, { addr: DATA, len: 16, flags: DESC_F_NEXT, next: 1 });
      MockSplitQueue.writeDescriptorAt(t.vm, TABLE + 16, { addr: DATA, len: 16, flags: DESC_F_NEXT, next: 0 });
      mock.writeDescriptor(0, { addr: TABLE, len: 32, flags: DESC_F_INDIRECT });
      mock.publish(0);
    }, layout.VIRTQ_ERR_CHAIN_LENGTH],
    ['a next index beyond an indirect table', () => {
      MockSplitQueue.writeDescriptorAt(t.vm, TABLE, { addr: DATA, len: 16, flags: DESC_F_NEXT, next: 2 });
      mock.writeDescriptor(0, { addr: TABLE, len: 32, flags: DESC_F_INDIRECT });
      mock.publish(0);
    }, layout.VIRTQ_ERR_NEXT],
    ['a buffer outside RAM inside an indirect table', () => mock.addIndirectChain(TABLE, [
      { addr: DATA, len: 16 },
      { addr: outside, len: 16, write: true },
    ]), layout.VIRTQ_ERR_BUFFER],
  ];

  it.each(cases)('refuses %s, stays put and touches nothing outside RAM', (_name, build, code) => {
    const queue = configure();
    build();
    const error = popError(queue);
    expect(error.code).toBe(code);
    expect(error.message).toMatch(/^queue 0: /);
    // The queue did not advance: the same chain fails again.
    expect(popError(queue).code).toBe(code);
    expect(mock.usedIdx()).toBe(0);
    t.checkCanaries();
  });

  it('refuses INDIRECT when the feature was not negotiated', () => {
    const queue = configure({ indirect: false });
    mock.addIndirectChain(TABLE, [{ addr: DATA, len: 16 }]);
    expect(popError(queue).code).toBe(layout.VIRTQ_ERR_INDIRECT_FEATURE);
  });

  it('reports the offending address', () => {
    const queue = configure();
    mock.addChain([{ addr: DATA, len: 16 }, { addr: 0x4000_1234, len: 16, write: true }]);
    expect(popError(queue).detail).toBe(0x4000_1234n);
  });
});

describe('used ring and notifications', () => {
  it('writes the used element, then the index', () => {
    const queue = configure();
    const a = mock.addChain([{ addr: DATA, len: 16, write: true }]);
    const b = mock.addChain([{ addr: DATA + 64, len: 16, write: true }]);
    queue.pop();
    queue.pop();
    queue.pushUsed(b, 5);
    expect(mock.usedIdx()).toBe(1);
    expect(mock.usedElement(0)).toEqual({ id: b, len: 5 });
    queue.pushUsed(a, 16);
    expect(mock.usedIdx()).toBe(2);
    expect(mock.usedElement(1)).toEqual({ id: a, len: 16 });
  });

  it('refuses a used id beyond the queue', () => {
    const queue = configure();
    expect(() => queue.pushUsed(SIZE, 0)).toThrow(VirtqueueError);
    expect(mock.usedIdx()).toBe(0);
  });

  it('without EVENT_IDX, interrupts unless the driver set NO_INTERRUPT', () => {
    const queue = configure();
    queue.pushUsed(0, 0);
    expect(queue.needsInterrupt()).toBe(true);
    mock.setAvailFlags(1);
    queue.pushUsed(1, 0);
    expect(queue.needsInterrupt()).toBe(false);
  });

  it('with EVENT_IDX, interrupts only when used.idx passes used_event', () => {
    const queue = configure({ eventIdx: true });
    // The first decision always interrupts (nothing signalled yet).
    queue.pushUsed(0, 0);
    expect(queue.needsInterrupt()).toBe(true);
    // The driver wants to hear when used.idx passes 3 (i.e. after the 4th element).
    mock.setUsedEvent(3);
    queue.pushUsed(1, 0); // idx 2
    expect(queue.needsInterrupt()).toBe(false);
    queue.pushUsed(2, 0); // idx 3
    expect(queue.needsInterrupt()).toBe(false);
    queue.pushUsed(3, 0); // idx 4: crossed
    expect(queue.needsInterrupt()).toBe(true);
    // Several pushes in one batch still cross the event once.
    mock.setUsedEvent(5);
    queue.pushUsed(4, 0);
    queue.pushUsed(5, 0);
    queue.pushUsed(6, 0); // 4 → 7 crosses 5
    expect(queue.needsInterrupt()).toBe(true);
    expect(queue.needsInterrupt()).toBe(false); // nothing new
  });

  it('with EVENT_IDX, sets avail_event so the driver notifies for the next buffer', () => {
    const queue = configure({ eventIdx: true });
    expect(queue.pop()).toBeNull();
    expect(mock.availEvent()).toBe(0);
    mock.addChain([{ addr: DATA, len: 1 }]);
    mock.addChain([{ addr: DATA, len: 1 }]);
    queue.pop();
    expect(mock.availEvent()).toBe(1);
    queue.pop();
    expect(queue.pop()).toBeNull();
    expect(mock.availEvent()).toBe(2);
  });

  it('a reset queue refuses to pop', () => {
    const queue = configure();
    mock.addChain([{ addr: DATA, len: 1 }]);
    queue.reset();
    expect(popError(queue).code).toBe(layout.VIRTQ_ERR_NOT_READY);
  });
});
