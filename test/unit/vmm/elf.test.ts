// The ELF loader on files built here byte by byte: segments, entry, symbols, and clear refusals.
import { describe, it, expect } from 'vitest';
import { parseElf } from '../../../host/vmm/loader/elf.js';
import { LoadError } from '../../../host/vmm/loader/errors.js';

interface TestSymbol { name: string; value: bigint }

/** A minimal ELF64 RISC-V executable: one PT_LOAD of `code` at 0x80000000, a .symtab and its .strtab. */
function buildElf(code: Uint8Array, symbols: TestSymbol[]): Uint8Array {
  const names = [0];
  let strtab = [0];
  for (const symbol of symbols) {
    names.push(strtab.length);
    strtab = strtab.concat([...new TextEncoder().encode(symbol.name), 0]);
  }
  const codeOff = 64 + 56;
  const symOff = codeOff + code.length + ((8 - (code.length % 8)) % 8);
  const symSize = 24 * (symbols.length + 1);
  const strOff = symOff + symSize;
  const shOff = strOff + strtab.length + ((8 - (strtab.length % 8)) % 8);
  const bytes = new Uint8Array(shOff + 3 * 64);
  const v = new DataView(bytes.buffer);
  bytes.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, 243, true); // EM_RISCV
  v.setUint32(20, 1, true);
  v.setBigUint64(24, 0x8000_0000n, true); // entry
  v.setBigUint64(32, 64n, true); // phoff
  v.setBigUint64(40, BigInt(shOff), true);
  v.setUint16(52, 64, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, 1, true);
  v.setUint16(58, 64, true);
  v.setUint16(60, 3, true);
  // PT_LOAD
  v.setUint32(64, 1, true);
  v.setUint32(68, 5, true);
  v.setBigUint64(72, BigInt(codeOff), true);
  v.setBigUint64(80, 0x8000_0000n, true);
  v.setBigUint64(88, 0x8000_0000n, true);
  v.setBigUint64(96, BigInt(code.length), true);
  v.setBigUint64(104, BigInt(code.length + 16), true);
  bytes.set(code, codeOff);
  symbols.forEach((symbol, i) => {
    const at = symOff + 24 * (i + 1);
    v.setUint32(at, names[i + 1]!, true);
    v.setBigUint64(at + 8, symbol.value, true);
  });
  bytes.set(strtab, strOff);
  // Section headers: null, .symtab (link 2), .strtab.
  const sh = (i: number) => shOff + 64 * i;
  v.setUint32(sh(1) + 4, 2, true);
  v.setBigUint64(sh(1) + 24, BigInt(symOff), true);
  v.setBigUint64(sh(1) + 32, BigInt(symSize), true);
  v.setUint32(sh(1) + 40, 2, true);
  v.setBigUint64(sh(1) + 56, 24n, true);
  v.setUint32(sh(2) + 4, 3, true);
  v.setBigUint64(sh(2) + 24, BigInt(strOff), true);
  v.setBigUint64(sh(2) + 32, BigInt(strtab.length), true);
  return bytes;
}

describe('parseElf', () => {
  it('loads the segment, the entry and the address symbols', () => {
    const code = Uint8Array.of(0x13, 0, 0, 0, 0x6f, 0, 0, 0);
    const elf = parseElf(buildElf(code, [{ name: 'tohost', value: 0x8000_1000n }, { name: 'fromhost', value: 0x8000_1040n }]), 't.elf');
    expect(elf.entry).toBe(0x8000_0000);
    expect(elf.segments).toHaveLength(1);
    expect(elf.segments[0]!.paddr).toBe(0x8000_0000);
    expect([...elf.segments[0]!.data]).toEqual([...code]);
    expect(elf.segments[0]!.memSize).toBe(code.length + 16);
    expect(elf.symbols.get('tohost')).toBe(0x8000_1000);
    expect(elf.symbols.get('fromhost')).toBe(0x8000_1040);
  });

  it('skips absolute symbols beyond 2^53 (`.equ X, -1328`) instead of refusing the file, as QEMU loads it', () => {
    const elf = parseElf(buildElf(Uint8Array.of(0x6f, 0, 0, 0), [{ name: 'NEG', value: BigInt.asUintN(64, -1328n) }, { name: 'tohost', value: 0x8000_2000n }]), 't.elf');
    expect(elf.symbols.has('NEG')).toBe(false);
    expect(elf.symbols.get('tohost')).toBe(0x8000_2000);
  });

  it('still refuses an entry point or segment it cannot represent, with a clear reason', () => {
    const bytes = buildElf(Uint8Array.of(0x6f, 0, 0, 0), []);
    new DataView(bytes.buffer).setBigUint64(24, 0xffff_ffff_ffff_0000n, true);
    expect(() => parseElf(bytes, 't.elf')).toThrow(LoadError);
    expect(() => parseElf(bytes, 't.elf')).toThrow(/out of range/);
    const truncated = buildElf(Uint8Array.of(0x6f, 0, 0, 0), []).subarray(0, 100);
    expect(() => parseElf(truncated, 't.elf')).toThrow(/outside the file/);
  });
});
