// The device tree of the `virt` board: what the firmware (OpenSBI) and Linux learn about the machine.
// It mirrors the tree QEMU 7.2 generates in hw/riscv/virt.c for the devices wkvm emulates — same
// node names, properties, values and node order — so a guest cannot tell the boards apart there.
// Node order matters to guests: Linux probes devices in tree order, and QEMU lists the virtio-mmio
// transports from the highest address down, so the transport at 0x10008000 becomes the first one
// (e.g. /dev/vda). Addresses and interrupt numbers come from ../memmap.ts.

import {
  dramRegion,
  RISCV_CPU_IRQ,
  VIRT_IRQ,
  VIRT_MAX_HARTS,
  VIRT_MEMMAP,
  VIRT_PLIC_NUM_SOURCES,
  VIRT_TEST_FINISHER,
  VIRT_TIMEBASE_HZ,
  VIRT_VIRTIO_COUNT,
  virtioMmioSlot,
  type MemoryRegion,
} from '../memmap.js';
import { CORE_ISA } from '../../kvm/isa.js';
import { FdtConfigError } from './errors.js';
import { FdtWriter } from './writer.js';

/** The ISA the wkvm core implements, as `riscv,isa` spells it. */
export const DEFAULT_RISCV_ISA = CORE_ISA;

export type RiscvMmuType = 'riscv,sv39' | 'riscv,sv48' | 'riscv,sv57' | 'riscv,none';

/** The UART's input clock: the classic 1.8432 MHz × 2 crystal that QEMU also advertises. */
const UART_CLOCK_HZ = 0x38_4000;

/**
 * QEMU `virt` device-tree nodes that wkvm leaves out because it does not emulate the device behind
 * them. A node without its device would make the guest probe hardware that is not there.
 */
export const QEMU_VIRT_NODES_NOT_EMULATED: Readonly<Record<string, string>> = {
  '/pmu': 'no SBI PMU event mapping: the core has no programmable hpm counters',
  '/fw-cfg@10100000': 'no fw_cfg device; kernel, initrd and command line come through the tree and RAM',
  '/flash@20000000': 'no CFI pflash; firmware is loaded straight into RAM',
  '/platform-bus@4000000': 'no dynamic sysbus devices',
};

export interface VirtDeviceTreeOptions {
  /** Harts, 1..VIRT_MAX_HARTS. Hart ids are 0..numHarts-1. */
  numHarts: number;
  /** Guest RAM at DRAM_BASE, in bytes (a positive multiple of 4 KiB). */
  memoryBytes: number;
  /** Kernel command line (`/chosen/bootargs`); omitted when undefined. */
  bootargs?: string;
  /** Initial RAM disk already placed in guest RAM: [start, end), guest-physical. */
  initrd?: { start: number; end: number };
  /** `riscv,isa` of every hart. Default DEFAULT_RISCV_ISA. */
  isa?: string;
  /** Default 'riscv,sv48', as QEMU. */
  mmuType?: RiscvMmuType;
  /** Default VIRT_TIMEBASE_HZ (10 MHz). */
  timebaseHz?: number;
  /** `/chosen/stdout-path`: default the UART; null leaves it out. */
  stdoutPath?: string | null;
  /** Entropy for the guest's RNG early on (`/chosen/rng-seed`; QEMU passes 32 bytes). */
  rngSeed?: Uint8Array;
  /** Describe the goldfish RTC. Default true. */
  includeRtc?: boolean;
  /** Describe the test finisher and its poweroff/reboot syscon users. Default true. */
  includeTestDevice?: boolean;
}

