// The plain-TypeScript raw inflater (qcow2 compressed clusters where node:zlib is absent) against zlib's
// own deflate: every block type, every level, the edge cases of the format, and hostile input.
import { describe, expect, it } from 'vitest';
import { constants, deflateRawSync } from 'node:zlib';
import { inflateRaw, InflateError } from '../../../host/block/qcow2/inflate.js';
import { Prng } from './helpers.js';

/** Data of a given character: random bytes, text-like runs, or long repeats. */
function sample(prng: Prng, length: number, kind: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    if (kind === 0) out[i] = prng.int(256);
    else if (kind === 1) out[i] = 97 + (prng.int(6));
    else out[i] = i > 300 && prng.int(8) !== 0 ? out[i - 300]! : prng.int(256);
  }
  return out;
}

describe('inflateRaw', () => {
  it('decodes what zlib encodes: stored, fixed and dynamic blocks, at every level', () => {
    const prng = new Prng(7);
    for (const length of [0, 1, 100, 4096, 65536, 70000]) {
      for (let kind = 0; kind < 3; kind++) {
        const data = sample(prng, length, kind);
        for (const level of [0, 1, 6, 9]) {
          const packed = deflateRawSync(data, { level });
          expect(inflateRaw(packed, length), `length ${length} kind ${kind} level ${level}`).toEqual(data);
        }
        const fixed = deflateRawSync(data, { strategy: constants.Z_FIXED });
        expect(inflateRaw(fixed, length), `fixed codes, length ${length} kind ${kind}`).toEqual(data);
        const huffmanOnly = deflateRawSync(data, { strategy: constants.Z_HUFFMAN_ONLY });
        expect(inflateRaw(huffmanOnly, length)).toEqual(data);
        const rle = deflateRawSync(data, { strategy: constants.Z_RLE });
        expect(inflateRaw(rle, length)).toEqual(data);
      }
    }
  });

  it('ignores what follows the stream (a compressed cluster is read in whole sectors)', () => {
    const data = sample(new Prng(3), 65536, 1);
    const packed = deflateRawSync(data);
    const padded = new Uint8Array(Math.ceil(packed.length / 512) * 512 + 512).fill(0xcd);
    padded.set(packed);
    expect(inflateRaw(padded, 65536)).toEqual(data);
  });

  it('refuses output beyond the limit, truncated input and invalid codes', () => {
    const data = sample(new Prng(5), 65536, 2);
    const packed = deflateRawSync(data);
    expect(() => inflateRaw(packed, 65535)).toThrow(/output longer than 65535 bytes/);
    expect(() => inflateRaw(packed.subarray(0, packed.length >> 1), 65536)).toThrow(InflateError);
    expect(() => inflateRaw(Uint8Array.of(0x07), 16)).toThrow(/invalid block type 3/);
    // A stored block whose length and complement disagree.
    expect(() => inflateRaw(Uint8Array.of(0x01, 0x05, 0x00, 0x00, 0x00), 16)).toThrow(/complement/);
    // Fixed codes: a copy at distance 1 before any output.
    expect(() => inflateRaw(Uint8Array.of(0x03, 0x02), 16)).toThrow(/before the start of the output/);
  });

  it('never throws anything but InflateError on corrupted streams', () => {
    const prng = new Prng(11);
    const packed = deflateRawSync(sample(prng, 20000, 1));
    for (let round = 0; round < 300; round++) {
      const bad = packed.slice();
      for (let flips = 1 + prng.int(4); flips > 0; flips--) bad[prng.int(bad.length)]! ^= 1 << prng.int(8);
      try {
        inflateRaw(bad, 20000);
      } catch (error) {
        expect(error).toBeInstanceOf(InflateError);
      }
    }
  });
});
