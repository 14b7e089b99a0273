// A 9P2000.L file server over a NinePBackend: the fid table and one handler per T-message, answering
// each with its R-message or Rlerror. Transport-free (the virtio device hands it message bytes) and
// Node-free. The guest never leaves the export: names are checked to be plain components, walks step
// through directories only (a symlink is an end point the guest resolves itself with Treadlink), and
// '..' is resolved lexically, staying at the root.
import {
  childPath, isPlainName, NinePError, parentPath, type NinePBackend, type NinePFile, type NinePSetattr, type NinePStat,
  type NinePTime,
} from './p9_backend.js';
import {
  DirentType, Errno, FileMode, HEADER_SIZE, MIN_MSIZE, NOFID, P9ProtocolError, P9Reader, P9Type, P9Writer, QID_SIZE, QidType,
  READ_HEADER_SIZE, VERSION_9P2000_L, emptyReply, encodedStringSize, lerror, readHeader, type Qid,
} from './p9_protocol.js';

/** Linux's limit on names per Twalk (P9_MAXWELEM). */
const MAX_WALK_NAMES = 16;
/**
 * Fids a guest may hold at once. Linux keeps one per cached dentry, so a tree walk holds many; the cap
 * only stops a guest that never clunks from growing the VMM's memory without bound.
 */
export const MAX_FIDS = 65536;
/** Twrite's fields before the data: header, fid[4], offset[8], count[4]. */
const WRITE_HEADER_SIZE = HEADER_SIZE + 16;

/** P9_DOTL_* open flags (the generic Linux O_* values). */
const OpenFlag = {
  accessMask: 3,
  writeOnly: 1,
  readWrite: 2,
  create: 0o100,
  exclusive: 0o200,
  truncate: 0o1000,
  directory: 0o200000,
  sync: 0o4000000,
} as const;

/** Tsetattr valid bits. */
const SetattrValid = {
  mode: 0x1,
  size: 0x8,
  atime: 0x10,
  mtime: 0x20,
  atimeSet: 0x80,
  mtimeSet: 0x100,
} as const;

/** Rgetattr: the basic fields (P9_GETATTR_BASIC) are all we fill. */
const GETATTR_BASIC = 0x7ffn;
const AT_REMOVEDIR = 0x200;
/** Rlock status and Rgetlock type. */
const LOCK_SUCCESS = 0;
const F_UNLCK = 2;

interface DirectoryListing {
  /** Entries with '.' and '..' first; entry i is at offset i, and its reply offset is i + 1. */
  readonly entries: ReadonlyArray<{ readonly name: string; readonly qid: Qid; readonly type: number }>;
}

interface Fid {
  /** Relative to the root; updated when the guest renames it or an ancestor. */
  path: string;
  qid: Qid;
  /** Set by Tlopen/Tlcreate of a regular file. */
  file: NinePFile | null;
  /** A directory opened by Tlopen, for Treaddir. */
  openedDirectory: boolean;
  listing: DirectoryListing | null;
}

export interface NinePServerOptions {
  readonly backend: NinePBackend;
  /** The largest msize offered (Tversion negotiates down to it). */
  readonly maxMessageSize: number;
  /** Host errors that are no errno of the backend's (bugs, not guest mistakes). */
  readonly log?: (message: string) => void;
}

export function qidOf(stat: NinePStat): Qid {
  const kind = stat.mode & FileMode.typeMask;
  const type = kind === FileMode.directory ? QidType.dir : kind === FileMode.symlink ? QidType.symlink : QidType.file;
  return { type, version: 0, path: stat.ino };
}

function checkName(name: string): string {
  if (!isPlainName(name)) throw new NinePError(Errno.EINVAL, `bad name ${JSON.stringify(name)}`);
  return name;
}

function timeOf(set: boolean, seconds: bigint, nanoseconds: bigint): NinePTime {
  return set ? seconds * 1_000_000_000n + nanoseconds : 'now';
}

export class NinePServer {
  private readonly backend: NinePBackend;
  private readonly maxMessageSize: number;
  private readonly log: (message: string) => void;
  private readonly fids = new Map<number, Fid>();
  private msize: number;
  /** Requests being served, by tag, so a Tflush can wait for the one it names. */
  private readonly pending = new Map<number, Promise<unknown>>();

