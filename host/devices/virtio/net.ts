// virtio-net (device id 1) with one receive/transmit queue pair, MAC and link status in the config space,
// and no offloads: every frame is a plain Ethernet frame behind a 12-byte virtio_net_hdr_v1 (virtio 1.2
// §5.1.6). Without MRG_RXBUF each received frame takes one receive chain. The network behind it is a
// NetBackend (host/net/), as QEMU's -netdev is behind its -device.
import type { AccessSize } from '../device.js';
import type { NetBackend } from '../../net/backend.js';
import { DEFAULT_MAC, MAC_LENGTH, MacAddressError, formatMacAddress } from '../../net/mac.js';
import { DeviceId, Feature } from './constants.js';
import { readConfigBytes, type VirtioDevice, type VirtioDeviceContext } from './device.js';
import { VirtqueueError } from './errors.js';
import type { DescriptorChain } from './chain.js';
import type { Virtqueue } from './queue.js';

export { DEFAULT_MAC, MacAddressError, formatMacAddress, parseMacAddress } from '../../net/mac.js';
export type { NetBackend, FrameReceiver } from '../../net/backend.js';

export const NetFeature = {
  mac: 1n << 5n,
  status: 1n << 16n,
} as const;

/** VIRTIO_NET_S_LINK_UP: the link never goes down, there is no cable to pull. */
const LINK_UP = 1;
/** struct virtio_net_hdr_v1: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers. */
export const NET_HEADER_SIZE = 12;
/** Without VIRTIO_F_VERSION_1 (and without MRG_RXBUF, never offered) the header stops before num_buffers. */
export const LEGACY_NET_HEADER_SIZE = 10;
const NUM_BUFFERS_OFFSET = 10;
/** QEMU's default rx/tx queue size. */
export const NET_QUEUE_SIZE = 256;
/** Frames held for a guest that has no receive buffers posted; newer ones are dropped beyond this. */
export const MAX_PENDING_FRAMES = 256;
/** Largest frame the guest may transmit: no TSO is offered, but a 64 KiB MTU is legal without it. */
const MAX_TX_FRAME = 65535 + 14;
/** Destination, source and EtherType: anything shorter is not an Ethernet frame. */
const ETHERNET_HEADER_SIZE = 14;
/** struct virtio_net_config up to status. */
const CONFIG_SIZE = MAC_LENGTH + 2;

const RECEIVE_QUEUE = 0;
const TRANSMIT_QUEUE = 1;

/** The header of every received frame: no checksum or GSO hints, one buffer. */
const RX_HEADER = new Uint8Array(NET_HEADER_SIZE);
RX_HEADER[NUM_BUFFERS_OFFSET] = 1;

export interface VirtioNetOptions {
  readonly backend: NetBackend;
  /** The NIC's address (default DEFAULT_MAC, 52:54:00:12:34:56). */
  readonly mac?: Uint8Array;
  /** The -device id or netdev id (for logs). */
  readonly id?: string;
  readonly log?: (message: string) => void;
}

export class VirtioNet implements VirtioDevice {
  readonly deviceId = DeviceId.network;
  readonly name: string;
  readonly features = NetFeature.mac | NetFeature.status;
  readonly queueSizes = [NET_QUEUE_SIZE, NET_QUEUE_SIZE];
  readonly mac: Uint8Array;
  private readonly config = new Uint8Array(CONFIG_SIZE);
  private readonly backend: NetBackend;
  private readonly log: (message: string) => void;
  private context: VirtioDeviceContext | null = null;
  /** The header size the driver negotiated (NET_HEADER_SIZE, or LEGACY_NET_HEADER_SIZE without VERSION_1). */
  private headerSize = NET_HEADER_SIZE;
  /** Frames from the backend not yet in guest buffers, oldest first. */
  private pending: Uint8Array[] = [];
  /**
   * A receive chain popped for a frame it was too small for. It waits for the next frame rather than going
   * back empty, which Linux would count as a length error.
   */
  private spareChain: DescriptorChain | null = null;
  private dropsLogged = 0;

  constructor(options: VirtioNetOptions) {
    const mac = options.mac ?? DEFAULT_MAC;
    if (mac.length !== MAC_LENGTH) throw new MacAddressError(formatMacAddress(mac), `${mac.length} bytes, not ${MAC_LENGTH}`);
    this.mac = Uint8Array.from(mac);
    this.name = options.id === undefined ? 'virtio-net' : `virtio-net(${options.id})`;
    this.backend = options.backend;
    this.log = options.log ?? ((message) => console.warn(message));
    this.config.set(this.mac, 0);
    new DataView(this.config.buffer).setUint16(MAC_LENGTH, LINK_UP, true);
    this.backend.attach((frame) => this.receive(frame));
  }

