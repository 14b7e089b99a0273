// The 9P2000.L wire format (Linux's net/9p, the diod protocol notes): every message is size[4] type[1]
// tag[2] then fields, little-endian; strings are len[2] + UTF-8, qids 13 bytes. Node-free: only the
// device and a browser-side backend need it.

/** Message types; each R-message is its T-message + 1. */
export const P9Type = {
  Rlerror: 7,
  Tstatfs: 8,
  Tlopen: 12,
  Tlcreate: 14,
  Tsymlink: 16,
  Tmknod: 18,
  Trename: 20,
  Treadlink: 22,
  Tgetattr: 24,
  Tsetattr: 26,
  Txattrwalk: 30,
  Txattrcreate: 32,
  Treaddir: 40,
  Tfsync: 50,
  Tlock: 52,
  Tgetlock: 54,
  Tlink: 70,
  Tmkdir: 72,
  Trenameat: 74,
  Tunlinkat: 76,
  Tversion: 100,
  Tauth: 102,
  Tattach: 104,
  Tflush: 108,
  Twalk: 110,
  Tread: 116,
  Twrite: 118,
  Tclunk: 120,
  Tremove: 122,
} as const;

/** Linux errno values, which 9P2000.L's Rlerror carries whatever the host is. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOTEMPTY: 39,
  ELOOP: 40,
  EPROTO: 71,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
  EDQUOT: 122,
} as const;

/** qid.type bits. */
export const QidType = {
  dir: 0x80,
  symlink: 0x02,
  file: 0x00,
} as const;

/** Linux st_mode file-type bits (S_IFMT and friends), as 9P2000.L's getattr carries them. */
export const FileMode = {
  typeMask: 0o170000,
  directory: 0o040000,
  regular: 0o100000,
  symlink: 0o120000,
  permissionMask: 0o7777,
} as const;

/** d_type values of readdir entries. */
export const DirentType = {
  unknown: 0,
  fifo: 1,
  char: 2,
  dir: 4,
  block: 6,
  regular: 8,
  symlink: 10,
  socket: 12,
} as const;

/** Size of size[4] type[1] tag[2]. */
export const HEADER_SIZE = 7;
/** Size of an Rread/Rreaddir header: the common header and count[4]. */
export const READ_HEADER_SIZE = 11;
export const QID_SIZE = 13;
/** The tag of Tversion, which has no request to match. */
export const NOTAG = 0xffff;
/** A fid value that means "no fid" (Tattach's afid). */
export const NOFID = 0xffffffff;
export const VERSION_9P2000_L = '9P2000.L';
/** Smallest msize worth speaking: Linux refuses anything under 4096 too. */
export const MIN_MSIZE = 4096;

export interface Qid {
  readonly type: number;
  readonly version: number;
  readonly path: bigint;
}

/** A T-message that ends before its fields do, or holds a string that is not UTF-8. */
export class P9ProtocolError extends Error {
  override readonly name = 'P9ProtocolError';
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

/** Reads the fields of one message in order, throwing P9ProtocolError past its end. */
export class P9Reader {
  private readonly view: DataView;
  private at: number;

  constructor(
    private readonly bytes: Uint8Array,
    at = 0,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.at = at;
  }

  get remaining(): number {
    return this.bytes.length - this.at;
  }

  private take(length: number): number {
    if (this.at + length > this.bytes.length) {
      throw new P9ProtocolError(`message ends ${this.at + length - this.bytes.length} bytes early`);
    }
    const start = this.at;
    this.at += length;
    return start;
  }

  u8(): number {
    return this.view.getUint8(this.take(1));
  }

  u16(): number {
    return this.view.getUint16(this.take(2), true);
  }

  u32(): number {
    return this.view.getUint32(this.take(4), true);
  }

  u64(): bigint {
    return this.view.getBigUint64(this.take(8), true);
  }

  /** Bytes without copying (a view of the message). */
  bytesOf(length: number): Uint8Array {
    const start = this.take(length);
    return this.bytes.subarray(start, start + length);
  }

  string(): string {
    const bytes = this.bytesOf(this.u16());
    try {
      return utf8Decoder.decode(bytes);
    } catch {
      throw new P9ProtocolError('a string is not UTF-8');
    }
  }
}

/** Builds one R-message; finish() patches its size. */
export class P9Writer {
  private bytes: Uint8Array;
  private view: DataView;
  private at = 0;

  constructor(type: number, tag: number, capacity = 64) {
    this.bytes = new Uint8Array(Math.max(capacity, HEADER_SIZE));
    this.view = new DataView(this.bytes.buffer);
    this.u32(0).u8(type).u16(tag);
  }

  private room(length: number): number {
    if (this.at + length > this.bytes.length) {
      const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.at + length));
      grown.set(this.bytes.subarray(0, this.at));
      this.bytes = grown;
      this.view = new DataView(grown.buffer);
    }
    const start = this.at;
    this.at += length;
    return start;
  }

  get length(): number {
    return this.at;
  }

  u8(value: number): this {
    const at = this.room(1); // first: room() may replace the view
    this.view.setUint8(at, value);
    return this;
  }

  u16(value: number): this {
    const at = this.room(2);
    this.view.setUint16(at, value, true);
    return this;
  }

  u32(value: number): this {
    const at = this.room(4);
    this.view.setUint32(at, value >>> 0, true);
    return this;
  }

  u64(value: bigint): this {
    const at = this.room(8);
    this.view.setBigUint64(at, BigInt.asUintN(64, value), true);
    return this;
  }

  raw(bytes: Uint8Array): this {
    const at = this.room(bytes.length);
    this.bytes.set(bytes, at);
    return this;
  }

  string(value: string): this {
    const bytes = utf8Encoder.encode(value);
    return this.u16(bytes.length).raw(bytes);
  }

  qid(qid: Qid): this {
    return this.u8(qid.type).u32(qid.version).u64(qid.path);
  }

  /** The message with its size field set. */
  finish(): Uint8Array {
    this.view.setUint32(0, this.at, true);
    return this.bytes.subarray(0, this.at);
  }
}

/** The bytes a string takes on the wire. */
export function encodedStringSize(value: string): number {
  return 2 + utf8Encoder.encode(value).length;
}

export interface P9Header {
  readonly size: number;
  readonly type: number;
  readonly tag: number;
}

/** The header of a T-message, or null when fewer than 7 bytes came (then there is no tag to answer). */
export function readHeader(message: Uint8Array): P9Header | null {
  if (message.length < HEADER_SIZE) return null;
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  return { size: view.getUint32(0, true), type: view.getUint8(4), tag: view.getUint16(5, true) };
}

export function lerror(tag: number, errno: number): Uint8Array {
  return new P9Writer(P9Type.Rlerror, tag, 11).u32(errno).finish();
}

/** An empty R-message (Rclunk, Rrename, ...): only the header. */
export function emptyReply(requestType: number, tag: number): Uint8Array {
  return new P9Writer(requestType + 1, tag, HEADER_SIZE).finish();
}
