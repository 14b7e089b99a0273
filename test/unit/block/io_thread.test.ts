import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BlockIoThread, IoOp } from '../../../host/block/io_thread.js';
import { LARGE_REQUEST_BYTES, MAX_SEGMENTS, RING_SLOTS } from '../../../host/block/io_ring.js';
import { pattern, ScratchDir } from './helpers.js';

describe('the disk I/O thread', () => {
  let thread: BlockIoThread;
  let scratch: ScratchDir;
  let path: string;
  let fd: number;
  const content = pattern(20_000, 5);

  beforeAll(() => {
    thread = new BlockIoThread();
  });
  afterAll(() => thread.close());
  beforeEach(() => {
    scratch = new ScratchDir();
    path = scratch.file('file.img');
    writeFileSync(path, content);
    fd = openSync(path, 'r+');
  });
  afterEach(() => {
    closeSync(fd);
    scratch.remove();
  });

  it('reads into scattered views of shared memory, touching nothing else', async () => {
    const shared = new Uint8Array(new SharedArrayBuffer(16384)).fill(0xee);
    const parts = [shared.subarray(100, 1100), shared.subarray(5000, 9096), shared.subarray(12000, 12001)];
    const bytes = await thread.submit(IoOp.read, fd, 777, parts)!;
    expect(bytes).toBe(1000 + 4096 + 1);
    expect(parts[0]).toEqual(content.subarray(777, 1777));
    expect(parts[1]).toEqual(content.subarray(1777, 5873));
    expect(parts[2]![0]).toBe(content[5873]);
    expect(shared[99]).toBe(0xee);
    expect(shared[1100]).toBe(0xee);
    expect(shared[12001]).toBe(0xee);
  });

  it('writes scattered views in order', async () => {
    const shared = new Uint8Array(new SharedArrayBuffer(8192));
    shared.set(pattern(8192, 11));
    const parts = [shared.subarray(4000, 4100), shared.subarray(0, 50)];
    expect(await thread.submit(IoOp.write, fd, 19_990, parts)!).toBe(150);
    const file = readFileSync(path);
    expect(file.length).toBe(20_140); // grew past the old end
    expect(file.subarray(0, 19_990)).toEqual(Buffer.from(content.subarray(0, 19_990)));
    expect(file.subarray(19_990, 20_090)).toEqual(Buffer.from(parts[0]!));
    expect(file.subarray(20_090)).toEqual(Buffer.from(parts[1]!));
  });

  it('copies buffers outside shared memory through its staging area', async () => {
    const src = pattern(3000, 21);
    expect(await thread.submit(IoOp.write, fd, 100, [src.subarray(0, 1000), src.subarray(1000)])!).toBe(3000);
    const dst = [new Uint8Array(2000).fill(1), new Uint8Array(1000).fill(1)];
    expect(await thread.submit(IoOp.read, fd, 100, dst)!).toBe(3000);
    expect(dst[0]).toEqual(src.subarray(0, 2000));
    expect(dst[1]).toEqual(src.subarray(2000));
  });

  it('stops a read at the end of the file and says how far it got', async () => {
    const dst = new Uint8Array(new SharedArrayBuffer(4096)).fill(0xee);
    expect(await thread.submit(IoOp.read, fd, 19_000, [dst])!).toBe(1000);
    expect(dst.subarray(0, 1000)).toEqual(content.subarray(19_000));
    expect(dst[1000]).toBe(0xee);
    const staged = new Uint8Array(64).fill(0xee);
    expect(await thread.submit(IoOp.read, fd, 30_000, [staged])!).toBe(0);
    expect(staged[0]).toBe(0xee);
  });

  it('rejects with the system error of a failed call', async () => {
    const readOnly = openSync(path, 'r');
    try {
      const write = thread.submit(IoOp.write, readOnly, 0, [new Uint8Array(new SharedArrayBuffer(512))])!;
      await expect(write).rejects.toMatchObject({ code: 'EBADF', syscall: 'pwritev' });
    } finally {
      closeSync(readOnly);
    }
    await expect(thread.submit(IoOp.sync, 1 << 30, 0, [])!).rejects.toMatchObject({ code: 'EBADF', syscall: 'fdatasync' });
    // The thread goes on serving.
    expect(await thread.submit(IoOp.sync, fd, 0, [])!).toBe(0);
  });

  it('takes a 1 MiB request in 256 scattered pieces (a guest\'s O_DIRECT buffer)', async () => {
    const MiB = 1 << 20;
    const source = new Uint8Array(new SharedArrayBuffer(2 * MiB));
    source.set(pattern(2 * MiB, 13));
    // Every other 4 KiB page of the source, as a guest's scattered page frames.
    const pieces = (buffer: Uint8Array) => Array.from({ length: 256 }, (_, i) => buffer.subarray(i * 8192, i * 8192 + 4096));
    expect(await thread.submit(IoOp.write, fd, 4096, pieces(source))!).toBe(MiB);
    const back = new Uint8Array(new SharedArrayBuffer(2 * MiB));
    expect(await thread.submit(IoOp.read, fd, 4096, pieces(back))!).toBe(MiB);
    for (let i = 0; i < 256; i++) expect(back.subarray(i * 8192, i * 8192 + 4096)).toEqual(source.subarray(i * 8192, i * 8192 + 4096));
    expect(new Uint8Array(readFileSync(path).subarray(4096 + MiB - 4096, 4096 + MiB))).toEqual(source.subarray(255 * 8192, 255 * 8192 + 4096));
  });

  it('delivers on poll() without the event loop turning', async () => {
    const dst = new Uint8Array(new SharedArrayBuffer(512));
    let settled = false;
    const read = thread.submit(IoOp.read, fd, 0, [dst])!.then((bytes) => { settled = true; return bytes; });
    const until = performance.now() + 5000;
    let delivered = 0;
    while (delivered === 0 && performance.now() < until) delivered = thread.poll();
    expect(delivered).toBe(1);
    expect(thread.pending).toBe(0);
    expect(settled).toBe(false); // the promise settles at the next microtask
    expect(await read).toBe(512);
    expect(dst).toEqual(content.subarray(0, 512));
  });

  it('declines what it should not take: large requests, too many pieces, a full ring', async () => {
    const shared = new SharedArrayBuffer(LARGE_REQUEST_BYTES * 2);
    expect(thread.submit(IoOp.read, fd, 0, [new Uint8Array(shared, 0, LARGE_REQUEST_BYTES + 512)])).toBeNull();
    const pieces = Array.from({ length: MAX_SEGMENTS + 1 }, (_, i) => new Uint8Array(shared, i * 8, 8));
    expect(thread.submit(IoOp.read, fd, 0, pieces)).toBeNull();
    const reads: Promise<number>[] = [];
    for (let i = 0; i < RING_SLOTS; i++) reads.push(thread.submit(IoOp.read, fd, i * 512, [new Uint8Array(shared, i * 512, 512)])!);
    expect(reads.every((read) => read instanceof Promise)).toBe(true);
    expect(thread.submit(IoOp.read, fd, 0, [new Uint8Array(shared, 0, 512)])).toBeNull();
    expect(await Promise.all(reads)).toEqual(new Array(RING_SLOTS).fill(512));
    expect(new Uint8Array(shared, 0, RING_SLOTS * 512)).toEqual(content.subarray(0, RING_SLOTS * 512));
  });

  it('lets the VMM do a request itself when the worker has not taken it, delivering in submission order', async () => {
    // A worker that never takes a request: every one is left to performOne.
    const idleWorker = `import { workerData } from 'node:worker_threads';
      const header = new Int32Array(workerData.ring, 0, 4);
      while (Atomics.load(header, 2) === 0) Atomics.wait(header, 0, Atomics.load(header, 0), 20);
      workerData.registrations.close();`;
    const idle = new BlockIoThread({ url: new URL(`data:text/javascript,${encodeURIComponent(idleWorker)}`) });
    const shared = new Uint8Array(new SharedArrayBuffer(512));
    const unshared = new Uint8Array(1000);
    const written = pattern(700, 9);
    const done: string[] = [];
    const requests = [
      idle.submit(IoOp.read, fd, 100, [shared])!.then((n) => { done.push('shared'); return n; }),
      idle.submit(IoOp.read, fd, 5000, [unshared])!.then((n) => { done.push('unshared'); return n; }),
      idle.submit(IoOp.write, fd, 12_000, [written.subarray(0, 300), written.subarray(300)])!.then((n) => { done.push('write'); return n; }),
    ];
    expect(idle.poll()).toBe(0);
    for (let i = 0; i < 3; i++) expect(idle.performOne()).toBe(true);
    expect(idle.performOne()).toBe(false);
    expect(idle.poll()).toBe(3);
    expect(await Promise.all(requests)).toEqual([512, 1000, 700]);
    expect(done).toEqual(['shared', 'unshared', 'write']);
    expect(shared).toEqual(content.subarray(100, 612));
    expect(unshared).toEqual(content.subarray(5000, 6000));
    expect(new Uint8Array(readFileSync(path).subarray(12_000, 12_700))).toEqual(written);
    // An fdatasync is left to the worker (this one never does it, so it fails when the thread closes).
    const sync = idle.submit(IoOp.sync, fd, 0, [])!;
    expect(idle.performOne()).toBe(false);
    await idle.close();
    await expect(sync).rejects.toThrow();
  });

  it('delivers every request once, with the right data, when the VMM and the worker race to take them', async () => {
    // Batches of RING_SLOTS / 2, so the ring always has room; the VMM tries to take each one as it goes.
    const batch = RING_SLOTS / 2;
    const shared = new SharedArrayBuffer(64 * 256);
    const results: number[] = [];
    for (let first = 0; first < 256; first += batch) {
      const requests: Promise<number>[] = [];
      for (let i = first; i < first + batch; i++) {
        const request = thread.submit(IoOp.read, fd, i * 64, [new Uint8Array(shared, i * 64, 64)]);
        expect(request).not.toBeNull();
        requests.push(request!);
        thread.performOne();
        thread.poll();
      }
      results.push(...await Promise.all(requests));
    }
    expect(results).toEqual(new Array(256).fill(64));
    expect(new Uint8Array(shared)).toEqual(content.subarray(0, 64 * 256));
  });

  it('serves requests without spinning when told not to (vCPU threads own the cores)', async () => {
    const own = new BlockIoThread();
    own.maxSpinMs = 0;
    const dst = new Uint8Array(new SharedArrayBuffer(512));
    for (let i = 0; i < 20; i++) {
      expect(await own.submit(IoOp.read, fd, i * 512, [dst])!).toBe(512);
      expect(dst).toEqual(content.subarray(i * 512, i * 512 + 512));
    }
    await own.close();
  });

  it('takes nothing more once closed', async () => {
    const own = new BlockIoThread();
    expect(await own.submit(IoOp.sync, fd, 0, [])!).toBe(0);
    await own.close();
    expect(own.submit(IoOp.sync, fd, 0, [])).toBeNull();
  });
});
