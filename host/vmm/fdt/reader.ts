// A reader for flattened device tree blobs: checks a DTB (ours, or one a user hands us with
// `-dtb FILE`) and unpacks it into a tree of nodes and raw property values. The blob is treated as
// hostile: every offset and length is checked against the blob before it is used, nesting is
// bounded, and any problem is an FdtParseError naming the byte offset, never an exception from
// deep inside a DataView or an unbounded loop.

import { FdtParseError, FdtValueError } from './errors.js';
import {
  align,
  FDT_HEADER_SIZE,
  FDT_MAGIC,
  FDT_VERSION,
  FdtHeaderField,
  FdtToken,
  type FdtReservation,
} from './format.js';

/**
 * Deepest node nesting accepted. Linux unflattens trees up to 64 levels (FDT_MAX_DEPTH); the bound
 * also keeps a hostile blob of endlessly nested nodes from costing quadratic memory in node paths.
 */
export const FDT_MAX_DEPTH = 64;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A node of a parsed device tree, with typed accessors for its property values. */
export class FdtNode {
  /** Property values in blob order, as raw bytes. */
  readonly properties = new Map<string, Uint8Array>();
  readonly children: FdtNode[] = [];

  constructor(
    /** Name with unit address, e.g. "serial@10000000"; "" for the root. */
    readonly name: string,
    /** Absolute path, e.g. "/soc/serial@10000000"; "/" for the root. */
    readonly path: string,
  ) {}

  child(name: string): FdtNode | undefined {
    return this.children.find((child) => child.name === name);
  }

  /** The node at `path` below this one ("soc/plic@c000000"); a leading '/' is ignored. */
  find(path: string): FdtNode | undefined {
    let node: FdtNode | undefined = this;
    for (const part of path.split('/')) {
      if (part === '') continue;
      node = node.child(part);
      if (node === undefined) return undefined;
    }
    return node;
  }

  has(property: string): boolean {
    return this.properties.has(property);
  }

  bytes(property: string): Uint8Array | undefined {
    return this.properties.get(property);
  }

  /** A value of exactly one 32-bit cell. */
  u32(property: string): number | undefined {
    const cells = this.u32s(property);
    if (cells === undefined) return undefined;
    if (cells.length !== 1) throw new FdtValueError(`expected 1 cell, found ${cells.length}`, this.path, property);
    return cells[0];
  }

  /** A value made of 32-bit cells. */
  u32s(property: string): number[] | undefined {
    const value = this.properties.get(property);
    if (value === undefined) return undefined;
    if (value.length % 4 !== 0) throw new FdtValueError(`length ${value.length} is not a whole number of cells`, this.path, property);
    const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
    return Array.from({ length: value.length / 4 }, (_, i) => view.getUint32(i * 4));
  }

  /** A 64-bit value: two cells, or one cell (Linux reads `linux,initrd-start` either way). */
  u64(property: string): bigint | undefined {
    const cells = this.u32s(property);
    if (cells === undefined) return undefined;
    if (cells.length === 1) return BigInt(cells[0]);
    if (cells.length === 2) return (BigInt(cells[0]) << 32n) | BigInt(cells[1]);
    throw new FdtValueError(`expected 1 or 2 cells, found ${cells.length}`, this.path, property);
  }

  /** A value holding exactly one NUL-terminated string. */
  string(property: string): string | undefined {
    const strings = this.strings(property);
    if (strings === undefined) return undefined;
    if (strings.length !== 1) throw new FdtValueError(`expected one string, found ${strings.length}`, this.path, property);
    return strings[0];
  }

  /** A string list (NUL-terminated strings back to back). */
  strings(property: string): string[] | undefined {
    const value = this.properties.get(property);
    if (value === undefined) return undefined;
    if (value.length === 0 || value[value.length - 1] !== 0) {
      throw new FdtValueError('is not a NUL-terminated string list', this.path, property);
    }
    try {
      return utf8.decode(value.subarray(0, value.length - 1)).split('\0');
    } catch {
      throw new FdtValueError('is not valid UTF-8', this.path, property);
    }
  }
}