/** Builds the `virt` board's DTB. Throws FdtConfigError for out-of-range options. */
export function buildVirtDeviceTree(options: VirtDeviceTreeOptions): Uint8Array {
  const config = checkOptions(options);
  const fdt = new FdtWriter();

  const plicPhandle = fdt.allocatePhandle();
  const testPhandle = config.includeTestDevice ? fdt.allocatePhandle() : 0;
  const harts = Array.from({ length: config.numHarts }, (_, hartId) => ({
    hartId,
    cpuPhandle: fdt.allocatePhandle(),
    intcPhandle: fdt.allocatePhandle(),
  }));

  fdt.beginNode('');
  fdt.propU32('#address-cells', 2);
  fdt.propU32('#size-cells', 2);
  fdt.propString('compatible', 'riscv-virtio');
  fdt.propString('model', 'riscv-virtio,qemu');

  writeChosen(fdt, config);
  if (config.includeTestDevice) {
    writeSysconAction(fdt, 'poweroff', 'syscon-poweroff', VIRT_TEST_FINISHER.pass, testPhandle);
    writeSysconAction(fdt, 'reboot', 'syscon-reboot', VIRT_TEST_FINISHER.reset, testPhandle);
  }

  fdt.beginNode(nodeName('memory', config.dram));
  fdt.propString('device_type', 'memory');
  writeReg(fdt, config.dram);
  fdt.endNode();

  fdt.beginNode('cpus');
  fdt.propU32('#address-cells', 1);
  fdt.propU32('#size-cells', 0);
  fdt.propU32('timebase-frequency', config.timebaseHz);
  for (const hart of harts) {
    fdt.beginNode(`cpu@${hart.hartId.toString(16)}`);
    fdt.propPhandle(hart.cpuPhandle);
    fdt.propString('device_type', 'cpu');
    fdt.propU32('reg', hart.hartId);
    fdt.propString('status', 'okay');
    fdt.propString('compatible', 'riscv');
    fdt.propString('riscv,isa', config.isa);
    fdt.propString('mmu-type', config.mmuType);
    fdt.beginNode('interrupt-controller');
    fdt.propU32('#interrupt-cells', 1);
    fdt.propEmpty('interrupt-controller');
    fdt.propString('compatible', 'riscv,cpu-intc');
    fdt.propPhandle(hart.intcPhandle);
    fdt.endNode();
    fdt.endNode();
  }
  // One socket, one cluster, one core per hart: the topology QEMU describes for plain `-smp N`.
  fdt.beginNode('cpu-map');
  fdt.beginNode('cluster0');
  for (const hart of harts) {
    fdt.beginNode(`core${hart.hartId}`);
    fdt.propU32('cpu', hart.cpuPhandle);
    fdt.endNode();
  }
  fdt.endNode();
  fdt.endNode();
  fdt.endNode();

  fdt.beginNode('soc');
  fdt.propU32('#address-cells', 2);
  fdt.propU32('#size-cells', 2);
  fdt.propString('compatible', 'simple-bus');
  fdt.propEmpty('ranges');

  if (config.includeRtc) {
    writePlicDevice(fdt, 'rtc', VIRT_MEMMAP.rtc, VIRT_IRQ.rtc, plicPhandle, () => {
      fdt.propString('compatible', 'google,goldfish-rtc');
    });
  }
  writePlicDevice(fdt, 'serial', VIRT_MEMMAP.uart0, VIRT_IRQ.uart0, plicPhandle, () => {
    fdt.propU32('clock-frequency', UART_CLOCK_HZ);
    fdt.propString('compatible', 'ns16550a');
  });
  if (config.includeTestDevice) {
    fdt.beginNode(nodeName('test', VIRT_MEMMAP.test));
    fdt.propPhandle(testPhandle);
    writeReg(fdt, VIRT_MEMMAP.test);
    fdt.propStrings('compatible', ['sifive,test1', 'sifive,test0', 'syscon']);
    fdt.endNode();
  }
  writePcieHost(fdt, plicPhandle);
  // Every transport is listed whether or not a device sits behind it, as QEMU does: an empty
  // transport reads DeviceID 0, which Linux skips.
  for (let index = VIRT_VIRTIO_COUNT - 1; index >= 0; index--) {
    const slot = virtioMmioSlot(index);
    writePlicDevice(fdt, 'virtio_mmio', slot, slot.irq, plicPhandle, () => {
      fdt.propString('compatible', 'virtio,mmio');
    });
  }

  fdt.beginNode(nodeName('plic', VIRT_MEMMAP.plic));
  fdt.propPhandle(plicPhandle);
  // The highest source id. QEMU 7.2 writes VIRT_PLIC_NUM_SOURCES (96) here, one too many; QEMU 8.0
  // fixed it to the count of usable sources, which is what the binding asks for.
  fdt.propU32('riscv,ndev', VIRT_PLIC_NUM_SOURCES - 1);
  writeReg(fdt, VIRT_MEMMAP.plic);
  // Context 2h is hart h's M-mode external interrupt, context 2h+1 its S-mode one.
  fdt.propU32s(
    'interrupts-extended',
    harts.flatMap(({ intcPhandle }) => [
      intcPhandle, RISCV_CPU_IRQ.machineExternal,
      intcPhandle, RISCV_CPU_IRQ.supervisorExternal,
    ]),
  );
  fdt.propEmpty('interrupt-controller');
  fdt.propStrings('compatible', ['sifive,plic-1.0.0', 'riscv,plic0']);
  fdt.propU32('#address-cells', 0);
  fdt.propU32('#interrupt-cells', 1);
  fdt.endNode();

  fdt.beginNode(nodeName('clint', VIRT_MEMMAP.clint));
  fdt.propU32s(
    'interrupts-extended',
    harts.flatMap(({ intcPhandle }) => [
      intcPhandle, RISCV_CPU_IRQ.machineSoftware,
      intcPhandle, RISCV_CPU_IRQ.machineTimer,
    ]),
  );
  writeReg(fdt, VIRT_MEMMAP.clint);
  fdt.propStrings('compatible', ['sifive,clint0', 'riscv,clint0']);
  fdt.endNode();

  fdt.endNode(); // soc
  fdt.endNode(); // root
  return fdt.finish();
}

