// Plain-text tables for the terminal: columns padded to their widest cell, numbers right-aligned.

export type Cell = string | number | null;

export function formatTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = rows.map((row) => row.map((cell) => (cell === null ? '-' : String(cell))));
  // A column whose cells all start with a number reads best right-aligned.
  const numeric = headers.map((_, c) => text.every((row) => row[c] === '-' || /^[-+±]?\d/.test(row[c]!)));
  const widths = headers.map((h, c) => Math.max(h.length, ...text.map((row) => row[c]!.length)));
  const line = (cells: readonly string[]) =>
    cells.map((cell, c) => (numeric[c] ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...text.map(line)].join('\n');
}

/** `digits` significant digits, at most 2 decimals, plain notation. */
export function fixed(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return String(value);
  const decimals = Math.max(0, Math.min(2, digits - 1 - Math.floor(Math.log10(Math.abs(value) || 1))));
  return value.toFixed(decimals);
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
