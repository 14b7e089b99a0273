// The RISC-V Linux `Image` header (Documentation/riscv/boot-image-header.rst): magic "RISCV\0\0\0" at
// 0x30 and "RSC\x05" at 0x38, text_offset at 8, image_size at 16.
import { LoadError } from './errors.js';

export interface LinuxImageHeader {
  readonly textOffset: number;
  readonly imageSize: number;
}

export function parseLinuxImage(bytes: Uint8Array): LinuxImageHeader | null {
  if (bytes.length < 64) return null;
  const magic = new TextDecoder('latin1').decode(bytes.subarray(0x30, 0x36));
  const magic2 = bytes[0x38] === 0x52 && bytes[0x39] === 0x53 && bytes[0x3a] === 0x43 && bytes[0x3b] === 0x05;
  if (magic !== 'RISCV\0' && !magic2) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { textOffset: Number(view.getBigUint64(8, true)), imageSize: Number(view.getBigUint64(16, true)) };
}

/** Refuses well-known images of other architectures with a message that says what they are. */
export function describeForeignKernel(bytes: Uint8Array, path: string): LoadError | null {
  if (bytes.length >= 0x3c && bytes[0x38] === 0x41 && bytes[0x39] === 0x52 && bytes[0x3a] === 0x4d && bytes[0x3b] === 0x64) {
    return new LoadError(path, 'this is an arm64 Linux Image, not a RISC-V one');
  }
  if (bytes.length >= 0x206 && bytes[0x202] === 0x48 && bytes[0x203] === 0x64 && bytes[0x204] === 0x72 && bytes[0x205] === 0x53) {
    return new LoadError(path, 'this is an x86 bzImage, not a RISC-V kernel');
  }
  return null;
}

/**
 * Refuses a -kernel file that cannot be a kernel at all: empty, text, or a Linux Image cut short. (Any
 * other bytes may be a raw bare-metal program, which QEMU also loads as it is.)
 */
export function checkKernelPlausible(bytes: Uint8Array, path: string): void {
  if (bytes.length === 0) throw new LoadError(path, 'the kernel file is empty');
  const head = bytes.subarray(0, Math.min(bytes.length, 256));
  if (head.every((b) => b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b < 0x7f))) {
    throw new LoadError(path, 'this is a text file, not a RISC-V kernel image');
  }
  const linux = parseLinuxImage(bytes);
  if (linux !== null && bytes.length < MIN_LINUX_IMAGE_BYTES) {
    throw new LoadError(path, `a Linux Image header but only ${bytes.length} bytes: the file is truncated`);
  }
}

/** No real kernel Image is this small; the header alone is 64 bytes. */
const MIN_LINUX_IMAGE_BYTES = 64 * 1024;
