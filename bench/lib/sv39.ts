// Sv39 page tables for the paging microbenchmarks, identity-mapping the bench VM's RAM:
//   [RAM_BASE, +2 MiB)        one 2 MiB megapage (code, page tables), RWX
//   [RAM_BASE + 2 MiB, +8 MiB) 2048 separate 4 KiB pages, RW: the data the loops touch (twice the
//                              core's TLB, so a round robin through all of them misses every time)
// Every leaf has A and D set, so the loops measure translation, not A/D updates.
import { RAM_BASE, type BenchVm } from './bench_vm.js';

const PTE_V = 1n;
const PTE_R = 2n;
const PTE_W = 4n;
const PTE_X = 8n;
const PTE_A = 0x40n;
const PTE_D = 0x80n;
const SATP_MODE_SV39 = 8n;

export const PAGE_TABLES = RAM_BASE + 0x10_0000;
/** Start of the region mapped with 4 KiB pages. */
export const SMALL_PAGES_BASE = RAM_BASE + 0x20_0000;
export const SMALL_PAGES_BYTES = 0x80_0000;
const SMALL_PAGES = SMALL_PAGES_BYTES / 0x1000;
const LEVEL0_TABLES = SMALL_PAGES / 512;

const pte = (physAddr: number, flags: bigint): bigint => (BigInt(physAddr >>> 12) << 10n) | flags;

/** Writes the tables into guest RAM and returns the satp value that enables them (ASID 0). */
export function buildSv39IdentityMap(guest: BenchVm): bigint {
  const root = PAGE_TABLES;
  const level1 = PAGE_TABLES + 0x1000;
  const level0 = PAGE_TABLES + 0x2000;
  const tables = guest.view(root, 0x2000 + LEVEL0_TABLES * 0x1000);
  for (let i = 0; i < tables.byteLength; i += 8) tables.setBigUint64(i, 0n, true);
  const vpn2 = Math.floor(RAM_BASE / 2 ** 30) % 512;
  const vpn1 = Math.floor(RAM_BASE / 2 ** 21) % 512;
  tables.setBigUint64(vpn2 * 8, pte(level1, PTE_V), true);
  tables.setBigUint64(0x1000 + vpn1 * 8, pte(RAM_BASE, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D), true);
  for (let t = 0; t < LEVEL0_TABLES; t++) tables.setBigUint64(0x1000 + (vpn1 + 1 + t) * 8, pte(level0 + t * 0x1000, PTE_V), true);
  for (let i = 0; i < SMALL_PAGES; i++) {
    tables.setBigUint64(0x2000 + i * 8, pte(SMALL_PAGES_BASE + i * 0x1000, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D), true);
  }
  return (SATP_MODE_SV39 << 60n) | BigInt(root >>> 12);
}
