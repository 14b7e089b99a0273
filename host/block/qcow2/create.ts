// Creating an empty qcow2 image (version 3, or 2 for compat=0.10): header cluster, refcount table, refcount blocks describing
// every metadata cluster, and a zeroed L1 table big enough for the virtual size.

import { open } from 'node:fs/promises';
import { encodeHeader } from './header.js';
import { MAX_CLUSTER_BITS, MAX_L1_BYTES, MAX_OFFSET, MIN_CLUSTER_BITS } from './limits.js';
import { writeRefcount } from './refcounts.js';

export interface CreateQcow2Options {
  /** Virtual size in bytes (rounded up to a multiple of 512, like qemu-img). */
  size: number;
  /** Backing file name as stored in the header; a relative name is resolved against the new image's directory. */
  backingFile?: string;
  backingFormat?: 'raw' | 'qcow2';
  /** log2 of the cluster size; default 16 (64 KiB). */
  clusterBits?: number;
  /** log2 of the refcount width in bits; default 4 (16-bit refcounts), the only width version 2 has. */
  refcountOrder?: number;
  /** Header version: 3 (qemu-img's compat=1.1, the default) or 2 (compat=0.10, for old readers). */
  version?: 2 | 3;
  /** Sets the lazy refcounts feature bit (version 3 only); our writer keeps exact refcounts regardless. */
  lazyRefcounts?: boolean;
}

export async function createQcow2(path: string, options: CreateQcow2Options): Promise<void> {
  const clusterBits = options.clusterBits ?? 16;
  const refcountOrder = options.refcountOrder ?? 4;
  if (!Number.isInteger(clusterBits) || clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    throw new RangeError(`clusterBits must be ${MIN_CLUSTER_BITS}..${MAX_CLUSTER_BITS}, got ${clusterBits}`);
  }
  if (!Number.isInteger(refcountOrder) || refcountOrder < 0 || refcountOrder > 6) {
    throw new RangeError(`refcountOrder must be 0..6, got ${refcountOrder}`);
  }
  const version = options.version ?? 3;
  if (version === 2 && refcountOrder !== 4) throw new RangeError(`version 2 images have 16-bit refcounts (refcountOrder 4), got ${refcountOrder}`);
  if (version === 2 && options.lazyRefcounts) throw new RangeError('lazy refcounts need version 3');
  if (!Number.isSafeInteger(options.size) || options.size < 0 || options.size > MAX_OFFSET) {
    throw new RangeError(`size must be a non-negative integer up to ${MAX_OFFSET}, got ${options.size}`);
  }
  const size = Math.ceil(options.size / 512) * 512;
  const clusterSize = 2 ** clusterBits;
  const refcountBits = 2 ** refcountOrder;
  const entriesPerBlock = (clusterSize * 8) / refcountBits;
  const l1Size = Math.ceil(size / (clusterSize * (clusterSize / 8)));
  if (l1Size * 8 > MAX_L1_BYTES) throw new RangeError(`size ${size} needs an L1 table larger than ${MAX_L1_BYTES} bytes`);
  const l1Clusters = Math.max(1, Math.ceil((l1Size * 8) / clusterSize));

  let tableClusters = 1;
  let blockCount = 1;
  for (;;) {
    const total = 1 + tableClusters + blockCount + l1Clusters;
    const neededBlocks = Math.ceil(total / entriesPerBlock);
    const neededTable = Math.ceil((neededBlocks * 8) / clusterSize);
    if (neededBlocks <= blockCount && neededTable <= tableClusters) break;
    blockCount = Math.max(blockCount, neededBlocks);
    tableClusters = Math.max(tableClusters, neededTable);
  }
  const tableOffset = clusterSize;
  const blocksOffset = tableOffset + tableClusters * clusterSize;
  const l1Offset = blocksOffset + blockCount * clusterSize;
  const totalClusters = 1 + tableClusters + blockCount + l1Clusters;

  const header = encodeHeader({
    version,
    lazyRefcounts: options.lazyRefcounts,
    clusterBits,
    size,
    l1Size,
    l1TableOffset: l1Offset,
    refcountTableOffset: tableOffset,
    refcountTableClusters: tableClusters,
    refcountOrder,
    backingFile: options.backingFile,
    backingFormat: options.backingFile !== undefined ? options.backingFormat : undefined,
  });
  const table = new Uint8Array(tableClusters * clusterSize);
  const tableView = new DataView(table.buffer);
  const blocks = new Uint8Array(blockCount * clusterSize);
  for (let b = 0; b < blockCount; b++) tableView.setBigUint64(b * 8, BigInt(blocksOffset + b * clusterSize));
  for (let c = 0; c < totalClusters; c++) {
    const block = blocks.subarray(Math.floor(c / entriesPerBlock) * clusterSize);
    writeRefcount(block, c % entriesPerBlock, refcountBits, 1);
  }

  const handle = await open(path, 'w');
  try {
    await handle.write(header, 0, header.length, 0);
    await handle.write(table, 0, table.length, tableOffset);
    await handle.write(blocks, 0, blocks.length, blocksOffset);
    const zeros = new Uint8Array(clusterSize);
    for (let c = 0; c < l1Clusters; c++) await handle.write(zeros, 0, clusterSize, l1Offset + c * clusterSize);
    await handle.datasync();
  } finally {
    await handle.close();
  }
}