  readConfig(offset: number, size: AccessSize): number {
    return offset + size <= CONFIG_SIZE ? readConfigBytes(this.config, offset, size) : 0;
  }

  writeConfig(): void {
    // The MAC is writable only with VIRTIO_NET_F_CTRL_MAC_ADDR, which is not offered.
  }

  activate(context: VirtioDeviceContext): void {
    this.context = context;
    this.headerSize = (context.features & Feature.version1) !== 0n ? NET_HEADER_SIZE : LEGACY_NET_HEADER_SIZE;
    this.deliver();
  }

  notify(index: number): void {
    if (index === TRANSMIT_QUEUE) this.transmit();
    else if (index === RECEIVE_QUEUE) this.deliver();
  }

  reset(): void {
    // Frames queued for the old driver would surprise the next one, and the spare chain belongs to old rings.
    this.context = null;
    this.spareChain = null;
    this.pending = [];
  }

  close(): Promise<void> {
    this.reset();
    this.backend.close?.();
    return Promise.resolve();
  }

  /** Frames held for the guest (for tests and diagnostics). */
  get pendingFrames(): number {
    return this.pending.length;
  }

  /** A frame from the backend; delivered now if the guest has a receive buffer posted. */
  private receive(frame: Uint8Array): void {
    if (this.pending.length >= MAX_PENDING_FRAMES) {
      this.drop(`receive queue full (${MAX_PENDING_FRAMES} frames)`);
      return;
    }
    this.pending.push(frame);
    this.deliver();
  }

  private transmit(): void {
    const context = this.context;
    const queue = context?.queue(TRANSMIT_QUEUE);
    if (context == null || queue == null) return;
    let pushed = false;
    this.guarded(context, () => {
      for (let chain = queue.pop(); chain !== null; chain = queue.pop()) {
        const frameLength = chain.readableLength - this.headerSize;
        if (frameLength < ETHERNET_HEADER_SIZE || frameLength > MAX_TX_FRAME) this.drop(`transmitted frame of ${frameLength} bytes`);
        else this.backend.send(chain.read(this.headerSize, frameLength));
        queue.pushUsed(chain.head, 0);
        pushed = true;
      }
    });
    if (pushed && context.live) context.signalUsed(TRANSMIT_QUEUE);
  }

  /** Moves pending frames into posted receive chains. Runs outside QueueNotify too (from receive()). */
  private deliver(): void {
    const context = this.context;
    const queue = context?.queue(RECEIVE_QUEUE);
    if (context == null || queue == null || this.pending.length === 0) return;
    let pushed = false;
    this.guarded(context, () => {
      let delivered = 0;
      while (delivered < this.pending.length) {
        const chain = this.takeChain(queue);
        if (chain === null) break;
        const frame = this.pending[delivered++]!;
        if (chain.writableLength < this.headerSize + frame.length) {
          this.drop(`a ${frame.length}-byte frame does not fit a ${chain.writableLength}-byte receive buffer`);
          this.spareChain = chain;
          continue;
        }
        chain.write(0, RX_HEADER.subarray(0, this.headerSize));
        chain.write(this.headerSize, frame);
        queue.pushUsed(chain.head, this.headerSize + frame.length);
        pushed = true;
      }
      this.pending.splice(0, delivered);
    });
    if (pushed && context.live) context.signalUsed(RECEIVE_QUEUE);
  }

  private takeChain(queue: Virtqueue): DescriptorChain | null {
    const spare = this.spareChain;
    this.spareChain = null;
    return spare ?? queue.pop();
  }

  /** A malformed ring is the guest's fault: DEVICE_NEEDS_RESET for this device, never an exception. */
  private guarded(context: VirtioDeviceContext, work: () => void): void {
    try {
      work();
    } catch (error) {
      if (!(error instanceof VirtqueueError)) throw error;
      this.pending = [];
      this.spareChain = null;
      context.fail(error.message);
    }
  }

  private drop(reason: string): void {
    // A guest can drop frames on purpose as fast as it likes: a few lines tell the story, more would flood.
    if (this.dropsLogged < 8) this.log(`${this.name}: dropped ${reason}`);
    this.dropsLogged++;
  }
}
