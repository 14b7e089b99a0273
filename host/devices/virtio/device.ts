// The interface between the virtio-mmio transport (control plane) and a device model (virtio-blk,
// virtio-rng, virtio-console), like QEMU's VirtioDeviceClass: the model states its id, features, queues
// and config space; the transport negotiates, sets up the rings and calls it when the driver notifies.
import type { AccessSize } from '../device.js';
import type { Virtqueue } from './queue.js';

/** What an active device can do with its transport. Valid from activate() until reset. */
export interface VirtioDeviceContext {
  /** The features the driver accepted (transport bits included). */
  readonly features: bigint;
  /** False once the device was reset or put into DEVICE_NEEDS_RESET: late completions must drop. */
  readonly live: boolean;
  /** Queue `index` if the driver made it ready. */
  queue(index: number): Virtqueue | null;
  /** Used buffers were pushed on queue `index`: interrupt the guest if it asked for one. */
  signalUsed(index: number): void;
  /** The guest broke the protocol: DEVICE_NEEDS_RESET, with `reason` logged. */
  fail(reason: string): void;
  /** The device's config space changed: new ConfigGeneration, config-change interrupt. */
  configChanged(): void;
}

export interface VirtioDevice {
  /** For logs, e.g. "virtio-blk(disk0)". */
  readonly name: string;
  readonly deviceId: number;
  /** Device-specific feature bits offered (the transport adds VERSION_1, EVENT_IDX, INDIRECT_DESC). */
  readonly features: bigint;
  /** Largest size of each queue; the length is the number of queues. */
  readonly queueSizes: readonly number[];
  /** Reads the device config space (offset relative to 0x100). */
  readConfig(offset: number, size: AccessSize): number;
  /** Writes the device config space (most of it is read-only: ignore those writes). */
  writeConfig(offset: number, size: AccessSize, value: number): void;
  /** DRIVER_OK: the driver is ready; the context is how the device reaches its queues. */
  activate(context: VirtioDeviceContext): void;
  /** The driver notified queue `index` (QueueNotify). Only called while active. */
  notify(index: number): void;
  /**
   * Stop: the rings are gone. Resolves once nothing the device started (disk I/O into guest RAM)
   * is still running; until then the transport keeps reporting a non-zero status.
   */
  reset(): void | Promise<void>;
  /** Releases host resources (image files) when the machine goes away. */
  close?(): Promise<void>;
  /**
   * Requests started and not yet completed. While any are in flight a single-threaded VMM keeps its event
   * loop turning, so completions reach a guest that polls its used ring instead of sleeping.
   */
  readonly requestsInFlight?: number;
}

/** Little-endian config-space reads from a byte image of the config structure. */
export function readConfigBytes(bytes: Uint8Array, offset: number, size: AccessSize): number {
  let value = 0;
  for (let i = size - 1; i >= 0; i--) value = value * 256 + (bytes[offset + i] ?? 0);
  return value;
}
