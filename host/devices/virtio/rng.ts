// virtio-rng (device id 4): one request queue whose device-writable buffers are filled from the host's
// cryptographic random source (Web Crypto's getRandomValues, in Node and in browsers alike).
import type { AccessSize } from '../device.js';
import { DeviceId } from './constants.js';
import type { VirtioDevice, VirtioDeviceContext } from './device.js';

/** getRandomValues fills at most 65536 bytes per call. */
const RANDOM_CHUNK = 65536;
/** Most bytes one request gets: the spec lets the device write fewer than the buffer holds. */
const MAX_PER_REQUEST = 1 << 20;

export type RandomSource = (bytes: Uint8Array<ArrayBuffer>) => void;

export class VirtioRng implements VirtioDevice {
  readonly deviceId = DeviceId.entropy;
  readonly name = 'virtio-rng';
  readonly features = 0n;
  readonly queueSizes = [64];
  private context: VirtioDeviceContext | null = null;
  // Web Crypto refuses views of shared memory, so random bytes come through an ordinary buffer.
  private readonly scratch = new Uint8Array(RANDOM_CHUNK);

  constructor(private readonly random: RandomSource = (bytes) => crypto.getRandomValues(bytes)) {}

  readConfig(_offset: number, _size: AccessSize): number {
    return 0;
  }

  writeConfig(): void {}

  activate(context: VirtioDeviceContext): void {
    this.context = context;
  }

  notify(index: number): void {
    const context = this.context;
    const queue = context?.queue(index);
    if (context == null || index !== 0 || queue == null) return;
    let pushed = false;
    for (let chain = queue.pop(); chain !== null; chain = queue.pop()) {
      let written = 0;
      for (const part of chain.views('writable', 0, Math.min(chain.writableLength, MAX_PER_REQUEST))) {
        for (let at = 0; at < part.length; at += RANDOM_CHUNK) {
          const n = Math.min(RANDOM_CHUNK, part.length - at);
          const chunk = this.scratch.subarray(0, n);
          this.random(chunk);
          part.set(chunk, at);
          written += n;
        }
      }
      queue.pushUsed(chain.head, written);
      pushed = true;
    }
    if (pushed) context.signalUsed(0);
  }

  reset(): void {
    this.context = null;
  }
}
