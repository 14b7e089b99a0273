// The spread of repeated measurements as the tables print it: best (min) and median, with every run kept.
import { median } from './table.js';

export interface Spread {
  readonly min: number;
  readonly median: number;
  readonly runs: readonly number[];
}

export function spread(values: readonly number[]): Spread {
  return { min: Math.min(...values), median: median(values), runs: [...values] };
}

/** a / b, or null when either side is missing (QEMU skipped) or b is not positive. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined || !(b > 0)) return null;
  return a / b;
}
