// Raw deflate (RFC 1951) decoding in plain TypeScript, for where node:zlib is not (a browser): qcow2's
// compressed clusters. Web's DecompressionStream will not do: it rejects input that goes on after the
// end of the deflate stream, and a compressed cluster's descriptor counts whole sectors, so it does.
// Decoding is canonical-Huffman, a bit at a time (zlib's puff.c's approach): small and exact rather
// than fast, which suits a cluster read now and then.

export class InflateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InflateError';
  }
}

/** A canonical Huffman code: how many codes of each length, and the symbols in code order. */
interface Huffman {
  readonly counts: Uint16Array; // [0..15]
  readonly symbols: Uint16Array;
}

const MAX_BITS = 15;
const LENGTH_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LENGTH_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577];
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
/** The order in which a dynamic block lists the code lengths of its code-length code. */
const CODE_LENGTH_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/** Builds a code from symbol code lengths; refuses an over-subscribed set (an incomplete one may be legal). */
function buildHuffman(lengths: ArrayLike<number>, what: string): Huffman {
  const counts = new Uint16Array(MAX_BITS + 1);
  for (let i = 0; i < lengths.length; i++) counts[lengths[i]!]!++;
  let left = 1;
  for (let len = 1; len <= MAX_BITS; len++) {
    left = (left << 1) - counts[len]!;
    if (left < 0) throw new InflateError(`over-subscribed ${what} code`);
  }
  const offsets = new Uint16Array(MAX_BITS + 2);
  for (let len = 1; len <= MAX_BITS; len++) offsets[len + 1] = offsets[len]! + counts[len]!;
  const symbols = new Uint16Array(lengths.length);
  for (let symbol = 0; symbol < lengths.length; symbol++) {
    const len = lengths[symbol]!;
    if (len !== 0) symbols[offsets[len]!++] = symbol;
  }
  return { counts, symbols };
}

const FIXED_LITERALS = buildHuffman(Array.from({ length: 288 }, (_, i) => (i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8)), 'literal');
const FIXED_DISTANCES = buildHuffman(new Array<number>(30).fill(5), 'distance');

class Inflater {
  private position = 0; // next input byte
  private bitBuffer = 0;
  private bitCount = 0;
  private written = 0;
  readonly output: Uint8Array;

  constructor(private readonly input: Uint8Array, maxOutput: number) {
    this.output = new Uint8Array(maxOutput);
  }

  run(): Uint8Array {
    let last: number;
    do {
      last = this.bits(1);
      const type = this.bits(2);
      if (type === 0) this.stored();
      else if (type === 1) this.codes(FIXED_LITERALS, FIXED_DISTANCES);
      else if (type === 2) this.dynamic();
      else throw new InflateError('invalid block type 3');
    } while (!last);
    // Whatever follows the last block (sector padding) is not looked at.
    return this.output.subarray(0, this.written);
  }

  private bits(count: number): number {
    let value = this.bitBuffer;
    while (this.bitCount < count) {
      if (this.position >= this.input.length) throw new InflateError('input ends inside the deflate stream');
      value |= this.input[this.position++]! << this.bitCount;
      this.bitCount += 8;
    }
    this.bitBuffer = value >>> count;
    this.bitCount -= count;
    return value & ((1 << count) - 1);
  }

  /** Refuses output that would go past `maxOutput` (a cluster: a stream that says more is corrupt). */
  private reserve(count: number): void {
    if (this.written + count > this.output.length) throw new InflateError(`output longer than ${this.output.length} bytes`);
  }

  private emit(byte: number): void {
    this.reserve(1);
    this.output[this.written++] = byte;
  }

