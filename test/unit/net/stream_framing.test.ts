// The 4-byte big-endian length framing of QEMU's stream backends, fed as a TCP stream may cut it.
import { describe, expect, it } from 'vitest';
import { encodeStreamFrame, MAX_SOCKET_FRAME, OversizedFrameError, StreamFrameDecoder } from '../../../host/net/stream_framing.js';

const frameOf = (length: number, seed: number): Uint8Array => Uint8Array.from({ length }, (_, i) => (i * 7 + seed) & 0xff);
const concat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

describe('stream framing', () => {
  it('prefixes a frame with its length, big-endian', () => {
    expect([...encodeStreamFrame(Uint8Array.of(0xaa, 0xbb, 0xcc))]).toEqual([0, 0, 0, 3, 0xaa, 0xbb, 0xcc]);
    expect([...encodeStreamFrame(frameOf(0x1234, 1)).subarray(0, 4)]).toEqual([0, 0, 0x12, 0x34]);
  });

  it('reassembles frames cut at every byte, the length prefix included', () => {
    const frames = [frameOf(60, 1), frameOf(1514, 2), frameOf(14, 3)];
    const stream = concat(...frames.map(encodeStreamFrame));
    const decoder = new StreamFrameDecoder();
    const out: Uint8Array[] = [];
    for (let i = 0; i < stream.length; i++) out.push(...decoder.framesOf(stream.subarray(i, i + 1)));
    expect(out).toEqual(frames);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('splits several frames out of one chunk and keeps the tail of the next for later', () => {
    const frames = [frameOf(42, 4), frameOf(100, 5), frameOf(64, 6)];
    const stream = concat(...frames.map(encodeStreamFrame));
    const decoder = new StreamFrameDecoder();
    const cut = stream.length - 10;
    expect(decoder.framesOf(stream.subarray(0, cut))).toEqual(frames.slice(0, 2));
    expect(decoder.bufferedBytes).toBe(64 - 10);
    expect(decoder.framesOf(stream.subarray(cut))).toEqual(frames.slice(2));
  });

  it('skips zero-length frames, as QEMU does, and goes on', () => {
    const decoder = new StreamFrameDecoder();
    expect(decoder.framesOf(concat(Uint8Array.of(0, 0, 0, 0), encodeStreamFrame(frameOf(20, 7)), Uint8Array.of(0, 0, 0, 0)))).toEqual([frameOf(20, 7)]);
  });

  it('takes a frame of NET_BUFSIZE (69632 bytes) and refuses one byte more before buffering any of it, after the frames before it', () => {
    const decoder = new StreamFrameDecoder();
    expect(decoder.framesOf(encodeStreamFrame(frameOf(MAX_SOCKET_FRAME, 8)))).toEqual([frameOf(MAX_SOCKET_FRAME, 8)]);
    const oversized = new StreamFrameDecoder();
    const before: Uint8Array[] = [];
    const chunk = Uint8Array.from([...encodeStreamFrame(frameOf(30, 9)), 0, 1, 0x10, 0x01, 1, 2, 3]);
    expect(() => oversized.push(chunk, (frame) => before.push(frame))).toThrow(OversizedFrameError);
    expect(before).toEqual([frameOf(30, 9)]);
    expect(() => new StreamFrameDecoder().framesOf(Uint8Array.of(0xff, 0xff, 0xff, 0xff))).toThrow(/4294967295 bytes \(at most 69632\)/);
  });

  it('holds at most one frame whatever a peer sends: a peer stopping mid-frame leaves a bounded remainder', () => {
    const decoder = new StreamFrameDecoder();
    decoder.framesOf(concat(Uint8Array.of(0, 1, 0x10, 0), new Uint8Array(MAX_SOCKET_FRAME - 1)));
    expect(decoder.bufferedBytes).toBe(MAX_SOCKET_FRAME - 1);
  });
});
