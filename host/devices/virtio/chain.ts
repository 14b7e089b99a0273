// A descriptor chain as the core hands it over: segments of guest RAM, given as host addresses in the
// VM's WebAssembly memory, device-readable ones first. Device models read requests and write replies
// through views of these segments, without copying guest data anywhere else.

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
    this.readableLength = readable.reduce((sum, s) => sum + s.length, 0);
    this.writableLength = writable.reduce((sum, s) => sum + s.length, 0);
  }

  /** A live view of a segment: reads see the guest's bytes, writes land in guest RAM. */
  view(segment: Segment): Uint8Array {
    return new Uint8Array(this.memory.buffer, segment.host, segment.length);
  }

  /** Views of the bytes [offset, offset + length) of the readable (or writable) side, in order. */
  views(side: 'readable' | 'writable', offset: number, length: number): Uint8Array[] {
    const segments = side === 'readable' ? this.readable : this.writable;
    const buffer = this.memory.buffer;
    const out: Uint8Array[] = [];
    let skip = offset;
    let left = length;
    for (const segment of segments) {
      if (left === 0) break;
      if (skip >= segment.length) {
        skip -= segment.length;
        continue;
      }
      const take = Math.min(segment.length - skip, left);
      out.push(new Uint8Array(buffer, segment.host + skip, take));
      left -= take;
      skip = 0;
    }
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
