// ELF64 little-endian RISC-V executables: PT_LOAD segments at their physical addresses, the entry point,
// and the symbol table (for HTIF's tohost/fromhost). Every offset and size is checked against the file.
import { LoadError } from './errors.js';

export const EM_RISCV = 243;
const PT_LOAD = 1;
const SHT_SYMTAB = 2;

export interface ElfSegment {
  /** Guest-physical load address (p_paddr, as QEMU's loader uses). */
  readonly paddr: number;
  /** Bytes present in the file; the rest of memSize is zero-filled. */
  readonly data: Uint8Array;
  readonly memSize: number;
}

export interface ElfImage {
  readonly entry: number;
  readonly segments: readonly ElfSegment[];
  readonly symbols: ReadonlyMap<string, number>;
}

export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46;
}

export function parseElf(bytes: Uint8Array, path: string): ElfImage {
  const fail = (reason: string): never => {
    throw new LoadError(path, `not a loadable RISC-V ELF: ${reason}`);
  };
  if (!isElf(bytes)) fail('no ELF magic');
  if (bytes.length < 64) fail('file shorter than an ELF64 header');
  if (bytes[4] !== 2) fail('not ELF64 (class must be 2; wkvm emulates RV64)');
  if (bytes[5] !== 1) fail('not little-endian');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (o: number) => view.getUint16(o, true);
  const u32 = (o: number) => view.getUint32(o, true);
  const u64 = (o: number): number => {
    const v = view.getBigUint64(o, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`value 0x${v.toString(16)} at offset ${o} is out of range`);
    return Number(v);
  };
  const type = u16(16);
  if (type !== 2 && type !== 3) fail(`e_type ${type} is not an executable`);
  if (u16(18) !== EM_RISCV) fail(`e_machine ${u16(18)} is not RISC-V (${EM_RISCV})`);
  const entry = u64(24);
  const phoff = u64(32);
  const shoff = u64(40);
  const phentsize = u16(54);
  const phnum = u16(56);
  const shentsize = u16(58);
  const shnum = u16(60);
  const inFile = (offset: number, size: number) => offset >= 0 && size >= 0 && offset + size <= bytes.length;
  if (phnum === 0) fail('no program headers');
  if (phentsize < 56 || !inFile(phoff, phentsize * phnum)) fail('program headers lie outside the file');

  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (u32(ph) !== PT_LOAD) continue;
    const offset = u64(ph + 8);
    const paddr = u64(ph + 24);
    const fileSize = u64(ph + 32);
    const memSize = u64(ph + 40);
    if (!inFile(offset, fileSize)) fail(`segment ${i} (offset ${offset}, ${fileSize} bytes) lies outside the file`);
    if (memSize < fileSize) fail(`segment ${i} is smaller in memory than in the file`);
    if (memSize === 0) continue;
    segments.push({ paddr, data: bytes.subarray(offset, offset + fileSize), memSize });
  }
  if (segments.length === 0) fail('no loadable segments');

  const symbols = new Map<string, number>();
  if (shnum > 0 && shentsize >= 64 && inFile(shoff, shentsize * shnum)) {
    for (let i = 0; i < shnum; i++) {
      const sh = shoff + i * shentsize;
      if (u32(sh + 4) !== SHT_SYMTAB) continue;
      const symOff = u64(sh + 24);
      const symSize = u64(sh + 32);
      const link = u32(sh + 40);
      const entSize = u64(sh + 56) || 24;
      if (link >= shnum || !inFile(symOff, symSize)) continue;
      const strSh = shoff + link * shentsize;
      const strOff = u64(strSh + 24);
      const strSize = u64(strSh + 32);
      if (!inFile(strOff, strSize)) continue;
      for (let s = symOff; s + 24 <= symOff + symSize; s += entSize) {
        const nameOff = u32(s);
        if (nameOff === 0 || nameOff >= strSize) continue;
        let end = strOff + nameOff;
        while (end < strOff + strSize && bytes[end] !== 0) end++;
        // Absolute symbols may hold any 64-bit constant (`.equ X, -1328`): they are no addresses wkvm
        // needs (tohost/fromhost are), so one beyond 2^53 is skipped rather than refusing the file.
        const value = view.getBigUint64(s + 8, true);
        if (value > BigInt(Number.MAX_SAFE_INTEGER)) continue;
        const name = new TextDecoder().decode(bytes.subarray(strOff + nameOff, end));
        symbols.set(name, Number(value));
      }
    }
  }
  return { entry, segments, symbols };
}
