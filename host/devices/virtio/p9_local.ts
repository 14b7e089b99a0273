// -fsdev local: a NinePBackend over a host directory with node:fs/promises (security_model=none: files
// keep the host's owner and the guest's permission bits). Every path is re-anchored under the export's
// real root on each call: the parent directory is resolved with realpath and must lie inside the root,
// and the final component is never followed (lstat, O_NOFOLLOW, lutimes), so neither a symlink made by
// the guest nor one already in the directory lets the guest reach outside it.
import { constants, type BigIntStats } from 'node:fs';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { isWithinDirectory } from '../../path_within.js';
import {
  isPlainName, NinePError, type NinePBackend, type NinePDirEntry, type NinePFile, type NinePOpenMode, type NinePSetattr,
  type NinePStat, type NinePStatfs, type NinePTime,
} from './p9_backend.js';
import { DirentType, Errno, FileMode } from './p9_protocol.js';
import { VirtioConfigError } from './errors.js';

/** Node's error codes as Linux errno values (the guest's, whatever the host OS numbers them). */
const ERRNO_OF_CODE: Readonly<Record<string, number>> = {
  EPERM: Errno.EPERM,
  ENOENT: Errno.ENOENT,
  EIO: Errno.EIO,
  EBADF: Errno.EBADF,
  EAGAIN: Errno.EAGAIN,
  ENOMEM: Errno.ENOMEM,
  EACCES: Errno.EACCES,
  EBUSY: Errno.EBUSY,
  EEXIST: Errno.EEXIST,
  EXDEV: Errno.EXDEV,
  ENOTDIR: Errno.ENOTDIR,
  EISDIR: Errno.EISDIR,
  EINVAL: Errno.EINVAL,
  ENFILE: Errno.ENFILE,
  EMFILE: Errno.EMFILE,
  EFBIG: Errno.EFBIG,
  ENOSPC: Errno.ENOSPC,
  ESPIPE: Errno.ESPIPE,
  EROFS: Errno.EROFS,
  EMLINK: Errno.EMLINK,
  ERANGE: Errno.ERANGE,
  ENAMETOOLONG: Errno.ENAMETOOLONG,
  ENOTEMPTY: Errno.ENOTEMPTY,
  ELOOP: Errno.ELOOP,
  EOVERFLOW: Errno.EOVERFLOW,
  ENOTSUP: Errno.EOPNOTSUPP,
  EOPNOTSUPP: Errno.EOPNOTSUPP,
  EDQUOT: Errno.EDQUOT,
};

/** Longest name the guest is told it may use (statfs namelen). */
const NAME_MAX = 255;
/** Entries stat'ed at once when listing a directory. */
const LIST_BATCH = 64;

/** A host error as the guest's NinePError; anything without an errno code is a bug and rethrown. */
function asNinePError(error: unknown): never {
  if (error instanceof NinePError) throw error;
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (typeof code === 'string') throw new NinePError(ERRNO_OF_CODE[code] ?? Errno.EIO, (error as Error).message);
  throw error;
}

async function guarded<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    return asNinePError(error);
  }
}

function statOf(st: BigIntStats): NinePStat {
  return {
    mode: Number(st.mode),
    uid: Number(st.uid),
    gid: Number(st.gid),
    nlink: st.nlink,
    rdev: st.rdev,
    size: st.size,
    blksize: st.blksize,
    blocks: st.blocks,
    ino: st.ino,
    atimeNs: st.atimeNs,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
  };
}

function direntTypeOf(st: BigIntStats): number {
  if (st.isDirectory()) return DirentType.dir;
  if (st.isFile()) return DirentType.regular;
  if (st.isSymbolicLink()) return DirentType.symlink;
  if (st.isFIFO()) return DirentType.fifo;
  if (st.isCharacterDevice()) return DirentType.char;
  if (st.isBlockDevice()) return DirentType.block;
  if (st.isSocket()) return DirentType.socket;
  return DirentType.unknown;
}

