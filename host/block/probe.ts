// Format detection by magic bytes, as QEMU's probing does: a qcow2 header is recognised, a few other
// image formats are recognised only to refuse them (exposing a VMDK's container bytes to a guest as
// a raw disk is never what the user wanted), and anything else is raw.

import type { DiskFormat } from './errors.js';
import type { BlockFile } from './file.js';

export const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"

export type ProbeResult = { format: DiskFormat } | { unsupported: string };

const UNSUPPORTED_SIGNATURES: ReadonlyArray<{ name: string; offset: number; bytes: number[] }> = [
  { name: 'vmdk', offset: 0, bytes: [0x4b, 0x44, 0x4d, 0x56] }, // "KDMV"
  { name: 'vdi', offset: 0x40, bytes: [0x7f, 0x10, 0xda, 0xbe] },
  { name: 'vhdx', offset: 0, bytes: [...new TextEncoder().encode('vhdxfile')] },
  { name: 'vpc', offset: 0, bytes: [...new TextEncoder().encode('conectix')] },
  { name: 'qed', offset: 0, bytes: [0x51, 0x45, 0x44, 0x00] },
  { name: 'luks', offset: 0, bytes: [0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe] },
];

export async function probeFormat(file: BlockFile): Promise<ProbeResult> {
  const head = new Uint8Array(512);
  const length = await file.read(0, head);
  const view = new DataView(head.buffer);
  if (length >= 8 && view.getUint32(0) === QCOW2_MAGIC) {
    const version = view.getUint32(4);
    if (version === 1) return { unsupported: 'qcow (version 1)' };
    return { format: 'qcow2' };
  }
  for (const signature of UNSUPPORTED_SIGNATURES) {
    if (length >= signature.offset + signature.bytes.length && signature.bytes.every((b, i) => head[signature.offset + i] === b)) {
      return { unsupported: signature.name };
    }
  }
  return { format: 'raw' };
}
