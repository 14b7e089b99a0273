// The one error type of `wkvm img`: a message for a single line on stderr and the exit status
// qemu-img gives in the same situation (1 for almost everything, 63 for "cannot check this format").

export class ImgError extends Error {
  override readonly name = 'ImgError';
  constructor(message: string, readonly status: number = 1, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** qemu-img check's status for a format that has no consistency check (raw). */
export const STATUS_CHECK_UNSUPPORTED = 63;
