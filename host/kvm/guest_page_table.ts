// The guest's page table read from the host side (the gdb stub and the monitor look at memory through
// the hart's virtual addresses). Only finds where an address goes: permission, A/D and PMP checks are
// the hart's business, and a debugger may look where the guest itself may not.

/** satp.MODE values and the number of page-table levels each walks (Bare: none). */
const LEVELS_BY_MODE: ReadonlyMap<bigint, number> = new Map([[8n, 3], [9n, 4], [10n, 5]]);
const PPN_MASK = (1n << 44n) - 1n;
const PTE_VALID = 1n;
const PTE_LEAF = 0xen; // R, W or X set

/**
 * The physical address `virtual` maps to under `satp` (the address itself when paging is off), or null
 * when no valid mapping exists or a page-table entry cannot be read; `readPhysical64` reads one
 * little-endian u64 of guest RAM, null outside it.
 */
export function guestPhysicalAddress(satp: bigint, virtual: bigint, readPhysical64: (physical: bigint) => bigint | null): bigint | null {
  const mode = satp >> 60n;
  if (mode === 0n) return virtual;
  const levels = LEVELS_BY_MODE.get(mode);
  if (levels === undefined) return null;
  let table = (satp & PPN_MASK) << 12n;
  for (let level = levels - 1; level >= 0; level--) {
    const shift = 12n + 9n * BigInt(level);
    const entry = readPhysical64(table + ((virtual >> shift) & 511n) * 8n);
    if (entry === null || (entry & PTE_VALID) === 0n) return null;
    const ppn = (entry >> 10n) & PPN_MASK;
    if ((entry & PTE_LEAF) !== 0n) return ((ppn << 12n) & ~((1n << shift) - 1n)) + (virtual & ((1n << shift) - 1n));
    table = ppn << 12n;
  }
  return null;
}
