// The host's handle on one virtqueue of the core's data plane (assembly/virtio/virtqueue.ts): pop the
// next chain as guest-RAM segments, push completions, ask whether the driver wants an interrupt.
import * as layout from '../../../assembly/abi/layout.js';
import type { Vm } from '../../kvm/vm.js';
import { DescriptorChain, type Segment } from './chain.js';
import { VirtqueueError } from './errors.js';

/** The core's virtqueue exports (see assembly/index.ts). u64 parameters cross as bigint. */
export interface VirtqueueCore {
  virtqConfigure(record: number, num: number, desc: bigint, avail: bigint, used: bigint, features: number): number;
  virtqReset(record: number): void;
  virtqPop(record: number): number;
  virtqPushUsed(record: number, head: number, written: number): number;
  virtqNeedNotify(record: number): number;
}

/** What the virtio layer needs of a VM: its memory and the core's virtqueue functions. */
export interface VirtioMemory {
  readonly memory: WebAssembly.Memory;
  readonly core: VirtqueueCore;
}

export class VirtqueueCoreMissingError extends Error {
  override readonly name = 'VirtqueueCoreMissingError';
  constructor(readonly missing: string) {
    super(`the loaded core has no ${missing} export (rebuild it: npm run build:core)`);
  }
}

const CORE_FUNCTIONS = ['virtqConfigure', 'virtqReset', 'virtqPop', 'virtqPushUsed', 'virtqNeedNotify'] as const;

/** The virtio view of a Vm; fails clearly if build/core.wasm predates the data plane. */
export function virtioMemoryOf(vm: Vm): VirtioMemory {
  const core = vm.core as unknown as Record<string, unknown>;
  for (const name of CORE_FUNCTIONS) {
    if (typeof core[name] !== 'function') throw new VirtqueueCoreMissingError(name);
  }
  return { memory: vm.memory, core: vm.core as unknown as VirtqueueCore };
}

/** Ring addresses and size the driver wrote into the transport. */
export interface QueueSetup {
  readonly size: number;
  readonly desc: bigint;
  readonly driver: bigint;
  readonly device: bigint;
  readonly eventIdx: boolean;
  readonly indirect: boolean;
}

export class Virtqueue {
  private constructor(
    private readonly vmem: VirtioMemory,
    /** The core's queue record. */
    readonly record: number,
    /** The queue's index on its device (for messages). */
    readonly index: number,
    readonly size: number,
  ) {}

  /** Configures the core's record; throws VirtqueueError when the rings are unusable. */
  static configure(vmem: VirtioMemory, record: number, index: number, setup: QueueSetup): Virtqueue {
    const features = (setup.eventIdx ? layout.VIRTQ_FEATURE_EVENT_IDX : 0) | (setup.indirect ? layout.VIRTQ_FEATURE_INDIRECT : 0);
    const rc = vmem.core.virtqConfigure(record, setup.size, setup.desc, setup.driver, setup.device, features);
    if (rc !== 0) throw new VirtqueueError(rc, index, readDetail(vmem.memory, record));
    return new Virtqueue(vmem, record, index, setup.size);
  }

  /** The next available chain, or null when there is none. Throws VirtqueueError on a malformed one. */
  pop(): DescriptorChain | null {
    const head = this.vmem.core.virtqPop(this.record);
    if (head === layout.VIRTQ_EMPTY) return null;
    if (head < 0) throw new VirtqueueError(head, this.index, readDetail(this.vmem.memory, this.record));
    // Words, not a DataView and BigInts: a 1 MiB request has ~256 segments (pop took ~10 µs that way, ~5.5 now).
    const words = this.words();
    const count = words[layout.VIRTQ_CHAIN_COUNT >> 2]!;
    const readableCount = words[layout.VIRTQ_CHAIN_READABLE >> 2]!;
    const readable: Segment[] = [];
    const writable: Segment[] = [];
    for (let i = 0; i < count; i++) {
      const at = (layout.VIRTQ_CHAIN_SEGMENTS + i * layout.VIRTQ_SEGMENT_SIZE) >> 2;
      const segment = {
        host: words[at + (layout.VIRTQ_SEG_HOST >> 2)]!,
        length: words[at + (layout.VIRTQ_SEG_LEN >> 2)]!,
        gpa: words[at + (layout.VIRTQ_SEG_GPA >> 2)]! + words[at + (layout.VIRTQ_SEG_GPA >> 2) + 1]! * 2 ** 32,
      };
      (i < readableCount ? readable : writable).push(segment);
    }
    return new DescriptorChain(this.vmem.memory, head, readable, writable);
  }

  private cachedWords: Uint32Array | null = null;

  /** The VM's memory as 32-bit words (made again only if the memory's buffer changes). */
  private words(): Uint32Array {
    const buffer = this.vmem.memory.buffer;
    if (this.cachedWords === null || this.cachedWords.buffer !== buffer) this.cachedWords = new Uint32Array(buffer);
    return this.cachedWords;
  }

  /** Returns chain `head` to the driver with `written` bytes filled in. */
  pushUsed(head: number, written: number): void {
    const rc = this.vmem.core.virtqPushUsed(this.record, head, written >>> 0);
    if (rc !== 0) throw new VirtqueueError(rc, this.index, BigInt(head));
  }

  /** Whether the driver asked for an interrupt for the chains pushed since the last call. */
  needsInterrupt(): boolean {
    return this.vmem.core.virtqNeedNotify(this.record) === 1;
  }

  /** Releases the core's record (device reset). */
  reset(): void {
    this.vmem.core.virtqReset(this.record);
  }
}

function readDetail(memory: WebAssembly.Memory, record: number): bigint {
  const at = layout.VIRTQ_RECORDS + record * layout.VIRTQ_RECORD_SIZE + layout.VIRTQ_ERROR_DETAIL;
  return new DataView(memory.buffer).getBigUint64(at, true);
}
