// virtio-9p end to end below the guest: 9P2000.L T-messages built in guest RAM by a mock driver, served
// by the device through the transport against a temporary host directory, R-messages read back from
// the used ring; and the guest's ways out of the export, which must all be closed.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtemp, rm, writeFile, readFile, mkdir, symlink, stat, readdir, lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NullIrqLine } from '../../../host/devices/device.js';
import { VirtioMmioTransport } from '../../../host/devices/virtio/transport.js';
import { Virtio9p, NinePFeature, NINE_P_MAX_MESSAGE_SIZE } from '../../../host/devices/virtio/p9.js';
import { LocalBackend } from '../../../host/devices/virtio/p9_local.js';
import { MAX_FIDS, NinePServer } from '../../../host/devices/virtio/p9_server.js';
import { VirtioConfigError } from '../../../host/devices/virtio/errors.js';
import {
  Errno, NOFID, P9ProtocolError, P9Reader, P9Type, P9Writer, QidType, VERSION_9P2000_L, lerror, readHeader, type Qid,
} from '../../../host/devices/virtio/p9_protocol.js';
import { MmioReg, Status } from '../../../host/devices/virtio/constants.js';
import { MockSplitQueue, type MockBuffer } from '../../mocks/split_queue.js';
import { MockVirtioDriver } from '../../mocks/virtio_driver.js';
import { createTestVm, RAM, type TestVm } from './helpers.js';

const REQUEST = RAM + 0x10000;
const REPLY = RAM + 0x40000;
const REPLY_ROOM = 0x40000;
const ROOT_FID = 1;
const AT_REMOVEDIR = 0x200;
const O_RDONLY = 0;
const O_RDWR = 2;

let t: TestVm;
let dir: string;
let root: string;
let logs: string[];
let queue: MockSplitQueue;
let device: Virtio9p;
let driver: MockVirtioDriver;
let nextTag: number;

interface Reply {
  readonly type: number;
  readonly tag: number;
  readonly r: P9Reader;
  readonly length: number;
}

async function rig(readOnly = false): Promise<void> {
  device = new Virtio9p({ backend: await LocalBackend.open({ root, readOnly }), mountTag: 'host0', id: 'fs0', log: (m) => logs.push(m) });
  const transport = new VirtioMmioTransport({ slot: 3, memory: t.vmem, irq: new NullIrqLine(), log: (m) => logs.push(m) });
  transport.plug(device);
  driver = new MockVirtioDriver(transport);
  driver.bringUp([queue]);
}

async function settle(): Promise<void> {
  while (device.requestsInFlight > 0) await new Promise((resolve) => setTimeout(resolve, 1));
}

/** Sends raw T-message bytes through the ring and waits for the reply in `writable`. */
async function exchange(message: Uint8Array, writable: MockBuffer[] = [{ addr: REPLY, len: REPLY_ROOM, write: true }]): Promise<Uint8Array> {
  t.vm.guestMemory(REQUEST, message.length).set(message);
  const usedBefore = queue.usedIdx();
  const head = queue.addChain([{ addr: REQUEST, len: message.length }, ...writable]);
  driver.notify(0);
  await settle();
  expect(queue.usedIdx()).toBe(usedBefore + 1);
  const used = queue.usedElement(usedBefore);
  expect(used.id).toBe(head);
  const out = new Uint8Array(used.len);
  let at = 0;
  for (const buffer of writable) {
    const take = Math.min(buffer.len, used.len - at);
    out.set(t.vm.guestMemory(buffer.addr, take), at);
    at += take;
  }
  return out;
}

async function call(type: number, fields: (w: P9Writer) => void, writable?: MockBuffer[]): Promise<Reply> {
  const tag = nextTag++ & 0x7fff;
  const w = new P9Writer(type, tag);
  fields(w);
  const bytes = await exchange(w.finish(), writable);
  const header = readHeader(bytes)!;
  expect(header.size).toBe(bytes.length);
  expect(header.tag).toBe(tag);
  return { type: header.type, tag, r: new P9Reader(bytes, 7), length: bytes.length };
}