  constructor(options: NinePServerOptions) {
    this.backend = options.backend;
    this.maxMessageSize = options.maxMessageSize;
    this.msize = options.maxMessageSize;
    this.log = options.log ?? ((message) => console.warn(message));
  }

  /** The negotiated message size. */
  get messageSize(): number {
    return this.msize;
  }

  /** Fids attached or walked and not clunked (for tests and leak checks). */
  get fidCount(): number {
    return this.fids.size;
  }

  /**
   * Serves one T-message; the reply is at most `replyRoom` bytes (what the guest's buffers hold).
   * Never rejects: a malformed message gets Rlerror(EPROTO); null only when there is no tag to answer.
   */
  async handle(message: Uint8Array, replyRoom: number): Promise<Uint8Array | null> {
    const header = readHeader(message);
    if (header === null) return null;
    const done = this.dispatch(header.type, header.tag, message.subarray(0, Math.min(header.size, message.length)), replyRoom);
    if (header.type !== P9Type.Tflush) this.pending.set(header.tag, done);
    try {
      return await done;
    } finally {
      if (this.pending.get(header.tag) === done) this.pending.delete(header.tag);
    }
  }

  /** Closes every open file (device reset, Tversion). */
  async clunkAll(): Promise<void> {
    const files = [...this.fids.values()].map((fid) => fid.file).filter((file) => file !== null);
    this.fids.clear();
    await Promise.allSettled(files.map((file) => file.close()));
  }

  private async dispatch(type: number, tag: number, message: Uint8Array, replyRoom: number): Promise<Uint8Array> {
    const reader = new P9Reader(message, HEADER_SIZE);
    try {
      return await this.serve(type, tag, reader, replyRoom);
    } catch (error) {
      if (error instanceof NinePError) return lerror(tag, error.errno);
      if (error instanceof P9ProtocolError) return lerror(tag, Errno.EPROTO);
      this.log(`9p: unexpected error serving type ${type}: ${(error as Error).stack ?? error}`);
      return lerror(tag, Errno.EIO);
    }
  }

  private serve(type: number, tag: number, r: P9Reader, replyRoom: number): Promise<Uint8Array> {
    const reply = (): P9Writer => new P9Writer(type + 1, tag);
    const empty = (): Uint8Array => emptyReply(type, tag);
    switch (type) {
      case P9Type.Tversion: return this.version(r, reply);
      case P9Type.Tattach: return this.attach(r, reply);
      case P9Type.Twalk: return this.walk(r, reply);
      case P9Type.Tgetattr: return this.getattr(r, reply);
      case P9Type.Tsetattr: return this.setattr(r).then(empty);
      case P9Type.Tlopen: return this.lopen(r, reply);
      case P9Type.Tlcreate: return this.lcreate(r, reply);
      case P9Type.Tread: return this.read(r, tag, replyRoom);
      case P9Type.Twrite: return this.write(r, reply);
      case P9Type.Tclunk: return this.clunk(r).then(empty);
      case P9Type.Tremove: return this.remove(r).then(empty);
      case P9Type.Treaddir: return this.readdir(r, tag, replyRoom);
      case P9Type.Tmkdir: return this.mkdir(r, reply);
      case P9Type.Tunlinkat: return this.unlinkat(r).then(empty);
      case P9Type.Trenameat: return this.renameat(r).then(empty);
      case P9Type.Trename: return this.rename(r).then(empty);
      case P9Type.Tstatfs: return this.statfs(r, reply);
      case P9Type.Tfsync: return this.fsync(r).then(empty);
      case P9Type.Tsymlink: return this.symlink(r, reply);
      case P9Type.Treadlink: return this.readlink(r, reply);
      case P9Type.Tlink: return this.link(r).then(empty);
      case P9Type.Tflush: return this.flush(r).then(empty);
      case P9Type.Tlock: return this.lock(r, reply);
      case P9Type.Tgetlock: return this.getlock(r, reply);
      case P9Type.Tmknod:
        return Promise.reject(new NinePError(Errno.EPERM, 'mknod'));
      default:
        // Txattrwalk, Txattrcreate, Tauth and whatever is not 9P2000.L: Linux copes with EOPNOTSUPP.
        return Promise.reject(new NinePError(Errno.EOPNOTSUPP, `message type ${type}`));
    }
  }

