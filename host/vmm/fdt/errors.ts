// Errors of the device-tree code. Each carries where the problem is, so a message points at the node,
// property or byte offset at fault.

export class FdtError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The program asked the writer for a tree that is not a valid device tree (a bug in the caller). */
export class FdtWriteError extends FdtError {
  constructor(
    readonly reason: string,
    /** Path of the node being written when the error happened ("" before the root is opened). */
    readonly nodePath: string,
    readonly property?: string,
  ) {
    super(`device tree writer: ${reason} (at ${nodePath === '' ? '<no node>' : nodePath}${property === undefined ? '' : `, property "${property}"`})`);
  }
}

/** A DTB blob is malformed: it may come from a user's `-dtb FILE`, so it is treated as hostile. */
export class FdtParseError extends FdtError {
  constructor(
    readonly reason: string,
    /** Byte offset in the blob where the problem was found. */
    readonly offset: number,
  ) {
    super(`malformed device tree blob: ${reason} (at byte offset ${offset})`);
  }
}

/** A property exists but its value does not have the shape the caller asked for. */
export class FdtValueError extends FdtError {
  constructor(
    readonly reason: string,
    readonly nodePath: string,
    readonly property: string,
  ) {
    super(`device tree property ${nodePath}:${property}: ${reason}`);
  }
}

/** The options given to a tree builder (e.g. buildVirtDeviceTree) are out of range. */
export class FdtConfigError extends FdtError {
  constructor(
    readonly reason: string,
    readonly option: string,
  ) {
    super(`device tree option ${option}: ${reason}`);
  }
}