  private stored(): void {
    this.bitBuffer = 0; // to the byte boundary
    this.bitCount = 0;
    if (this.position + 4 > this.input.length) throw new InflateError('input ends inside a stored block header');
    const length = this.input[this.position]! | (this.input[this.position + 1]! << 8);
    const check = this.input[this.position + 2]! | (this.input[this.position + 3]! << 8);
    this.position += 4;
    if (length !== (~check & 0xffff)) throw new InflateError('stored block length does not match its complement');
    if (this.position + length > this.input.length) throw new InflateError('input ends inside a stored block');
    this.reserve(length);
    this.output.set(this.input.subarray(this.position, this.position + length), this.written);
    this.position += length;
    this.written += length;
  }

  private decode(code: Huffman): number {
    let bits = 0; // the code read so far
    let first = 0; // the first code of the current length
    let index = 0; // where that length's symbols start
    for (let len = 1; len <= MAX_BITS; len++) {
      bits |= this.bits(1);
      const count = code.counts[len]!;
      if (bits - first < count) return code.symbols[index + bits - first]!;
      index += count;
      first = (first + count) << 1;
      bits <<= 1;
    }
    throw new InflateError('invalid Huffman code');
  }

  private codes(literals: Huffman, distances: Huffman): void {
    for (;;) {
      const symbol = this.decode(literals);
      if (symbol < 256) {
        this.emit(symbol);
        continue;
      }
      if (symbol === 256) return;
      const lengthIndex = symbol - 257;
      if (lengthIndex >= 29) throw new InflateError(`invalid length symbol ${symbol}`);
      const length = LENGTH_BASE[lengthIndex]! + this.bits(LENGTH_EXTRA[lengthIndex]!);
      const distanceSymbol = this.decode(distances);
      if (distanceSymbol >= 30) throw new InflateError(`invalid distance symbol ${distanceSymbol}`);
      const distance = DIST_BASE[distanceSymbol]! + this.bits(DIST_EXTRA[distanceSymbol]!);
      if (distance > this.written) throw new InflateError(`distance ${distance} reaches before the start of the output`);
      this.reserve(length);
      // Byte by byte: a copy may overlap what it writes (distance < length repeats a pattern).
      for (let i = 0; i < length; i++) {
        this.output[this.written] = this.output[this.written - distance]!;
        this.written++;
      }
    }
  }

  private dynamic(): void {
    const literalCount = this.bits(5) + 257;
    const distanceCount = this.bits(5) + 1;
    const codeLengthCount = this.bits(4) + 4;
    if (literalCount > 286 || distanceCount > 30) throw new InflateError('too many length or distance codes');
    const codeLengthLengths = new Array<number>(19).fill(0);
    for (let i = 0; i < codeLengthCount; i++) codeLengthLengths[CODE_LENGTH_ORDER[i]!] = this.bits(3);
    const codeLengths = buildHuffman(codeLengthLengths, 'code length');
    const lengths = new Array<number>(literalCount + distanceCount).fill(0);
    for (let i = 0; i < lengths.length;) {
      const symbol = this.decode(codeLengths);
      if (symbol < 16) {
        lengths[i++] = symbol;
        continue;
      }
      let repeat: number;
      let value = 0;
      if (symbol === 16) {
        if (i === 0) throw new InflateError('a repeat with no previous length');
        value = lengths[i - 1]!;
        repeat = 3 + this.bits(2);
      } else if (symbol === 17) {
        repeat = 3 + this.bits(3);
      } else {
        repeat = 11 + this.bits(7);
      }
      if (i + repeat > lengths.length) throw new InflateError('code lengths repeat past their end');
      while (repeat-- > 0) lengths[i++] = value;
    }
    if (lengths[256] === 0) throw new InflateError('no end-of-block code');
    this.codes(buildHuffman(lengths.slice(0, literalCount), 'literal'), buildHuffman(lengths.slice(literalCount), 'distance'));
  }
}

/** Decodes the raw deflate stream at the start of `input` (ignoring what follows it) into at most `maxOutput` bytes. */
export function inflateRaw(input: Uint8Array, maxOutput: number): Uint8Array {
  return new Inflater(input, maxOutput).run();
}
