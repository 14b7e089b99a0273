// Reading compressed clusters: raw deflate (zlib compression type 0), exactly one cluster of output.

import { CorruptImageError } from '../errors.js';
import { inflateRaw } from './inflate.js';
import type { MetadataIo } from './metadata-io.js';

type Inflate = (input: Uint8Array, maxOutput: number) => Uint8Array;
let inflater: Promise<Inflate> | null = null;

/** node:zlib's inflate where there is one (native, fast); elsewhere (a browser) inflate.ts's. */
function loadInflater(): Promise<Inflate> {
  inflater ??= import('node:zlib').then(
    (zlib): Inflate => (input, maxOutput) => zlib.inflateRawSync(input, { maxOutputLength: maxOutput }),
    (): Inflate => inflateRaw,
  );
  return inflater;
}

export async function readCompressedCluster(io: MetadataIo, hostOffset: number, compressedSize: number, clusterSize: number): Promise<Uint8Array> {
  // The descriptor counts whole sectors; the last ones may lie past the end of the file.
  const length = Math.max(0, Math.min(compressedSize, io.fileEnd - hostOffset));
  if (length === 0) throw new CorruptImageError(`compressed cluster at 0x${hostOffset.toString(16)} lies beyond the end of the file`);
  const input = new Uint8Array(length);
  const got = await io.file.read(hostOffset, input);
  const inflate = await loadInflater();
  let output: Uint8Array;
  try {
    output = inflate(input.subarray(0, got), clusterSize);
  } catch (error) {
    throw new CorruptImageError(`compressed cluster at 0x${hostOffset.toString(16)} does not decompress: ${(error as Error).message}`);
  }
  if (output.length !== clusterSize) {
    throw new CorruptImageError(`compressed cluster at 0x${hostOffset.toString(16)} decompresses to ${output.length} bytes, not ${clusterSize}`);
  }
  return output;
}

/** Host clusters a compressed cluster's bytes touch; each holds one reference for it. */
export function compressedHostClusters(hostOffset: number, compressedSize: number, clusterSize: number): number[] {
  const first = Math.floor(hostOffset / clusterSize);
  const last = Math.floor((hostOffset + compressedSize - 1) / clusterSize);
  const clusters: number[] = [];
  for (let c = first; c <= last; c++) clusters.push(c * clusterSize);
  return clusters;
}