  private fid(number: number): Fid {
    const fid = this.fids.get(number);
    if (fid === undefined) throw new NinePError(Errno.EBADF, `no fid ${number}`);
    return fid;
  }

  private directoryFid(number: number): Fid {
    const fid = this.fid(number);
    if (fid.qid.type !== QidType.dir) throw new NinePError(Errno.ENOTDIR);
    return fid;
  }

  private writable(): void {
    if (this.backend.readOnly) throw new NinePError(Errno.EROFS);
  }

  private async qidAt(path: string): Promise<Qid> {
    return qidOf(await this.backend.lstat(path));
  }

  private async version(r: P9Reader, reply: () => P9Writer): Promise<Uint8Array> {
    const requested = r.u32();
    const version = r.string();
    await this.clunkAll();
    if (requested < MIN_MSIZE) throw new NinePError(Errno.EINVAL, `msize ${requested}`);
    this.msize = Math.min(requested, this.maxMessageSize);
    // Only 9P2000.L is spoken; the client must give up on anything else.
    const agreed = version === VERSION_9P2000_L ? VERSION_9P2000_L : 'unknown';
    return reply().u32(this.msize).string(agreed).finish();
  }

  private async attach(r: P9Reader, reply: () => P9Writer): Promise<Uint8Array> {
    const fid = r.u32();
    const afid = r.u32();
    r.string(); // uname
    r.string(); // aname: there is one export per device
    if (afid !== NOFID) throw new NinePError(Errno.EINVAL, 'authentication is not supported');
    if (this.fids.has(fid)) throw new NinePError(Errno.EINVAL, `fid ${fid} in use`);
    this.roomForFid();
    const qid = await this.qidAt('');
    this.fids.set(fid, { path: '', qid, file: null, openedDirectory: false, listing: null });
    return reply().qid(qid).finish();
  }

  private async walk(r: P9Reader, reply: () => P9Writer): Promise<Uint8Array> {
    const from = this.fid(r.u32());
    const newFid = r.u32();
    const count = r.u16();
    if (count > MAX_WALK_NAMES) throw new NinePError(Errno.EINVAL, `${count} names in a walk`);
    const names: string[] = [];
    for (let i = 0; i < count; i++) names.push(r.string());
    const existing = this.fids.get(newFid);
    if (existing !== undefined && existing !== from) throw new NinePError(Errno.EINVAL, `fid ${newFid} in use`);
    if (existing === undefined) this.roomForFid();
    // Walking an open fid onto itself would drop its open file.
    if (existing === from) this.unopened(from);
    let path = from.path;
    let qid = from.qid;
    const qids: Qid[] = [];
    for (const name of names) {
      try {
        // Only a directory has children: a symlink is never traversed, so a walk cannot leave the root.
        if (qid.type !== QidType.dir) throw new NinePError(Errno.ENOTDIR);
        if (name === '..') path = parentPath(path);
        else if (name !== '.') path = childPath(path, checkName(name));
        qid = await this.qidAt(path);
      } catch (error) {
        // The first name failing is an error; a later one ends a partial walk, newfid untouched.
        if (qids.length === 0) throw error;
        break;
      }
      qids.push(qid);
    }
    if (qids.length === names.length) {
      this.fids.set(newFid, { path, qid, file: null, openedDirectory: false, listing: null });
    }
    const out = reply().u16(qids.length);
    for (const q of qids) out.qid(q);
    return out.finish();
  }

  private async getattr(r: P9Reader, reply: () => P9Writer): Promise<Uint8Array> {
    const fid = this.fid(r.u32());
    r.u64(); // request_mask: the basic fields are always given
    const stat = await this.backend.lstat(fid.path);
    const qid = qidOf(stat);
    fid.qid = qid;
    const seconds = (ns: bigint) => ns / 1_000_000_000n;
    const nanoseconds = (ns: bigint) => ns % 1_000_000_000n;
    return reply()
      .u64(GETATTR_BASIC).qid(qid).u32(stat.mode).u32(stat.uid).u32(stat.gid)
      .u64(stat.nlink).u64(stat.rdev).u64(stat.size).u64(stat.blksize).u64(stat.blocks)
      .u64(seconds(stat.atimeNs)).u64(nanoseconds(stat.atimeNs))
      .u64(seconds(stat.mtimeNs)).u64(nanoseconds(stat.mtimeNs))
      .u64(seconds(stat.ctimeNs)).u64(nanoseconds(stat.ctimeNs))
      .u64(0n).u64(0n) // btime
      .u64(0n).u64(0n) // gen, data_version
      .finish();
  }