interface CheckedOptions {
  numHarts: number;
  dram: MemoryRegion;
  bootargs: string | undefined;
  initrd: { start: number; end: number } | undefined;
  isa: string;
  mmuType: RiscvMmuType;
  timebaseHz: number;
  stdoutPath: string | null;
  rngSeed: Uint8Array | undefined;
  includeRtc: boolean;
  includeTestDevice: boolean;
}

const MMU_TYPES: readonly RiscvMmuType[] = ['riscv,sv39', 'riscv,sv48', 'riscv,sv57', 'riscv,none'];

function checkOptions(options: VirtDeviceTreeOptions): CheckedOptions {
  const { numHarts, memoryBytes, initrd } = options;
  if (!Number.isInteger(numHarts) || numHarts < 1 || numHarts > VIRT_MAX_HARTS) {
    throw new FdtConfigError(`${numHarts} is not a hart count in 1..${VIRT_MAX_HARTS}`, 'numHarts');
  }
  let dram: MemoryRegion;
  try {
    dram = dramRegion(memoryBytes);
  } catch (error) {
    throw new FdtConfigError((error as Error).message, 'memoryBytes');
  }
  if (initrd !== undefined) {
    const inRam = (address: number): boolean =>
      Number.isSafeInteger(address) && address >= dram.base && address <= dram.base + dram.size;
    if (!inRam(initrd.start) || !inRam(initrd.end) || initrd.start > initrd.end) {
      throw new FdtConfigError(
        `[0x${initrd.start.toString(16)}, 0x${initrd.end.toString(16)}) is not a range inside guest RAM ` +
          `[0x${dram.base.toString(16)}, 0x${(dram.base + dram.size).toString(16)})`,
        'initrd',
      );
    }
  }
  const isa = options.isa ?? DEFAULT_RISCV_ISA;
  if (!/^rv64i[a-z0-9_]*$/.test(isa)) {
    throw new FdtConfigError(`"${isa}" is not a lower-case RV64 ISA string such as "${DEFAULT_RISCV_ISA}"`, 'isa');
  }
  const mmuType = options.mmuType ?? 'riscv,sv48';
  if (!MMU_TYPES.includes(mmuType)) throw new FdtConfigError(`"${mmuType}" is not one of ${MMU_TYPES.join(', ')}`, 'mmuType');
  const timebaseHz = options.timebaseHz ?? VIRT_TIMEBASE_HZ;
  if (!Number.isInteger(timebaseHz) || timebaseHz < 1 || timebaseHz > 0xffff_ffff) {
    throw new FdtConfigError(`${timebaseHz} is not a frequency in 1..2^32-1 Hz`, 'timebaseHz');
  }
  if (options.bootargs?.includes('\0')) throw new FdtConfigError('the command line cannot contain NUL', 'bootargs');
  const stdoutPath = options.stdoutPath === undefined ? `/soc/${nodeName('serial', VIRT_MEMMAP.uart0)}` : options.stdoutPath;
  if (stdoutPath !== null && (stdoutPath === '' || stdoutPath.includes('\0'))) {
    throw new FdtConfigError('must be a non-empty path or alias without NUL', 'stdoutPath');
  }
  if (options.rngSeed !== undefined && options.rngSeed.length === 0) {
    throw new FdtConfigError('an RNG seed needs at least one byte', 'rngSeed');
  }
  return {
    numHarts,
    dram,
    bootargs: options.bootargs,
    initrd,
    isa,
    mmuType,
    timebaseHz,
    stdoutPath,
    rngSeed: options.rngSeed,
    includeRtc: options.includeRtc ?? true,
    includeTestDevice: options.includeTestDevice ?? true,
  };
}

