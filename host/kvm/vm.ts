// One virtual machine: its shared memory, its memory slots, its vCPUs and its in-core irqchip.
import * as layout from '../../assembly/abi/layout.js';
import { instantiateCore, realTimeClock, type CoreExports, type TickClock } from './core.js';
import { MemoryRegionError, VcpuStateError, GuestMemoryError, VmConfigError } from './errors.js';
import { Vcpu } from './vcpu.js';

export interface VmOptions {
  /** Number of vCPUs the VM will have (ids 0..vcpus-1); default 1. */
  readonly vcpus?: number;
  /** The core serves SBI calls from S-mode (no M-mode firmware in the guest), as KVM does. Default false. */
  readonly sbiInCore?: boolean;
  /** Emulate the CLINT and PLIC of the virt board in the core (KVM_CREATE_IRQCHIP). Default true. */
  readonly irqchip?: boolean;
  /** The clock behind mtime, in timebase ticks; default the host's monotonic clock. */
  readonly clock?: TickClock;
  /** Translate hot blocks of guest code to WebAssembly (assembly/jit). Default true. */
  /**
   * Debug the guest (KVM_SET_GUEST_DEBUG with software breakpoints): EBREAK exits to the host ('debug')
   * instead of trapping in the guest, and no code is translated, so breakpoints written into guest code
   * always take effect. Default false.
   */
  readonly guestDebug?: boolean;
  readonly jit?: boolean;
  /** Times a block start runs interpreted before it is translated, 1 to 65535; default JIT_DEFAULT_THRESHOLD. */
  readonly jitThreshold?: number;
  /**
   * Translated blocks compiled together in one module, 1 to JIT_BATCH_MAX (the default). A batch that is
   * not full is compiled once its first block has waited 4 M instructions; 1 compiles every block at once.
   */
  readonly jitBatch?: number;
}

/** What `Vm.setGuestDebug` sets: virtual addresses, as a debugger gives them. */
export interface GuestDebugPoints {
  readonly hardwareBreakpoints?: readonly bigint[];
  readonly watchpoints?: ReadonlyArray<{ readonly address: bigint; readonly length: number; readonly access: 'write' | 'read' | 'access' }>;
}

export interface MemoryRegion {
  readonly slot: number;
  /** Guest-physical start; a multiple of 4 KiB. */
  readonly guestPhysAddr: number;
  /** Length in bytes; a multiple of 4 KiB. 0 deletes the slot. */
  readonly size: number;
  /** Guest writes to a read-only slot become MMIO exits (KVM_MEM_READONLY). */
  readonly readonly?: boolean;
}

interface SlotInfo {
  readonly region: MemoryRegion;
  readonly hostOffset: number;
}

const PAGE = layout.PAGE_SIZE;
/**
 * Times a block start runs interpreted before it is translated, unless VmOptions.jitThreshold says
 * otherwise. Measured on the shared guest (bench/README.md): lower thresholds speed up CPU-bound work a
 * little (guest.mode=bench 7.4 s at 1024, 7.0 s at 256) but cost the kernel's sprawling I/O paths, whose
 * many lukewarm blocks run little faster compiled than interpreted and cost a compile each (dd 4 KiB
 * O_DIRECT writes 10.8 MB/s at 1024, 10.0 at 256, 11.9 interpreted).
 */
export const JIT_DEFAULT_THRESHOLD = 1024;

export class Vm {
  readonly memory: WebAssembly.Memory;
  readonly core: CoreExports;
  readonly vcpuCount: number;
  readonly epochMs: number;
  /**
   * Why the host first failed to compile a module of translated blocks in this instance, if it ever did
   * (a translator bug; the counts are Vcpu.jitStatistics).
   */
  jitCompileError: string | null = null;
  private readonly slots = new Map<number, SlotInfo>();
  private readonly vcpus = new Map<number, Vcpu>();
  private nextHostOffset: number = layout.GUEST_RAM;

