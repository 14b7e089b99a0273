/** A kernel, firmware or initrd file that cannot be loaded as given. */
export class LoadError extends Error {
  constructor(readonly path: string, readonly reason: string) {
    super(`${path}: ${reason}`);
    this.name = 'LoadError';
  }
}
