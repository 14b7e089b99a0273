// The `virt` machine: builds a VM like QEMU's `-M virt` (memory map in memmap.ts), loads firmware, kernel,
// initrd and device tree, and runs the vCPU until the guest powers off. Read it top to bottom from
// `VirtMachine.create` and `run`, kvmtool style.
import * as layout from '../../assembly/abi/layout.js';
import { loaderDataBytes, type GenericLoader } from './generic_loader.js';
import { Hypervisor } from '../kvm/hypervisor.js';
import { CORE_ISA, isaExtensionsMissing } from '../kvm/isa.js';
import type { Vm } from '../kvm/vm.js';
import type { Vcpu } from '../kvm/vcpu.js';
import type { DebugHit, VcpuExit } from '../kvm/exits.js';
import type { IrqLine } from '../devices/device.js';
import { Uart16550, GoldfishRtc, SifiveTest } from '../devices/legacy/index.js';
import { PciHostBridge, PciRootBus, PCI_INTX_LINES } from '../devices/pci/index.js';
import { ByteQueue } from '../devices/legacy/byte_queue.js';
import { VirtioMmioTransport } from '../devices/virtio/transport.js';
import { VirtioPciTransport } from '../devices/virtio/pci.js';
import type { VirtioDevice } from '../devices/virtio/device.js';
import { virtioMemoryOf, type VirtioMemory } from '../devices/virtio/queue.js';
import { guestConsoleIsHvc } from '../devices/virtio/console.js';
import { monotonicWallClock } from '../devices/legacy/goldfish_rtc.js';
import { blockIoSubmitted, performBlockIoHere, pollBlockIo, setBlockIoSpin } from '../block/io_hooks.js';
import { MmioBus } from './bus.js';
import { HtifPage } from './htif.js';
import { DRAM_BASE, KERNEL_LOAD_OFFSET, VIRT_IRQ, VIRT_MAX_HARTS, VIRT_MEMMAP, VIRT_PCI_WINDOWS, VIRT_VIRTIO_COUNT, virtioMmioSlot } from './memmap.js';
import type { SmpRunner } from './smp_runner.js';
import { describeExit, FaultLoopDetector, type DebugLog } from './diagnostics.js';
import { buildVirtDeviceTree } from './fdt/virt_tree.js';
import { parseFdt, type FdtTree } from './fdt/reader.js';
import { ensureChild, fdtString, fdtU64, serializeFdt } from './fdt/edit.js';
import { isElf, parseElf, type ElfImage } from './loader/elf.js';
import { parseLinuxImage, describeForeignKernel, checkKernelPlausible } from './loader/linux_image.js';
import { LoadError } from './loader/errors.js';
import { handleSbiExit } from './sbi_console.js';
import { yieldToEventLoop } from './event_loop.js';
import type { ControlledMachine, RunControl } from './run_control.js';

export interface ConsoleBackend {
  /** Bytes the guest wrote to its console. */
  write(bytes: Uint8Array): void;
}

/**
 * A file to load: a path (read with node:fs), or bytes the caller already holds (a browser page that
 * fetched them), with the name errors give it.
 */
export type BootInput = string | { readonly name: string; readonly bytes: Uint8Array };

export interface VirtMachineConfig {
  /** Guest RAM in bytes (-m). */
  readonly memoryBytes: number;
  /** Number of harts (-smp). */
  readonly smp?: number;
  /** 'none' (no firmware: an ELF runs in M-mode, a Linux Image in S-mode with the SBI in the core) or a firmware file (-bios). */
  readonly bios: 'none' | BootInput;
  readonly kernel?: BootInput;
  readonly initrd?: BootInput;
  readonly append?: string;
  /** A device-tree blob to pass instead of the generated one (-dtb). */
  readonly dtb?: BootInput;
  readonly console: ConsoleBackend;
  /** Instructions per vCPU run() slice. */
  readonly sliceInstructions?: number;
  /** Added to the host's UTC time for what the RTC reads (-rtc base=); default 0. */
  readonly rtcOffsetNs?: bigint;
  /** The harts' `riscv,isa` in the generated device tree (-cpu); default the core's, CORE_ISA. */
  readonly isa?: string;
  /**
   * The virtio-mmio transports' legacy (version 1) interface, QEMU's -global virtio-mmio.force-legacy=true
   * (its default; wkvm's is version 2): for guests written against it, as xv6-riscv before 2021.
   */
  readonly virtioMmioLegacy?: boolean;
  /** QEMU's generic loaders (-device loader): files and values put into memory, and pcs set, after everything else is loaded. */
  readonly loaders?: readonly GenericLoader[];
  /**
   * A debugger driving the boot hart (the CLI's gdb stub): the VM is made with guestDebug (EBREAK exits,
   * nothing translated) and the run loop asks it before each slice whether to run, step or wait.
   * Only with one hart.
   */
  readonly debugger?: GuestDebugger;
  /**
   * The VM's run state (the monitor's stop/cont/system_reset/quit): the machine attaches to it while it
   * runs, holds its harts between slices while it is paused, and starts held if it is.
   */
  readonly runControl?: RunControl;
  /** Translate hot guest code to WebAssembly (-accel tcg,jit=on|off); default on. */
  readonly jit?: boolean;
  /** Times a block start runs interpreted before it is translated (-accel tcg,jit-threshold=N). */
  readonly jitThreshold?: number;
  /** QEMU `-d` items: `exits` traces every exit. */
  readonly debug?: readonly string[];
  /** Where diagnostics go (default: stderr). */
  readonly log?: DebugLog;
  readonly hypervisor?: Hypervisor;
}

