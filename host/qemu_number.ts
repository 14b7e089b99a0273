// QEMU's integers as its options and monitor read them (strtoull with base 0): 0x hexadecimal, a leading 0
// octal, else decimal. One reading for -device loader's addr=/data= and the monitor's expressions.

const LEADING_INTEGER = /^(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)/;

/** The integer literal `text` starts with and its value, or null when it starts with none. */
export function leadingQemuInteger(text: string): { readonly literal: string; readonly value: bigint } | null {
  const literal = LEADING_INTEGER.exec(text)?.[0];
  if (literal === undefined) return null;
  return { literal, value: /^0[0-7]+$/.test(literal) ? BigInt(`0o${literal.slice(1)}`) : BigInt(literal) };
}

/** The value of `text` when all of it is one integer literal, else null. */
export function parseQemuInteger(text: string): bigint | null {
  const leading = leadingQemuInteger(text);
  return leading !== null && leading.literal.length === text.length ? leading.value : null;
}
