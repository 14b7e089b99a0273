// virtio-blk (device id 2): one request queue served asynchronously by a disk image backend. Requests
// are parsed as they are popped and run concurrently; each completes into the used ring whenever its
// I/O finishes, so the vCPU never waits on the disk. Data moves between the backend and guest RAM views
// of the request's segments, with readv/writev when they are scattered; only a backend without those
// gets a bounce buffer, so each request is one backend call.
// The block layer's node-free parts only: VirtioBlk runs in a browser over any DiskImage (MemoryBlockFile).
import type { DiskImage } from '../../block/disk.js';
import { DiskIoError } from '../../block/errors.js';
import { gather, scatterInto } from '../../block/scatter.js';
import type { AccessSize } from '../device.js';
import { VIRTQ_MAX_SIZE } from '../../../assembly/abi/layout.js';
import { DeviceId } from './constants.js';
import { readConfigBytes, type VirtioDevice, type VirtioDeviceContext } from './device.js';
import { VirtioRequestError } from './errors.js';
import {
  BLK_HEADER_SIZE, BLK_ID_BYTES, BLK_RANGE_SIZE, BLK_WRITE_ZEROES_UNMAP, BlkStatus, BlkType, SECTOR_SIZE, parseBlkRanges, parseBlkRequest,
  sectorRange, type BlkRequest,
} from './blk_request.js';

export const BlkFeature = {
  segMax: 1n << 2n,
  ro: 1n << 5n,
  blkSize: 1n << 6n,
  flush: 1n << 9n,
  discard: 1n << 13n,
  writeZeroes: 1n << 14n,
} as const;

/**
 * The queue size, QEMU's largest (its default is 256). seg_max follows it, as in QEMU, and 1022 segments
 * let Linux send a 1 MiB O_DIRECT read or write (~256 scattered pages) as one request, where 254 split it
 * in two (1 MiB dd reads +16-23 %).
 */
export const BLK_QUEUE_SIZE = 1024;
/** The largest queue-size: the core's VIRTQ_MAX_SIZE, QEMU's VIRTQUEUE_MAX_SIZE. */
export const BLK_MAX_QUEUE_SIZE = VIRTQ_MAX_SIZE;

/** QEMU's rule for a virtio-blk queue-size: a power of two from 4 to BLK_MAX_QUEUE_SIZE. */
export function isBlkQueueSize(size: number): boolean {
  return Number.isInteger(size) && size >= 4 && size <= BLK_MAX_QUEUE_SIZE && (size & (size - 1)) === 0;
}
/** Largest DISCARD / WRITE_ZEROES request in sectors (QEMU's BDRV_REQUEST_MAX_SECTORS). */
const MAX_ZEROES_SECTORS = 4194296;
/** struct virtio_blk_config up to write_zeroes_may_unmap. */
const CONFIG_SIZE = 0x3c;

export interface VirtioBlkOptions {
  readonly disk: DiskImage;
  /** The drive id (for logs). */
  readonly id: string;
  /** What GET_ID answers (up to 20 bytes; QEMU's `serial` property). */
  readonly serial?: string;
  readonly queueSize?: number;
  readonly log?: (message: string) => void;
}

interface Completion {
  readonly status: number;
  /** Bytes written into the guest's buffers, status byte included. */
  readonly written: number;
}

export class VirtioBlk implements VirtioDevice {
  readonly deviceId = DeviceId.block;
  readonly name: string;
  readonly features: bigint;
  readonly queueSizes: readonly number[];
  private readonly config = new Uint8Array(CONFIG_SIZE);
  private readonly disk: DiskImage;
  private readonly serial: Uint8Array;
  private readonly log: (message: string) => void;
  private context: VirtioDeviceContext | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private ioErrorsLogged = 0;

  constructor(options: VirtioBlkOptions) {
    this.disk = options.disk;
    this.name = `virtio-blk(${options.id})`;
    this.log = options.log ?? ((message) => console.warn(message));
    const queueSize = options.queueSize ?? BLK_QUEUE_SIZE;
    if (!isBlkQueueSize(queueSize)) {
      throw new RangeError(`${this.name}: queue size ${queueSize} is not a power of two from 4 to ${BLK_MAX_QUEUE_SIZE}`);
    }
    this.queueSizes = [queueSize];
    this.serial = new TextEncoder().encode(options.serial ?? '').subarray(0, BLK_ID_BYTES);
    let features = BlkFeature.segMax | BlkFeature.blkSize | BlkFeature.flush;
    if (this.disk.readOnly) features |= BlkFeature.ro;
    if (!this.disk.readOnly && this.disk.discard) features |= BlkFeature.discard;
    if (!this.disk.readOnly && this.disk.writeZeroes) features |= BlkFeature.writeZeroes;
    this.features = features;

    const view = new DataView(this.config.buffer);
    view.setBigUint64(0x00, BigInt(Math.floor(this.disk.size / SECTOR_SIZE)), true); // capacity
    view.setUint32(0x0c, queueSize - 2, true); // seg_max: the header and status take a descriptor each
    view.setUint32(0x14, SECTOR_SIZE, true); // blk_size
    view.setUint32(0x24, MAX_ZEROES_SECTORS, true); // max_discard_sectors
    view.setUint32(0x28, 1, true); // max_discard_seg
    view.setUint32(0x2c, 1, true); // discard_sector_alignment
    view.setUint32(0x30, MAX_ZEROES_SECTORS, true); // max_write_zeroes_sectors
    view.setUint32(0x34, 1, true); // max_write_zeroes_seg
  }

  /** Requests started and not yet completed. */
  get requestsInFlight(): number {
    return this.inFlight.size;
  }

  readConfig(offset: number, size: AccessSize): number {
    return offset + size <= CONFIG_SIZE ? readConfigBytes(this.config, offset, size) : 0;
  }

