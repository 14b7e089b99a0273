// One disk request as a synchronous system call: what the disk I/O thread does with each request, and
// what the VMM does itself when it takes one (see HEADER_TAKEN in io_ring.ts).
import fs from 'node:fs';
import { IoOp, type IoOpCode } from './io_ring.js';
import { totalLength } from './scatter.js';

export const EIO = 5;

/**
 * Reads or writes `views` at `position` in `fd` (going on where the OS stopped early; a read stops at
 * the end of the file), or fdatasyncs. Returns the bytes moved, or a negative errno.
 */
export function performIo(op: IoOpCode, fd: number, position: number, views: readonly Uint8Array[]): number {
  try {
    if (op === IoOp.sync) {
      fs.fdatasyncSync(fd);
      return 0;
    }
    const total = totalLength(views);
    let rest = views as Uint8Array[];
    let done = 0;
    while (done < total) {
      const moved = op === IoOp.read ? fs.readvSync(fd, rest, position + done) : fs.writevSync(fd, rest, position + done);
      if (moved === 0) {
        if (op === IoOp.read) break;
        return -EIO; // a write that makes no progress
      }
      done += moved;
      rest = dropFront(rest, moved);
    }
    return done;
  } catch (error) {
    const errno = (error as NodeJS.ErrnoException).errno;
    return typeof errno === 'number' && errno < 0 ? errno : -EIO;
  }
}

function dropFront(views: Uint8Array[], bytes: number): Uint8Array[] {
  let i = 0;
  while (i < views.length && bytes >= views[i]!.length) bytes -= views[i++]!.length;
  const rest = views.slice(i);
  if (bytes > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(bytes);
  return rest;
}
