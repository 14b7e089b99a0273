// A request's buffers laid end to end (for virtio-blk: the guest's scattered pages), and the few
// operations every vectored path needs on such lists. The qcow2 driver cuts a request along its cluster
// mapping and hands each part to the file as views of these buffers, so data moves between the file and
// guest RAM without an intermediate copy; the rest gather or scatter through one buffer where a file or
// image has no vectored call.
import type { DiskImage } from './disk.js';

export class ScatterList {
  readonly length: number;
  private readonly views: Uint8Array[];
  /** Position of each view in the request. */
  private readonly starts: number[];

  constructor(views: readonly Uint8Array[]) {
    this.views = views.filter((view) => view.length > 0);
    this.starts = new Array<number>(this.views.length);
    let at = 0;
    for (const [i, view] of this.views.entries()) {
      this.starts[i] = at;
      at += view.length;
    }
    this.length = at;
  }

  /** Views of request bytes [start, start + length), sharing memory with the original buffers. */
  slice(start: number, length: number): Uint8Array[] {
    if (start < 0 || length < 0 || start + length > this.length) {
      throw new RangeError(`slice [${start}, ${start + length}) outside a ${this.length}-byte request`);
    }
    const out: Uint8Array[] = [];
    if (length === 0) return out;
    // The last view starting at or before `start`.
    let lo = 0;
    let hi = this.views.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= start) lo = mid;
      else hi = mid - 1;
    }
    const end = start + length;
    for (let i = lo; i < this.views.length && this.starts[i]! < end; i++) {
      const view = this.views[i]!;
      const from = Math.max(start - this.starts[i]!, 0);
      const to = Math.min(end - this.starts[i]!, view.length);
      out.push(from === 0 && to === view.length ? view : view.subarray(from, to));
    }
    return out;
  }
}

/** The summed length of buffers (views, or a descriptor chain's segments). */
export function totalLength(views: readonly { readonly length: number }[]): number {
  let length = 0;
  for (const view of views) length += view.length;
  return length;
}

/**
 * Appends `view` to an I/O vector, joining it to the previous entry when the two are adjacent in one
 * buffer (a view that a cluster boundary cut in two), so the vector stays as short as the caller's.
 */
export function appendView(parts: Uint8Array[], view: Uint8Array): void {
  if (view.length === 0) return;
  const last = parts[parts.length - 1];
  if (last !== undefined && last.buffer === view.buffer && last.byteOffset + last.length === view.byteOffset) {
    parts[parts.length - 1] = new Uint8Array(last.buffer, last.byteOffset, last.length + view.length);
    return;
  }
  parts.push(view);
}

/** Splits views at byte `at`: the views before it and the views from it on. */
export function splitViews(views: readonly Uint8Array[], at: number): [Uint8Array[], Uint8Array[]] {
  const head: Uint8Array[] = [];
  const tail: Uint8Array[] = [];
  let position = 0;
  for (const view of views) {
    if (position + view.length <= at) head.push(view);
    else if (position >= at) tail.push(view);
    else {
      head.push(view.subarray(0, at - position));
      tail.push(view.subarray(at - position));
    }
    position += view.length;
  }
  return [head, tail];
}

/** Copies `src` into the views, in order (src.length must equal their total length). */
export function scatterInto(views: readonly Uint8Array[], src: Uint8Array): void {
  let at = 0;
  for (const view of views) {
    view.set(src.subarray(at, at + view.length));
    at += view.length;
  }
}

/** The views' bytes in one new buffer, in order. */
export function gather(views: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(totalLength(views));
  let at = 0;
  for (const view of views) {
    out.set(view, at);
    at += view.length;
  }
  return out;
}

/** After a vectored read that got `got` bytes (a short read at the end of a file), zeros the rest. */
export function zeroPastRead(views: readonly Uint8Array[], got: number): void {
  for (const view of views) {
    if (got < view.length) view.fill(0, Math.max(got, 0));
    got -= view.length;
  }
}

/** A vectored read as one read per view, for images without `readv`. */
export async function readEach(disk: DiskImage, offset: number, dsts: readonly Uint8Array[]): Promise<void> {
  for (const dst of dsts) {
    await disk.read(offset, dst);
    offset += dst.length;
  }
}

/** A vectored write as one write per view, for images without `writev`. */
export async function writeEach(disk: DiskImage, offset: number, srcs: readonly Uint8Array[]): Promise<void> {
  for (const src of srcs) {
    await disk.write(offset, src);
    offset += src.length;
  }
}
