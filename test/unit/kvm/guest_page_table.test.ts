import { describe, expect, it } from 'vitest';
import { guestPhysicalAddress } from '../../../host/kvm/guest_page_table.js';

const PAGE = 0x1000n;
const V = 1n;
const RWX = 0xen;
const satp = (mode: bigint, rootPpn: bigint) => (mode << 60n) | rootPpn;
const pointer = (table: bigint) => ((table >> 12n) << 10n) | V;
const leaf = (physical: bigint) => ((physical >> 12n) << 10n) | RWX | V;

/** A sparse guest RAM of page-table entries: address → u64. */
function tables(entries: Array<[table: bigint, index: bigint, pte: bigint]>) {
  const memory = new Map<bigint, bigint>();
  for (const [table, index, pte] of entries) memory.set(table + index * 8n, pte);
  return (physical: bigint) => memory.get(physical) ?? 0n;
}

const vpn = (virtual: bigint, level: number) => (virtual >> (12n + 9n * BigInt(level))) & 511n;

describe('guestPhysicalAddress (the host-side page-table walk of the gdb stub and the monitor)', () => {
  it('is the identity with paging off', () => {
    expect(guestPhysicalAddress(0n, 0x8020_1234n, () => null)).toBe(0x8020_1234n);
  });

  it('walks all five levels of Sv57 to a 4 KiB page', () => {
    const virtual = 0xff60_1234_5678_9abcn & ((1n << 57n) - 1n) | (0x7fn << 57n); // canonical, bit 56 set
    const roots = [0x8010_0000n, 0x8010_1000n, 0x8010_2000n, 0x8010_3000n, 0x8010_4000n];
    const read = tables([
      [roots[0]!, vpn(virtual, 4), pointer(roots[1]!)],
      [roots[1]!, vpn(virtual, 3), pointer(roots[2]!)],
      [roots[2]!, vpn(virtual, 2), pointer(roots[3]!)],
      [roots[3]!, vpn(virtual, 1), pointer(roots[4]!)],
      [roots[4]!, vpn(virtual, 0), leaf(0x8765_4000n)],
    ]);
    expect(guestPhysicalAddress(satp(10n, roots[0]! / PAGE), virtual, read)).toBe(0x8765_4000n + (virtual & 0xfffn));
    // Read as Sv48 the same root's entry for this address is not there: no mapping.
    expect(guestPhysicalAddress(satp(9n, roots[0]! / PAGE), virtual, read)).toBeNull();
  });

  it('keeps the offset inside a superpage (a 2 MiB leaf under Sv39)', () => {
    const virtual = 0x4020_1234n;
    const read = tables([
      [0x8000_0000n, vpn(virtual, 2), pointer(0x8000_1000n)],
      [0x8000_1000n, vpn(virtual, 1), leaf(0x8040_0000n)],
    ]);
    expect(guestPhysicalAddress(satp(8n, 0x80000n), virtual, read)).toBe(0x8040_0000n + (virtual & 0x1f_ffffn));
  });

  it('finds no mapping for an invalid entry, an unreadable table or a mode the hart has not', () => {
    expect(guestPhysicalAddress(satp(9n, 0x80000n), 0x1000n, () => 0n)).toBeNull();
    expect(guestPhysicalAddress(satp(9n, 0x80000n), 0x1000n, () => null)).toBeNull();
    expect(guestPhysicalAddress(satp(11n, 0x80000n), 0x1000n, () => leaf(0n))).toBeNull();
  });
});
