import { describe, expect, it } from 'vitest';
import { FdtWriteError } from '../../../host/vmm/fdt/errors.js';
import { FDT_MAGIC, FdtHeaderField } from '../../../host/vmm/fdt/format.js';
import { parseFdt, phandleIndex } from '../../../host/vmm/fdt/reader.js';
import { FdtWriter } from '../../../host/vmm/fdt/writer.js';

function header(blob: Uint8Array, field: keyof typeof FdtHeaderField): number {
  return new DataView(blob.buffer, blob.byteOffset).getUint32(FdtHeaderField[field]);
}

/** A writer with the root node already open. */
function openRoot(): FdtWriter {
  const fdt = new FdtWriter();
  fdt.beginNode('');
  return fdt;
}

describe('FdtWriter', () => {
  it('round-trips every kind of property through the reader', () => {
    const fdt = new FdtWriter({ bootCpuidPhys: 3 });
    fdt.addReservation(0x8000_0000, 0x20_0000);
    fdt.addReservation(0x1_0000_0000n, 0x1000n);
    const phandle = fdt.allocatePhandle();
    fdt.beginNode('');
    fdt.propU32('#address-cells', 2);
    fdt.propEmpty('ranges');
    fdt.propU32s('cells', [0, 1, 0xffff_ffff]);
    fdt.propU64('big', 0x1234_5678_9abc_def0n);
    fdt.propU64s('reg', [0x8000_0000, 0x1000_0000]);
    fdt.propString('model', 'wkvm test board');
    fdt.propStrings('compatible', ['vendor,one', 'two']);
    fdt.propBytes('raw', new Uint8Array([1, 2, 3]));
    fdt.beginNode('child@1000');
    fdt.propPhandle(phandle);
    fdt.beginNode('grandchild');
    fdt.propU32('ref', phandle);
    fdt.endNode();
    fdt.endNode();
    fdt.beginNode('sibling');
    fdt.endNode();
    fdt.endNode();
    const blob = fdt.finish();

    const tree = parseFdt(blob);
    expect(tree.bootCpuidPhys).toBe(3);
    expect(tree.version).toBe(17);
    expect(tree.reservations).toEqual([
      { address: 0x8000_0000n, size: 0x20_0000n },
      { address: 0x1_0000_0000n, size: 0x1000n },
    ]);
    const root = tree.root;
    expect([...root.properties.keys()]).toEqual(['#address-cells', 'ranges', 'cells', 'big', 'reg', 'model', 'compatible', 'raw']);
    expect(root.u32('#address-cells')).toBe(2);
    expect(root.bytes('ranges')).toEqual(new Uint8Array(0));
    expect(root.u32s('cells')).toEqual([0, 1, 0xffff_ffff]);
    expect(root.u64('big')).toBe(0x1234_5678_9abc_def0n);
    expect(root.u32s('reg')).toEqual([0, 0x8000_0000, 0, 0x1000_0000]);
    expect(root.string('model')).toBe('wkvm test board');
    expect(root.strings('compatible')).toEqual(['vendor,one', 'two']);
    expect(root.bytes('raw')).toEqual(new Uint8Array([1, 2, 3]));
    expect(root.children.map((child) => child.path)).toEqual(['/child@1000', '/sibling']);
    const grandchild = root.find('/child@1000/grandchild');
    expect(grandchild?.path).toBe('/child@1000/grandchild');
    expect(phandleIndex(root).get(grandchild!.u32('ref')!)?.path).toBe('/child@1000');
  });

  it('lays out a v17 header whose blocks are aligned, adjacent and fill the blob', () => {
    const fdt = openRoot();
    fdt.propString('odd', 'abc'); // 4 bytes with NUL
    fdt.propBytes('odder', new Uint8Array(5)); // needs padding
    fdt.endNode();
    const blob = fdt.finish();
    expect(header(blob, 'magic')).toBe(FDT_MAGIC);
    expect(header(blob, 'totalSize')).toBe(blob.length);
    expect(header(blob, 'version')).toBe(17);
    expect(header(blob, 'lastCompVersion')).toBe(16);
    expect(header(blob, 'offMemRsvmap') % 8).toBe(0);
    expect(header(blob, 'offDtStruct')).toBe(header(blob, 'offMemRsvmap') + 16); // just the terminator
    expect(header(blob, 'offDtStruct') % 4).toBe(0);
    expect(header(blob, 'offDtStrings')).toBe(header(blob, 'offDtStruct') + header(blob, 'sizeDtStruct'));
    expect(header(blob, 'offDtStrings') + header(blob, 'sizeDtStrings')).toBe(blob.length);
    // begin root (4 + 4), 2 × prop header (12) + values padded to 4 and 8, end node, end
    expect(header(blob, 'sizeDtStruct')).toBe(8 + 12 + 4 + 12 + 8 + 4 + 4);
  });

  it('stores each property name once in the strings block', () => {
    const fdt = openRoot();
    fdt.propString('compatible', 'a');
    for (const name of ['x', 'y', 'z']) {
      fdt.beginNode(name);
      fdt.propString('compatible', name);
      fdt.propU32('reg', 1);
      fdt.endNode();
    }
    fdt.endNode();
    const blob = fdt.finish();
    const strings = blob.subarray(header(blob, 'offDtStrings'), header(blob, 'offDtStrings') + header(blob, 'sizeDtStrings'));
    expect(Buffer.from(strings).toString('latin1')).toBe('compatible\0reg\0');
    expect(parseFdt(blob).root.find('z')?.string('compatible')).toBe('z');
  });

  describe('rejects trees that are not valid device trees', () => {
    const cases: [string, (fdt: FdtWriter) => void, RegExp][] = [
      ['a node left open', (fdt) => { fdt.beginNode(''); fdt.beginNode('a'); fdt.endNode(); fdt.finish(); }, /1 node\(s\) still open.*at \//],
      ['no root at all', (fdt) => fdt.finish(), /no root node/],
      ['endNode without a node', (fdt) => { fdt.beginNode(''); fdt.endNode(); fdt.endNode(); }, /endNode\(\) without an open node/],
      ['a second root', (fdt) => { fdt.beginNode(''); fdt.endNode(); fdt.beginNode('x'); }, /outside the root node/],
      ['a named root', (fdt) => fdt.beginNode('root'), /root node must be named ""/],
      ['a property outside any node', (fdt) => fdt.propU32('x', 1), /outside any node/],
      ['a property after a child node', (fdt) => { fdt.beginNode(''); fdt.beginNode('a'); fdt.endNode(); fdt.propU32('late', 1); }, /before the node's child nodes.*"late"/],
      ['a duplicate property', (fdt) => { fdt.beginNode(''); fdt.propU32('x', 1); fdt.propU32('x', 2); }, /duplicate property.*"x"/],
      ['a duplicate child', (fdt) => { fdt.beginNode(''); fdt.beginNode('a@1'); fdt.endNode(); fdt.beginNode('a@1'); }, /duplicate child node "a@1"/],
      ['an empty child name', (fdt) => { fdt.beginNode(''); fdt.beginNode(''); }, /node name "" is empty/],
      ['a slash in a node name', (fdt) => { fdt.beginNode(''); fdt.beginNode('a/b'); }, /node name "a\/b"/],
      ['an empty unit address', (fdt) => { fdt.beginNode(''); fdt.beginNode('a@'); }, /unit address/],
      ['a 32-character node name', (fdt) => { fdt.beginNode(''); fdt.beginNode('n'.repeat(32)); }, /longer than 31/],
      ['a bad property name', (fdt) => { fdt.beginNode(''); fdt.propU32('bad name', 1); }, /property name "bad name"/],
      ['a cell above 32 bits', (fdt) => { fdt.beginNode(''); fdt.propU32s('c', [1, 2 ** 32]); }, /cell 1 = 4294967296/],
      ['a negative cell', (fdt) => { fdt.beginNode(''); fdt.propU32('c', -1); }, /cell 0 = -1/],
      ['a fractional cell', (fdt) => { fdt.beginNode(''); fdt.propU32('c', 1.5); }, /cell 0 = 1.5/],
      ['a u64 above 64 bits', (fdt) => { fdt.beginNode(''); fdt.propU64('v', 1n << 64n); }, /not a 64-bit unsigned integer/],
      ['an unsafe-integer u64', (fdt) => { fdt.beginNode(''); fdt.propU64('v', 2 ** 53 + 2); }, /not a 64-bit unsigned integer/],
      ['NUL inside a string', (fdt) => { fdt.beginNode(''); fdt.propString('s', 'a\0b'); }, /cannot contain NUL/],
      ['an empty string list', (fdt) => { fdt.beginNode(''); fdt.propStrings('s', []); }, /at least one string/],
      ['a zero-sized reservation', (fdt) => fdt.addReservation(0, 0), /non-zero size/],
      ['a phandle that was never allocated', (fdt) => { fdt.beginNode(''); fdt.propPhandle(7); }, /not handed out/],
      ['a phandle placed twice', (fdt) => { const p = fdt.allocatePhandle(); fdt.beginNode(''); fdt.propPhandle(p); fdt.beginNode('a'); fdt.propPhandle(p); }, /already on \//],
      ['a phandle allocated but never placed', (fdt) => { fdt.allocatePhandle(); fdt.beginNode(''); fdt.endNode(); fdt.finish(); }, /dangling reference/],
      ['use after finish', (fdt) => { fdt.beginNode(''); fdt.endNode(); fdt.finish(); fdt.finish(); }, /already finished/],
    ];
    for (const [what, misuse, message] of cases) {
      it(what, () => {
        const fdt = new FdtWriter();
        let caught: unknown;
        try {
          misuse(fdt);
        } catch (error) {
          caught = error;
        }
        expect(caught).toBeInstanceOf(FdtWriteError);
        expect((caught as Error).message).toMatch(message);
      });
    }
  });

  it('names the node and property at fault', () => {
    const fdt = openRoot();
    fdt.beginNode('soc');
    fdt.beginNode('uart@1000');
    const error = (() => {
      try {
        fdt.propU32('interrupts', -5);
      } catch (caught) {
        return caught as FdtWriteError;
      }
      return undefined;
    })();
    expect(error?.nodePath).toBe('/soc/uart@1000');
    expect(error?.property).toBe('interrupts');
  });

  it('rejects a boot CPU id that does not fit the header', () => {
    expect(() => new FdtWriter({ bootCpuidPhys: 2 ** 32 })).toThrow(FdtWriteError);
  });
});