/** How a run ended: the guest powered off (with an exit status) or asked for a reset. */
export type MachineOutcome = { readonly kind: 'poweroff'; readonly status: number } | { readonly kind: 'reset' };

/** An unrecoverable VM error (internal error of the core, a guest that cannot continue). */
export class MachineError extends Error {
  constructor(message: string, readonly pc?: bigint) {
    super(message);
    this.name = 'MachineError';
  }
}

const MiB = 1024 * 1024;
/** The harts' ISA as the device tree states it: the core's. */
export const VIRT_ISA = CORE_ISA;
const DEFAULT_SLICE = 1_000_000;
/** Slices under a debugger: short, so gdb's Ctrl-C stops the hart promptly. */
const DEBUG_SLICE = 10_000;

/** How the run loop and a debugger of the boot hart take turns (see VirtMachineConfig.debugger). */
export interface GuestDebugger {
  /** Resolves when the hart may run: 'continue' for a slice, 'step' for one instruction. Waits while the debugger holds it. */
  nextRun(): Promise<'continue' | 'step'>;
  /**
   * The hart stopped: at a breakpoint or watchpoint (`hit` says which kind), after a step, or because the
   * debugger asked (interruptRequested).
   */
  stopped(reason: 'breakpoint' | 'step' | 'interrupt', hit?: DebugHit): void;
  /** The debugger wants the running hart stopped (gdb's Ctrl-C). */
  readonly interruptRequested: boolean;
  /** The guest powered off or reset. */
  ended(outcome: MachineOutcome): void;
}

/**
 * A -dtb blob with the command line and the initrd's place put into its /chosen, as QEMU does with one:
 * whoever dumped it had another -append, or none, and the initrd lands where this machine puts it.
 * Unchanged when there is neither.
 */
function withBootChoices(tree: FdtTree, blob: Uint8Array, append: string | undefined, initrd: { start: number; end: number } | undefined): Uint8Array {
  if ((append ?? '') === '' && initrd === undefined) return blob;
  const chosen = ensureChild(tree.root, 'chosen');
  if (append !== undefined && append !== '') chosen.properties.set('bootargs', fdtString(append));
  if (initrd !== undefined) {
    chosen.properties.set('linux,initrd-start', fdtU64(initrd.start));
    chosen.properties.set('linux,initrd-end', fdtU64(initrd.end));
  }
  return serializeFdt(tree);
}

/**
 * A device tree given with -dtb may promise the guest extensions this CPU lacks (QEMU's names `h`): the
 * guest then takes illegal-instruction traps where it uses them (Linux's KVM module oopses at boot), so
 * say so up front. Reads the older `riscv,isa` string and the newer `riscv,isa-extensions` list.
 */
function warnOfMissingExtensions(tree: FdtTree, name: string, log: DebugLog): void {
  const missing = new Set<string>();
  for (const cpu of tree.root.find('/cpus')?.children ?? []) {
    if (cpu.string('device_type') !== 'cpu') continue;
    const isa = cpu.has('riscv,isa-extensions')
      ? [cpu.string('riscv,isa-base') ?? 'rv64', ...(cpu.strings('riscv,isa-extensions') ?? [])].join('_')
      : cpu.string('riscv,isa');
    if (isa !== undefined) isaExtensionsMissing(isa).forEach((extension) => missing.add(extension));
  }
  if (missing.size > 0) {
    log(`warning: ${name}: the device tree's harts have ${[...missing].join(', ')}, which this CPU does not implement (a guest that uses them takes illegal-instruction traps)`);
  }
}

/**
 * The device tree wkvm gives a `virt` guest: the board's harts, RAM and devices, the command line and
 * initrd, and, as QEMU (7.1 and later) passes, 32 random bytes in /chosen/rng-seed, so the guest's RNG
 * is ready early in boot instead of waiting for entropy.
 */
export function boardDeviceTree(options: {
  smp: number; memoryBytes: number; append?: string; initrd?: { start: number; end: number }; isa?: string;
}): Uint8Array {
  return buildVirtDeviceTree({
    numHarts: options.smp, memoryBytes: options.memoryBytes, bootargs: options.append, initrd: options.initrd, isa: options.isa ?? VIRT_ISA,
    rngSeed: crypto.getRandomValues(new Uint8Array(32)),
  });
}
/** How long the VMM may run guest code before letting the event loop (console input, timers) in. */
const EVENT_LOOP_INTERVAL_MS = 15;
/**
 * The slice while device I/O is in flight (~0.1–0.3 ms of guest time): between such slices the loop
 * lets the event loop deliver completions, so a guest that polls its used ring (U-Boot, a spinning
 * driver) does not wait EVENT_LOOP_INTERVAL_MS for each one.
 */
const IO_WAIT_SLICE = 30_000;
/**
 * How long a halted hart with device I/O in flight has the VMM poll the event loop for the completion
 * before it sleeps (QEMU's poll-max-ns). A core that blocks goes idle, and waking it costs tens of µs on
 * a virtual machine: a 4 KiB read round trip through the thread pool took ~107 µs blocked and ~69 µs
 * polled here (host loop with 300 µs of work between reads).
 */
