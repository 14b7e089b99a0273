// A writer for flattened device tree blobs (DTB v17), in the sequential style of libfdt's
// `fdt_sw` API that QEMU and firmware use: open a node, give its properties, open its children,
// close it. The writer checks what a device tree requires as it goes (one root, properties before
// child nodes, no duplicate names, every phandle handed out is placed on a node) so that a mistake
// in a board description fails at build time with the node path, not later inside the guest.

import { FdtWriteError } from './errors.js';
import {
  align,
  FDT_HEADER_SIZE,
  FDT_LAST_COMPATIBLE_VERSION,
  FDT_MAGIC,
  FDT_VERSION,
  FdtHeaderField,
  FdtToken,
  type FdtReservation,
  MAX_NAME_LENGTH,
  NODE_NAME_CHARS,
  PROPERTY_NAME_CHARS,
} from './format.js';

const U32_MAX = 0xffff_ffff;
const U64_MAX = (1n << 64n) - 1n;
/** phandle 0 and 0xffffffff mean "no phandle" to libfdt, so they are never handed out. */
const MAX_PHANDLE = 0xffff_fffe;

const utf8 = new TextEncoder();

/** A growable big-endian byte buffer. */
class ByteSink {
  private bytes = new Uint8Array(256);
  private view = new DataView(this.bytes.buffer);
  length = 0;

  private reserve(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(needed, this.bytes.length * 2));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
  }

  u32(value: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, value);
    this.length += 4;
  }

  u64(value: bigint): void {
    this.reserve(8);
    this.view.setBigUint64(this.length, value);
    this.length += 8;
  }

  append(data: Uint8Array): void {
    this.reserve(data.length);
    this.bytes.set(data, this.length);
    this.length += data.length;
  }

  /** Zero-pads to a multiple of 4 bytes, as every structure block token must start aligned. */
  pad4(): void {
    const padding = align(this.length, 4) - this.length;
    this.reserve(padding);
    this.bytes.fill(0, this.length, this.length + padding);
    this.length += padding;
  }

  contents(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }
}

interface OpenNode {
  readonly path: string;
  readonly propertyNames: Set<string>;
  readonly childNames: Set<string>;
}

export interface FdtWriterOptions {
  /** Physical id of the boot hart, written to the header's `boot_cpuid_phys`. Default 0. */
  bootCpuidPhys?: number;
}

export class FdtWriter {
  private readonly structure = new ByteSink();
  private readonly strings = new ByteSink();
  private readonly stringOffsets = new Map<string, number>();
  private readonly reservations: FdtReservation[] = [];
  private readonly openNodes: OpenNode[] = [];
  private readonly bootCpuidPhys: number;
  private rootWritten = false;
  private finished = false;
  private nextPhandle = 1;
  /** phandle → path of the node that carries it, or undefined while only allocated. */
  private readonly phandles = new Map<number, string | undefined>();

  constructor(options: FdtWriterOptions = {}) {
    const bootCpuidPhys = options.bootCpuidPhys ?? 0;
    if (!isU32(bootCpuidPhys)) {
      throw new FdtWriteError(`boot CPU id ${bootCpuidPhys} is not a 32-bit unsigned integer`, '');
    }
    this.bootCpuidPhys = bootCpuidPhys;
  }

  /** Adds an entry to the memory reservation block (memory the OS must leave alone). */
  addReservation(address: bigint | number, size: bigint | number): void {
    this.assertNotFinished();
    const entry = { address: this.toU64(address, 'reservation address'), size: this.toU64(size, 'reservation size') };
    if (entry.size === 0n) {
      // A zero-sized entry would read as the (0, 0) terminator if its address were 0 as well.
      throw new FdtWriteError('a memory reservation must have a non-zero size', this.currentPath());
    }
    this.reservations.push(entry);
  }

  /** Opens a node. The first node must be the root, named "". */
  beginNode(name: string): void {
    this.assertNotFinished();
    const parent = this.openNodes.at(-1);
    let path: string;
    if (parent === undefined) {
      if (this.rootWritten) throw new FdtWriteError(`node "${name}" is outside the root node; a tree has one root`, '');
      if (name !== '') throw new FdtWriteError(`the root node must be named "" (got "${name}")`, '');
      this.rootWritten = true;
      path = '/';
    } else {
      validateNodeName(name, parent.path);
      if (parent.childNames.has(name)) throw new FdtWriteError(`duplicate child node "${name}"`, parent.path);
      parent.childNames.add(name);
      path = parent.path === '/' ? `/${name}` : `${parent.path}/${name}`;
    }
    this.structure.u32(FdtToken.beginNode);
    this.structure.append(utf8.encode(name));
    this.structure.append(new Uint8Array(1));
    this.structure.pad4();
    this.openNodes.push({ path, propertyNames: new Set(), childNames: new Set() });
  }

