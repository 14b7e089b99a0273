import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FdtParseError, FdtValueError } from '../../../host/vmm/fdt/errors.js';
import { FdtHeaderField, FdtToken } from '../../../host/vmm/fdt/format.js';
import { FDT_MAX_DEPTH, parseFdt, phandleIndex, type FdtNode } from '../../../host/vmm/fdt/reader.js';
import { FdtWriter } from '../../../host/vmm/fdt/writer.js';
import { allNodes, parseDtsText, runDtc, type DtsNode } from './dts_text.js';

const workDir = mkdtempSync(join(tmpdir(), 'wkvm-fdt-reader-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function sampleBlob(): Uint8Array {
  const fdt = new FdtWriter();
  fdt.addReservation(0x8000_0000, 0x1000);
  fdt.beginNode('');
  fdt.propU32('#address-cells', 2);
  fdt.propU32('#size-cells', 2);
  fdt.propString('compatible', 'wkvm,sample1');
  fdt.beginNode('soc@10000000');
  fdt.propU32('#address-cells', 2);
  fdt.propU32('#size-cells', 2);
  fdt.propU64s('reg', [0x1000_0000, 0x100]);
  fdt.propEmpty('ranges');
  fdt.endNode();
  fdt.endNode();
  return fdt.finish();
}

function withHeader(blob: Uint8Array, field: keyof typeof FdtHeaderField, value: number): Uint8Array {
  const copy = blob.slice();
  new DataView(copy.buffer).setUint32(FdtHeaderField[field], value);
  return copy;
}

function headerField(blob: Uint8Array, field: keyof typeof FdtHeaderField): number {
  return new DataView(blob.buffer, blob.byteOffset).getUint32(FdtHeaderField[field]);
}

function parseError(blob: Uint8Array): FdtParseError {
  try {
    parseFdt(blob);
  } catch (error) {
    if (error instanceof FdtParseError) return error;
    throw new Error(`expected FdtParseError, got ${String(error)}`);
  }
  throw new Error('expected FdtParseError, but the blob parsed');
}

/** A blob whose structure block is exactly `tokens` (u32 words), with an empty strings block. */
function blobWithStructure(words: number[], strings = new Uint8Array(0)): Uint8Array {
  const structOffset = 40 + 16;
  const blob = new Uint8Array(structOffset + words.length * 4 + strings.length);
  const view = new DataView(blob.buffer);
  words.forEach((word, i) => view.setUint32(structOffset + i * 4, word));
  blob.set(strings, structOffset + words.length * 4);
  view.setUint32(FdtHeaderField.magic, 0xd00dfeed);
  view.setUint32(FdtHeaderField.totalSize, blob.length);
  view.setUint32(FdtHeaderField.offDtStruct, structOffset);
  view.setUint32(FdtHeaderField.offDtStrings, structOffset + words.length * 4);
  view.setUint32(FdtHeaderField.offMemRsvmap, 40);
  view.setUint32(FdtHeaderField.version, 17);
  view.setUint32(FdtHeaderField.lastCompVersion, 16);
  view.setUint32(FdtHeaderField.sizeDtStrings, strings.length);
  view.setUint32(FdtHeaderField.sizeDtStruct, words.length * 4);
  return blob;
}

const ROOT = [FdtToken.beginNode, 0]; // the root's empty name is one padded word of zeros
const { beginNode, endNode, prop, nop, end } = FdtToken;

describe('parseFdt rejects malformed blobs with FdtParseError', () => {
  const good = sampleBlob();
  const cases: [string, () => Uint8Array, RegExp][] = [
    ['an empty buffer', () => new Uint8Array(0), /shorter than the 40-byte header/],
    ['a truncated header', () => good.subarray(0, 39), /shorter than the 40-byte header/],
    ['bad magic', () => withHeader(good, 'magic', 0xfeedd00d), /bad magic 0xfeedd00d/],
    ['a blob cut short of totalsize', () => good.subarray(0, good.length - 1), /header says the blob is \d+ bytes/],
    ['a totalsize smaller than the header', () => withHeader(good, 'totalSize', 8), /header says the blob is 8 bytes/],
    ['version 16', () => withHeader(good, 'version', 16), /unsupported version 16/],
    ['an incompatible future version', () => withHeader(good, 'lastCompVersion', 18), /unsupported version/],
    ['a structure block past the end', () => withHeader(good, 'sizeDtStruct', 0xffff_fff0), /structure block .* lies outside/],
    ['a structure block inside the header', () => withHeader(good, 'offDtStruct', 4), /structure block .* lies outside/],
    ['a misaligned structure block', () => withHeader(good, 'offDtStruct', headerField(good, 'offDtStruct') + 2), /not 4-byte aligned/],
    ['a strings block past the end', () => withHeader(good, 'offDtStrings', 0xffff_ff00), /strings block .* lies outside/],
    ['a reservation block past the end', () => withHeader(good, 'offMemRsvmap', good.length + 8), /memory reservation block .* lies outside/],
    ['a reservation block without terminator', () => withHeader(good, 'offMemRsvmap', Math.floor((good.length - 1) / 8) * 8), /no \(0, 0\) terminator/],
    ['a structure block without FDT_END', () => blobWithStructure([...ROOT, endNode]), /ends without FDT_END/],
    ['an unknown token', () => blobWithStructure([...ROOT, 7, endNode, end]), /unknown structure token 0x7/],
    ['FDT_END inside an open node', () => blobWithStructure([...ROOT, end]), /FDT_END while \/ is still open/],
    ['an extra FDT_END_NODE', () => blobWithStructure([...ROOT, endNode, endNode, end]), /FDT_END_NODE without an open node/],
    ['no root node', () => blobWithStructure([nop, end]), /no root node/],
    ['a second root', () => blobWithStructure([...ROOT, endNode, ...ROOT, endNode, end]), /second top-level node/],
    ['a named root', () => blobWithStructure([beginNode, 0x61000000, endNode, end]), /root node is named "a"/],
    ['a property outside any node', () => blobWithStructure([prop, 0, 0, end], new Uint8Array([0x61, 0])), /outside any node/],
    ['a property header cut off', () => blobWithStructure([...ROOT, prop, 0]), /property header runs past/],
    ['a property value past the block', () => blobWithStructure([...ROOT, prop, 100, 0, endNode, end], new Uint8Array([0x61, 0])), /value of 100 bytes runs past/],
    ['a property name offset past the strings', () => blobWithStructure([...ROOT, prop, 0, 5, endNode, end], new Uint8Array([0x61, 0])), /name offset 5 is outside/],
    ['an unterminated property name', () => blobWithStructure([...ROOT, prop, 0, 0, endNode, end], new Uint8Array([0x61, 0x62])), /property name is not NUL-terminated/],
    ['an unterminated node name', () => blobWithStructure([beginNode, 0x61616161]), /node name is not NUL-terminated/],
    ['an empty child name', () => blobWithStructure([...ROOT, beginNode, 0, endNode, endNode, end]), /empty name/],
    ['a duplicate property', () => blobWithStructure([...ROOT, prop, 0, 0, prop, 0, 0, endNode, end], new Uint8Array([0x61, 0])), /duplicate property "a"/],
    ['invalid UTF-8 in a node name', () => blobWithStructure([...ROOT, beginNode, 0xff000000, endNode, endNode, end]), /not valid UTF-8/],
    [
      `nodes nested deeper than ${FDT_MAX_DEPTH}`,
      () => blobWithStructure([...ROOT, ...Array.from({ length: FDT_MAX_DEPTH }, () => [beginNode, 0x61000000]).flat()]),
      /nest deeper than 64/,
    ],
  ];
  for (const [what, makeBlob, message] of cases) {
    it(what, () => {
      const error = parseError(makeBlob());
      expect(error.message).toMatch(message);
      expect(error.offset).toBeGreaterThanOrEqual(0);
    });
  }

  it('accepts the hand-made minimal blob the cases above are built from', () => {
    const tree = parseFdt(blobWithStructure([nop, ...ROOT, prop, 4, 0, 0x2a, endNode, end], new Uint8Array([0x61, 0])));
    expect(tree.root.u32('a')).toBe(0x2a);
  });

  it('never throws anything but FdtParseError on truncated or corrupted blobs', () => {
    const blob = sampleBlob();
    // Deterministic xorshift so a failure reproduces.
    let seed = 0x2545f491;
    const random = (): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 2 ** 32;
    };
    let rejected = 0;
    for (let length = 0; length < blob.length; length++) {
      expect(() => parseFdt(blob.subarray(0, length))).toThrow(FdtParseError);
    }
    for (let round = 0; round < 3000; round++) {
      const corrupted = blob.slice();
      for (let flips = 1 + Math.floor(random() * 4); flips > 0; flips--) {
        corrupted[Math.floor(random() * corrupted.length)] = Math.floor(random() * 256);
      }
      try {
        parseFdt(corrupted);
      } catch (error) {
        if (!(error instanceof FdtParseError)) throw error;
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(0);
  });
});

describe('FdtNode value accessors', () => {
  const root = parseFdt(sampleBlob()).root;

  it('reads typed values', () => {
    expect(root.string('compatible')).toBe('wkvm,sample1');
    expect(root.find('soc@10000000')?.u32s('reg')).toEqual([0, 0x1000_0000, 0, 0x100]);
    expect(root.find('/soc@10000000')?.has('ranges')).toBe(true);
    expect(root.u32('missing')).toBeUndefined();
    expect(root.find('nope/soc')).toBeUndefined();
  });

  it('reports a value of the wrong shape with FdtValueError', () => {
    expect(() => root.find('soc@10000000')!.u32('reg')).toThrow(/\/soc@10000000:reg: expected 1 cell, found 4/);
    expect(() => root.find('soc@10000000')!.u64('reg')).toThrow(FdtValueError);
    expect(() => root.find('soc@10000000')!.string('ranges')).toThrow(/not a NUL-terminated string list/);
    expect(() => root.u32('compatible')).toThrow(/length 13 is not a whole number of cells/);
  });

  it('finds duplicate phandles', () => {
    const fdt = new FdtWriter();
    fdt.beginNode('');
    fdt.beginNode('a');
    fdt.propU32('phandle', 1);
    fdt.endNode();
    fdt.beginNode('b');
    fdt.propU32('phandle', 1);
    fdt.endNode();
    fdt.endNode();
    expect(() => phandleIndex(parseFdt(fdt.finish()).root)).toThrow(/phandle 1 is also on/);
  });
});

describe('parseFdt agrees with dtc', () => {
  function expectSameTree(ours: FdtNode, theirs: DtsNode): void {
    const ourNodes = allNodes(ours);
    const theirNodes = allNodes(theirs);
    expect(ourNodes.map((node) => node.path)).toEqual(theirNodes.map((node) => node.path));
    ourNodes.forEach((node, i) => {
      expect(new Map(node.properties), node.path).toEqual(theirNodes[i].properties);
    });
  }

  for (const fixture of ['qemu-virt-256m-smp1.dts', 'qemu-virt-256m-smp2.dts']) {
    it(`reads the blob dtc compiles from QEMU's ${fixture}`, () => {
      const source = new URL(`./fixtures/${fixture}`, import.meta.url).pathname;
      const dtb = join(workDir, `${fixture}.dtb`);
      runDtc(['-q', '-I', 'dts', '-O', 'dtb', '-R', '2', '-o', dtb, source]);
      const tree = parseFdt(readFileSync(dtb));
      expect(tree.reservations).toEqual([]);
      expectSameTree(tree.root, parseDtsText(readFileSync(source, 'utf8')));
    });
  }

  it('writes a blob dtc reads back identically, reservations included', () => {
    const path = join(workDir, 'sample.dtb');
    writeFileSync(path, sampleBlob());
    const { stdout, warnings } = runDtc(['-I', 'dtb', '-O', 'dts', path]);
    expect(warnings).toEqual([]);
    expect(stdout).toMatch(/\/memreserve\/\s+0x0000000080000000 0x0000000000001000;/);
    expectSameTree(parseFdt(sampleBlob()).root, parseDtsText(stdout));
  });
});