/** utimes takes seconds as a float. */
function secondsOf(time: NinePTime): number {
  return time === 'now' ? Date.now() / 1000 : Number(time) / 1e9;
}

class LocalFile implements NinePFile {
  constructor(private readonly handle: fs.FileHandle) {}

  read(offset: bigint, length: number): Promise<Uint8Array> {
    return guarded(async () => {
      const buffer = new Uint8Array(length);
      const { bytesRead } = await this.handle.read(buffer, 0, length, Number(offset));
      return buffer.subarray(0, bytesRead);
    });
  }

  write(offset: bigint, data: Uint8Array): Promise<number> {
    return guarded(async () => (await this.handle.write(data, 0, data.length, Number(offset))).bytesWritten);
  }

  sync(dataOnly: boolean): Promise<void> {
    return guarded(() => (dataOnly ? this.handle.datasync() : this.handle.sync()));
  }

  close(): Promise<void> {
    return guarded(() => this.handle.close());
  }
}

export interface LocalBackendOptions {
  /** The host directory to export (QEMU's path=). */
  readonly root: string;
  /** QEMU's readonly=on. */
  readonly readOnly?: boolean;
}

export class LocalBackend implements NinePBackend {
  readonly readOnly: boolean;

  private constructor(
    /** The root with symlinks resolved: what every resolved path must lie under. */
    private readonly realRoot: string,
    readOnly: boolean,
  ) {
    this.readOnly = readOnly;
  }

  /** Checks that the root is a directory; a missing one is the user's error (a bad -fsdev path=). */
  static async open(options: LocalBackendOptions): Promise<LocalBackend> {
    let realRoot: string;
    try {
      realRoot = await fs.realpath(options.root);
      if (!(await fs.stat(realRoot)).isDirectory()) throw new Error('not a directory');
    } catch (error) {
      throw new VirtioConfigError('-fsdev', `path=${options.root}: ${(error as Error).message}`);
    }
    return new LocalBackend(realRoot, options.readOnly ?? false);
  }

  private contains(hostPath: string): boolean {
    return isWithinDirectory(this.realRoot, hostPath);
  }

  private components(path: string): string[] {
    if (path === '') return [];
    const names = path.split('/');
    if (!names.every(isPlainName)) throw new NinePError(Errno.EINVAL, `bad path ${JSON.stringify(path)}`);
    return names;
  }

  /** The host path of `path`, its parent resolved inside the root, its last component not followed. */
  private async resolve(path: string): Promise<string> {
    const names = this.components(path);
    if (names.length === 0) return this.realRoot;
    const last = names.pop()!;
    const parent = names.length === 0 ? this.realRoot : await fs.realpath(join(this.realRoot, ...names));
    if (!this.contains(parent)) throw new NinePError(Errno.EACCES, `${path} leads outside the export`);
    return join(parent, last);
  }

  /** The host path of `path` with every symlink resolved, for calls that follow (opendir, statfs). */
  private async resolveFollowing(path: string): Promise<string> {
    const real = await fs.realpath(await this.resolve(path));
    if (!this.contains(real)) throw new NinePError(Errno.EACCES, `${path} leads outside the export`);
    return real;
  }

  lstat(path: string): Promise<NinePStat> {
    return guarded(async () => statOf(await fs.lstat(await this.resolve(path), { bigint: true })));
  }

  private flagsOf(mode: NinePOpenMode): number {
    let flags = mode.write ? (mode.read ? constants.O_RDWR : constants.O_WRONLY) : constants.O_RDONLY;
    if (mode.truncate) flags |= constants.O_TRUNC;
    if (mode.sync) flags |= constants.O_SYNC;
    // The guest's offsets are honoured as given (its kernel places O_APPEND writes itself).
    return flags | constants.O_NOFOLLOW;
  }

