// virtio-balloon (device id 5): the host asks the guest to give back memory by raising num_pages in the
// config space; the guest's driver then allocates that many 4 KiB pages and lists their frame numbers on
// the inflate queue (and on the deflate queue when it takes them back), and reports the count it holds
// in `actual`. With no monitor to ask for a target, the CLI's balloon stays at 0 pages, as QEMU's does
// until `balloon N` is typed; an embedder sets one with setTargetPages. WebAssembly memory cannot be
// handed back to the host's OS, so inflated pages are only counted, not reclaimed: what the device
// gives is the guest driver's protocol, which Linux's virtio_balloon binds to and runs.
import type { AccessSize } from '../device.js';
import { DeviceId } from './constants.js';
import { readConfigBytes, type VirtioDevice, type VirtioDeviceContext } from './device.js';

const INFLATE_QUEUE = 0;
const DEFLATE_QUEUE = 1;
/** struct virtio_balloon_config: num_pages, actual, free_page_hint_cmd_id, poison_val. */
const CONFIG_SIZE = 16;
const CONFIG_NUM_PAGES = 0;
const CONFIG_ACTUAL = 4;
/** Page frame numbers are of 4 KiB pages, whatever the guest's page size (virtio 1.2 §5.5.6). */
export const BALLOON_PAGE_SIZE = 4096;

export interface VirtioBalloonOptions {
  /** Guest RAM (guest-physical): frame numbers outside it are ignored. */
  readonly ram?: { readonly base: number; readonly size: number };
}

export class VirtioBalloon implements VirtioDevice {
  readonly deviceId = DeviceId.balloon;
  readonly name = 'virtio-balloon';
  // No STATS_VQ, DEFLATE_ON_OOM, FREE_PAGE_HINT, PAGE_POISON or PAGE_REPORTING: the two base queues.
  readonly features = 0n;
  readonly queueSizes = [128, 128];
  private readonly config = new Uint8Array(CONFIG_SIZE);
  private readonly view = new DataView(this.config.buffer);
  private context: VirtioDeviceContext | null = null;
  /** Frame numbers the guest has given and not taken back. */
  private readonly inflated = new Set<number>();

  constructor(private readonly options: VirtioBalloonOptions = {}) {}

  /** Pages the host asks the guest to give up (num_pages). */
  get targetPages(): number {
    return this.view.getUint32(CONFIG_NUM_PAGES, true);
  }

  /** Pages the guest says it has given (actual, written by its driver). */
  get actualPages(): number {
    return this.view.getUint32(CONFIG_ACTUAL, true);
  }

  /** Pages on the inflate queue not yet taken back through the deflate queue. */
  get inflatedPages(): number {
    return this.inflated.size;
  }

  /** Asks the guest to hold `pages` 4 KiB pages in the balloon (QEMU's monitor `balloon` command). */
  setTargetPages(pages: number): void {
    if (!Number.isInteger(pages) || pages < 0 || pages > 0xffff_ffff) throw new RangeError(`${this.name}: ${pages} is not a page count`);
    this.view.setUint32(CONFIG_NUM_PAGES, pages, true);
    this.context?.configChanged();
  }

  readConfig(offset: number, size: AccessSize): number {
    return offset + size <= CONFIG_SIZE ? readConfigBytes(this.config, offset, size) : 0;
  }

  writeConfig(offset: number, size: AccessSize, value: number): void {
    // Only `actual` is the driver's to write (a 4-byte store, as Linux's virtio_cwrite does it).
    if (offset === CONFIG_ACTUAL && size === 4) this.view.setUint32(CONFIG_ACTUAL, value >>> 0, true);
  }

  activate(context: VirtioDeviceContext): void {
    this.context = context;
  }

  notify(index: number): void {
    const context = this.context;
    if (context === null || (index !== INFLATE_QUEUE && index !== DEFLATE_QUEUE)) return;
    const queue = context.queue(index);
    if (queue === null) return;
    // A malformed chain throws VirtqueueError out of pop(); the transport fails the device for it.
    let pushed = false;
    for (let chain = queue.pop(); chain !== null; chain = queue.pop()) {
      const frames = chain.read(0, chain.readableLength);
      const view = new DataView(frames.buffer, frames.byteOffset, frames.length);
      for (let at = 0; at + 4 <= frames.length; at += 4) {
        const frame = view.getUint32(at, true);
        if (!this.inRam(frame)) continue;
        if (index === INFLATE_QUEUE) this.inflated.add(frame);
        else this.inflated.delete(frame);
      }
      queue.pushUsed(chain.head, 0);
      pushed = true;
    }
    if (pushed) context.signalUsed(index);
  }

  private inRam(frame: number): boolean {
    const ram = this.options.ram;
    if (ram === undefined) return true;
    const address = frame * BALLOON_PAGE_SIZE;
    return address >= ram.base && address + BALLOON_PAGE_SIZE <= ram.base + ram.size;
  }

  reset(): void {
    this.context = null;
    this.inflated.clear();
    this.view.setUint32(CONFIG_ACTUAL, 0, true);
  }
}