export interface FdtTree {
  readonly root: FdtNode;
  readonly reservations: readonly FdtReservation[];
  readonly bootCpuidPhys: number;
  readonly version: number;
}

/** Parses and checks a DTB. Accepts version 17 blobs (and later ones that stay v17-compatible). */
export function parseFdt(blob: Uint8Array): FdtTree {
  if (blob.length < FDT_HEADER_SIZE) {
    throw new FdtParseError(`blob is ${blob.length} bytes, shorter than the ${FDT_HEADER_SIZE}-byte header`, blob.length);
  }
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const field = (offset: number): number => view.getUint32(offset);

  const magic = field(FdtHeaderField.magic);
  if (magic !== FDT_MAGIC) {
    throw new FdtParseError(`bad magic 0x${magic.toString(16).padStart(8, '0')} (expected 0x${FDT_MAGIC.toString(16)})`, 0);
  }
  const version = field(FdtHeaderField.version);
  const lastCompVersion = field(FdtHeaderField.lastCompVersion);
  if (version < FDT_VERSION || lastCompVersion > FDT_VERSION) {
    throw new FdtParseError(
      `unsupported version ${version} (last compatible ${lastCompVersion}); this reader handles version ${FDT_VERSION}`,
      FdtHeaderField.version,
    );
  }
  const totalSize = field(FdtHeaderField.totalSize);
  if (totalSize < FDT_HEADER_SIZE || totalSize > blob.length) {
    throw new FdtParseError(`header says the blob is ${totalSize} bytes, but ${blob.length} bytes are present`, FdtHeaderField.totalSize);
  }

  const structure = checkBlock('structure block', field(FdtHeaderField.offDtStruct), field(FdtHeaderField.sizeDtStruct), 4, totalSize);
  const strings = checkBlock('strings block', field(FdtHeaderField.offDtStrings), field(FdtHeaderField.sizeDtStrings), 1, totalSize);
  const reservationsOffset = checkBlock('memory reservation block', field(FdtHeaderField.offMemRsvmap), 0, 8, totalSize).start;

  return {
    root: parseStructure(blob, view, structure, strings),
    reservations: parseReservations(view, reservationsOffset, totalSize),
    bootCpuidPhys: field(FdtHeaderField.bootCpuidPhys),
    version,
  };
}

/** Every node carrying a `phandle` property, by phandle. Duplicate phandles are an error. */
export function phandleIndex(root: FdtNode): Map<number, FdtNode> {
  const index = new Map<number, FdtNode>();
  const pending = [root];
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    const phandle = node.u32('phandle');
    if (phandle !== undefined) {
      const other = index.get(phandle);
      if (other !== undefined) throw new FdtValueError(`phandle ${phandle} is also on ${other.path}`, node.path, 'phandle');
      index.set(phandle, node);
    }
    pending.push(...node.children);
  }
  return index;
}

interface Block {
  readonly start: number;
  readonly end: number;
}

function checkBlock(what: string, start: number, size: number, alignment: number, totalSize: number): Block {
  if (start < FDT_HEADER_SIZE || start + size > totalSize) {
    throw new FdtParseError(`${what} [${start}, ${start + size}) lies outside the blob's ${totalSize} bytes`, start);
  }
  if (start % alignment !== 0) throw new FdtParseError(`${what} offset ${start} is not ${alignment}-byte aligned`, start);
  return { start, end: start + size };
}

function parseReservations(view: DataView, start: number, totalSize: number): FdtReservation[] {
  const reservations: FdtReservation[] = [];
  for (let offset = start; ; offset += 16) {
    if (offset + 16 > totalSize) throw new FdtParseError('memory reservation block has no (0, 0) terminator', offset);
    const address = view.getBigUint64(offset);
    const size = view.getBigUint64(offset + 8);
    if (address === 0n && size === 0n) return reservations;
    reservations.push({ address, size });
  }
}

