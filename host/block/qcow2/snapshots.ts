// The qcow2 snapshot table (docs/interop/qcow2.txt, "Snapshots"), read-only: what `wkvm img info` lists
// and what `wkvm img check` must count references for (each snapshot keeps its own L1 table, and the
// L2 tables and data clusters it shares with the active image).

import { CorruptImageError } from '../errors.js';
import type { Qcow2Header } from './header.js';
import type { MetadataIo } from './metadata-io.js';

/** QEMU's limits; they also bound how much a hostile header can make us read. */
export const MAX_SNAPSHOTS = 65536;
export const MAX_SNAPSHOT_TABLE_BYTES = 64 * 1024 * 1024;
const ENTRY_FIXED_BYTES = 40;

export interface Qcow2Snapshot {
  id: string;
  name: string;
  l1TableOffset: number;
  l1Size: number;
  dateSeconds: number;
  dateNanoseconds: number;
  vmClockNanoseconds: bigint;
  /** The saved VM state's size (the 64-bit field of the extra data where there is one). */
  vmStateSize: number;
  /** Instruction count at the snapshot (-icount), when the entry records one. */
  icount: bigint | undefined;
  /** Bytes of extra data the entry has (version 3 requires 16: the 64-bit VM state size and disk size). */
  extraDataSize: number;
}

export interface SnapshotTable {
  snapshots: Qcow2Snapshot[];
  /** Bytes the table takes from header.snapshotsOffset on. */
  byteLength: number;
}

export async function readSnapshotTable(io: MetadataIo, header: Qcow2Header): Promise<SnapshotTable> {
  if (header.nbSnapshots === 0) return { snapshots: [], byteLength: 0 };
  if (header.nbSnapshots > MAX_SNAPSHOTS) throw new CorruptImageError(`the image claims ${header.nbSnapshots} snapshots (limit ${MAX_SNAPSHOTS})`);
  const decoder = new TextDecoder();
  const snapshots: Qcow2Snapshot[] = [];
  let position = header.snapshotsOffset;
  for (let index = 0; index < header.nbSnapshots; index++) {
    if (position - header.snapshotsOffset > MAX_SNAPSHOT_TABLE_BYTES) throw new CorruptImageError(`the snapshot table is larger than ${MAX_SNAPSHOT_TABLE_BYTES} bytes`);
    const fixed = await io.readExact(position, ENTRY_FIXED_BYTES, `snapshot table entry ${index}`);
    const view = new DataView(fixed.buffer);
    const idLength = view.getUint16(12);
    const nameLength = view.getUint16(14);
    const extraLength = view.getUint32(36);
    if (extraLength > 1024) throw new CorruptImageError(`snapshot table entry ${index} has ${extraLength} bytes of extra data`);
    const variable = await io.readExact(position + ENTRY_FIXED_BYTES, extraLength + idLength + nameLength, `snapshot table entry ${index}`);
    const extra = new DataView(variable.buffer, 0, extraLength);
    // The L1 table's place and size are the reader's to judge (check reports them per snapshot).
    const l1TableOffset = Number(view.getBigUint64(0));
    const l1Size = view.getUint32(8);
    snapshots.push({
      id: decoder.decode(variable.subarray(extraLength, extraLength + idLength)),
      name: decoder.decode(variable.subarray(extraLength + idLength)),
      l1TableOffset,
      l1Size,
      dateSeconds: view.getUint32(16),
      dateNanoseconds: view.getUint32(20),
      vmClockNanoseconds: view.getBigUint64(24),
      vmStateSize: extraLength >= 8 ? Number(extra.getBigUint64(0)) : view.getUint32(32),
      icount: extraLength >= 24 ? extra.getBigUint64(16) : undefined,
      extraDataSize: extraLength,
    });
    position += Math.ceil((ENTRY_FIXED_BYTES + extraLength + idLength + nameLength) / 8) * 8;
  }
  return { snapshots, byteLength: position - header.snapshotsOffset };
}
