// The virt board's device tree, checked through the reference tool: each blob is decompiled with
// dtc and the DTS text dtc prints is what the assertions look at. The tree is also compared node by
// node with the trees QEMU 7.2 generates for the same machine (fixtures/).

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FdtConfigError } from '../../../host/vmm/fdt/errors.js';
import { parseFdt } from '../../../host/vmm/fdt/reader.js';
import {
  buildVirtDeviceTree,
  DEFAULT_RISCV_ISA,
  QEMU_VIRT_NODES_NOT_EMULATED,
  type VirtDeviceTreeOptions,
} from '../../../host/vmm/fdt/virt_tree.js';
import { allNodes, cells, hex, parseDtsText, runDtc, type DtsNode } from './dts_text.js';

const workDir = mkdtempSync(join(tmpdir(), 'wkvm-virt-tree-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

const MiB = 1024 * 1024;
const PLIC = '/soc/plic@c000000';
const CLINT = '/soc/clint@2000000';
/** The ISA QEMU 7.2's default TCG CPU reports; passing it makes our cpu nodes comparable byte for byte. */
const QEMU_72_ISA = 'rv64imafdch_zicsr_zifencei_zihintpause_zba_zbb_zbc_zbs_sstc';

let blobCount = 0;
/** Writes the blob to a temp file and returns dtc's decompilation of it. */
function decompile(blob: Uint8Array): { tree: DtsNode; warnings: string[]; dts: string } {
  const path = join(workDir, `virt-${blobCount++}.dtb`);
  writeFileSync(path, blob);
  const { stdout, warnings } = runDtc(['-I', 'dtb', '-O', 'dts', path]);
  return { tree: parseDtsText(stdout), warnings, dts: stdout };
}

function build(options: Partial<VirtDeviceTreeOptions> = {}): DtsNode {
  const { tree, warnings } = decompile(buildVirtDeviceTree({ numHarts: 1, memoryBytes: 256 * MiB, ...options }));
  // QEMU's own tree draws exactly this warning: the riscv,cpu-intc binding has no #address-cells.
  for (const warning of warnings) {
    expect(warning).toMatch(/Warning \(interrupt_provider\): \/cpus\/cpu@[0-9a-f]+\/interrupt-controller: Missing #address-cells/);
  }
  return tree;
}

function node(root: DtsNode, path: string): DtsNode {
  const found = allNodes(root).find((candidate) => candidate.path === path);
  if (found === undefined) throw new Error(`no node ${path}`);
  return found;
}

function prop(root: DtsNode, path: string, name: string): Uint8Array {
  const value = node(root, path).properties.get(name);
  if (value === undefined) throw new Error(`no property ${path}:${name}`);
  return value;
}

function string(root: DtsNode, path: string, name: string): string {
  return Buffer.from(prop(root, path, name)).toString('utf8').replace(/\0$/, '');
}

function pathsByPhandle(root: DtsNode): Map<number, string> {
  const index = new Map<number, string>();
  for (const candidate of allNodes(root)) {
    const phandle = candidate.properties.get('phandle');
    if (phandle !== undefined) {
      expect(index.has(cells(phandle)[0]), `duplicate phandle on ${candidate.path}`).toBe(false);
      index.set(cells(phandle)[0], candidate.path);
    }
  }
  return index;
}

/** Properties that hold phandles, and how: all cells, or every other cell starting with the first. */
const PHANDLE_PROPERTIES: Record<string, 'single' | 'interrupts-extended' | 'interrupt-map'> = {
  'interrupt-parent': 'single',
  regmap: 'single',
  cpu: 'single',
  'interrupts-extended': 'interrupts-extended',
  'interrupt-map': 'interrupt-map',
};

/** A property's value with phandles replaced by the paths they point to. */
function resolved(root: DtsNode, path: string, name: string): (string | number)[] {
  const index = pathsByPhandle(root);
  const target = (phandle: number): string => {
    const targetPath = index.get(phandle);
    if (targetPath === undefined) throw new Error(`${path}:${name} refers to phandle ${phandle}, which no node has`);
    return targetPath;
  };
  const values = cells(prop(root, path, name));
  if (PHANDLE_PROPERTIES[name] === 'single') return values.map(target);
  // A PCI interrupt-map entry into the PLIC (#address-cells 0, #interrupt-cells 1): 3 address cells, a pin, the PLIC, its source.
  if (PHANDLE_PROPERTIES[name] === 'interrupt-map') return values.map((value, i) => (i % 6 === 4 ? target(value) : value));
  // Every phandle here is a riscv,cpu-intc with #interrupt-cells = 1: pairs of (phandle, irq).
  return values.map((value, i) => (i % 2 === 0 ? target(value) : value));
}

function intc(hart: number): string {
  return `/cpus/cpu@${hart.toString(16)}/interrupt-controller`;
}

describe('buildVirtDeviceTree, read back through dtc', () => {
  for (const numHarts of [1, 2, 8]) {
    describe(`with ${numHarts} hart(s)`, () => {
      const tree = build({ numHarts, memoryBytes: 512 * MiB });

      it('describes the board, its RAM and its harts', () => {
        expect(cells(prop(tree, '/', '#address-cells'))).toEqual([2]);
        expect(cells(prop(tree, '/', '#size-cells'))).toEqual([2]);
        expect(string(tree, '/', 'compatible')).toBe('riscv-virtio');
        expect(string(tree, '/memory@80000000', 'device_type')).toBe('memory');
        expect(cells(prop(tree, '/memory@80000000', 'reg'))).toEqual([0, 0x8000_0000, 0, 512 * MiB]);
        expect(cells(prop(tree, '/cpus', 'timebase-frequency'))).toEqual([10_000_000]);
        const cpus = node(tree, '/cpus').children.filter((child) => child.name.startsWith('cpu@'));
        expect(cpus.map((cpu) => cpu.name)).toEqual(Array.from({ length: numHarts }, (_, h) => `cpu@${h.toString(16)}`));
        for (let hart = 0; hart < numHarts; hart++) {
          const cpu = `/cpus/cpu@${hart.toString(16)}`;
          expect(cells(prop(tree, cpu, 'reg'))).toEqual([hart]);
          expect(string(tree, cpu, 'device_type')).toBe('cpu');
          expect(string(tree, cpu, 'status')).toBe('okay');
          expect(string(tree, cpu, 'riscv,isa')).toBe(DEFAULT_RISCV_ISA);
          expect(string(tree, cpu, 'mmu-type')).toBe('riscv,sv48');
          expect(string(tree, intc(hart), 'compatible')).toBe('riscv,cpu-intc');
          expect(node(tree, intc(hart)).properties.has('interrupt-controller')).toBe(true);
          expect(resolved(tree, `/cpus/cpu-map/cluster0/core${hart}`, 'cpu')).toEqual([cpu]);
        }
      });

      it('routes each hart\'s M/S external interrupts to the PLIC and M soft/timer to the CLINT', () => {
        const harts = Array.from({ length: numHarts }, (_, hart) => hart);
        expect(resolved(tree, PLIC, 'interrupts-extended')).toEqual(harts.flatMap((h) => [intc(h), 11, intc(h), 9]));
        expect(resolved(tree, CLINT, 'interrupts-extended')).toEqual(harts.flatMap((h) => [intc(h), 3, intc(h), 7]));
        expect(cells(prop(tree, PLIC, 'reg'))).toEqual([0, 0xc00_0000, 0, 0x60_0000]);
        expect(cells(prop(tree, CLINT, 'reg'))).toEqual([0, 0x200_0000, 0, 0x1_0000]);
        expect(cells(prop(tree, PLIC, 'riscv,ndev'))).toEqual([95]);
      });

      it('puts every soc device at its memory-map address with its PLIC source', () => {
        const expected: [string, number, number, number][] = [
          ['/soc/serial@10000000', 0x1000_0000, 0x100, 10],
          ['/soc/rtc@101000', 0x10_1000, 0x1000, 11],
          ...Array.from({ length: 8 }, (_, n): [string, number, number, number] => [
            `/soc/virtio_mmio@${hex(0x1000_1000 + n * 0x1000).slice(2)}`, 0x1000_1000 + n * 0x1000, 0x1000, n + 1,
          ]),
        ];
        for (const [path, base, size, irq] of expected) {
          expect(cells(prop(tree, path, 'reg')), path).toEqual([0, base, 0, size]);
          expect(cells(prop(tree, path, 'interrupts')), path).toEqual([irq]);
          expect(resolved(tree, path, 'interrupt-parent'), path).toEqual([PLIC]);
        }
        expect(cells(prop(tree, '/soc/serial@10000000', 'clock-frequency'))).toEqual([0x38_4000]);
        expect(cells(prop(tree, '/soc/test@100000', 'reg'))).toEqual([0, 0x10_0000, 0, 0x1000]);
      });

      it('lists the virtio-mmio transports from the highest address down, as QEMU does', () => {
        const virtio = node(tree, '/soc').children.filter((child) => child.name.startsWith('virtio_mmio@'));
        expect(virtio.map((child) => child.name)).toEqual(
          [8, 7, 6, 5, 4, 3, 2, 1].map((n) => `virtio_mmio@${(0x1000_0000 + n * 0x1000).toString(16)}`),
        );
      });

      it('resolves every phandle reference and points stdout-path at the UART', () => {
        for (const candidate of allNodes(tree)) {
          for (const name of candidate.properties.keys()) {
            if (name in PHANDLE_PROPERTIES) expect(() => resolved(tree, candidate.path, name)).not.toThrow();
          }
        }
        expect(string(tree, '/chosen', 'stdout-path')).toBe('/soc/serial@10000000');
        expect(resolved(tree, '/poweroff', 'regmap')).toEqual(['/soc/test@100000']);
        expect(resolved(tree, '/reboot', 'regmap')).toEqual(['/soc/test@100000']);
        expect(cells(prop(tree, '/poweroff', 'value'))).toEqual([0x5555]);
        expect(cells(prop(tree, '/reboot', 'value'))).toEqual([0x7777]);
      });
    });
  }

  it('agrees with our own reader on every node and value', () => {
    const blob = buildVirtDeviceTree({ numHarts: 3, memoryBytes: 128 * MiB, bootargs: 'console=ttyS0' });
    const ours = allNodes(parseFdt(blob).root);
    const theirs = allNodes(decompile(blob).tree);
    expect(ours.map((n) => n.path)).toEqual(theirs.map((n) => n.path));
    ours.forEach((ourNode, i) => expect(new Map(ourNode.properties), ourNode.path).toEqual(theirs[i].properties));
  });
});

describe('buildVirtDeviceTree options', () => {
  it('passes the command line, a 64-bit initrd range and an RNG seed in /chosen', () => {
    const seed = Uint8Array.from({ length: 32 }, (_, i) => i * 7);
    const tree = build({
      bootargs: 'console=ttyS0 root=/dev/vda rw',
      initrd: { start: 0x8820_0000, end: 0x8820_03e8 },
      rngSeed: seed,
    });
    expect(string(tree, '/chosen', 'bootargs')).toBe('console=ttyS0 root=/dev/vda rw');
    expect(cells(prop(tree, '/chosen', 'linux,initrd-start'))).toEqual([0, 0x8820_0000]);
    expect(cells(prop(tree, '/chosen', 'linux,initrd-end'))).toEqual([0, 0x8820_03e8]);
    expect(prop(tree, '/chosen', 'rng-seed')).toEqual(seed);
  });

  it('uses the ISA, MMU type and timebase it is given', () => {
    const tree = build({ numHarts: 2, isa: 'rv64imac', mmuType: 'riscv,sv39', timebaseHz: 1_000_000 });
    expect(string(tree, '/cpus/cpu@1', 'riscv,isa')).toBe('rv64imac');
    expect(string(tree, '/cpus/cpu@1', 'mmu-type')).toBe('riscv,sv39');
    expect(cells(prop(tree, '/cpus', 'timebase-frequency'))).toEqual([1_000_000]);
  });

  it('leaves out stdout-path, the RTC and the test device when asked', () => {
    const tree = build({ stdoutPath: null, includeRtc: false, includeTestDevice: false });
    expect(node(tree, '/chosen').properties.size).toBe(0);
    const paths = allNodes(tree).map((n) => n.path);
    for (const gone of ['/soc/rtc@101000', '/soc/test@100000', '/poweroff', '/reboot']) expect(paths).not.toContain(gone);
    expect(paths).toContain('/soc/serial@10000000');
  });

  const bad: [string, Partial<VirtDeviceTreeOptions>, string, RegExp][] = [
    ['no harts', { numHarts: 0 }, 'numHarts', /0 is not a hart count in 1..8/],
    ['too many harts', { numHarts: 9 }, 'numHarts', /9 is not a hart count/],
    ['a fractional hart count', { numHarts: 1.5 }, 'numHarts', /1.5 is not a hart count/],
    ['no RAM', { memoryBytes: 0 }, 'memoryBytes', /positive multiple of 4096/],
    ['RAM that is not whole pages', { memoryBytes: 4095 }, 'memoryBytes', /positive multiple of 4096/],
    ['an initrd below RAM', { initrd: { start: 0x1000, end: 0x2000 } }, 'initrd', /not a range inside guest RAM/],
    ['an initrd past the end of RAM', { initrd: { start: 0x8fff_f000, end: 0x9000_1000 } }, 'initrd', /inside guest RAM \[0x80000000, 0x90000000\)/],
    ['an initrd that ends before it starts', { initrd: { start: 0x8100_0000, end: 0x8000_0000 } }, 'initrd', /not a range/],
    ['an ISA string for another base', { isa: 'rv32imac' }, 'isa', /not a lower-case RV64 ISA string/],
    ['an upper-case ISA string', { isa: 'RV64IMAFDC' }, 'isa', /not a lower-case RV64 ISA string/],
    ['an unknown MMU type', { mmuType: 'riscv,sv64' as never }, 'mmuType', /"riscv,sv64" is not one of/],
    ['a zero timebase', { timebaseHz: 0 }, 'timebaseHz', /not a frequency/],
    ['NUL in the command line', { bootargs: 'a\0b' }, 'bootargs', /cannot contain NUL/],
    ['an empty stdout-path', { stdoutPath: '' }, 'stdoutPath', /non-empty path/],
    ['an empty RNG seed', { rngSeed: new Uint8Array(0) }, 'rngSeed', /at least one byte/],
  ];
  for (const [what, options, option, message] of bad) {
    it(`rejects ${what}`, () => {
      let caught: unknown;
      try {
        buildVirtDeviceTree({ numHarts: 1, memoryBytes: 256 * MiB, ...options });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(FdtConfigError);
      expect((caught as FdtConfigError).option).toBe(option);
      expect((caught as Error).message).toMatch(message);
    });
  }
});

describe('buildVirtDeviceTree compared with QEMU 7.2 -M virt -m 256M', () => {
  /**
   * Where our tree knowingly differs from QEMU 7.2's: QEMU 7.2 sets riscv,ndev to the number of
   * PLIC sources counting the reserved source 0 (96); the binding wants the highest source id (95),
   * which QEMU 8.0 also switched to.
   */
  const KNOWN_VALUE_DIFFERENCES: Record<string, [qemu: number[], ours: number[]]> = {
    [`${PLIC}:riscv,ndev`]: [[96], [95]],
  };

  /** QEMU's node minus the subtrees of the devices wkvm does not emulate. */
  function sharedNodes(qemu: DtsNode): DtsNode[] {
    const skipped = Object.keys(QEMU_VIRT_NODES_NOT_EMULATED);
    return allNodes(qemu).filter((candidate) => !skipped.some((path) => candidate.path === path || candidate.path.startsWith(`${path}/`)));
  }

  for (const numHarts of [1, 2]) {
    it(`matches QEMU's tree node for node with -smp ${numHarts}`, () => {
      const fixture = new URL(`./fixtures/qemu-virt-256m-smp${numHarts}.dts`, import.meta.url);
      const qemu = parseDtsText(readFileSync(fixture, 'utf8'));
      const ours = build({ numHarts, memoryBytes: 256 * MiB, isa: QEMU_72_ISA });

      // Every node QEMU skips is really in QEMU's tree, so the skip list names real nodes.
      const qemuPaths = allNodes(qemu).map((n) => n.path);
      for (const skipped of Object.keys(QEMU_VIRT_NODES_NOT_EMULATED)) expect(qemuPaths).toContain(skipped);

      const shared = sharedNodes(qemu);
      expect(allNodes(ours).map((n) => n.path).sort()).toEqual(shared.map((n) => n.path).sort());
      // Same order among siblings too: Linux probes in tree order.
      expect(allNodes(ours).map((n) => n.path)).toEqual(shared.map((n) => n.path));

      for (const qemuNode of shared) {
        const ourNode = node(ours, qemuNode.path);
        expect([...ourNode.properties.keys()].sort(), qemuNode.path).toEqual([...qemuNode.properties.keys()].sort());
        for (const [name, qemuValue] of qemuNode.properties) {
          const where = `${qemuNode.path}:${name}`;
          if (name === 'phandle') continue; // numbering is arbitrary; references are compared resolved
          if (name in PHANDLE_PROPERTIES) {
            expect(resolved(ours, qemuNode.path, name), where).toEqual(resolved(qemu, qemuNode.path, name));
          } else if (where in KNOWN_VALUE_DIFFERENCES) {
            const [qemuCells, ourCells] = KNOWN_VALUE_DIFFERENCES[where];
            expect(cells(qemuValue), where).toEqual(qemuCells);
            expect(cells(prop(ours, qemuNode.path, name)), where).toEqual(ourCells);
          } else {
            expect(prop(ours, qemuNode.path, name), where).toEqual(qemuValue);
          }
        }
      }
    });
  }
});
