// The flattened device tree (DTB) binary format, version 17, as the Devicetree Specification
// (chapter 5, "Flattened Devicetree (DTB) Format") defines it. Everything is big-endian.
//
//   header (40 bytes) | memory reservation block (8-aligned) | structure block (4-aligned) | strings block

export const FDT_MAGIC = 0xd00dfeed;
export const FDT_VERSION = 17;
/** Oldest version a reader of our blobs must understand: v17 blobs are readable by v16 readers. */
export const FDT_LAST_COMPATIBLE_VERSION = 16;
export const FDT_HEADER_SIZE = 40;

/** Byte offsets of the header's big-endian u32 fields. */
export const FdtHeaderField = {
  magic: 0,
  totalSize: 4,
  offDtStruct: 8,
  offDtStrings: 12,
  offMemRsvmap: 16,
  version: 20,
  lastCompVersion: 24,
  bootCpuidPhys: 28,
  sizeDtStrings: 32,
  sizeDtStruct: 36,
} as const;

/** Structure block tokens. */
export const FdtToken = {
  beginNode: 1,
  endNode: 2,
  prop: 3,
  nop: 4,
  end: 9,
} as const;

/** One entry of the memory reservation block: guest RAM the OS must not use. */
export interface FdtReservation {
  readonly address: bigint;
  readonly size: bigint;
}

/** Characters allowed in a node name (the part before '@') and in a unit address (spec 2.2.1). */
export const NODE_NAME_CHARS = /^[A-Za-z0-9,._+-]+$/;
/** Characters allowed in a property name (spec 2.2.4). */
export const PROPERTY_NAME_CHARS = /^[A-Za-z0-9,._+?#-]+$/;
/** Longest node name (without unit address) and property name the specification allows. */
export const MAX_NAME_LENGTH = 31;

export function align(value: number, to: number): number {
  return Math.ceil(value / to) * to;
}