const IO_POLL_MS = 0.2;
/** While polling: the longest stretch without an event-loop turn, and the microtask turns a completion may take. */
const EVENT_LOOP_TURN_MS = 0.02;
const SETTLE_MICROTASKS = 64;
/** Input the SBI console holds for a guest that does not read it (its console is a virtio port). */
const SBI_CONSOLE_INPUT_LIMIT = 64 * 1024;

/** QEMU's `struct fw_dynamic_info` for OpenSBI fw_dynamic: magic "OSBI", version 2. */
const FW_DYNAMIC_MAGIC = 0x4942534fn;

export class VirtMachine implements ControlledMachine {
  readonly bus = new MmioBus();
  readonly uart: Uart16550;
  readonly rtc: GoldfishRtc;
  readonly finisher: SifiveTest;
  private outcome: MachineOutcome | null = null;
  private wake: (() => void) | null = null;
  /** Counts kick() calls: a poll that sees it change knows a device raised an interrupt. */
  private kicks = 0;
  private consoleBuffer: number[] = [];
  /** Console input for the SBI console (legacy getchar, DBCN read) when the core is the SBI. */
  private readonly sbiConsoleInput = new ByteQueue();
  /** The eight virtio-mmio transports, slot 0 (0x10001000) first; devices are plugged in by attachVirtioDevices. */
  readonly virtioSlots: readonly VirtioMmioTransport[];
  /** Bus 0 of the PCIe host: the host bridge in slot 0, virtio-pci devices as plugVirtioPci puts them. */
  readonly pciBus: PciRootBus;
  private readonly virtioPciTransports: VirtioPciTransport[] = [];
  private readonly virtioMemory: VirtioMemory;
  private consoleInputHandler: ((bytes: Uint8Array) => void) | null = null;
  /** The guest's console (the last console= of the command line) is an hvc device, not the UART. */
  private readonly consoleIsHvc: boolean;
  private rtcTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly wallClock: () => bigint;

  /** The device tree the guest is given (generated, or -dtb's), as loaded into RAM. */
  deviceTree: Uint8Array = new Uint8Array(0);

  /** The boot hart (hart 0). */
  readonly vcpu: Vcpu;
  private smp: SmpRunner | null = null;

  private constructor(
    readonly config: VirtMachineConfig,
    readonly vm: Vm,
    readonly vcpus: readonly Vcpu[],
  ) {
    this.vcpu = vcpus[0]!;
    this.wallClock = monotonicWallClock(config.rtcOffsetNs ?? 0n);
    this.consoleIsHvc = guestConsoleIsHvc(config.append);
    // -d guest_errors: a guest's wrong device accesses are logged, as QEMU's LOG_GUEST_ERROR.
    const onGuestError = config.debug?.includes('guest_errors') ? (message: string) => this.log(`guest error: ${message}`) : undefined;
    this.uart = new Uart16550({ irq: this.irqLine(VIRT_IRQ.uart0), onTransmit: (b) => this.consoleBuffer.push(b), onGuestError });
    this.rtc = new GoldfishRtc({
      irq: this.irqLine(VIRT_IRQ.rtc), clock: this.wallClock, onDeadlineChange: (ns) => this.scheduleRtcAlarm(ns), onGuestError,
    });
    this.finisher = new SifiveTest({
      onGuestError,
      onSystemEvent: (event) => {
        this.outcome = event.type === 'poweroff' ? { kind: 'poweroff', status: event.status } : { kind: 'reset' };
      },
    });
    this.bus.register(VIRT_MEMMAP.uart0.base, this.uart);
    this.bus.register(VIRT_MEMMAP.rtc.base, this.rtc);
    this.bus.register(VIRT_MEMMAP.test.base, this.finisher);
    // The PCIe host, as QEMU's gpex: configuration space, the I/O and two memory windows BARs decode in
    // (bus addresses: I/O from 0, memory equal to CPU addresses), INTA..INTD on four PLIC sources.
    this.pciBus = new PciRootBus({
      intx: Array.from({ length: PCI_INTX_LINES }, (_, line) => this.deviceIrqLine(VIRT_IRQ.pcie0 + line)),
    });
    this.pciBus.plug(0, new PciHostBridge());
    this.pciBus.mapWindows(this.bus, VIRT_PCI_WINDOWS);
    // QEMU's virt always has its eight virtio-mmio transports; unused ones answer with device id 0.
    const virtioMemory = virtioMemoryOf(vm);
    this.virtioMemory = virtioMemory;
    this.virtioSlots = Array.from({ length: VIRT_VIRTIO_COUNT }, (_, slot) => {
      const { base, irq } = virtioMmioSlot(slot);
      const line = this.deviceIrqLine(irq);
      // Its line is the core PLIC's source virtio0 + slot, so the core may serve its interrupt registers.
      const transport = new VirtioMmioTransport({ slot, memory: virtioMemory, irq: line, inCoreInterrupt: true, legacy: config.virtioMmioLegacy ?? false });
      this.bus.register(base, transport);
      return transport;
    });
  }

