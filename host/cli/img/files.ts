// Opening image files for `wkvm img`, and naming their format, with qemu-img's wording for failures
// ("Could not open 'x': No such file or directory").

import { stat } from 'node:fs/promises';
import { NodeBlockFile, type BlockFile } from '../../block/file.js';
import { probeFormat } from '../../block/probe.js';
import type { DiskFormat } from '../../block/errors.js';
import { ImgError } from './errors.js';

const SYSTEM_ERRORS: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  EROFS: 'Read-only file system',
  ELOOP: 'Too many levels of symbolic links',
};

/** What the OS said, as strerror() says it (Node's messages add the call and the path). */
export function systemReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return (code !== undefined && SYSTEM_ERRORS[code]) || (error as Error).message;
}

/** Formats qemu-img knows that wkvm does not read or write; named so the refusal says which. */
const KNOWN_FOREIGN_FORMATS = new Set(['vmdk', 'vdi', 'vhdx', 'vpc', 'qed', 'luks', 'qcow', 'parallels', 'dmg', 'cloop', 'bochs']);

/** Checks a -f/-F/-O value: raw and qcow2 are ours; others get qemu-img's wording or say why not. */
export function requireFormat(name: string, option: string): DiskFormat {
  if (name === 'raw' || name === 'qcow2') return name;
  if (KNOWN_FOREIGN_FORMATS.has(name)) throw new ImgError(`${option} ${name}: wkvm img reads and writes only raw and qcow2 images`);
  throw new ImgError(`Unknown file format '${name}'`);
}

/**
 * Opens an image file for positional I/O through libuv's pool (no disk I/O thread: a one-shot tool does
 * not need one, and it would keep the process alive). Devices, FIFOs and directories are refused, as
 * openDiskImage refuses them.
 */
export async function openImageFile(path: string, writable: boolean): Promise<BlockFile> {
  try {
    const stats = await stat(path);
    if (stats.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    if (!stats.isFile()) throw new Error('not a regular file (devices, FIFOs and sockets are not supported)');
    return await NodeBlockFile.open(path, writable, { ioThread: null });
  } catch (error) {
    throw new ImgError(`Could not open '${path}': ${systemReason(error)}`, 1, { cause: error });
  }
}

/** The format to read `file` as: the one asked for, else the one its first bytes show. */
export async function resolveFormat(file: BlockFile, path: string, requested: string | undefined): Promise<DiskFormat> {
  if (requested !== undefined) return requireFormat(requested, '-f');
  const probed = await probeFormat(file);
  if ('unsupported' in probed) throw new ImgError(`Could not open '${path}': image format '${probed.unsupported}' is not supported (only raw and qcow2)`);
  return probed.format;
}

/** Bytes the file takes on disk (st_blocks), which qemu-img calls its disk size. */
export async function allocatedBytes(path: string): Promise<number> {
  const stats = await stat(path);
  return stats.blocks * 512;
}

/** Where a backing file named in `image` lies: relative names are relative to the image's directory, textually, as qemu-img shows them. */
export function backingPath(image: string, backing: string): string {
  if (backing.startsWith('/')) return backing;
  const slash = image.lastIndexOf('/');
  return slash < 0 ? backing : image.slice(0, slash + 1) + backing;
}
