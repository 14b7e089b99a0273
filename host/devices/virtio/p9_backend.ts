// The file system a virtio-9p device serves, as QEMU's FileOperations (hw/9pfs/9p.h): path based, with
// paths relative to the export's root ('' is the root, components joined by '/', each already checked
// by the server: no '', '.', '..', '/' or NUL). Node-free, so a browser can plug in its own store;
// `p9_local.ts` is the host-directory one (-fsdev local).

/** A failure the guest sees as Rlerror(errno): errno is Linux's. */
export class NinePError extends Error {
  override readonly name = 'NinePError';
  constructor(
    readonly errno: number,
    message = `errno ${errno}`,
  ) {
    super(message);
  }
}

export interface NinePStat {
  /** st_mode with the file-type bits (Linux values). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly nlink: bigint;
  readonly rdev: bigint;
  readonly size: bigint;
  readonly blksize: bigint;
  readonly blocks: bigint;
  /** Identity of the file (the host inode): qid.path. */
  readonly ino: bigint;
  readonly atimeNs: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
}

export interface NinePDirEntry {
  readonly name: string;
  readonly ino: bigint;
  /** A DirentType value. */
  readonly type: number;
}

export interface NinePStatfs {
  readonly type: number;
  readonly bsize: number;
  readonly blocks: bigint;
  readonly bfree: bigint;
  readonly bavail: bigint;
  readonly files: bigint;
  readonly ffree: bigint;
  readonly namelen: number;
}

/** How to open a file; the host's flag values are the backend's business. */
export interface NinePOpenMode {
  readonly read: boolean;
  readonly write: boolean;
  readonly truncate: boolean;
  readonly sync: boolean;
}

export interface NinePFile {
  /** Reads up to `length` bytes at `offset`; fewer at the end of the file. */
  read(offset: bigint, length: number): Promise<Uint8Array>;
  /** Writes `data` at `offset`; returns how many bytes were written. */
  write(offset: bigint, data: Uint8Array): Promise<number>;
  sync(dataOnly: boolean): Promise<void>;
  close(): Promise<void>;
}

/** A time in a setattr: now, or nanoseconds since the epoch. */
export type NinePTime = 'now' | bigint;

export interface NinePSetattr {
  readonly mode?: number;
  readonly size?: bigint;
  readonly atime?: NinePTime;
  readonly mtime?: NinePTime;
}

export interface NinePBackend {
  /** Mutations answer EROFS without reaching the backend. */
  readonly readOnly: boolean;
  /** Stat without following a final symlink. */
  lstat(path: string): Promise<NinePStat>;
  /** Opens a regular file (never through a symlink). */
  open(path: string, mode: NinePOpenMode): Promise<NinePFile>;
  /** Creates `name` in directory `dir` (failing if it exists) and opens it. */
  create(dir: string, name: string, mode: NinePOpenMode, permissions: number): Promise<NinePFile>;
  /** The entries of a directory, without '.' and '..'. */
  readdir(path: string): Promise<NinePDirEntry[]>;
  mkdir(path: string, permissions: number): Promise<void>;
  /** unlink(2), or rmdir(2) when `directory`. */
  remove(path: string, directory: boolean): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  symlink(target: string, path: string): Promise<void>;
  readlink(path: string): Promise<string>;
  link(existing: string, path: string): Promise<void>;
  setattr(path: string, changes: NinePSetattr): Promise<void>;
  statfs(path: string): Promise<NinePStatfs>;
  close?(): Promise<void>;
}

/** Joins a relative backend path and one checked name. */
export function childPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** The directory part of a relative backend path ('' for a top-level name and for the root). */
export function parentPath(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

/** Whether a name may be a path component: nothing that could step out of its directory. */
export function isPlainName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}
