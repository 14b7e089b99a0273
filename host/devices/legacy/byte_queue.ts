// An unbounded FIFO of bytes kept as the chunks they arrived in, so that queueing a large burst of console
// input costs one copy and taking bytes out one at a time costs no reshuffling.

export class ByteQueue {
  private readonly chunks: Uint8Array[] = [];
  /** Index in `chunks` of the chunk the next byte comes from; consumed chunks before it are dropped lazily. */
  private firstChunk = 0;
  /** Bytes already taken from `chunks[firstChunk]`. */
  private offsetInFirstChunk = 0;
  private byteCount = 0;

  get length(): number {
    return this.byteCount;
  }

  /** Appends a copy of `bytes`, so the caller may reuse its buffer. */
  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.chunks.push(bytes.slice());
    this.byteCount += bytes.length;
  }

  /** Removes and returns the oldest byte, or -1 when the queue is empty. */
  shift(): number {
    if (this.byteCount === 0) return -1;
    const chunk = this.chunks[this.firstChunk]!;
    const byte = chunk[this.offsetInFirstChunk]!;
    this.offsetInFirstChunk++;
    this.byteCount--;
    if (this.offsetInFirstChunk === chunk.length) {
      this.firstChunk++;
      this.offsetInFirstChunk = 0;
      this.dropConsumedChunks();
    }
    return byte;
  }

  clear(): void {
    this.chunks.length = 0;
    this.firstChunk = 0;
    this.offsetInFirstChunk = 0;
    this.byteCount = 0;
  }

  private dropConsumedChunks(): void {
    // Splicing on every chunk would make a queue of many small chunks quadratic; do it once half are spent.
    if (this.firstChunk === this.chunks.length) {
      this.chunks.length = 0;
      this.firstChunk = 0;
    } else if (this.firstChunk >= 64 && this.firstChunk * 2 >= this.chunks.length) {
      this.chunks.splice(0, this.firstChunk);
      this.firstChunk = 0;
    }
  }
}