  constructor(readonly module: WebAssembly.Module, readonly options: VmOptions) {
    const vcpus = options.vcpus ?? 1;
    if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > layout.MAX_HARTS) {
      throw new VcpuStateError(vcpus, `a VM has 1 to ${layout.MAX_HARTS} vCPUs`);
    }
    this.vcpuCount = vcpus;
    // Options are checked before anything is allocated.
    const threshold = options.jitThreshold ?? JIT_DEFAULT_THRESHOLD;
    if (!Number.isInteger(threshold) || threshold < 1 || threshold > 0xffff) {
      throw new VmConfigError('jitThreshold', `must be a whole number from 1 to 65535, not ${threshold}`);
    }
    const batch = options.jitBatch ?? layout.JIT_BATCH_MAX;
    if (!Number.isInteger(batch) || batch < 1 || batch > layout.JIT_BATCH_MAX) {
      throw new VmConfigError('jitBatch', `must be a whole number from 1 to ${layout.JIT_BATCH_MAX}, not ${batch}`);
    }
    this.memory = new WebAssembly.Memory({
      initial: layout.GUEST_RAM / layout.WASM_PAGE_SIZE,
      maximum: 65536,
      shared: true,
    });
    this.epochMs = performance.timeOrigin + performance.now();
    this.core = instantiateCore(module, this.memory, options.clock ?? realTimeClock(this.epochMs), {
      onError: (message) => {
        this.jitCompileError ??= message;
      },
    });
    let flags = 0;
    if (options.sbiInCore) flags |= layout.MACHINE_FLAG_SBI_IN_CORE;
    if (options.irqchip ?? true) flags |= layout.MACHINE_FLAG_CLINT | layout.MACHINE_FLAG_PLIC;
    // A debugger writes its breakpoints into guest code, which translations made before would not see.
    if ((options.jit ?? true) && !options.guestDebug) flags |= layout.MACHINE_FLAG_JIT;
    if (options.guestDebug) flags |= layout.MACHINE_FLAG_GUEST_DEBUG;
    this.core.initMachine(vcpus, flags);
    new Int32Array(this.memory.buffer)[layout.MACHINE_JIT_THRESHOLD >> 2] = threshold;
    new Int32Array(this.memory.buffer)[layout.MACHINE_JIT_BATCH >> 2] = batch;
  }

  /**
   * KVM_SET_GUEST_DEBUG's hardware breakpoints and watchpoints (up to DEBUG_MAX_BREAKPOINTS and
   * DEBUG_MAX_WATCHPOINTS, as a hart's debug registers): a hart stops ('debug' exit) before running an
   * instruction at a breakpoint's virtual pc, and after an instruction that wrote or read a watched virtual
   * range. Replaces what was set before; only for a VM made with guestDebug.
   */
  setGuestDebug(debug: GuestDebugPoints): void {
    if (!this.options.guestDebug) throw new VmConfigError('guestDebug', 'hardware breakpoints and watchpoints need a VM made with guestDebug: true');
    const breakpoints = debug.hardwareBreakpoints ?? [];
    const watchpoints = debug.watchpoints ?? [];
    if (breakpoints.length > layout.DEBUG_MAX_BREAKPOINTS) {
      throw new VmConfigError('hardwareBreakpoints', `at most ${layout.DEBUG_MAX_BREAKPOINTS}, not ${breakpoints.length}`);
    }
    if (watchpoints.length > layout.DEBUG_MAX_WATCHPOINTS) {
      throw new VmConfigError('watchpoints', `at most ${layout.DEBUG_MAX_WATCHPOINTS}, not ${watchpoints.length}`);
    }
    for (const watch of watchpoints) {
      if (!Number.isSafeInteger(watch.length) || watch.length < 1 || watch.length > 1 << 20) {
        throw new VmConfigError('watchpoints', `a watched range is 1 byte to 1 MiB long, not ${watch.length}`);
      }
    }
    const view = new DataView(this.memory.buffer);
    breakpoints.forEach((pc, i) => view.setBigUint64(layout.MACHINE_DEBUG_BREAKPOINTS + i * 8, BigInt.asUintN(64, pc), true));
    watchpoints.forEach((watch, i) => {
      const at = layout.MACHINE_DEBUG_WATCHPOINTS + i * layout.DEBUG_WATCHPOINT_SIZE;
      view.setBigUint64(at + layout.DEBUG_WATCHPOINT_ADDRESS, BigInt.asUintN(64, watch.address), true);
      view.setBigUint64(at + layout.DEBUG_WATCHPOINT_LENGTH, BigInt(watch.length), true);
      const access = watch.access === 'write' ? layout.DEBUG_WATCH_WRITE : watch.access === 'read' ? layout.DEBUG_WATCH_READ
        : layout.DEBUG_WATCH_WRITE | layout.DEBUG_WATCH_READ;
      view.setInt32(at + layout.DEBUG_WATCHPOINT_ACCESS, access, true);
    });
    view.setInt32(layout.MACHINE_DEBUG_BREAKPOINT_COUNT, breakpoints.length, true);
    view.setInt32(layout.MACHINE_DEBUG_WATCHPOINT_COUNT, watchpoints.length, true);
    // Pages that now hold one must leave the TLB, so that their fetches and accesses reach the slow paths that compare.
    for (const vcpu of this.vcpus.values()) this.core.flushTlb(vcpu.id);
  }

  /** KVM_SET_USER_MEMORY_REGION: backs [guestPhysAddr, +size) with fresh zeroed host memory. */
  setUserMemoryRegion(region: MemoryRegion): void {
    const { slot, guestPhysAddr, size } = region;
    if (!Number.isInteger(slot) || slot < 0 || slot >= layout.MAX_SLOTS) {
      throw new MemoryRegionError(slot, `slot numbers are 0..${layout.MAX_SLOTS - 1}`);
    }
    if (size === 0) {
      this.slots.delete(slot);
      this.writeSlotTable();
      return;
    }
    if (!Number.isSafeInteger(guestPhysAddr) || guestPhysAddr < 0 || guestPhysAddr % PAGE !== 0) {
      throw new MemoryRegionError(slot, `guest-physical address 0x${guestPhysAddr.toString(16)} is not 4 KiB aligned`);
    }
    if (!Number.isSafeInteger(size) || size < 0 || size % PAGE !== 0) {
      throw new MemoryRegionError(slot, `size 0x${size.toString(16)} is not a multiple of 4 KiB`);
    }
    if (this.slots.has(slot)) throw new MemoryRegionError(slot, 'slot is in use (delete it with size 0 first)');
    for (const other of this.slots.values()) {
      const o = other.region;
      if (guestPhysAddr < o.guestPhysAddr + o.size && o.guestPhysAddr < guestPhysAddr + size) {
        throw new MemoryRegionError(slot, `overlaps slot ${o.slot} at 0x${o.guestPhysAddr.toString(16)}`);
      }
    }
    // Each slot is followed by a guard page: a fetch of a 32-bit instruction at a page's last halfword
    // reads two bytes past it before the core sees that it crosses into the next page.
    const hostOffset = this.nextHostOffset;
    const end = hostOffset + size + PAGE;
    const limit = 65536 * layout.WASM_PAGE_SIZE;
    if (end > limit) {
      throw new MemoryRegionError(slot, `not enough WebAssembly memory for ${size} bytes (32-bit address space)`);
    }
    const needPages = Math.ceil(end / layout.WASM_PAGE_SIZE);
    const havePages = this.memory.buffer.byteLength / layout.WASM_PAGE_SIZE;
    if (needPages > havePages) {
      try {
        this.memory.grow(needPages - havePages);
      } catch (error) {
        throw new MemoryRegionError(slot, `cannot grow memory to ${needPages} pages: ${(error as Error).message}`);
      }
    }
    this.nextHostOffset = Math.ceil(end / layout.WASM_PAGE_SIZE) * layout.WASM_PAGE_SIZE;
    this.slots.set(slot, { region, hostOffset });
    this.writeSlotTable();
  }

  private writeSlotTable(): void {
    const view = new DataView(this.memory.buffer);
    let count = 0;
    for (let i = 0; i < layout.MAX_SLOTS; i++) {
      const base = layout.MACHINE_SLOTS + i * layout.SLOT_SIZE;
      const info = this.slots.get(i);
      view.setBigUint64(base + layout.SLOT_GPA, BigInt(info?.region.guestPhysAddr ?? 0), true);
      view.setBigUint64(base + layout.SLOT_LEN, BigInt(info?.region.size ?? 0), true);
      view.setUint32(base + layout.SLOT_HOST, info?.hostOffset ?? 0, true);
      view.setUint32(base + layout.SLOT_FLAGS, info?.region.readonly ? layout.SLOT_FLAG_READONLY : 0, true);
      if (info) count = i + 1;
    }
    view.setInt32(layout.MACHINE_SLOT_COUNT, count, true);
    for (const vcpu of this.vcpus.values()) this.core.flushTlb(vcpu.id);
  }

  /**
   * A view of guest RAM [guestPhysAddr, +length), which must lie inside one slot. Writes through it are
   * visible to the guest (this is how loaders and devices reach guest memory).
   */
  guestMemory(guestPhysAddr: number, length: number): Uint8Array {
    for (const { region, hostOffset } of this.slots.values()) {
      const offset = guestPhysAddr - region.guestPhysAddr;
      if (offset >= 0 && length >= 0 && offset + length <= region.size) {
        return new Uint8Array(this.memory.buffer, hostOffset + offset, length);
      }
    }
    throw new GuestMemoryError(guestPhysAddr, length, 'not inside one RAM slot');
  }

  /** The slots, sorted by guest-physical address. */
  memoryRegions(): MemoryRegion[] {
    return [...this.slots.values()].map((s) => s.region).sort((a, b) => a.guestPhysAddr - b.guestPhysAddr);
  }

  /** KVM_CREATE_VCPU. The vCPU starts in M-mode at pc 0 (set its registers before running it). */
  createVcpu(id: number): Vcpu {
    if (!Number.isInteger(id) || id < 0 || id >= this.vcpuCount) {
      throw new VcpuStateError(id, `this VM has vCPUs 0..${this.vcpuCount - 1}`);
    }
    if (this.vcpus.has(id)) throw new VcpuStateError(id, 'already created');
    const vcpu = new Vcpu(this, id);
    this.vcpus.set(id, vcpu);
    return vcpu;
  }

  /** KVM_IRQ_LINE: drive PLIC source `irq` (1..127) high or low. */
  setIrqLine(irq: number, level: boolean): void {
    this.core.setIrqLevel(irq, level ? 1 : 0);
  }

  /** mtime now, in timebase ticks. */
  mtime(): number {
    return this.core.mtime();
  }

  /**
   * KVM_GET_CLOCK: the guest's time base (mtime) now, exactly. With KVM_SET_CLOCK it lets the VMM hold
   * guest time still while the VM is paused, as QEMU stops its virtual clock.
   */
  getClock(): bigint {
    return BigInt.asUintN(64, BigInt(this.core.mtime()));
  }

  /**
   * KVM_SET_CLOCK: makes mtime read `ticks` now and run on from there, for every hart (the offset it
   * moves is the one guest writes to mtime move, in shared memory). Call it with no hart running, or a
   * hart may read the clock between the two halves of the update.
   */
  setClock(ticks: bigint): void {
    const words = new BigInt64Array(this.memory.buffer, layout.MACHINE_MTIME_OFFSET, 1);
    const drift = ticks - this.getClock();
    words[0] = BigInt.asIntN(64, words[0]! + drift);
  }
}
