// A descriptor chain as the core hands it over: segments of guest RAM, given as host addresses in the
// VM's WebAssembly memory, device-readable ones first. Device models read requests and write replies
// through views of these segments, without copying guest data anywhere else.
import { totalLength } from '../../block/scatter.js';

/** One contiguous piece of a buffer, inside one RAM slot. */
export interface Segment {
  /** Offset in the VM's WebAssembly memory. */
  readonly host: number;
  readonly length: number;
  /** Guest-physical address (for logs). */
  readonly gpa: number;
}

export class DescriptorChain {
  readonly readableLength: number;
  readonly writableLength: number;

  constructor(
    private readonly memory: WebAssembly.Memory,
    /** The head descriptor index: what goes back into the used ring. */
    readonly head: number,
    readonly readable: readonly Segment[],
    readonly writable: readonly Segment[],
  ) {
    this.readableLength = totalLength(readable);
    this.writableLength = totalLength(writable);
  }

  /** A live view of a segment: reads see the guest's bytes, writes land in guest RAM. */
  view(segment: Segment): Uint8Array {
    return new Uint8Array(this.memory.buffer, segment.host, segment.length);
  }

  /**
   * Views of the bytes [offset, offset + length) of the readable (or writable) side, in order; segments
   * that follow each other in memory (guest pages that happen to be contiguous) come as one view.
   */
  views(side: 'readable' | 'writable', offset: number, length: number): Uint8Array[] {
    const segments = side === 'readable' ? this.readable : this.writable;
    const sideLength = side === 'readable' ? this.readableLength : this.writableLength;
    const buffer = this.memory.buffer;
    const out: Uint8Array[] = [];
    // Bytes in the second half are found from the end: the status byte is the last of ~260 segments.
    let index = 0;
    let skip = offset;
    if (offset > sideLength / 2) {
      let start = sideLength;
      index = segments.length;
      while (index > 0 && start > offset) start -= segments[--index]!.length;
      skip = offset - start;
    }
    let left = length;
    let runStart = 0;
    let runLength = 0;
    for (let i = index; i < segments.length && left > 0; i++) {
      const segment = segments[i]!;
      if (skip >= segment.length) {
        skip -= segment.length;
        continue;
      }
      const take = Math.min(segment.length - skip, left);
      const start = segment.host + skip;
      if (runLength > 0 && runStart + runLength === start) {
        runLength += take;
      } else {
        if (runLength > 0) out.push(new Uint8Array(buffer, runStart, runLength));
        runStart = start;
        runLength = take;
      }
      left -= take;
      skip = 0;
    }
    if (runLength > 0) out.push(new Uint8Array(buffer, runStart, runLength));
    return out;
  }

  /** Copies `length` readable bytes from `offset` (fewer if the chain is shorter). */
  read(offset: number, length: number): Uint8Array {
    const parts = this.views('readable', offset, length);
    const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  /** Copies `bytes` into the writable side from `offset`; returns how many fit. */
  write(offset: number, bytes: Uint8Array): number {
    let at = 0;
    for (const part of this.views('writable', offset, bytes.length)) {
      part.set(bytes.subarray(at, at + part.length));
      at += part.length;
    }
    return at;
  }
}
