// Sizes as qemu-img reads and prints them.
//
// Reading: a decimal number (a fraction only with a unit suffix, unless it is zero: `1.0` is 1 and
// `1.5` is refused) or a 0x hexadecimal integer, then an optional one-letter suffix b, k, M, G, T, P or E
// (any case; powers of 1024). `1.5G` is 1610612736; a fraction of a byte is dropped (`0.1k` is 102).
//
// Printing: three significant digits in the largest binary unit that keeps the number under 1000
// ("196 KiB", "1.5 GiB", "0.977 KiB" for 1000 bytes), as qemu-img info's sizes.

const SUFFIX_POWERS: Record<string, number> = { b: 0, k: 1, m: 2, g: 3, t: 4, p: 5, e: 6 };
const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
/** qemu-img's ceiling on a size (INT64_MAX). */
export const MAX_IMAGE_SIZE = 2n ** 63n - 1n;

export class SizeSyntaxError extends Error {
  override readonly name = 'SizeSyntaxError';
}

/** Parses a size; throws SizeSyntaxError for text that is not one, RangeError for one past INT64_MAX. */
export function parseSize(text: string): number {
  const match = /^\s*(?:0[xX]([0-9a-fA-F]+)|(\d+)(?:\.(\d*))?)([bBkKmMgGtTpPeE])?$/.exec(text);
  if (match === null) throw new SizeSyntaxError(`'${text}' is not a size`);
  const [, hex, whole, fraction, suffix] = match;
  const power = suffix === undefined ? 0 : SUFFIX_POWERS[suffix.toLowerCase()]!;
  let bytes: bigint;
  if (hex !== undefined) {
    bytes = BigInt(`0x${hex}`) * 1024n ** BigInt(power);
  } else {
    const fractionDigits = fraction ?? '';
    if (power === 0 && /[1-9]/.test(fractionDigits)) throw new SizeSyntaxError(`'${text}' is not a whole number of bytes`);
    // Exact arithmetic: whole and fraction as one integer scaled by 10^digits.
    const scale = 10n ** BigInt(fractionDigits.length);
    const scaled = BigInt(whole! + fractionDigits) * 1024n ** BigInt(power);
    bytes = scaled / scale;
  }
  if (bytes > MAX_IMAGE_SIZE) throw new RangeError(`'${text}' is larger than ${MAX_IMAGE_SIZE} bytes`);
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`'${text}' is larger than wkvm supports (${Number.MAX_SAFE_INTEGER} bytes)`);
  return Number(bytes);
}

/** C's printf %.3g for the values formatSize meets (0 and 0.9765625 up to under 1000, or beyond for EiB). */
function threeSignificantDigits(value: number): string {
  if (value === 0) return '0';
  const text = value.toPrecision(3);
  if (text.includes('e')) return text.replace(/\.?0+e/, 'e').replace(/e\+?(-?)(\d)$/, 'e$10$2');
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

export function formatSize(bytes: number): string {
  let unit = 0;
  // Move up a unit once the number would have four digits in the current one.
  while (unit < UNITS.length - 1 && bytes >= 1000 * 1024 ** unit) unit++;
  return `${threeSignificantDigits(bytes / 1024 ** unit)} ${UNITS[unit]}`;
}