  private async setattr(r: P9Reader): Promise<void> {
    const fid = this.fid(r.u32());
    const valid = r.u32();
    const mode = r.u32();
    r.u32(); // uid and gid: security_model=none keeps the host's owner
    r.u32();
    const size = r.u64();
    const atimeSeconds = r.u64();
    const atimeNanoseconds = r.u64();
    const mtimeSeconds = r.u64();
    const mtimeNanoseconds = r.u64();
    const changes: { -readonly [K in keyof NinePSetattr]: NinePSetattr[K] } = {};
    if (valid & SetattrValid.mode) changes.mode = mode & FileMode.permissionMask;
    if (valid & SetattrValid.size) changes.size = size;
    if (valid & SetattrValid.atime) changes.atime = timeOf((valid & SetattrValid.atimeSet) !== 0, atimeSeconds, atimeNanoseconds);
    if (valid & SetattrValid.mtime) changes.mtime = timeOf((valid & SetattrValid.mtimeSet) !== 0, mtimeSeconds, mtimeNanoseconds);
    if (Object.keys(changes).length === 0) return;
    this.writable();
    await this.backend.setattr(fid.path, changes);
  }

  private openMode(flags: number): { read: boolean; write: boolean; truncate: boolean; sync: boolean } {
    const access = flags & OpenFlag.accessMask;
    const write = access === OpenFlag.writeOnly || access === OpenFlag.readWrite;
    const truncate = (flags & OpenFlag.truncate) !== 0;
    if ((write || truncate) && this.backend.readOnly) throw new NinePError(Errno.EROFS);
    return { read: access !== OpenFlag.writeOnly, write, truncate, sync: (flags & OpenFlag.sync) === OpenFlag.sync };
  }

  private roomForFid(): void {
    if (this.fids.size >= MAX_FIDS) throw new NinePError(Errno.ENFILE, `${MAX_FIDS} fids in use`);
  }

  private unopened(fid: Fid): void {
    if (fid.file !== null || fid.openedDirectory) throw new NinePError(Errno.EINVAL, 'fid already open');
  }

  private async lopen(r: P9Reader, reply: () => P9Writer): Promise<Uint8Array> {
    const fid = this.fid(r.u32());
    const flags = r.u32();
    this.unopened(fid);
    const qid = await this.qidAt(fid.path);
    fid.qid = qid;
    if (qid.type === QidType.dir) {
      if ((flags & OpenFlag.accessMask) !== 0) throw new NinePError(Errno.EISDIR);
      fid.openedDirectory = true;
    } else {
      if (flags & OpenFlag.directory) throw new NinePError(Errno.ENOTDIR);
      fid.file = await this.backend.open(fid.path, this.openMode(flags));
    }
    return reply().qid(qid).u32(0).finish(); // iounit 0: the client uses msize
  }

  private async lcreate(r: P9Reader, reply: () => P9Writer): Promise<Uint8Array> {
    const dir = this.directoryFid(r.u32());
    const name = checkName(r.string());
    const flags = r.u32();
    const mode = r.u32();
    r.u32(); // gid
    this.unopened(dir);
    this.writable();
    const path = childPath(dir.path, name);
    const file = await this.backend.create(dir.path, name, this.openMode(flags), mode & FileMode.permissionMask);
    let qid: Qid;
    try {
      qid = await this.qidAt(path);
    } catch (error) {
      await file.close();
      throw error;
    }
    // The fid now stands for the new, open file.
    Object.assign(dir, { path, qid, file, openedDirectory: false, listing: null });
    return reply().qid(qid).u32(0).finish();
  }