  static async create(config: VirtMachineConfig): Promise<VirtMachine> {
    const smp = config.smp ?? 1;
    if (!Number.isInteger(smp) || smp < 1 || smp > VIRT_MAX_HARTS) throw new MachineError(`-smp ${smp}: the virt machine has 1 to ${VIRT_MAX_HARTS} harts`);
    if (config.memoryBytes < 16 * MiB) throw new MachineError(`-m ${config.memoryBytes / MiB}M: the virt machine needs at least 16 MiB of RAM`);
    if (config.memoryBytes % 4096 !== 0) throw new MachineError('-m: RAM size must be a whole number of 4 KiB pages');
    // Guest RAM lives in one 32-bit WebAssembly memory after the core's own state (and a guard page).
    const maxRamMiB = Math.floor((65536 * layout.WASM_PAGE_SIZE - layout.GUEST_RAM - 4096) / MiB);
    if (config.memoryBytes > maxRamMiB * MiB) {
      throw new MachineError(`-m ${config.memoryBytes / MiB}M: wkvm gives a guest at most ${maxRamMiB}M of RAM (one 32-bit WebAssembly memory)`);
    }
    const loaders = config.loaders ?? [];
    if (config.kernel === undefined && config.bios === 'none' && loaders.length === 0) {
      throw new MachineError('no kernel given (-kernel FILE), no firmware (-bios none) and nothing for -device loader');
    }
    for (const loader of loaders) {
      if (loader.kind !== 'data' && loader.cpu !== undefined && loader.cpu >= smp) {
        throw new MachineError(`-device loader: cpu-num=${loader.cpu}, but the machine has ${smp} hart${smp === 1 ? '' : 's'}`);
      }
    }

    const kernelBytes = config.kernel !== undefined ? await readInput(config.kernel, 'kernel') : null;
    const biosBytes = config.bios !== 'none' ? await readInput(config.bios, 'firmware') : null;
    const initrdBytes = config.initrd !== undefined ? await readInput(config.initrd, 'initrd') : null;
    const dtbBytes = config.dtb !== undefined ? await readInput(config.dtb, 'device tree') : null;
    const kernelName = inputName(config.kernel);
    const biosName = config.bios === 'none' ? 'none' : inputName(config.bios);
    const initrdName = inputName(config.initrd);

    let elf: ElfImage | null = null;
    let linux = null;
    if (kernelBytes !== null) {
      const foreign = describeForeignKernel(kernelBytes, kernelName);
      if (foreign) throw foreign;
      if (!isElf(kernelBytes)) checkKernelPlausible(kernelBytes, kernelName);
      if (isElf(kernelBytes)) elf = parseElf(kernelBytes, kernelName);
      else linux = parseLinuxImage(kernelBytes);
    }
    // Firmware-less Linux is a KVM-style guest: S-mode, SBI served by the core.
    const sbiInCore = biosBytes === null && linux !== null;

    const hypervisor = config.hypervisor ?? (await Hypervisor.create());
    if (config.debugger !== undefined && smp > 1) throw new MachineError(`the gdb stub debugs one hart: give -smp 1, not ${smp}`);
    const vm = hypervisor.createVm({ vcpus: smp, sbiInCore, jit: config.jit, jitThreshold: config.jitThreshold, guestDebug: config.debugger !== undefined });
    const vcpus = Array.from({ length: smp }, (_, id) => vm.createVcpu(id));
    const machine = new VirtMachine(config, vm, vcpus);
    machine.mapRam(elf);

    const ramEnd = DRAM_BASE + config.memoryBytes;
    let entry = DRAM_BASE;
    let kernelStart = DRAM_BASE;
    let kernelEnd = DRAM_BASE;
    if (biosBytes !== null) {
      if (isElf(biosBytes)) {
        const fw = parseElf(biosBytes, biosName);
        machine.loadElf(fw, biosName);
        entry = fw.entry;
      } else {
        machine.loadBytes(DRAM_BASE, biosBytes, biosName);
      }
    }
    if (kernelBytes !== null) {
      if (elf !== null) {
        machine.loadElf(elf, kernelName);
        kernelStart = Math.min(...elf.segments.map((s) => s.paddr));
        kernelEnd = Math.max(...elf.segments.map((s) => s.paddr + s.memSize));
        if (biosBytes === null) entry = elf.entry;
      } else {
        const offset = linux !== null ? linux.textOffset || KERNEL_LOAD_OFFSET : biosBytes !== null ? KERNEL_LOAD_OFFSET : 0;
        kernelStart = DRAM_BASE + offset;
        kernelEnd = kernelStart + Math.max(kernelBytes.length, linux?.imageSize ?? 0);
        machine.loadBytes(kernelStart, kernelBytes, kernelName);
        if (biosBytes === null) entry = kernelStart;
      }
    }
    // The initrd goes where QEMU puts it: past the kernel by half the RAM, at most 128 MiB.
    let initrd: { start: number; end: number } | undefined;
    if (initrdBytes !== null) {
      const start = Math.max(kernelEnd, kernelStart + Math.min(config.memoryBytes / 2, 128 * MiB));
      const alignedStart = Math.ceil(start / 4096) * 4096;
      if (alignedStart + initrdBytes.length > ramEnd - 4 * MiB) {
        throw new LoadError(initrdName, `initrd of ${initrdBytes.length} bytes does not fit in ${config.memoryBytes / MiB} MiB of RAM`);
      }
      machine.loadBytes(alignedStart, initrdBytes, initrdName);
      initrd = { start: alignedStart, end: alignedStart + initrdBytes.length };
    }
    let dtb: Uint8Array;
    if (dtbBytes !== null) {
      let tree: FdtTree;
      try {
        tree = parseFdt(dtbBytes);
      } catch (error) {
        throw new LoadError(inputName(config.dtb), `not a valid device-tree blob: ${(error as Error).message}`);
      }
      warnOfMissingExtensions(tree, inputName(config.dtb), config.log ?? ((line) => console.error(`wkvm: ${line}`)));
      dtb = withBootChoices(tree, dtbBytes, config.append, initrd);
    } else {
      dtb = boardDeviceTree({ smp, memoryBytes: config.memoryBytes, append: config.append, initrd, isa: config.isa });
    }
    // QEMU places the DTB at the top of RAM (below 3 GiB), 2 MiB aligned.
    const dtbAddr = Math.floor((Math.min(ramEnd, 3072 * MiB) - dtb.length) / (2 * MiB)) * (2 * MiB);
    if (dtbAddr < kernelEnd) throw new MachineError('RAM is too small to hold the kernel and the device tree');
    machine.loadBytes(dtbAddr, dtb, 'device tree');
    machine.deviceTree = dtb;

    // Reset state, as QEMU's reset vector leaves it: a0 = hart id, a1 = DTB, a2 = fw_dynamic info. With
    // firmware every hart starts at the entry (OpenSBI picks the boot hart); without, only hart 0 runs
    // and the kernel starts the others through SBI HSM.
    let infoAddr = 0;
    if (biosBytes !== null) {
      infoAddr = dtbAddr - 64;
      const info = new DataView(new ArrayBuffer(48));
      info.setBigUint64(0, FW_DYNAMIC_MAGIC, true);
      info.setBigUint64(8, 2n, true); // version
      info.setBigUint64(16, BigInt(kernelStart), true); // next_addr
      info.setBigUint64(24, 1n, true); // next_mode: S
      info.setBigUint64(32, 0n, true); // options
      info.setBigUint64(40, 0n, true); // boot_hart
      machine.loadBytes(infoAddr, new Uint8Array(info.buffer), 'fw_dynamic info');
    }
    for (const vcpu of vcpus) {
      vcpu.reset(BigInt(entry), vcpu.id === 0 || !sbiInCore);
      const regs = vcpu.getRegs();
      regs.x[10] = BigInt(vcpu.id);
      regs.x[11] = BigInt(dtbAddr);
      regs.x[12] = BigInt(infoAddr);
      vcpu.setRegs(regs);
      if (sbiInCore) vcpu.enterSupervisor();
    }
    await machine.applyLoaders(loaders);
    return machine;
  }

