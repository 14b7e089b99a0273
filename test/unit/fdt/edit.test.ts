// Rewriting a parsed device tree (what the VMM does to a -dtb blob's /chosen).
import { describe, it, expect } from 'vitest';
import { buildVirtDeviceTree } from '../../../host/vmm/fdt/virt_tree.js';
import { parseFdt } from '../../../host/vmm/fdt/reader.js';
import { ensureChild, fdtString, fdtU64, serializeFdt } from '../../../host/vmm/fdt/edit.js';
import { FdtWriter } from '../../../host/vmm/fdt/writer.js';

describe('serializeFdt', () => {
  it('writes a parsed tree back byte for byte', () => {
    const blob = buildVirtDeviceTree({ numHarts: 2, memoryBytes: 256 << 20, bootargs: 'console=ttyS0', initrd: { start: 0x8820_0000, end: 0x8830_0000 } });
    expect(serializeFdt(parseFdt(blob))).toEqual(blob);
  });

  it('keeps memory reservations and the boot CPU', () => {
    const writer = new FdtWriter({ bootCpuidPhys: 3 });
    writer.addReservation(0x8000_0000, 0x1000);
    writer.beginNode('');
    writer.propString('model', 'test');
    writer.endNode();
    const tree = parseFdt(serializeFdt(parseFdt(writer.finish())));
    expect(tree.bootCpuidPhys).toBe(3);
    expect(tree.reservations).toEqual([{ address: 0x8000_0000n, size: 0x1000n }]);
    expect(tree.root.string('model')).toBe('test');
  });

  it('carries changed and added properties and nodes', () => {
    const tree = parseFdt(buildVirtDeviceTree({ numHarts: 1, memoryBytes: 64 << 20 }));
    const chosen = ensureChild(tree.root, 'chosen');
    expect(ensureChild(tree.root, 'chosen')).toBe(chosen);
    chosen.properties.set('bootargs', fdtString('root=/dev/vda'));
    chosen.properties.set('linux,initrd-start', fdtU64(0x1_2345_6789));
    ensureChild(tree.root, 'extra').properties.set('x', fdtString('y'));
    const again = parseFdt(serializeFdt(tree));
    expect(again.root.find('/chosen')!.string('bootargs')).toBe('root=/dev/vda');
    expect(again.root.find('/chosen')!.u64('linux,initrd-start')).toBe(0x1_2345_6789n);
    expect(again.root.find('/extra')!.path).toBe('/extra');
    expect(again.root.find('/soc/serial@10000000')).toBeDefined();
  });
});