  private async read(r: P9Reader, tag: number, replyRoom: number): Promise<Uint8Array> {
    const fid = this.fid(r.u32());
    const offset = r.u64();
    const requested = r.u32();
    if (fid.file === null) throw new NinePError(fid.openedDirectory ? Errno.EISDIR : Errno.EBADF);
    const count = Math.max(0, Math.min(requested, this.msize - READ_HEADER_SIZE, replyRoom - READ_HEADER_SIZE));
    const data = count === 0 ? new Uint8Array(0) : await fid.file.read(offset, count);
    return new P9Writer(P9Type.Tread + 1, tag, READ_HEADER_SIZE + data.length).u32(data.length).raw(data).finish();
  }

  private async write(r: P9Reader, reply: () => P9Writer): Promise<Uint8Array> {
    const fid = this.fid(r.u32());
    const offset = r.u64();
    const count = r.u32();
    const data = r.bytesOf(count);
    if (fid.file === null) throw new NinePError(fid.openedDirectory ? Errno.EISDIR : Errno.EBADF);
    if (count > this.msize - WRITE_HEADER_SIZE) throw new NinePError(Errno.EINVAL, 'write larger than msize');
    const written = await fid.file.write(offset, data);
    return reply().u32(written).finish();
  }

  private async clunk(r: P9Reader): Promise<void> {
    const number = r.u32();
    const fid = this.fid(number);
    this.fids.delete(number);
    if (fid.file !== null) await fid.file.close();
  }

  private async remove(r: P9Reader): Promise<void> {
    const number = r.u32();
    const fid = this.fid(number);
    // Tremove clunks the fid whether or not the removal works.
    this.fids.delete(number);
    if (fid.file !== null) await fid.file.close().catch(() => undefined);
    this.writable();
    if (fid.path === '') throw new NinePError(Errno.EBUSY, 'the root');
    const stat = await this.backend.lstat(fid.path);
    await this.backend.remove(fid.path, (stat.mode & FileMode.typeMask) === FileMode.directory);
  }

  private async readdir(r: P9Reader, tag: number, replyRoom: number): Promise<Uint8Array> {
    const fid = this.fid(r.u32());
    const offset = r.u64();
    const requested = r.u32();
    if (!fid.openedDirectory) throw new NinePError(fid.file === null ? Errno.EBADF : Errno.ENOTDIR);
    // A listing is taken when the guest starts from the beginning, so offsets stay stable while it reads on.
    if (offset === 0n || fid.listing === null) fid.listing = await this.list(fid);
    const room = Math.min(requested, this.msize - READ_HEADER_SIZE, replyRoom - READ_HEADER_SIZE);
    const out = new P9Writer(P9Type.Treaddir + 1, tag, READ_HEADER_SIZE + Math.max(room, 0)).u32(0);
    let used = 0;
    const entries = fid.listing.entries;
    for (let i = Number(offset < BigInt(entries.length) ? offset : BigInt(entries.length)); i < entries.length; i++) {
      const entry = entries[i]!;
      const size = QID_SIZE + 8 + 1 + encodedStringSize(entry.name);
      if (used + size > room) break;
      out.qid(entry.qid).u64(BigInt(i + 1)).u8(entry.type).string(entry.name);
      used += size;
    }
    const bytes = out.finish();
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(HEADER_SIZE, used, true);
    return bytes;
  }

  private async list(fid: Fid): Promise<DirectoryListing> {
    const self = await this.qidAt(fid.path);
    const parent = fid.path === '' ? self : await this.qidAt(parentPath(fid.path));
    const entries: Array<DirectoryListing['entries'][number]> = [
      { name: '.', qid: self, type: DirentType.dir },
      { name: '..', qid: parent, type: DirentType.dir },
    ];
    for (const entry of await this.backend.readdir(fid.path)) {
      const qidType = entry.type === DirentType.dir ? QidType.dir : entry.type === DirentType.symlink ? QidType.symlink : QidType.file;
      const qid = { type: qidType, version: 0, path: entry.ino };
      entries.push({ name: entry.name, qid, type: entry.type });
    }
    return { entries };
  }

  /** Reads the dfid[4] name[s] pair that names an entry of a directory: the entry's path. */
  private entryPath(r: P9Reader): string {
    const dir = this.directoryFid(r.u32());
    return childPath(dir.path, checkName(r.string()));
  }

