// Sizes as qemu-img 7.2 reads and prints them; the expected values are what qemu-img create and info
// printed for the same text and byte counts.
import { describe, expect, it } from 'vitest';
import { formatSize, parseSize, SizeSyntaxError } from '../../../host/cli/img/size.js';
import { getopt } from '../../../host/cli/img/getopt.js';
import { splitOptionString } from '../../../host/cli/img/create.js';

describe('parseSize', () => {
  it.each([
    ['512', 512], ['10M', 10485760], ['1.5G', 1610612736], ['1.5k', 1536], ['1.5K', 1536], ['0.5M', 524288], ['1m', 1048576],
    ['1g', 1073741824], ['1t', 1099511627776], ['1p', 1125899906842624], [' 1M', 1048576], ['1.0', 1], ['1b', 1], ['0x10', 16],
    ['0.1k', 102], ['0', 0],
  ])('%s is %i bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each(['1.5', '1.5b', '1M5', '1e3', '1KiB', '1kB', '10Q', '', '-1', 'M'])('%j is not a size', (text) => {
    expect(() => parseSize(text)).toThrow(SizeSyntaxError);
  });

  it('refuses sizes past INT64_MAX, and past what a JavaScript number holds exactly', () => {
    expect(() => parseSize('100000P')).toThrow(RangeError);
    expect(() => parseSize('8E')).toThrow(RangeError);
    expect(() => parseSize('8P')).toThrow(RangeError);
  });
});

describe('formatSize', () => {
  it.each([
    [0, '0 B'], [512, '512 B'], [999, '999 B'], [1000, '0.977 KiB'], [4096, '4 KiB'], [200704, '196 KiB'], [10485760, '10 MiB'],
    [1404928, '1.34 MiB'], [2371584, '2.26 MiB'], [1610612736, '1.5 GiB'], [1073741824, '1 GiB'], [1023 * 1024, '0.999 MiB'],
  ])('%i bytes print as %s', (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
  });
});

describe('qemu-img style command lines', () => {
  it('takes options anywhere, attached or not, long ones with = or a separate value, and -- ends them', () => {
    const spec = { short: { f: true, c: false, q: false }, long: { output: true, shrink: false } };
    expect(getopt(['in', '-fqcow2', '-cq', '--output', 'json', 'out', '--shrink', '--', '-1G'], spec)).toEqual({
      options: [{ name: 'f', value: 'qcow2' }, { name: 'c', value: undefined }, { name: 'q', value: undefined },
        { name: 'output', value: 'json' }, { name: 'shrink', value: undefined }],
      operands: ['in', 'out', '-1G'],
    });
    expect(() => getopt(['-x'], spec)).toThrow(/unrecognized option '-x'/);
    expect(() => getopt(['-f'], spec)).toThrow(/requires an argument/);
    expect(() => getopt(['--shrink=yes'], spec)).toThrow(/doesn't allow an argument/);
  });

  it('splits -o option strings, with ,, for a literal comma', () => {
    expect(splitOptionString('cluster_size=4k,backing_file=a,,b.qcow2,lazy_refcounts=on')).toEqual([
      ['cluster_size', '4k'], ['backing_file', 'a,b.qcow2'], ['lazy_refcounts', 'on'],
    ]);
  });
});
