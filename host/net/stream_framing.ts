// The framing of QEMU's stream network backends (-netdev stream, and the legacy -netdev socket's
// listen=/connect=): each Ethernet frame goes as a 4-byte big-endian length and then the frame. A TCP or
// Unix stream cuts this anywhere, so the decoder reassembles across chunks and splits several frames
// out of one chunk. Node-free: the sockets themselves are in socket_node.ts.

/**
 * The largest frame a peer may send: QEMU's NET_BUFSIZE (64 KiB of payload plus 4 KiB of headroom). QEMU
 * 7.2 takes a 69632-byte frame and closes the connection on a 69633-byte length, as this decoder does.
 */
export const MAX_SOCKET_FRAME = 69632;
/** The length prefix of each frame. */
export const STREAM_LENGTH_SIZE = 4;

/** A peer announced a frame longer than MAX_SOCKET_FRAME: garbage or hostile, so the stream cannot be trusted. */
export class OversizedFrameError extends Error {
  override readonly name = 'OversizedFrameError';
  constructor(readonly length: number) {
    super(`the peer announced a frame of ${length} bytes (at most ${MAX_SOCKET_FRAME})`);
  }
}

/** One frame with its length prefix, ready to write to the stream. */
export function encodeStreamFrame(frame: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(STREAM_LENGTH_SIZE + frame.length);
  new DataView(bytes.buffer).setUint32(0, frame.length, false);
  bytes.set(frame, STREAM_LENGTH_SIZE);
  return bytes;
}

/**
 * Turns stream chunks back into frames. It holds at most one frame in progress (MAX_SOCKET_FRAME bytes)
 * and a partial length prefix, whatever the peer sends: a bad length throws before anything is buffered.
 */
export class StreamFrameDecoder {
  private readonly lengthBytes = new Uint8Array(STREAM_LENGTH_SIZE);
  private lengthFilled = 0;
  /** The frame being filled, once its length is known. */
  private frame: Uint8Array | null = null;
  private frameFilled = 0;

  /**
   * Hands `deliver` each frame `chunk` completes, in order. Zero-length frames are skipped (QEMU ignores
   * them and keeps the connection). Throws OversizedFrameError on a length over MAX_SOCKET_FRAME, after
   * delivering the frames before it; the decoder is then unusable, as the stream has lost its framing.
   */
  push(chunk: Uint8Array, deliver: (frame: Uint8Array) => void): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.frame === null) {
        const take = Math.min(STREAM_LENGTH_SIZE - this.lengthFilled, chunk.length - offset);
        this.lengthBytes.set(chunk.subarray(offset, offset + take), this.lengthFilled);
        this.lengthFilled += take;
        offset += take;
        if (this.lengthFilled < STREAM_LENGTH_SIZE) break;
        this.lengthFilled = 0;
        const length = new DataView(this.lengthBytes.buffer).getUint32(0, false);
        if (length > MAX_SOCKET_FRAME) throw new OversizedFrameError(length);
        if (length === 0) continue;
        this.frame = new Uint8Array(length);
        this.frameFilled = 0;
        continue;
      }
      const take = Math.min(this.frame.length - this.frameFilled, chunk.length - offset);
      this.frame.set(chunk.subarray(offset, offset + take), this.frameFilled);
      this.frameFilled += take;
      offset += take;
      if (this.frameFilled === this.frame.length) {
        const frame = this.frame;
        this.frame = null;
        this.frameFilled = 0;
        deliver(frame);
      }
    }
  }

  /** The frames `chunk` completes (push for callers that want them all at once). */
  framesOf(chunk: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    this.push(chunk, (frame) => frames.push(frame));
    return frames;
  }

  /** Bytes of an unfinished frame or length prefix held (the prefix of a frame in progress not counted). */
  get bufferedBytes(): number {
    return this.lengthFilled + this.frameFilled;
  }
}
