// Compressing clusters for qcow2 (qemu-img convert -c): raw deflate with a 4 KiB window. QEMU inflates
// compressed clusters with a 4 KiB window (zlib windowBits -12), so a stream that refers further back,
// as a default 32 KiB-window deflater's may, would not decompress there. Web's CompressionStream cannot
// be told the window size, so this needs node:zlib; without it compression is refused, not faked.

type Deflate = (input: Uint8Array) => Uint8Array;
let deflater: Promise<Deflate | null> | null = null;

/** The window QEMU's reader allows, as zlib's windowBits. */
const QEMU_WINDOW_BITS = 12;

function loadDeflater(): Promise<Deflate | null> {
  deflater ??= import('node:zlib').then(
    (zlib): Deflate => (input) => zlib.deflateRawSync(input, { windowBits: QEMU_WINDOW_BITS, level: 6 }),
    () => null,
  );
  return deflater;
}

export class CompressionUnavailableError extends Error {
  override readonly name = 'CompressionUnavailableError';
  constructor() {
    super('writing compressed clusters needs node:zlib (a deflater with a 4 KiB window), which this runtime lacks');
  }
}

/** Raw deflate of one cluster's bytes, readable by QEMU and by inflate.ts. */
export async function deflateCluster(cluster: Uint8Array): Promise<Uint8Array> {
  const deflate = await loadDeflater();
  if (deflate === null) throw new CompressionUnavailableError();
  return deflate(cluster);
}