  private async mkdir(r: P9Reader, reply: () => P9Writer): Promise<Uint8Array> {
    const path = this.entryPath(r);
    const mode = r.u32();
    r.u32(); // gid
    this.writable();
    await this.backend.mkdir(path, mode & FileMode.permissionMask);
    return reply().qid(await this.qidAt(path)).finish();
  }

  private async unlinkat(r: P9Reader): Promise<void> {
    const path = this.entryPath(r);
    const flags = r.u32();
    this.writable();
    await this.backend.remove(path, (flags & AT_REMOVEDIR) !== 0);
  }

  private async renameat(r: P9Reader): Promise<void> {
    const from = this.entryPath(r);
    await this.move(from, this.entryPath(r));
  }

  private async rename(r: P9Reader): Promise<void> {
    const fid = this.fid(r.u32());
    const to = this.entryPath(r);
    if (fid.path === '') throw new NinePError(Errno.EBUSY, 'the root');
    await this.move(fid.path, to);
  }

  private async move(from: string, to: string): Promise<void> {
    this.writable();
    if (to === from) return;
    if (to.startsWith(`${from}/`)) throw new NinePError(Errno.EINVAL, 'a directory into itself');
    await this.backend.rename(from, to);
    // Fids name files by path: those at or below the moved one follow it (QEMU's v9fs_fix_path).
    for (const fid of this.fids.values()) {
      if (fid.path === from) fid.path = to;
      else if (fid.path.startsWith(`${from}/`)) fid.path = to + fid.path.slice(from.length);
    }
  }

  private async statfs(r: P9Reader, reply: () => P9Writer): Promise<Uint8Array> {
    const fid = this.fid(r.u32());
    const s = await this.backend.statfs(fid.path);
    return reply()
      .u32(s.type).u32(s.bsize).u64(s.blocks).u64(s.bfree).u64(s.bavail).u64(s.files).u64(s.ffree)
      .u64(0n) // fsid
      .u32(s.namelen)
      .finish();
  }

  private async fsync(r: P9Reader): Promise<void> {
    const fid = this.fid(r.u32());
    const dataOnly = r.u32() !== 0;
    if (fid.file !== null) await fid.file.sync(dataOnly);
  }

  private async symlink(r: P9Reader, reply: () => P9Writer): Promise<Uint8Array> {
    const path = this.entryPath(r);
    const target = r.string();
    r.u32(); // gid
    this.writable();
    // The target is stored as text: the server never follows it, the guest resolves it itself.
    if (target === '' || target.includes('\0')) throw new NinePError(Errno.EINVAL);
    await this.backend.symlink(target, path);
    return reply().qid(await this.qidAt(path)).finish();
  }

  private async readlink(r: P9Reader, reply: () => P9Writer): Promise<Uint8Array> {
    const fid = this.fid(r.u32());
    if (fid.qid.type !== QidType.symlink) throw new NinePError(Errno.EINVAL);
    return reply().string(await this.backend.readlink(fid.path)).finish();
  }

  private async link(r: P9Reader): Promise<void> {
    const dir = this.directoryFid(r.u32());
    const target = this.fid(r.u32());
    const name = checkName(r.string());
    this.writable();
    if (target.qid.type === QidType.dir) throw new NinePError(Errno.EPERM);
    await this.backend.link(target.path, childPath(dir.path, name));
  }

  private async flush(r: P9Reader): Promise<void> {
    // Requests cannot be cancelled halfway; Rflush follows the flushed request's reply, as the spec asks.
    const pending = this.pending.get(r.u16());
    if (pending !== undefined) await pending.catch(() => undefined);
  }

  private async lock(r: P9Reader, reply: () => P9Writer): Promise<Uint8Array> {
    this.fid(r.u32());
    // One guest owns the export: its kernel arbitrates its own POSIX locks, so every lock is granted.
    return reply().u8(LOCK_SUCCESS).finish();
  }

  private async getlock(r: P9Reader, reply: () => P9Writer): Promise<Uint8Array> {
    this.fid(r.u32());
    r.u8(); // type
    const start = r.u64();
    const length = r.u64();
    const processId = r.u32();
    const clientId = r.string();
    return reply().u8(F_UNLCK).u64(start).u64(length).u32(processId).string(clientId).finish();
  }
}
