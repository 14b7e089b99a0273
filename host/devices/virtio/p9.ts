// virtio-9p (device id 9): one request queue carrying 9P2000.L. Each chain holds a T-message on its
// device-readable side and room for the R-message on its writable side (Linux's zero-copy reads and
// writes scatter the payload over user pages, which is the same byte stream split differently). Requests
// run concurrently against the async backend and complete into the used ring when they finish.
// Node-free: the file system is any NinePBackend (`p9_local.ts` for a host directory).
import type { AccessSize } from '../device.js';
import { DeviceId } from './constants.js';
import { readConfigBytes, type VirtioDevice, type VirtioDeviceContext } from './device.js';
import type { NinePBackend } from './p9_backend.js';
import { HEADER_SIZE, READ_HEADER_SIZE, lerror, readHeader, Errno } from './p9_protocol.js';
import { NinePServer } from './p9_server.js';
import type { DescriptorChain } from './chain.js';

/** VIRTIO_9P_MOUNT_TAG: the config space holds the tag the guest mounts by. */
export const NinePFeature = {
  mountTag: 1n << 0n,
} as const;
/** QEMU's queue size (MAX_REQ), which also bounds Linux's msize to ~500 KiB. */
export const NINE_P_QUEUE_SIZE = 128;
/** The largest msize the device agrees to. */
export const NINE_P_MAX_MESSAGE_SIZE = 512 * 1024;
/** Longest mount tag (QEMU's MAX_TAG_LEN). */
export const NINE_P_MAX_TAG_LENGTH = 255;

export interface Virtio9pOptions {
  readonly backend: NinePBackend;
  /** What the guest mounts (`mount -t 9p TAG /mnt`). */
  readonly mountTag: string;
  /** The -fsdev id, for logs. */
  readonly id?: string;
  readonly maxMessageSize?: number;
  readonly log?: (message: string) => void;
}

export class Virtio9p implements VirtioDevice {
  readonly deviceId = DeviceId.ninePTransport;
  readonly name: string;
  readonly features = NinePFeature.mountTag;
  readonly queueSizes = [NINE_P_QUEUE_SIZE];
  private readonly config: Uint8Array;
  private readonly backend: NinePBackend;
  private readonly log: (message: string) => void;
  private readonly maxMessageSize: number;
  private server: NinePServer;
  private context: VirtioDeviceContext | null = null;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(options: Virtio9pOptions) {
    this.name = `virtio-9p(${options.id ?? options.mountTag})`;
    const tag = new TextEncoder().encode(options.mountTag);
    if (tag.length === 0 || tag.length > NINE_P_MAX_TAG_LENGTH) {
      throw new RangeError(`${this.name}: mount_tag must be 1 to ${NINE_P_MAX_TAG_LENGTH} bytes`);
    }
    // struct virtio_9p_config: tag_len[2] then the tag, not NUL-terminated.
    this.config = new Uint8Array(2 + tag.length);
    new DataView(this.config.buffer).setUint16(0, tag.length, true);
    this.config.set(tag, 2);
    this.backend = options.backend;
    this.log = options.log ?? ((message) => console.warn(message));
    this.maxMessageSize = options.maxMessageSize ?? NINE_P_MAX_MESSAGE_SIZE;
    this.server = this.newServer();
  }

  private newServer(): NinePServer {
    return new NinePServer({ backend: this.backend, maxMessageSize: this.maxMessageSize, log: (m) => this.log(`${this.name}: ${m}`) });
  }

  /** Requests started and not yet completed. */
  get requestsInFlight(): number {
    return this.inFlight.size;
  }

  readConfig(offset: number, size: AccessSize): number {
    return readConfigBytes(this.config, offset, size);
  }

  writeConfig(): void {
    // The mount tag is read-only.
  }

  activate(context: VirtioDeviceContext): void {
    this.context = context;
  }

  notify(index: number): void {
    const context = this.context;
    const queue = index === 0 ? context?.queue(0) : null;
    if (context == null || queue == null) return;
    for (let chain = queue.pop(); chain !== null; chain = queue.pop()) {
      if (chain.readableLength < HEADER_SIZE || chain.writableLength < READ_HEADER_SIZE) {
        // Without a whole header there is no tag to answer; without 11 bytes not even an Rlerror fits.
        context.fail(`${this.name}: a request chain of ${chain.readableLength} readable and ${chain.writableLength} writable bytes`);
        return;
      }
      this.start(context, chain);
    }
  }

  reset(): void | Promise<void> {
    this.context = null;
    // A new driver starts a new 9P session: fids and open files of the old one go.
    const old = this.server;
    this.server = this.newServer();
    if (this.inFlight.size === 0) {
      // Closing host files touches no guest RAM, so the reset need not wait for it.
      void old.clunkAll();
      return;
    }
    return Promise.allSettled([...this.inFlight]).then(() => old.clunkAll());
  }

  async close(): Promise<void> {
    this.context = null;
    await Promise.allSettled([...this.inFlight]);
    await this.server.clunkAll();
    await this.backend.close?.();
  }

  private start(context: VirtioDeviceContext, chain: DescriptorChain): void {
    const message = chain.read(0, chain.readableLength);
    const header = readHeader(message)!;
    const done = this.server
      .handle(message, chain.writableLength)
      .then((reply) => reply ?? lerror(header.tag, Errno.EPROTO))
      .then((reply) => {
        this.inFlight.delete(done);
        // After a reset the rings belong to nobody: the reply is dropped.
        if (!context.live) return;
        const queue = context.queue(0);
        if (queue === null) return;
        // The server keeps replies within the room it was given; an Rlerror always fits (checked above).
        const bytes = reply.length <= chain.writableLength ? reply : lerror(header.tag, Errno.EIO);
        chain.write(0, bytes);
        try {
          queue.pushUsed(chain.head, bytes.length);
        } catch (error) {
          context.fail((error as Error).message);
          return;
        }
        context.signalUsed(0);
      });
    this.inFlight.add(done);
  }
}