function parseStructure(blob: Uint8Array, view: DataView, structure: Block, strings: Block): FdtNode {
  const open: FdtNode[] = [];
  let root: FdtNode | undefined;
  let offset = structure.start;

  while (offset + 4 <= structure.end) {
    const tokenOffset = offset;
    const token = view.getUint32(offset);
    offset += 4;
    switch (token) {
      case FdtToken.beginNode: {
        const nameEnd = findNul(blob, offset, structure.end, 'node name');
        const name = decodeName(blob, offset, nameEnd, 'node name');
        offset = align(nameEnd + 1, 4);
        const parent = open.at(-1);
        let node: FdtNode;
        if (parent === undefined) {
          if (root !== undefined) throw new FdtParseError('a second top-level node after the root', tokenOffset);
          if (name !== '') throw new FdtParseError(`the root node is named "${name}", not ""`, tokenOffset);
          node = root = new FdtNode('', '/');
        } else {
          if (open.length >= FDT_MAX_DEPTH) throw new FdtParseError(`nodes nest deeper than ${FDT_MAX_DEPTH} levels`, tokenOffset);
          if (name === '') throw new FdtParseError(`a node below ${parent.path} has an empty name`, tokenOffset);
          node = new FdtNode(name, parent.path === '/' ? `/${name}` : `${parent.path}/${name}`);
          parent.children.push(node);
        }
        open.push(node);
        break;
      }
      case FdtToken.endNode:
        if (open.pop() === undefined) throw new FdtParseError('FDT_END_NODE without an open node', tokenOffset);
        break;
      case FdtToken.prop: {
        if (offset + 8 > structure.end) throw new FdtParseError('property header runs past the structure block', tokenOffset);
        const length = view.getUint32(offset);
        const nameOffset = view.getUint32(offset + 4);
        offset += 8;
        const node = open.at(-1);
        if (node === undefined) throw new FdtParseError('a property outside any node', tokenOffset);
        if (offset + length > structure.end) {
          throw new FdtParseError(`property value of ${length} bytes runs past the structure block`, tokenOffset);
        }
        if (nameOffset >= strings.end - strings.start) {
          throw new FdtParseError(`property name offset ${nameOffset} is outside the strings block`, tokenOffset);
        }
        const nameStart = strings.start + nameOffset;
        const name = decodeName(blob, nameStart, findNul(blob, nameStart, strings.end, 'property name'), 'property name');
        if (name === '') throw new FdtParseError(`a property of ${node.path} has an empty name`, tokenOffset);
        if (node.properties.has(name)) throw new FdtParseError(`duplicate property "${name}" in ${node.path}`, tokenOffset);
        // A plain copy: the caller may reuse its buffer, and a Buffer's slice() would stay a Buffer.
        node.properties.set(name, new Uint8Array(blob.subarray(offset, offset + length)));
        offset = align(offset + length, 4);
        break;
      }
      case FdtToken.nop:
        break;
      case FdtToken.end: {
        const unclosed = open.at(-1);
        if (unclosed !== undefined) throw new FdtParseError(`FDT_END while ${unclosed.path} is still open`, tokenOffset);
        if (root === undefined) throw new FdtParseError('the structure block has no root node', tokenOffset);
        return root;
      }
      default:
        throw new FdtParseError(`unknown structure token 0x${token.toString(16)}`, tokenOffset);
    }
  }
  throw new FdtParseError('the structure block ends without FDT_END (truncated?)', offset);
}

function findNul(blob: Uint8Array, start: number, end: number, what: string): number {
  const nul = blob.subarray(start, end).indexOf(0);
  if (nul < 0) throw new FdtParseError(`${what} is not NUL-terminated inside its block`, start);
  return start + nul;
}

function decodeName(blob: Uint8Array, start: number, end: number, what: string): string {
  try {
    return utf8.decode(blob.subarray(start, end));
  } catch {
    throw new FdtParseError(`${what} is not valid UTF-8`, start);
  }
}
