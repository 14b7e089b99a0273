// Parsing a virtio-blk request (virtio 1.2 §5.2.6) out of a descriptor chain: a 16-byte device-readable
// header {type, reserved, sector}, the data, and a one-byte device-writable status at the very end.
// A chain without that shape is a driver bug: the device goes into DEVICE_NEEDS_RESET, as QEMU does.
// A well-formed request the device cannot serve (bad sector range, unknown type) is answered with a
// status instead.
import type { DescriptorChain } from './chain.js';
import { VirtioRequestError } from './errors.js';

export const SECTOR_SIZE = 512;
export const BLK_HEADER_SIZE = 16;
/** Size of one DISCARD / WRITE_ZEROES range: {sector u64, num_sectors u32, flags u32}. */
export const BLK_RANGE_SIZE = 16;
/** Length of the GET_ID answer. */
export const BLK_ID_BYTES = 20;

export const BlkType = {
  in: 0,
  out: 1,
  flush: 4,
  getId: 8,
  discard: 11,
  writeZeroes: 13,
} as const;

export const BlkStatus = {
  ok: 0,
  ioErr: 1,
  unsupported: 2,
} as const;

/** WRITE_ZEROES range flag: the device may deallocate. */
export const BLK_WRITE_ZEROES_UNMAP = 1;

export interface BlkRange {
  readonly sector: bigint;
  readonly sectors: number;
  readonly flags: number;
}

export interface BlkRequest {
  readonly type: number;
  readonly sector: bigint;
  /** Bytes of data: after the header on the readable side (OUT, DISCARD, WRITE_ZEROES), or before the status on the writable side (IN, GET_ID). */
  readonly dataLength: number;
  /** Offset of the status byte on the writable side. */
  readonly statusOffset: number;
  readonly chain: DescriptorChain;
}

export function parseBlkRequest(chain: DescriptorChain, device: string): BlkRequest {
  if (chain.readableLength < BLK_HEADER_SIZE) {
    const where = chain.readableLength === 0 && chain.writableLength >= BLK_HEADER_SIZE ? ' (the header is device-writable)' : '';
    throw new VirtioRequestError(device, `request ${chain.head}: header needs ${BLK_HEADER_SIZE} device-readable bytes, got ${chain.readableLength}${where}`);
  }
  if (chain.writableLength < 1) {
    throw new VirtioRequestError(device, `request ${chain.head}: no device-writable status byte`);
  }
  const header = new DataView(chain.read(0, BLK_HEADER_SIZE).buffer);
  const type = header.getUint32(0, true);
  const sector = header.getBigUint64(8, true);
  const statusOffset = chain.writableLength - 1;
  const readsIntoGuest = type === BlkType.in || type === BlkType.getId;
  const dataLength = readsIntoGuest ? statusOffset : chain.readableLength - BLK_HEADER_SIZE;
  return { type, sector, dataLength, statusOffset, chain };
}

/** The ranges of a DISCARD or WRITE_ZEROES request. */
export function parseBlkRanges(request: BlkRequest): BlkRange[] {
  const bytes = request.chain.read(BLK_HEADER_SIZE, request.dataLength);
  const view = new DataView(bytes.buffer);
  const ranges: BlkRange[] = [];
  for (let at = 0; at + BLK_RANGE_SIZE <= bytes.length; at += BLK_RANGE_SIZE) {
    ranges.push({ sector: view.getBigUint64(at, true), sectors: view.getUint32(at + 8, true), flags: view.getUint32(at + 12, true) });
  }
  return ranges;
}

/**
 * The byte range [offset, offset + length) of `sectors` from `sector` if it lies inside a disk of
 * `capacity` bytes, else null.
 */
export function sectorRange(sector: bigint, length: number, capacity: number): { offset: number; length: number } | null {
  const offset = sector * BigInt(SECTOR_SIZE);
  if (offset + BigInt(length) > BigInt(capacity)) return null;
  return { offset: Number(offset), length };
}