  endNode(): void {
    this.assertNotFinished();
    if (this.openNodes.pop() === undefined) throw new FdtWriteError('endNode() without an open node', '');
    this.structure.u32(FdtToken.endNode);
  }

  /** A property with no value (a boolean that is true when present, e.g. `interrupt-controller`). */
  propEmpty(name: string): void {
    this.propBytes(name, new Uint8Array(0));
  }

  propU32(name: string, value: number): void {
    this.propU32s(name, [value]);
  }

  /** A list of 32-bit cells, e.g. `reg` with #address-cells = 1 or `interrupts-extended`. */
  propU32s(name: string, values: readonly number[]): void {
    const bytes = new Uint8Array(values.length * 4);
    const view = new DataView(bytes.buffer);
    values.forEach((value, i) => {
      if (!isU32(value)) throw new FdtWriteError(`cell ${i} = ${value} is not a 32-bit unsigned integer`, this.currentPath(), name);
      view.setUint32(i * 4, value);
    });
    this.propBytes(name, bytes);
  }

  /** A 64-bit value as two cells, high cell first (e.g. `linux,initrd-start`). */
  propU64(name: string, value: bigint | number): void {
    this.propU64s(name, [value]);
  }

  /** A list of 64-bit values, each as two cells: a `reg` with #address-cells = #size-cells = 2. */
  propU64s(name: string, values: readonly (bigint | number)[]): void {
    const bytes = new Uint8Array(values.length * 8);
    const view = new DataView(bytes.buffer);
    values.forEach((value, i) => view.setBigUint64(i * 8, this.toU64(value, `value ${i}`, name)));
    this.propBytes(name, bytes);
  }

  propString(name: string, value: string): void {
    this.propStrings(name, [value]);
  }

  /** A string list: NUL-terminated strings back to back, e.g. `compatible`. */
  propStrings(name: string, values: readonly string[]): void {
    if (values.length === 0) throw new FdtWriteError('a string list needs at least one string', this.currentPath(), name);
    const parts: Uint8Array[] = [];
    for (const value of values) {
      if (value.includes('\0')) throw new FdtWriteError('a string value cannot contain NUL', this.currentPath(), name);
      parts.push(utf8.encode(value), new Uint8Array(1));
    }
    this.propBytes(name, concat(parts));
  }

  /** A property with an arbitrary value (e.g. `rng-seed`). */
  propBytes(name: string, value: Uint8Array): void {
    this.assertNotFinished();
    const node = this.openNodes.at(-1);
    if (node === undefined) throw new FdtWriteError(`property "${name}" is outside any node`, '');
    validatePropertyName(name, node.path);
    if (node.childNames.size > 0) {
      throw new FdtWriteError('properties must come before the node\'s child nodes', node.path, name);
    }
    if (node.propertyNames.has(name)) throw new FdtWriteError('duplicate property', node.path, name);
    if (value.length > U32_MAX) throw new FdtWriteError('value too long', node.path, name);
    node.propertyNames.add(name);
    this.structure.u32(FdtToken.prop);
    this.structure.u32(value.length);
    this.structure.u32(this.stringOffset(name));
    this.structure.append(value);
    this.structure.pad4();
  }

  /**
   * Hands out a new phandle, to reference a node (in `interrupt-parent`, `interrupts-extended`, ...)
   * before or after that node is written. Place it on its node with propPhandle().
   */
  allocatePhandle(): number {
    this.assertNotFinished();
    if (this.nextPhandle > MAX_PHANDLE) throw new FdtWriteError('out of phandles', this.currentPath());
    const phandle = this.nextPhandle++;
    this.phandles.set(phandle, undefined);
    return phandle;
  }

  /** Gives the open node the `phandle` property with a value from allocatePhandle(). */
  propPhandle(phandle: number): void {
    this.assertNotFinished();
    const path = this.currentPath();
    if (!this.phandles.has(phandle)) {
      throw new FdtWriteError(`phandle ${phandle} was not handed out by allocatePhandle()`, path, 'phandle');
    }
    const holder = this.phandles.get(phandle);
    if (holder !== undefined) throw new FdtWriteError(`phandle ${phandle} is already on ${holder}`, path, 'phandle');
    this.propU32('phandle', phandle);
    this.phandles.set(phandle, path);
  }