  writeConfig(): void {
    // Only `writeback` is writable, and only with VIRTIO_BLK_F_CONFIG_WCE, which is not offered.
  }

  activate(context: VirtioDeviceContext): void {
    this.context = context;
  }

  notify(index: number): void {
    const context = this.context;
    if (index !== 0 || context === null) return;
    const queue = context.queue(0);
    if (queue === null) return;
    for (let chain = queue.pop(); chain !== null; chain = queue.pop()) {
      let request: BlkRequest;
      try {
        request = parseBlkRequest(chain, this.name);
      } catch (error) {
        if (!(error instanceof VirtioRequestError)) throw error;
        context.fail(error.reason);
        return;
      }
      this.start(context, request);
    }
  }

  reset(): void | Promise<void> {
    this.context = null;
    if (this.inFlight.size === 0) return;
    return Promise.allSettled([...this.inFlight]).then(() => undefined);
  }

  async close(): Promise<void> {
    this.context = null;
    await Promise.allSettled([...this.inFlight]);
    await this.disk.close();
  }

  private start(context: VirtioDeviceContext, request: BlkRequest): void {
    const done = this.execute(request)
      .catch((error: unknown): Completion => {
        this.logIoError(error);
        return { status: BlkStatus.ioErr, written: 1 };
      })
      .then((completion) => {
        this.inFlight.delete(done);
        // After a reset the rings belong to nobody: the reply is dropped.
        if (!context.live) return;
        const queue = context.queue(0);
        if (queue === null) return;
        request.chain.write(request.statusOffset, Uint8Array.of(completion.status));
        try {
          queue.pushUsed(request.chain.head, completion.written);
        } catch (error) {
          context.fail((error as Error).message);
          return;
        }
        context.signalUsed(0);
      });
    this.inFlight.add(done);
  }

  private async execute(request: BlkRequest): Promise<Completion> {
    const ok = (written: number): Completion => ({ status: BlkStatus.ok, written });
    const fail = (status: number): Completion => ({ status, written: 1 });
    switch (request.type) {
      case BlkType.in:
      case BlkType.out: {
        const isRead = request.type === BlkType.in;
        if (!isRead && this.disk.readOnly) return fail(BlkStatus.ioErr);
        if (request.dataLength % SECTOR_SIZE !== 0) return fail(BlkStatus.ioErr);
        const range = sectorRange(request.sector, request.dataLength, this.disk.size);
        if (range === null) return fail(BlkStatus.ioErr);
        if (isRead) {
          await this.readIntoGuest(request, range.offset);
          return ok(request.dataLength + 1);
        }
        await this.writeFromGuest(request, range.offset);
        return ok(1);
      }
      case BlkType.flush:
        await this.disk.flush();
        return ok(1);
      case BlkType.getId: {
        const id = new Uint8Array(Math.min(BLK_ID_BYTES, request.dataLength));
        id.set(this.serial.subarray(0, id.length));
        request.chain.write(0, id);
        return ok(id.length + 1);
      }
      case BlkType.discard:
      case BlkType.writeZeroes:
        return this.zeroRanges(request);
      default:
        return fail(BlkStatus.unsupported);
    }
  }

  private async zeroRanges(request: BlkRequest): Promise<Completion> {
    const fail = (status: number): Completion => ({ status, written: 1 });
    const isDiscard = request.type === BlkType.discard;
    const feature = isDiscard ? BlkFeature.discard : BlkFeature.writeZeroes;
    if ((this.features & feature) === 0n) return fail(BlkStatus.unsupported);
    if (request.dataLength !== BLK_RANGE_SIZE) return fail(BlkStatus.unsupported); // max_*_seg is 1
    const [range] = parseBlkRanges(request);
    const allowedFlags = isDiscard ? 0 : BLK_WRITE_ZEROES_UNMAP;
    if ((range!.flags & ~allowedFlags) !== 0) return fail(BlkStatus.unsupported);
    if (range!.sectors > MAX_ZEROES_SECTORS) return fail(BlkStatus.ioErr);
    const bytes = sectorRange(range!.sector, range!.sectors * SECTOR_SIZE, this.disk.size);
    if (bytes === null) return fail(BlkStatus.ioErr);
    if (isDiscard) await this.disk.discard!(bytes.offset, bytes.length);
    else await this.disk.writeZeroes!(bytes.offset, bytes.length);
    return { status: BlkStatus.ok, written: 1 };
  }

  private async readIntoGuest(request: BlkRequest, offset: number): Promise<void> {
    if (request.dataLength === 0) return;
    const parts = request.chain.views('writable', 0, request.dataLength);
    if (parts.length === 1) return this.disk.read(offset, parts[0]!);
    if (this.disk.readv) return this.disk.readv(offset, parts);
    const bounce = new Uint8Array(request.dataLength);
    await this.disk.read(offset, bounce);
    scatterInto(parts, bounce);
  }

  private async writeFromGuest(request: BlkRequest, offset: number): Promise<void> {
    if (request.dataLength === 0) return;
    const parts = request.chain.views('readable', BLK_HEADER_SIZE, request.dataLength);
    if (parts.length === 1) return this.disk.write(offset, parts[0]!);
    if (this.disk.writev) return this.disk.writev(offset, parts);
    await this.disk.write(offset, gather(parts));
  }

  private logIoError(error: unknown): void {
    // A failing disk answers every request with IOERR; the log keeps the first few reasons.
    if (this.ioErrorsLogged >= 10) return;
    this.ioErrorsLogged++;
    const reason = error instanceof DiskIoError ? error.message : `unexpected error: ${(error as Error).stack ?? error}`;
    this.log(`${this.name}: I/O error: ${reason}`);
  }
}