  private irqLine(irq: number): IrqLine {
    return { set: (level: boolean) => this.vm.setIrqLine(irq, level) };
  }

  /** The line of a device that completes I/O asynchronously: its interrupt must wake a hart sleeping in WFI. */
  private deviceIrqLine(irq: number): IrqLine {
    return { set: (level) => { this.vm.setIrqLine(irq, level); if (level) this.kick(); } };
  }

  /**
   * Puts `device` on the PCIe bus behind a virtio-pci transport: in `slot` (-device addr=), else in the
   * first free one, as QEMU places it. Returns the slot; throws PciSlotError when the slot is taken.
   */
  plugVirtioPci(device: VirtioDevice, options: { slot?: number; log?: (message: string) => void } = {}): number {
    const slot = this.pciBus.freeSlot(options.slot, device.name);
    const transport = new VirtioPciTransport({
      slot, memory: this.virtioMemory, intx: this.pciBus.interruptPin(slot), device, log: options.log,
    });
    this.pciBus.plug(slot, transport);
    this.virtioPciTransports.push(transport);
    return slot;
  }

  /** Guest RAM as one slot; when the ELF has `tohost`, its page is a read-only slot of its own (see htif.ts). */
  private mapRam(elf: ElfImage | null): void {
    const size = this.config.memoryBytes;
    const tohost = elf?.symbols.get('tohost');
    if (tohost === undefined || tohost < DRAM_BASE || tohost >= DRAM_BASE + size) {
      this.vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: DRAM_BASE, size });
      return;
    }
    const page = Math.floor(tohost / 4096) * 4096;
    const fromhost = elf!.symbols.get('fromhost');
    const fromhostOffset = fromhost !== undefined && fromhost >= page && fromhost + 8 <= page + 4096 ? fromhost - page : null;
    if (page > DRAM_BASE) this.vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: DRAM_BASE, size: page - DRAM_BASE });
    this.vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: page, size: 4096, readonly: true });
    const after = page + 4096;
    if (after < DRAM_BASE + size) this.vm.setUserMemoryRegion({ slot: 2, guestPhysAddr: after, size: DRAM_BASE + size - after });
    const htif = new HtifPage(this.vm.guestMemory(page, 4096), tohost - page, fromhostOffset, (event) => {
      if (event.type === 'exit') this.outcome = { kind: 'poweroff', status: event.status };
      else this.consoleBuffer.push(event.byte);
    });
    this.bus.register(page, htif);
  }

  /**
   * -device loader, in command-line order and after the firmware, kernel and device tree, so a loader may
   * patch any of them; a loader with cpu-num= then sets that hart's pc (a file's: an ELF's entry, else addr=).
   */
  private async applyLoaders(loaders: readonly GenericLoader[]): Promise<void> {
    for (const loader of loaders) {
      let pc: number;
      if (loader.kind === 'data') {
        this.loadBytes(loader.addr, loaderDataBytes(loader), `-device loader,addr=0x${loader.addr.toString(16)}`);
        continue;
      } else if (loader.kind === 'pc') {
        pc = loader.addr;
      } else {
        const name = inputName(loader.file);
        const bytes = await readInput(loader.file, 'loader file');
        if (!loader.forceRaw && isElf(bytes)) {
          const elf = parseElf(bytes, name);
          this.loadElf(elf, name);
          pc = elf.entry;
        } else {
          if (loader.addr === undefined) throw new LoadError(name, '-device loader: a file that is not ELF needs addr= (or it is an ELF and force-raw=on was given)');
          this.loadBytes(loader.addr, bytes, name);
          pc = loader.addr;
        }
      }
      if (loader.cpu !== undefined) this.vcpus[loader.cpu]!.setRegs({ pc: BigInt(pc) });
    }
  }

  private loadElf(elf: ElfImage, path: string): void {
    for (const segment of elf.segments) {
      const image = new Uint8Array(segment.memSize);
      image.set(segment.data);
      this.loadBytes(segment.paddr, image, path);
    }
  }

  /** Copies `bytes` into guest-physical memory (which may span several slots). */
  loadBytes(addr: number, bytes: Uint8Array, what: string): void {
    let done = 0;
    while (done < bytes.length) {
      const at = addr + done;
      const region = this.vm.memoryRegions().find((r) => at >= r.guestPhysAddr && at < r.guestPhysAddr + r.size);
      if (region === undefined) {
        throw new LoadError(what, `${bytes.length} bytes at 0x${addr.toString(16)} do not fit in guest RAM ` +
          `(0x${DRAM_BASE.toString(16)}..0x${(DRAM_BASE + this.config.memoryBytes).toString(16)})`);
      }
      const n = Math.min(bytes.length - done, region.guestPhysAddr + region.size - at);
      this.vm.guestMemory(at, n).set(bytes.subarray(done, done + n));
      done += n;
    }
  }

  /** The RTC owns no timer: the VMM ticks it when its alarm is due. */
  private scheduleRtcAlarm(deadlineNs: bigint | null): void {
    if (this.rtcTimer !== null) clearTimeout(this.rtcTimer);
    this.rtcTimer = null;
    if (deadlineNs === null) return;
    const ms = Number(deadlineNs - this.wallClock()) / 1e6;
    this.rtcTimer = setTimeout(() => {
      this.rtcTimer = null;
      this.rtc.tick();
      this.kick();
    }, Math.max(0, Math.min(ms, 2 ** 31 - 1)));
    this.rtcTimer.unref?.();
  }

  /**
   * Feeds console input to what the guest's console reads: the UART for console=ttyS*. For console=hvc*
   * that is either the SBI console (hvc0 in kernels built with HVC_RISCV_SBI; read through our SBI, or
   * through the firmware's, which polls the UART) or a virtio console port (hvc0 or hvc1 depending on that
   * option): both get the bytes, and the one the guest has not opened leaves them unread.
   */
  consoleInput(bytes: Uint8Array): void {
    if (!this.consoleIsHvc) {
      this.uart.receive(bytes);
    } else {
      if (this.vm.options.sbiInCore) {
        if (this.sbiConsoleInput.length + bytes.length <= SBI_CONSOLE_INPUT_LIMIT) this.sbiConsoleInput.push(bytes);
      } else {
        this.uart.receive(bytes);
      }
      this.consoleInputHandler?.(bytes);
    }
    this.kick();
  }

  /** Sends console input elsewhere than the UART, e.g. to virtio-console when the guest console is hvc0. */
  routeConsoleInput(handler: ((bytes: Uint8Array) => void) | null): void {
    this.consoleInputHandler = handler;
  }

  /** Wakes the run loop if it sleeps in WFI. */
  kick(): void {
    this.kicks++;
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Asks the run loop to stop as if the guest had powered off with `status`. */
  stop(status: number): void {
    this.endRun({ kind: 'poweroff', status });
  }

  // ControlledMachine: how the run state (run_control.ts) drives this machine.

  endRun(outcome: MachineOutcome): void {
    this.outcome = outcome;
    this.smp?.stop();
    this.kick();
  }

  /**
   * With one hart the VMM thread runs it, between awaits: while anything else (the monitor) runs, the
   * hart does not, and the loop holds before its next slice (waking now if it sleeps in WFI). With
   * several, each worker holds at its next slice boundary and this waits until all do.
   */
  async pauseHarts(): Promise<void> {
    this.kick();
    await this.smp?.pause();
    // What the guest wrote before it stopped goes out before the stop is reported.
    this.flushConsole();
  }

  resumeHarts(): void {
    this.smp?.resume();
    this.kick();
  }

  getClock(): bigint {
    return this.vm.getClock();
  }

  setClock(ticks: bigint): void {
    this.vm.setClock(ticks);
  }

  /** Whether the run state holds the VM (paused, or prelaunch). */
  private heldByRunControl(): boolean {
    return this.config.runControl !== undefined && !this.config.runControl.running;
  }

  /** Waits while the run state holds the VM (stop, or prelaunch), unless the run is ending meanwhile. */
  private async holdWhilePaused(): Promise<void> {
    const control = this.config.runControl;
    while (control !== undefined && !control.running && this.outcome === null) {
      this.flushConsole();
      await new Promise<void>((resolve) => {
        const forget = control.onceRunning(() => {
          this.wake = null;
          resolve();
        });
        // kick() (a device, endRun) wakes it too, so a quit or reset ends a held machine.
        this.wake = () => {
          forget();
          resolve();
        };
      });
    }
  }

  private flushConsole(): void {
    if (this.consoleBuffer.length === 0) return;
    this.config.console.write(Uint8Array.from(this.consoleBuffer));
    this.consoleBuffer = [];
  }

  /** Runs the guest until it powers off or resets. */
  async run(): Promise<MachineOutcome> {
    this.config.runControl?.attach(this);
    try {
      return await this.runHarts();
    } finally {
      this.config.runControl?.detach(this);
      if (this.config.debug?.includes('jit')) {
        for (const vcpu of this.vcpus) {
          const { blocks, modules, failed, adopted, fences } = vcpu.jitStatistics;
          this.log(`jit: hart ${vcpu.id}: ${blocks} blocks compiled in ${modules} modules, ${failed} failed to compile, ${adopted} adopted from other harts, ${fences} FENCE.I`);
        }
      }
    }
  }

  private async runHarts(): Promise<MachineOutcome> {
    const slice = this.config.sliceInstructions ?? DEFAULT_SLICE;
    if (this.vcpus.length > 1) return this.runSmp(slice);
    const log = this.log;
    const traceExits = this.config.debug?.includes('exits') ?? false;
    const faultLoops = new FaultLoopDetector(this.vcpu, (line) => log(`warning: ${line}`));
    let lastYield = performance.now();
    const debug = this.config.debugger;
    try {
      while (this.outcome === null) {
        if (this.heldByRunControl()) {
          await this.holdWhilePaused();
          lastYield = performance.now();
          continue;
        }
        const ioInFlight = this.ioInFlight();
        let exit: VcpuExit;
        if (debug === undefined) {
          exit = this.vcpu.run(ioInFlight ? IO_WAIT_SLICE : slice);
        } else {
          if (debug.interruptRequested) debug.stopped('interrupt');
          const mode = await debug.nextRun();
          // Stopped by the monitor while the debugger held the hart: hold for cont (gdb's request waits).
          if (this.heldByRunControl() || this.outcome !== null) continue;
          exit = mode === 'step' ? this.stepInstruction() : this.vcpu.run(Math.min(ioInFlight ? IO_WAIT_SLICE : slice, DEBUG_SLICE));
          if (exit.reason === 'debug') debug.stopped('breakpoint', exit.hit);
          else if (mode === 'step') debug.stopped('step');
        }
        if (traceExits && exit.reason !== 'budget') log(describeExit(this.vcpu, exit));
        faultLoops.afterSlice(this.vcpu.lastRunInstructions);
        if (exit.reason === 'hart-stopped') {
          throw new MachineError('the boot hart stopped itself (SBI HSM hart_stop) and no other hart runs', this.vcpu.pc);
        }
        const requestsBefore = this.requestsInFlight();
        const submittedBefore = blockIoSubmitted();
        this.handleExit(this.vcpu, exit);
        if (this.requestsInFlight() > requestsBefore) await this.letRequestsStart(submittedBefore);
        if (exit.reason === 'halt' && this.outcome === null) {
          this.flushConsole();
          if (!(ioInFlight && await this.pollForEvent())) await this.sleepUntilEvent();
          lastYield = performance.now();
        } else if (ioInFlight || performance.now() - lastYield > EVENT_LOOP_INTERVAL_MS) {
          if (ioInFlight) pollBlockIo();
          this.flushConsole();
          await yieldToEventLoop();
          lastYield = performance.now();
        }
      }
    } finally {
      this.flushConsole();
      this.scheduleRtcAlarm(null);
    }
    debug?.ended(this.outcome);
    return this.outcome;
  }

  /**
   * One instruction for the debugger's step: a load or store to a device, or an SBI call, exits before it
   * retires, so those exits are served and the hart run again until the instruction has retired.
   */
  private stepInstruction(): VcpuExit {
    const before = this.vcpu.instructionsRetired;
    for (;;) {
      const exit = this.vcpu.run(1);
      if (this.vcpu.instructionsRetired !== before || (exit.reason !== 'mmio' && exit.reason !== 'sbi')) return exit;
      this.handleExit(this.vcpu, exit);
    }
  }

  /** True while a device has I/O in flight whose completion the event loop must deliver. */
  private ioInFlight(): boolean {
    return this.requestsInFlight() > 0;
  }

  /** Requests the devices have started and not completed. */
  private requestsInFlight(): number {
    let requests = 0;
    for (const transport of this.virtioSlots) requests += transport.pendingIo;
    for (const transport of this.virtioPciTransports) requests += transport.pendingIo;
    return requests;
  }

  /**
   * A request a device has just taken may reach its file only after promise callbacks (qcow2 takes its
   * lock and looks up the L2 table first), which would otherwise wait for the end of the next vCPU slice
   * (~55 µs per 4 KiB qcow2 read): run them now, until the disk I/O thread has the request.
   */
  private async letRequestsStart(submittedBefore: number): Promise<void> {
    for (let turn = 0; turn < SETTLE_MICROTASKS && blockIoSubmitted() === submittedBefore; turn++) await null;
  }

  private get log(): DebugLog {
    return this.config.log ?? ((line: string) => console.error(`wkvm: ${line}`));
  }

  /** Runs every hart on its own thread until the guest powers off or resets. */
  private async runSmp(slice: number): Promise<MachineOutcome> {
    const log = this.log;
    // A machine made while the VM is paused (reset while stopped, -S) starts its threads only on cont.
    await this.holdWhilePaused();
    if (this.outcome !== null) return this.outcome;
    const faultLoops = this.vcpus.map((vcpu) => new FaultLoopDetector(vcpu, (line) => log(`warning: ${line}`)));
    // Loaded here, not with this module: a machine with one hart never needs vCPU threads.
    const { SmpRunner, VcpuThreadError } = await import('./smp_runner.js');
    this.smp = new SmpRunner(this.vm, this.vcpus, {
      handleExit: (vcpu, exit) => {
        if (this.config.debug?.includes('exits')) this.log(describeExit(vcpu, exit));
        this.handleExit(vcpu, exit);
      },
      isDone: () => this.outcome !== null,
      afterExits: () => this.flushConsole(),
      watch: () => { for (const detector of faultLoops) detector.sample(); },
    }, slice);
    // The vCPU threads need the cores, and nothing polls for completions on this path.
    setBlockIoSpin(false);
    try {
      await this.smp.run();
    } catch (error) {
      if (error instanceof VcpuThreadError) throw new MachineError(error.message);
      throw error;
    } finally {
      setBlockIoSpin(true);
      this.smp = null;
      this.flushConsole();
      this.scheduleRtcAlarm(null);
    }
    return this.outcome ?? { kind: 'poweroff', status: 0 };
  }

  /** The one exit dispatcher (Firecracker's handle_kvm_exit). */
  private handleExit(vcpu: Vcpu, exit: VcpuExit): void {
    switch (exit.reason) {
      case 'budget':
      case 'halt':
      case 'hart-stopped':
      case 'debug':
        return;
      case 'mmio':
        if (exit.isWrite) {
          if (!this.bus.write(exit.addr, exit.size, exit.data)) vcpu.failMmio();
        } else {
          const value = this.bus.read(exit.addr, exit.size);
          if (value === null) vcpu.failMmio();
          else vcpu.completeMmioRead(value);
        }
        return;
      case 'sbi':
        handleSbiExit(exit, vcpu, this.vm, {
          write: (bytes) => { for (const b of bytes) this.consoleBuffer.push(b); },
          readByte: () => this.sbiConsoleInput.shift(),
        });
        return;
      case 'system-event':
        this.outcome = exit.event === 'shutdown' ? { kind: 'poweroff', status: 0 } : { kind: 'reset' };
        return;
      case 'internal-error':
        throw new MachineError(`vCPU ${vcpu.id} internal error: ${exit.message}`, vcpu.pc);
    }
  }

  /**
   * WFI with device I/O in flight: polls for the completion for up to IO_POLL_MS while the I/O lasts; true
   * if a device kicked the hart meanwhile (it has an interrupt to take), false if it should sleep.
   */
  private async pollForEvent(): Promise<boolean> {
    const kicks = this.kicks;
    let now = performance.now();
    const until = now + IO_POLL_MS;
    let lastTurn = now;
    while (this.kicks === kicks && this.outcome === null && this.ioInFlight() && now < until) {
      if (pollBlockIo() > 0) {
        // A finished request reaches the device through promise callbacks: microtask turns, not an
        // event-loop turn (which costs ~6 µs, and a 4 KiB read took ~6 of them to come back).
        for (let turn = 0; turn < SETTLE_MICROTASKS && this.kicks === kicks; turn++) await null;
      } else if (performBlockIoHere()) {
        // The hart waits for a request the I/O thread has not started: do it here rather than wait
        // for the thread to wake up (tens of µs on a VM) or spin for it.
      } else if (now - lastTurn >= EVENT_LOOP_TURN_MS) {
        // libuv's pool (large requests) and timers complete only through the event loop.
        await yieldToEventLoop();
        lastTurn = performance.now();
      }
      now = performance.now();
    }
    return this.kicks !== kicks || this.outcome !== null;
  }

  /** WFI: sleep until the hart's timer is due or a device (console input) kicks us. */
  private sleepUntilEvent(): Promise<void> {
    const deadline = this.vcpu.timerDeadline();
    const ticks = deadline - this.vm.mtime();
    const ms = Number.isFinite(ticks) ? Math.max(0, Math.min(ticks / 10_000, 1000)) : 1000;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

async function readInput(input: BootInput, what: string): Promise<Uint8Array> {
  if (typeof input !== 'string') return input.bytes;
  // node:fs only for paths: with bytes given, the machine runs where there is no file system.
  const { readFile } = await import('node:fs/promises');
  try {
    return new Uint8Array(await readFile(input));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (error as Error).message;
    throw new LoadError(input, `cannot read ${what}: ${reason}`);
  }
}

/** How errors name a boot input. */
function inputName(input: BootInput | undefined): string {
  return input === undefined ? '' : typeof input === 'string' ? input : input.name;
}