function writeChosen(fdt: FdtWriter, config: CheckedOptions): void {
  fdt.beginNode('chosen');
  if (config.initrd !== undefined) {
    fdt.propU64('linux,initrd-end', config.initrd.end);
    fdt.propU64('linux,initrd-start', config.initrd.start);
  }
  if (config.rngSeed !== undefined) fdt.propBytes('rng-seed', config.rngSeed);
  if (config.bootargs !== undefined) fdt.propString('bootargs', config.bootargs);
  if (config.stdoutPath !== null) fdt.propString('stdout-path', config.stdoutPath);
  fdt.endNode();
}

/** A node telling Linux to power off or reboot by writing `value` to the test device's register 0. */
function writeSysconAction(fdt: FdtWriter, name: string, compatible: string, value: number, regmap: number): void {
  fdt.beginNode(name);
  fdt.propU32('value', value);
  fdt.propU32('offset', 0);
  fdt.propU32('regmap', regmap);
  fdt.propString('compatible', compatible);
  fdt.endNode();
}

/** A device on the soc bus with one MMIO window and one PLIC interrupt. */
function writePlicDevice(
  fdt: FdtWriter,
  name: string,
  region: MemoryRegion,
  irq: number,
  plicPhandle: number,
  writeDeviceProperties: () => void,
): void {
  fdt.beginNode(nodeName(name, region));
  fdt.propU32('interrupts', irq);
  fdt.propU32('interrupt-parent', plicPhandle);
  writeReg(fdt, region);
  writeDeviceProperties();
  fdt.endNode();
}

/** phys.hi of a PCI address (IEEE 1275 PCI binding): the space code in bits 24-25, 64-bit memory = 3. */
const PCI_SPACE = { io: 0x0100_0000, memory32: 0x0200_0000, memory64: 0x0300_0000 } as const;

/**
 * The PCIe host (QEMU's gpex, pci-host-ecam-generic), described whether or not a device is plugged, as QEMU
 * does: its ECAM window, the I/O and memory windows as `ranges` (bus address → CPU address, size), and
 * INTx routing in `interrupt-map`: pin p (1..4) of slot s reaches PLIC source pcie0 + (s + p - 1) % 4. The
 * mask keeps the slot's low two bits and the pin, so four slots' entries cover every slot. Properties in
 * QEMU's order.
 */
function writePcieHost(fdt: FdtWriter, plicPhandle: number): void {
  const ecam = VIRT_MEMMAP.pcieEcam;
  fdt.beginNode(nodeName('pci', ecam));
  fdt.propU32s('interrupt-map-mask', [0x1800, 0, 0, 7]);
  const map: number[] = [];
  for (let slot = 0; slot < PCI_INTX_LINES; slot++) {
    for (let pin = 1; pin <= PCI_INTX_LINES; pin++) {
      map.push(slot << 11, 0, 0, pin, plicPhandle, VIRT_IRQ.pcie0 + ((slot + pin - 1) % PCI_INTX_LINES));
    }
  }
  fdt.propU32s('interrupt-map', map);
  const range = (space: number, busAddress: number, region: MemoryRegion): number[] =>
    [space, ...u64Cells(busAddress), ...u64Cells(region.base), ...u64Cells(region.size)];
  fdt.propU32s('ranges', [
    ...range(PCI_SPACE.io, 0, VIRT_MEMMAP.pciePio),
    ...range(PCI_SPACE.memory32, VIRT_MEMMAP.pcieMmio.base, VIRT_MEMMAP.pcieMmio),
    ...range(PCI_SPACE.memory64, VIRT_MEMMAP.pcieMmioHigh.base, VIRT_MEMMAP.pcieMmioHigh),
  ]);
  writeReg(fdt, ecam);
  fdt.propEmpty('dma-coherent');
  fdt.propU32s('bus-range', [0, ecam.size / PCIE_ECAM_BUS_SIZE - 1]);
  fdt.propU32('linux,pci-domain', 0);
  fdt.propString('device_type', 'pci');
  fdt.propString('compatible', 'pci-host-ecam-generic');
  fdt.propU32('#size-cells', 2);
  fdt.propU32('#interrupt-cells', 1);
  fdt.propU32('#address-cells', 3);
  fdt.endNode();
}

/** ECAM: 1 MiB of configuration space per bus number. */
const PCIE_ECAM_BUS_SIZE = 0x10_0000;
const PCI_INTX_LINES = 4;

function u64Cells(value: number): [number, number] {
  return [Math.floor(value / 2 ** 32), value % 2 ** 32];
}

/** `reg` with #address-cells = #size-cells = 2, as the root and soc nodes declare. */
function writeReg(fdt: FdtWriter, region: MemoryRegion): void {
  fdt.propU64s('reg', [region.base, region.size]);
}

function nodeName(name: string, region: MemoryRegion): string {
  return `${name}@${region.base.toString(16)}`;
}