/** A call that must succeed: checks the R type. */
async function ok(type: number, fields: (w: P9Writer) => void, writable?: MockBuffer[]): Promise<P9Reader> {
  const reply = await call(type, fields, writable);
  if (reply.type === P9Type.Rlerror) throw new Error(`type ${type} failed with errno ${reply.r.u32()}`);
  expect(reply.type).toBe(type + 1);
  return reply.r;
}

/** A call that must fail: returns the errno. */
async function errno(type: number, fields: (w: P9Writer) => void): Promise<number> {
  const reply = await call(type, fields);
  expect(reply.type).toBe(P9Type.Rlerror);
  return reply.r.u32();
}

function qidOf(r: P9Reader): Qid {
  return { type: r.u8(), version: r.u32(), path: r.u64() };
}

async function mount(): Promise<Qid> {
  const version = await ok(P9Type.Tversion, (w) => w.u32(128 * 1024).string(VERSION_9P2000_L));
  expect(version.u32()).toBe(128 * 1024);
  expect(version.string()).toBe(VERSION_9P2000_L);
  return qidOf(await ok(P9Type.Tattach, (w) => w.u32(ROOT_FID).u32(NOFID).string('root').string('').u32(0)));
}

async function walk(from: number, to: number, ...names: string[]): Promise<Qid[]> {
  const r = await ok(P9Type.Twalk, (w) => {
    w.u32(from).u32(to).u16(names.length);
    for (const name of names) w.string(name);
  });
  return Array.from({ length: r.u16() }, () => qidOf(r));
}

function walkErrno(from: number, to: number, ...names: string[]): Promise<number> {
  return errno(P9Type.Twalk, (w) => {
    w.u32(from).u32(to).u16(names.length);
    for (const name of names) w.string(name);
  });
}

async function readAll(fid: number, count = 4096): Promise<string> {
  const r = await ok(P9Type.Tread, (w) => w.u32(fid).u64(0n).u32(count));
  return new TextDecoder().decode(r.bytesOf(r.u32()));
}

interface Entry {
  readonly name: string;
  readonly offset: bigint;
  readonly type: number;
  readonly qid: Qid;
}

async function readdirPage(fid: number, offset: bigint, count: number): Promise<Entry[]> {
  const r = await ok(P9Type.Treaddir, (w) => w.u32(fid).u64(offset).u32(count));
  const end = r.u32();
  const entries: Entry[] = [];
  const start = r.remaining;
  while (start - r.remaining < end) {
    const qid = qidOf(r);
    entries.push({ qid, offset: r.u64(), type: r.u8(), name: r.string() });
  }
  return entries;
}

async function listDirectory(fid: number, count = 8192): Promise<Entry[]> {
  const all: Entry[] = [];
  for (let offset = 0n; ;) {
    const page = await readdirPage(fid, offset, count);
    if (page.length === 0) return all;
    all.push(...page);
    offset = page[page.length - 1]!.offset;
  }
}

beforeEach(async () => {
  t = await createTestVm();
  dir = await mkdtemp(join(tmpdir(), 'wkvm-9p-'));
  root = join(dir, 'export');
  await mkdir(root);
  await writeFile(join(root, 'hello.txt'), 'hello from the host\n');
  await mkdir(join(root, 'sub'));
  await writeFile(join(root, 'sub', 'inner'), 'inner');
  await writeFile(join(dir, 'secret'), 'outside the export');
  logs = [];
  nextTag = 1;
  queue = MockSplitQueue.at(t.vm, RAM, 128);
});