  /** Lays out and returns the blob. The writer cannot be used afterwards. */
  finish(): Uint8Array {
    this.assertNotFinished();
    const open = this.openNodes.at(-1);
    if (open !== undefined) throw new FdtWriteError(`${this.openNodes.length} node(s) still open at finish()`, open.path);
    if (!this.rootWritten) throw new FdtWriteError('the tree has no root node', '');
    for (const [phandle, holder] of this.phandles) {
      if (holder === undefined) {
        throw new FdtWriteError(`phandle ${phandle} was allocated but no node carries it (a dangling reference)`, '');
      }
    }
    this.finished = true;
    this.structure.u32(FdtToken.end);

    const reservationsOffset = align(FDT_HEADER_SIZE, 8);
    const reservationsSize = (this.reservations.length + 1) * 16;
    const structureOffset = align(reservationsOffset + reservationsSize, 4);
    const structure = this.structure.contents();
    const stringsOffset = structureOffset + structure.length;
    const strings = this.strings.contents();
    const totalSize = stringsOffset + strings.length;

    const blob = new Uint8Array(totalSize);
    const view = new DataView(blob.buffer);
    view.setUint32(FdtHeaderField.magic, FDT_MAGIC);
    view.setUint32(FdtHeaderField.totalSize, totalSize);
    view.setUint32(FdtHeaderField.offDtStruct, structureOffset);
    view.setUint32(FdtHeaderField.offDtStrings, stringsOffset);
    view.setUint32(FdtHeaderField.offMemRsvmap, reservationsOffset);
    view.setUint32(FdtHeaderField.version, FDT_VERSION);
    view.setUint32(FdtHeaderField.lastCompVersion, FDT_LAST_COMPATIBLE_VERSION);
    view.setUint32(FdtHeaderField.bootCpuidPhys, this.bootCpuidPhys);
    view.setUint32(FdtHeaderField.sizeDtStrings, strings.length);
    view.setUint32(FdtHeaderField.sizeDtStruct, structure.length);
    this.reservations.forEach(({ address, size }, i) => {
      view.setBigUint64(reservationsOffset + i * 16, address);
      view.setBigUint64(reservationsOffset + i * 16 + 8, size);
    });
    // The (0, 0) terminator is already there: the blob starts zeroed.
    blob.set(structure, structureOffset);
    blob.set(strings, stringsOffset);
    return blob;
  }

  /** Offset of `name` in the strings block; each property name is stored once. */
  private stringOffset(name: string): number {
    let offset = this.stringOffsets.get(name);
    if (offset === undefined) {
      offset = this.strings.length;
      this.strings.append(utf8.encode(name));
      this.strings.append(new Uint8Array(1));
      this.stringOffsets.set(name, offset);
    }
    return offset;
  }

  private toU64(value: bigint | number, what: string, property?: string): bigint {
    const big = typeof value === 'bigint' ? value : Number.isSafeInteger(value) ? BigInt(value) : -1n;
    if (big < 0n || big > U64_MAX) {
      throw new FdtWriteError(`${what} = ${value} is not a 64-bit unsigned integer`, this.currentPath(), property);
    }
    return big;
  }

  private currentPath(): string {
    return this.openNodes.at(-1)?.path ?? '';
  }

  private assertNotFinished(): void {
    if (this.finished) throw new FdtWriteError('the writer was already finished', '');
  }
}

function isU32(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= U32_MAX;
}

function validateNodeName(name: string, parentPath: string): void {
  const at = name.indexOf('@');
  const baseName = at < 0 ? name : name.slice(0, at);
  const unitAddress = at < 0 ? undefined : name.slice(at + 1);
  const problem =
    baseName.length === 0
      ? 'is empty'
      : baseName.length > MAX_NAME_LENGTH
        ? `is longer than ${MAX_NAME_LENGTH} characters before '@'`
        : !/^[A-Za-z]/.test(baseName) || !NODE_NAME_CHARS.test(baseName)
          ? 'must start with a letter and use only letters, digits and , . _ + -'
          : unitAddress !== undefined && !NODE_NAME_CHARS.test(unitAddress)
            ? 'has an empty or malformed unit address after \'@\''
            : undefined;
  if (problem !== undefined) throw new FdtWriteError(`node name "${name}" ${problem}`, parentPath);
}

function validatePropertyName(name: string, nodePath: string): void {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH || !PROPERTY_NAME_CHARS.test(name)) {
    throw new FdtWriteError(
      `property name "${name}" must be 1..${MAX_NAME_LENGTH} characters of letters, digits and , . _ + ? # -`,
      nodePath,
    );
  }
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
