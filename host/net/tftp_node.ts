// The TFTP server's files in Node: a host directory (-netdev user,tftp=DIR), read-only. A name is taken
// relative to the directory whatever its leading slashes, and the file it resolves to, symlinks followed,
// must be a regular file inside the directory: a guest cannot read beside it by `..` or a symlink.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { isWithinDirectory } from '../path_within.js';
import type { TftpFile, TftpFileSource } from './tftp.js';

export class TftpDirectory implements TftpFileSource {
  private constructor(private readonly realRoot: string) {}

  /** The directory `root`; a missing one is the user's error (a bad tftp= path). */
  static async open(root: string): Promise<TftpDirectory> {
    const realRoot = await fs.realpath(root);
    if (!(await fs.stat(realRoot)).isDirectory()) throw new Error(`${root}: not a directory`);
    return new TftpDirectory(realRoot);
  }

  async open(name: string): Promise<TftpFile | null> {
    if (name.includes('\0') || name.split(/[/\\]/).includes('..')) return null;
    let real: string;
    try {
      real = await fs.realpath(join(this.realRoot, name.replace(/^\/+/, '')));
    } catch {
      return null;
    }
    if (!isWithinDirectory(this.realRoot, real)) return null; // the root itself is no file: refused below
    const handle = await fs.open(real, 'r').catch(() => null);
    if (handle === null) return null;
    const stat = await handle.stat();
    if (!stat.isFile()) {
      await handle.close();
      return null;
    }
    return {
      size: stat.size,
      read: async (offset, length) => {
        const buffer = new Uint8Array(length);
        let done = 0;
        while (done < length) {
          const { bytesRead } = await handle.read(buffer, done, length - done, offset + done);
          if (bytesRead === 0) break;
          done += bytesRead;
        }
        return buffer.subarray(0, done);
      },
      close: () => void handle.close().catch(() => {}),
    };
  }
}