afterEach(async () => {
  await device?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('virtio-9p device', () => {
  it('is device 9 offering VIRTIO_9P_MOUNT_TAG with tag_len and the tag in its config space', async () => {
    await rig();
    expect(driver.read(MmioReg.deviceId)).toBe(9);
    expect(driver.deviceFeatures() & NinePFeature.mountTag).toBe(NinePFeature.mountTag);
    driver.write(MmioReg.queueSel, 0);
    expect(driver.read(MmioReg.queueNumMax)).toBe(128);
    expect(driver.transport.read(MmioReg.config, 2)).toBe(5);
    const tag = Array.from({ length: 5 }, (_, i) => driver.transport.read(MmioReg.config + 2 + i, 1));
    expect(String.fromCharCode(...tag)).toBe('host0');
    expect(() => new Virtio9p({ backend: device['backend'], mountTag: '' })).toThrow(RangeError);
    await expect(LocalBackend.open({ root: join(dir, 'missing') })).rejects.toThrow(VirtioConfigError);
  });

  it('negotiates msize down to its maximum and answers "unknown" to other versions', async () => {
    await rig();
    const big = await ok(P9Type.Tversion, (w) => w.u32(4 << 20).string(VERSION_9P2000_L));
    expect(big.u32()).toBe(NINE_P_MAX_MESSAGE_SIZE);
    const other = await ok(P9Type.Tversion, (w) => w.u32(8192).string('9P2000.u'));
    expect(other.u32()).toBe(8192);
    expect(other.string()).toBe('unknown');
    const rootQid = await mount();
    expect(rootQid.type).toBe(QidType.dir);
    expect(rootQid.path).toBe((await stat(root, { bigint: true })).ino);
  });

  it('walks to a host file, reports its size and reads its bytes', async () => {
    await rig();
    await mount();
    const [qid] = await walk(ROOT_FID, 2, 'hello.txt');
    expect(qid).toEqual({ type: QidType.file, version: 0, path: (await stat(join(root, 'hello.txt'), { bigint: true })).ino });
    const attr = await ok(P9Type.Tgetattr, (w) => w.u32(2).u64(0x7ffn));
    expect(attr.u64()).toBe(0x7ffn);
    qidOf(attr);
    expect(attr.u32() & 0o170000).toBe(0o100000);
    attr.u32(); attr.u32(); attr.u64(); attr.u64();
    expect(attr.u64()).toBe(20n);
    const opened = await ok(P9Type.Tlopen, (w) => w.u32(2).u32(O_RDONLY));
    expect(qidOf(opened).path).toBe(qid!.path);
    expect(await readAll(2)).toBe('hello from the host\n');
    // Reading at an offset, past the end, and with a count the reply buffer cannot hold.
    const tail = await ok(P9Type.Tread, (w) => w.u32(2).u64(6n).u32(4));
    expect(new TextDecoder().decode(tail.bytesOf(tail.u32()))).toBe('from');
    const end = await ok(P9Type.Tread, (w) => w.u32(2).u64(100n).u32(10));
    expect(end.u32()).toBe(0);
    const small = await call(P9Type.Tread, (w) => w.u32(2).u64(0n).u32(4096), [{ addr: REPLY, len: 16, write: true }]);
    expect(small.length).toBe(16);
    expect(small.r.u32()).toBe(5);
    await ok(P9Type.Tclunk, (w) => w.u32(2));
    expect(await errno(P9Type.Tread, (w) => w.u32(2).u64(0n).u32(10))).toBe(Errno.EBADF);
  });

  it('scatters a large read over a header buffer and data pages, as Linux\'s zero-copy reads post them', async () => {
    const content = new Uint8Array(100_000).map((_, i) => (i * 31) & 0xff);
    await writeFile(join(root, 'big.bin'), content);
    await rig();
    await mount();
    await walk(ROOT_FID, 2, 'big.bin');
    await ok(P9Type.Tlopen, (w) => w.u32(2).u32(O_RDONLY));
    const reply = await call(P9Type.Tread, (w) => w.u32(2).u64(1000n).u32(0x10000), [
      { addr: REPLY, len: 11, write: true },
      { addr: REPLY + 0x1000, len: 0x8000, write: true },
      { addr: REPLY + 0x10000, len: 0x8000, write: true },
    ]);
    expect(reply.type).toBe(P9Type.Tread + 1);
    expect(reply.r.u32()).toBe(0x10000);
    expect(t.vm.guestMemory(REPLY + 0x1000, 0x8000)).toEqual(content.subarray(1000, 1000 + 0x8000));
    expect(t.vm.guestMemory(REPLY + 0x10000, 0x8000)).toEqual(content.subarray(1000 + 0x8000, 1000 + 0x10000));
  });

  it('creates and writes a new file, makes a directory and lists both', async () => {
    await rig();
    await mount();
    await walk(ROOT_FID, 2);
    const created = await ok(P9Type.Tlcreate, (w) => w.u32(2).string('new.txt').u32(O_RDWR | 0o100).u32(0o100644).u32(0));
    const createdQid = qidOf(created);
    const data = new TextEncoder().encode('written by the guest\n');
    const written = await ok(P9Type.Twrite, (w) => w.u32(2).u64(0n).u32(data.length).raw(data));
    expect(written.u32()).toBe(data.length);
    await ok(P9Type.Tfsync, (w) => w.u32(2).u32(0));
    expect(await readFile(join(root, 'new.txt'), 'utf8')).toBe('written by the guest\n');
    expect(createdQid.path).toBe((await stat(join(root, 'new.txt'), { bigint: true })).ino);
    expect((await stat(join(root, 'new.txt'))).mode & 0o777).toBe(0o644 & ~process.umask());
    expect(await errno(P9Type.Tlcreate, (w) => w.u32(ROOT_FID).string('hello.txt').u32(O_RDWR).u32(0o644).u32(0))).toBe(Errno.EEXIST);

    const made = qidOf(await ok(P9Type.Tmkdir, (w) => w.u32(ROOT_FID).string('newdir').u32(0o40755).u32(0)));
    expect(made.type).toBe(QidType.dir);
    expect((await stat(join(root, 'newdir'))).isDirectory()).toBe(true);

    await walk(ROOT_FID, 3);
    await ok(P9Type.Tlopen, (w) => w.u32(3).u32(0o200000));
    const entries = await listDirectory(3);
    expect(entries.map((e) => e.name).sort()).toEqual(['.', '..', 'hello.txt', 'new.txt', 'newdir', 'sub']);
    expect(entries.find((e) => e.name === 'newdir')).toMatchObject({ type: 4, qid: made });
    expect(entries.find((e) => e.name === 'new.txt')).toMatchObject({ type: 8, qid: createdQid });
    // Small pages give the same listing: offsets stay stable from call to call.
    const paged = await listDirectory(3, 40);
    expect(paged.map((e) => e.name)).toEqual(entries.map((e) => e.name));
    expect(paged.map((e) => e.offset)).toEqual(entries.map((_, i) => BigInt(i + 1)));
  });

  it('renames, truncates and removes host files, and reports statfs', async () => {
    await rig();
    await mount();
    await walk(ROOT_FID, 2, 'sub');
    await walk(ROOT_FID, 4, 'sub', 'inner');
    await ok(P9Type.Trenameat, (w) => w.u32(ROOT_FID).string('hello.txt').u32(2).string('moved.txt'));
    expect(await readFile(join(root, 'sub', 'moved.txt'), 'utf8')).toBe('hello from the host\n');
    await expect(stat(join(root, 'hello.txt'))).rejects.toThrow();
    // Trename of a directory carries the fids below it along.
    await ok(P9Type.Trename, (w) => w.u32(2).u32(ROOT_FID).string('renamed'));
    expect((await readdir(root)).sort()).toEqual(['renamed']);
    await ok(P9Type.Tlopen, (w) => w.u32(4).u32(O_RDONLY));
    expect(await readAll(4)).toBe('inner');
    // Tsetattr's size truncates.
    await ok(P9Type.Tsetattr, (w) => w.u32(4).u32(0x8).u32(0).u32(0).u32(0).u64(2n).u64(0n).u64(0n).u64(0n).u64(0n));
    expect(await readFile(join(root, 'renamed', 'inner'), 'utf8')).toBe('in');
    // mtime set explicitly.
    await ok(P9Type.Tsetattr, (w) => w.u32(4).u32(0x20 | 0x100).u32(0).u32(0).u32(0).u64(0n).u64(0n).u64(0n).u64(1_000_000n).u64(0n));
    expect((await stat(join(root, 'renamed', 'inner'))).mtimeMs).toBe(1_000_000_000);

    expect(await errno(P9Type.Tunlinkat, (w) => w.u32(2).string('missing').u32(0))).toBe(Errno.ENOENT);
    await ok(P9Type.Tunlinkat, (w) => w.u32(2).string('moved.txt').u32(0));
    expect(await errno(P9Type.Tunlinkat, (w) => w.u32(ROOT_FID).string('renamed').u32(AT_REMOVEDIR))).toBe(Errno.ENOTEMPTY);
    await ok(P9Type.Tremove, (w) => w.u32(4));
    await ok(P9Type.Tunlinkat, (w) => w.u32(ROOT_FID).string('renamed').u32(AT_REMOVEDIR));
    expect(await readdir(root)).toEqual([]);

    const fs = await ok(P9Type.Tstatfs, (w) => w.u32(ROOT_FID));
    fs.u32();
    expect(fs.u32()).toBeGreaterThan(0); // bsize
    expect(fs.u64()).toBeGreaterThan(0n); // blocks
  });

  it('makes and reads symlinks and hard links without following them', async () => {
    await rig();
    await mount();
    const link = qidOf(await ok(P9Type.Tsymlink, (w) => w.u32(ROOT_FID).string('to-secret').string('../secret').u32(0)));
    expect(link.type).toBe(QidType.symlink);
    expect((await lstat(join(root, 'to-secret'))).isSymbolicLink()).toBe(true);
    await walk(ROOT_FID, 2, 'to-secret');
    expect((await ok(P9Type.Treadlink, (w) => w.u32(2))).string()).toBe('../secret');
    // Opening the link itself never reaches what it points to.
    const opened = await call(P9Type.Tlopen, (w) => w.u32(2).u32(O_RDONLY));
    expect(opened.type).toBe(P9Type.Rlerror);
    await walk(ROOT_FID, 3, 'hello.txt');
    await ok(P9Type.Tlink, (w) => w.u32(ROOT_FID).u32(3).string('hard'));
    expect((await stat(join(root, 'hard'))).ino).toBe((await stat(join(root, 'hello.txt'))).ino);
    expect(await errno(P9Type.Tmknod, (w) => w.u32(ROOT_FID).string('node').u32(0o10644).u32(0).u32(0).u32(0))).toBe(Errno.EPERM);
    expect(await errno(P9Type.Txattrwalk, (w) => w.u32(ROOT_FID).u32(9).string('user.x'))).toBe(Errno.EOPNOTSUPP);
  });

  it('refuses writes on a read-only export', async () => {
    await rig(true);
    await mount();
    await walk(ROOT_FID, 2, 'hello.txt');
    expect(await errno(P9Type.Tlopen, (w) => w.u32(2).u32(O_RDWR))).toBe(Errno.EROFS);
    expect(await errno(P9Type.Tmkdir, (w) => w.u32(ROOT_FID).string('d').u32(0o755).u32(0))).toBe(Errno.EROFS);
    expect(await errno(P9Type.Tunlinkat, (w) => w.u32(ROOT_FID).string('hello.txt').u32(0))).toBe(Errno.EROFS);
    await ok(P9Type.Tlopen, (w) => w.u32(2).u32(O_RDONLY));
    expect(await readAll(2)).toBe('hello from the host\n');
  });
});

describe('virtio-9p keeps the guest inside the export', () => {
  it('answers ENOENT for a missing name, and a partial walk leaves newfid unset', async () => {
    await rig();
    await mount();
    expect(await walkErrno(ROOT_FID, 2, 'nope')).toBe(Errno.ENOENT);
    const qids = await walk(ROOT_FID, 2, 'sub', 'nope', 'deeper');
    expect(qids).toHaveLength(1);
    expect(await errno(P9Type.Tgetattr, (w) => w.u32(2).u64(0x7ffn))).toBe(Errno.EBADF);
  });

  it("stays at the root when walking '..' from it", async () => {
    await rig();
    const rootQid = await mount();
    const qids = await walk(ROOT_FID, 2, '..', '..', '..');
    expect(qids).toEqual([rootQid, rootQid, rootQid]);
    // From there, the file beside the export is not reachable.
    expect(await walkErrno(2, 3, 'secret')).toBe(Errno.ENOENT);
    // A partial walk: up from 'sub' lands on the root twice, then 'secret' is not there.
    const partial = await walk(ROOT_FID, 3, 'sub', '..', '..', 'secret');
    expect(partial.slice(1)).toEqual([rootQid, rootQid]);
    expect(await errno(P9Type.Tgetattr, (w) => w.u32(3).u64(0x7ffn))).toBe(Errno.EBADF);
  });

  it('rejects names that hold a slash or are empty', async () => {
    await rig();
    await mount();
    expect(await walkErrno(ROOT_FID, 2, '../secret')).toBe(Errno.EINVAL);
    expect(await walkErrno(ROOT_FID, 2, '/etc')).toBe(Errno.EINVAL);
    expect(await walkErrno(ROOT_FID, 2, '')).toBe(Errno.EINVAL);
    expect(await errno(P9Type.Tlcreate, (w) => w.u32(ROOT_FID).string('../escape').u32(O_RDWR).u32(0o644).u32(0))).toBe(Errno.EINVAL);
    expect(await errno(P9Type.Tmkdir, (w) => w.u32(ROOT_FID).string('..').u32(0o755).u32(0))).toBe(Errno.EINVAL);
    await expect(stat(join(dir, 'escape'))).rejects.toThrow();
  });

  it('does not traverse a symlink that points outside the export', async () => {
    await symlink(dir, join(root, 'out'));
    await symlink(join(dir, 'secret'), join(root, 'secret-link'));
    await rig();
    await mount();
    const [link] = await walk(ROOT_FID, 2, 'out');
    expect(link!.type).toBe(QidType.symlink);
    expect(await walkErrno(2, 3, 'secret')).toBe(Errno.ENOTDIR);
    expect(await walk(ROOT_FID, 3, 'out', 'secret')).toHaveLength(1);
    expect(await errno(P9Type.Tlopen, (w) => w.u32(2).u32(0o200000))).not.toBe(0);
    expect(await errno(P9Type.Treaddir, (w) => w.u32(2).u64(0n).u32(4096))).toBe(Errno.EBADF);
    // A link to an outside file: opening and truncating it must not reach the target.
    await walk(ROOT_FID, 4, 'secret-link');
    const opened = await call(P9Type.Tlopen, (w) => w.u32(4).u32(O_RDONLY));
    expect(opened.type).toBe(P9Type.Rlerror);
    const truncated = await call(P9Type.Tsetattr, (w) => w.u32(4).u32(0x8).u32(0).u32(0).u32(0).u64(0n).u64(0n).u64(0n).u64(0n).u64(0n));
    expect(truncated.type).toBe(P9Type.Rlerror);
    expect(await readFile(join(dir, 'secret'), 'utf8')).toBe('outside the export');
  });

  it('refuses paths through a directory swapped for an outside symlink after the walk', async () => {
    await rig();
    await mount();
    await walk(ROOT_FID, 2, 'sub');
    // The host (or a racing guest) replaces 'sub' with a link out of the export.
    await rm(join(root, 'sub'), { recursive: true });
    await symlink(dir, join(root, 'sub'));
    expect(await walkErrno(2, 3, 'secret')).toBe(Errno.EACCES);
    expect(await errno(P9Type.Tlcreate, (w) => w.u32(2).string('planted').u32(O_RDWR).u32(0o644).u32(0))).toBe(Errno.EACCES);
    await expect(stat(join(dir, 'planted'))).rejects.toThrow();
  });

  it('answers a truncated message with Rlerror(EPROTO) and an unknown type with EOPNOTSUPP', async () => {
    await rig();
    await mount();
    // Twalk whose name runs past the end of the message.
    const broken = new P9Writer(P9Type.Twalk, 77).u32(ROOT_FID).u32(2).u16(1).u16(50).raw(new Uint8Array(3)).finish();
    expect(await exchange(broken)).toEqual(lerror(77, Errno.EPROTO));
    const unknown = new P9Writer(250, 78).u32(0).finish();
    expect(await exchange(unknown)).toEqual(lerror(78, Errno.EOPNOTSUPP));
    expect(await errno(P9Type.Tgetattr, (w) => w.u32(999).u64(0x7ffn))).toBe(Errno.EBADF);
    expect(logs).toEqual([]);
  });

  it('fails the device, without throwing, for a chain too short to hold a header', async () => {
    await rig();
    t.vm.guestMemory(REQUEST, 3).set([1, 2, 3]);
    queue.addChain([{ addr: REQUEST, len: 3 }, { addr: REPLY, len: 64, write: true }]);
    expect(() => driver.notify(0)).not.toThrow();
    expect(driver.status() & Status.deviceNeedsReset).toBe(Status.deviceNeedsReset);
    t.checkCanaries();
  });

  it('drops a reply that completes after a reset', async () => {
    await rig();
    await mount();
    await walk(ROOT_FID, 2, 'hello.txt');
    const w = new P9Writer(P9Type.Tgetattr, 5).u32(2).u64(0x7ffn).finish();
    t.vm.guestMemory(REQUEST, w.length).set(w);
    const usedBefore = queue.usedIdx();
    queue.addChain([{ addr: REQUEST, len: w.length }, { addr: REPLY, len: 256, write: true }]);
    t.vm.guestMemory(REPLY, 256).fill(0xcc);
    driver.notify(0);
    expect(device.requestsInFlight).toBe(1);
    driver.write(MmioReg.status, 0);
    await settle();
    expect(queue.usedIdx()).toBe(usedBefore);
    expect(t.vm.guestMemory(REPLY, 256).every((b) => b === 0xcc)).toBe(true);
  });
});

describe('the 9P server\'s limits', () => {
  it('refuses a fid past MAX_FIDS with ENFILE, and takes one again after a clunk', async () => {
    const share = await mkdtemp(join(tmpdir(), 'wkvm-9p-fids-'));
    try {
      const server = new NinePServer({ backend: await LocalBackend.open({ root: share }), maxMessageSize: 8192 });
      const send = async (message: Uint8Array) => new P9Reader((await server.handle(message, 8192))!, 0);
      const typeOf = (r: P9Reader) => { r.u32(); return r.u8(); };
      expect(typeOf(await send(new P9Writer(P9Type.Tattach, 0, 64).u32(0).u32(NOFID).string('').string('').finish()))).toBe(P9Type.Tattach + 1);
      // Walks with no names clone fid 0.
      const walk = (fid: number) => send(new P9Writer(P9Type.Twalk, 1, 16).u32(0).u32(fid).u16(0).finish());
      for (let fid = 1; fid < MAX_FIDS; fid++) await walk(fid);
      const refused = await walk(MAX_FIDS);
      expect(typeOf(refused)).toBe(P9Type.Rlerror);
      refused.u16();
      expect(refused.u32()).toBe(Errno.ENFILE);
      await send(new P9Writer(P9Type.Tclunk, 2, 8).u32(5).finish());
      expect(typeOf(await walk(MAX_FIDS))).toBe(P9Type.Twalk + 1);
    } finally {
      await rm(share, { recursive: true, force: true });
    }
  });
});

describe('9P2000.L wire format', () => {
  it('round-trips fields, little-endian, with the size patched in', () => {
    const bytes = new P9Writer(P9Type.Tgetattr, 0x1234, 8).u32(7).u64(0x0102030405060708n).string('né').finish();
    expect(bytes.length).toBe(7 + 4 + 8 + 2 + 3);
    expect(readHeader(bytes)).toEqual({ size: bytes.length, type: P9Type.Tgetattr, tag: 0x1234 });
    const r = new P9Reader(bytes, 7);
    expect([r.u32(), r.u64(), r.string(), r.remaining]).toEqual([7, 0x0102030405060708n, 'né', 0]);
    expect(readHeader(bytes.subarray(0, 6))).toBeNull();
  });

  it('throws P9ProtocolError past the end of a message and for a string that is not UTF-8', () => {
    expect(() => new P9Reader(Uint8Array.of(1, 2, 3)).u32()).toThrow(P9ProtocolError);
    expect(() => new P9Reader(Uint8Array.of(5, 0, 0x61)).string()).toThrow(P9ProtocolError);
    expect(() => new P9Reader(Uint8Array.of(2, 0, 0xff, 0xfe)).string()).toThrow(P9ProtocolError);
  });
});