  open(path: string, mode: NinePOpenMode): Promise<NinePFile> {
    return guarded(async () => {
      const hostPath = await this.resolve(path);
      // Only regular files: opening a FIFO or a device of the host's would block or touch hardware.
      if (!(await fs.lstat(hostPath)).isFile()) throw new NinePError(Errno.EACCES, `${path} is not a regular file`);
      return new LocalFile(await fs.open(hostPath, this.flagsOf(mode)));
    });
  }

  create(dir: string, name: string, mode: NinePOpenMode, permissions: number): Promise<NinePFile> {
    return guarded(async () => {
      const hostPath = await this.resolve(dir === '' ? name : `${dir}/${name}`);
      const flags = this.flagsOf(mode) | constants.O_CREAT | constants.O_EXCL;
      return new LocalFile(await fs.open(hostPath, flags, permissions));
    });
  }

  readdir(path: string): Promise<NinePDirEntry[]> {
    return guarded(async () => {
      const hostDir = await this.resolveFollowing(path);
      const names = await fs.readdir(hostDir);
      const entries: NinePDirEntry[] = [];
      for (let i = 0; i < names.length; i += LIST_BATCH) {
        const batch = names.slice(i, i + LIST_BATCH);
        const stats = await Promise.all(batch.map((name) => fs.lstat(join(hostDir, name), { bigint: true }).catch(() => null)));
        batch.forEach((name, j) => {
          const st = stats[j];
          // An entry removed since readdir is simply not listed.
          if (st != null) entries.push({ name, ino: st.ino, type: direntTypeOf(st) });
        });
      }
      return entries;
    });
  }

  mkdir(path: string, permissions: number): Promise<void> {
    return guarded(async () => fs.mkdir(await this.resolve(path), { mode: permissions }).then(() => undefined));
  }

  remove(path: string, directory: boolean): Promise<void> {
    return guarded(async () => {
      const hostPath = await this.resolve(path);
      await (directory ? fs.rmdir(hostPath) : fs.unlink(hostPath));
    });
  }

  rename(from: string, to: string): Promise<void> {
    return guarded(async () => fs.rename(await this.resolve(from), await this.resolve(to)));
  }

  symlink(target: string, path: string): Promise<void> {
    return guarded(async () => fs.symlink(target, await this.resolve(path)));
  }

  readlink(path: string): Promise<string> {
    return guarded(async () => fs.readlink(await this.resolve(path)));
  }

  link(existing: string, path: string): Promise<void> {
    return guarded(async () => fs.link(await this.resolve(existing), await this.resolve(path)));
  }

  setattr(path: string, changes: NinePSetattr): Promise<void> {
    return guarded(async () => {
      const hostPath = await this.resolve(path);
      const st = await fs.lstat(hostPath, { bigint: true });
      const isSymlink = st.isSymbolicLink();
      // A symlink's own mode means nothing on Linux, and chmod would follow it.
      if (changes.mode !== undefined && !isSymlink) await fs.chmod(hostPath, changes.mode & FileMode.permissionMask);
      if (changes.size !== undefined) {
        if (isSymlink) throw new NinePError(Errno.EINVAL);
        const handle = await fs.open(hostPath, constants.O_WRONLY | constants.O_NOFOLLOW);
        try {
          await handle.truncate(Number(changes.size));
        } finally {
          await handle.close();
        }
      }
      if (changes.atime !== undefined || changes.mtime !== undefined) {
        const atime = changes.atime ?? st.atimeNs;
        const mtime = changes.mtime ?? st.mtimeNs;
        await fs.lutimes(hostPath, secondsOf(atime), secondsOf(mtime));
      }
    });
  }

  statfs(path: string): Promise<NinePStatfs> {
    return guarded(async () => {
      const s = await fs.statfs(await this.resolveFollowing(path), { bigint: true });
      return {
        type: Number(s.type & 0xffffffffn),
        bsize: Number(s.bsize),
        blocks: s.blocks,
        bfree: s.bfree,
        bavail: s.bavail,
        files: s.files,
        ffree: s.ffree,
        namelen: NAME_MAX,
      };
    });
  }
}
