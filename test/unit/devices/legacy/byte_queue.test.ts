import { describe, expect, it } from 'vitest';
import { ByteQueue } from '../../../../host/devices/legacy/byte_queue.js';

describe('ByteQueue', () => {
  it('returns -1 when empty and ignores empty chunks', () => {
    const queue = new ByteQueue();
    queue.push(new Uint8Array(0));
    expect(queue.length).toBe(0);
    expect(queue.shift()).toBe(-1);
  });

  it('keeps order across many small chunks while being drained and refilled', () => {
    const queue = new ByteQueue();
    const expected: number[] = [];
    const taken: number[] = [];
    let next = 0;
    // Far more chunks than the compaction threshold, with the queue never fully drained in between.
    for (let round = 0; round < 500; round++) {
      for (let i = 0; i < 3; i++) {
        const chunk = Uint8Array.of(next & 0xff, (next + 1) & 0xff);
        expected.push(...chunk);
        next += 2;
        queue.push(chunk);
      }
      for (let i = 0; i < 5; i++) taken.push(queue.shift());
    }
    expect(queue.length).toBe(expected.length - taken.length);
    while (queue.length > 0) taken.push(queue.shift());
    expect(taken).toEqual(expected);
  });

  it('forgets everything on clear', () => {
    const queue = new ByteQueue();
    queue.push(Uint8Array.of(1, 2, 3));
    queue.shift();
    queue.clear();
    expect(queue.length).toBe(0);
    queue.push(Uint8Array.of(9));
    expect(queue.shift()).toBe(9);
  });
});
