// virtio-console (device id 3) with a single port and no MULTIPORT: receiveq 0 carries input to the
// guest, transmitq 1 its output. Linux names the port hvc0, usable as `console=hvc0`.
import type { AccessSize } from '../device.js';
import { DeviceId } from './constants.js';
import { readConfigBytes, type VirtioDevice, type VirtioDeviceContext } from './device.js';
import { VirtqueueError } from './errors.js';

const RECEIVE_QUEUE = 0;
const TRANSMIT_QUEUE = 1;
/** Input kept while the guest has no receive buffers posted; older bytes are dropped beyond this. */
const MAX_PENDING_INPUT = 64 * 1024;
/** struct virtio_console_config: cols, rows, max_nr_ports, emerg_wr. */
const CONFIG_SIZE = 12;

export interface VirtioConsoleOptions {
  /** Bytes the guest wrote to the port. */
  readonly output: (bytes: Uint8Array) => void;
}

export class VirtioConsole implements VirtioDevice {
  readonly deviceId = DeviceId.console;
  readonly name = 'virtio-console';
  readonly features = 0n;
  readonly queueSizes = [128, 128];
  private readonly config = new Uint8Array(CONFIG_SIZE);
  private context: VirtioDeviceContext | null = null;
  private pending: number[] = [];

  constructor(private readonly options: VirtioConsoleOptions) {}

  readConfig(offset: number, size: AccessSize): number {
    return offset + size <= CONFIG_SIZE ? readConfigBytes(this.config, offset, size) : 0;
  }

  writeConfig(): void {}

  activate(context: VirtioDeviceContext): void {
    this.context = context;
    this.deliver();
  }

  /** Input for the guest (keyboard, a pipe): delivered as receive buffers become available. */
  receive(bytes: Uint8Array): void {
    for (const b of bytes) this.pending.push(b);
    if (this.pending.length > MAX_PENDING_INPUT) this.pending.splice(0, this.pending.length - MAX_PENDING_INPUT);
    this.deliver();
  }

  notify(index: number): void {
    if (index === TRANSMIT_QUEUE) this.transmit();
    else if (index === RECEIVE_QUEUE) this.deliver();
  }

  reset(): void {
    this.context = null;
  }

  private transmit(): void {
    const context = this.context;
    const queue = context?.queue(TRANSMIT_QUEUE);
    if (context == null || queue == null) return;
    let pushed = false;
    for (let chain = queue.pop(); chain !== null; chain = queue.pop()) {
      if (chain.readableLength > 0) this.options.output(chain.read(0, chain.readableLength));
      queue.pushUsed(chain.head, 0);
      pushed = true;
    }
    if (pushed) context.signalUsed(TRANSMIT_QUEUE);
  }

  /** Fills posted receive buffers with pending input. Runs outside QueueNotify too (from receive()). */
  private deliver(): void {
    const context = this.context;
    const queue = context?.queue(RECEIVE_QUEUE);
    if (context == null || queue == null || this.pending.length === 0) return;
    let pushed = false;
    try {
      while (this.pending.length > 0) {
        const chain = queue.pop();
        if (chain === null) break;
        const n = chain.write(0, Uint8Array.from(this.pending.slice(0, chain.writableLength)));
        this.pending.splice(0, n);
        queue.pushUsed(chain.head, n);
        pushed = true;
      }
    } catch (error) {
      if (!(error instanceof VirtqueueError)) throw error;
      context.fail(error.message);
      return;
    }
    if (pushed) context.signalUsed(RECEIVE_QUEUE);
  }
}

/** Linux's /dev/console is the last console= on the command line. */
export function guestConsoleIsHvc(append: string | undefined): boolean {
  const consoles = (append ?? '').split(/\s+/).filter((arg) => arg.startsWith('console='));
  return consoles.length > 0 && consoles[consoles.length - 1]!.startsWith('console=hvc');
}
