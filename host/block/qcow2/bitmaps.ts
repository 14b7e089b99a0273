// Persistent dirty bitmaps (docs/interop/qcow2.txt, "Bitmaps"), read-only: `wkvm img info` lists them
// and `wkvm img check` counts the clusters they hold (the directory, each bitmap's table and the data
// clusters the tables name). The image itself never uses them; opening it writable clears the
// autoclear bit that makes them valid, as the format asks of a writer that does not maintain them.

import { CorruptImageError } from '../errors.js';
import { AUTOCLEAR_BITMAPS, type Qcow2Header } from './header.js';
import type { MetadataIo } from './metadata-io.js';

/** QEMU's limits, which also bound what a hostile header can make us read. */
const MAX_BITMAPS = 65535;
const MAX_DIRECTORY_BYTES = 64 * 1024 * 1024;
const MAX_BITMAP_TABLE_ENTRIES = 0x8000000;
const ENTRY_FIXED_BYTES = 24;
const FLAG_IN_USE = 1;
const FLAG_AUTO = 2;

export interface Qcow2Bitmap {
  name: string;
  /** qemu-img's names for the flags set: 'in-use', 'auto'. */
  flags: string[];
  granularity: number;
  tableOffset: number;
  /** Entries in the bitmap table (8 bytes each). */
  tableSize: number;
}

/** The bitmaps the image's header makes valid; none when the autoclear bit says they are stale. */
export async function readBitmapDirectory(io: MetadataIo, header: Qcow2Header): Promise<Qcow2Bitmap[]> {
  const extension = header.bitmaps;
  if (extension === undefined || (header.autoclearFeatures & AUTOCLEAR_BITMAPS) === 0n || extension.count === 0) return [];
  if (extension.count > MAX_BITMAPS) throw new CorruptImageError(`the image claims ${extension.count} bitmaps (limit ${MAX_BITMAPS})`);
  if (extension.directorySize > MAX_DIRECTORY_BYTES) throw new CorruptImageError(`the bitmap directory is ${extension.directorySize} bytes (limit ${MAX_DIRECTORY_BYTES})`);
  const directory = await io.readExact(extension.directoryOffset, extension.directorySize, 'bitmap directory');
  const view = new DataView(directory.buffer);
  const decoder = new TextDecoder();
  const bitmaps: Qcow2Bitmap[] = [];
  let position = 0;
  for (let index = 0; index < extension.count; index++) {
    if (position + ENTRY_FIXED_BYTES > directory.length) throw new CorruptImageError(`bitmap directory entry ${index} runs past the directory`);
    const flagBits = view.getUint32(position + 12);
    const nameLength = view.getUint16(position + 18);
    const extraLength = view.getUint32(position + 20);
    const nameStart = position + ENTRY_FIXED_BYTES + extraLength;
    if (nameStart + nameLength > directory.length) throw new CorruptImageError(`bitmap directory entry ${index} runs past the directory`);
    const tableSize = view.getUint32(position + 8);
    if (tableSize > MAX_BITMAP_TABLE_ENTRIES) throw new CorruptImageError(`bitmap ${index} has a table of ${tableSize} entries`);
    const flags: string[] = [];
    if (flagBits & FLAG_IN_USE) flags.push('in-use');
    if (flagBits & FLAG_AUTO) flags.push('auto');
    bitmaps.push({
      name: decoder.decode(directory.subarray(nameStart, nameStart + nameLength)),
      flags,
      granularity: 2 ** view.getUint8(position + 17),
      tableOffset: Number(view.getBigUint64(position)),
      tableSize,
    });
    position = Math.ceil((nameStart + nameLength) / 8) * 8;
  }
  return bitmaps;
}
