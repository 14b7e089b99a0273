// `wkvm img create [-f raw|qcow2] [-b BACKING [-F FMT]] [-u] [-o OPTIONS] FILE [SIZE]`, with qemu-img's
// options, its "Formatting ..." line and its messages for bad input. The image itself is made by
// host/block/qcow2/create.ts (qcow2) or by sizing an empty file (raw).

import { open } from 'node:fs/promises';
import type { DiskFormat } from '../../block/errors.js';
import { createQcow2 } from '../../block/qcow2/create.js';
import { MAX_CLUSTER_BITS, MIN_CLUSTER_BITS } from '../../block/qcow2/limits.js';
import { parseQemuBool } from '../../qemu_bool.js';
import { ImgError } from './errors.js';
import { backingPath, requireFormat, systemReason } from './files.js';
import { getopt, hasFlag, lastValue } from './getopt.js';
import { readImageInfo } from './info.js';
import { parseSize, SizeSyntaxError } from './size.js';

/** How a qcow2 image is laid out, from -o; also what convert -O qcow2 makes. */
export interface Qcow2Layout {
  clusterBits: number;
  version: 2 | 3;
  lazyRefcounts: boolean;
  refcountOrder: number;
  /** compat= as the user spelled it ("0.10", "v3", ...), which the Formatting line repeats. */
  compatText: string | undefined;
}

export interface CreateOptions {
  layout: Qcow2Layout;
  size: string | undefined;
  backingFile: string | undefined;
  backingFormat: string | undefined;
}

/** Splits `-o a=1,b=2` into pairs; `,,` is a literal comma, as in QEMU's option strings. */
export function splitOptionString(text: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  let current = '';
  const finish = () => {
    if (current === '') return;
    const equals = current.indexOf('=');
    pairs.push(equals < 0 ? [current, ''] : [current.slice(0, equals), current.slice(equals + 1)]);
    current = '';
  };
  for (let i = 0; i < text.length; i++) {
    if (text[i] === ',' && text[i + 1] === ',') {
      current += ',';
      i++;
    } else if (text[i] === ',') {
      finish();
    } else {
      current += text[i];
    }
  }
  finish();
  return pairs;
}

function invalidSize(): ImgError {
  return new ImgError('Invalid image size specified. You may use k, M, G, T, P or E suffixes for kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.');
}

/** A SIZE operand or size= option; qemu-img's two messages for text that is not one and for too much. */
export function parseImageSize(text: string): number {
  try {
    return parseSize(text);
  } catch (error) {
    if (error instanceof SizeSyntaxError) throw invalidSize();
    throw new ImgError('Invalid image size specified. Must be between 0 and 9223372036854775807.');
  }
}

/** Reads the -o options a format takes (qemu-img's names); anything else is an invalid parameter. */
export function parseCreateOptions(format: DiskFormat, optionTexts: readonly string[], path: string): CreateOptions {
  const result: CreateOptions = {
    layout: { clusterBits: 16, version: 3, lazyRefcounts: false, refcountOrder: 4, compatText: undefined },
    size: undefined,
    backingFile: undefined,
    backingFormat: undefined,
  };
  const fail = (message: string) => new ImgError(`${path}: ${message}`);
  let refcountBitsGiven = false;
  for (const [key, value] of optionTexts.flatMap(splitOptionString)) {
    if (key === 'size') {
      result.size = value;
      continue;
    }
    if (key === 'preallocation' && value === 'off') continue;
    if (format !== 'qcow2') throw fail(`Invalid parameter '${key}'`);
    switch (key) {
      case 'cluster_size': {
        let bytes: number;
        try {
          bytes = parseSize(value);
        } catch {
          throw fail(`Parameter 'cluster_size' expects a size`);
        }
        const bits = Math.log2(bytes);
        if (!Number.isInteger(bits) || bits < MIN_CLUSTER_BITS || bits > MAX_CLUSTER_BITS) throw fail('Cluster size must be a power of two between 512 and 2048k');
        result.layout.clusterBits = bits;
        break;
      }
      case 'compat':
        if (value === '0.10' || value === 'v2') result.layout.version = 2;
        else if (value === '1.1' || value === 'v3') result.layout.version = 3;
        else throw fail(`Parameter 'version' does not accept value '${value}'`);
        result.layout.compatText = value;
        break;
      case 'lazy_refcounts': {
        const on = parseQemuBool(value);
        if (on === null) throw fail(`Parameter 'lazy_refcounts' expects 'on' or 'off'`);
        result.layout.lazyRefcounts = on;
        break;
      }
      case 'refcount_bits': {
        const bits = Number(value);
        const order = Math.log2(bits);
        if (!/^\d+$/.test(value) || !Number.isInteger(order) || order > 6) throw fail('Refcount width must be a power of two and may not exceed 64 bits');
        result.layout.refcountOrder = order;
        refcountBitsGiven = true;
        break;
      }
      case 'backing_file':
        result.backingFile = value;
        break;
      case 'backing_fmt':
        result.backingFormat = value;
        break;
      case 'extended_l2':
        if (parseQemuBool(value) !== false) throw fail('extended_l2=on (subclusters) is not supported by wkvm img');
        break;
      case 'compression_type':
        if (value !== 'zlib') throw fail(`compression_type=${value} is not supported by wkvm img (only zlib)`);
        break;
      default:
        throw fail(`Invalid parameter '${key}'`);
    }
  }
  const { layout } = result;
  if (layout.version === 2 && layout.lazyRefcounts) {
    throw fail('Lazy refcounts only supported with compatibility level 1.1 and above (use version=v3 or greater)');
  }
  if (layout.version === 2 && refcountBitsGiven && layout.refcountOrder !== 4) {
    throw fail('Different refcount widths than 16 bits require compatibility level 1.1 or above (use version=v3 or greater)');
  }
  return result;
}

/** qemu-img's announcement of what it is about to create. */
export function formattingLine(path: string, format: DiskFormat, size: number, options: CreateOptions): string {
  if (format === 'raw') return `Formatting '${path}', fmt=raw size=${size}`;
  const { layout } = options;
  const parts = [
    `Formatting '${path}', fmt=qcow2`,
    `cluster_size=${2 ** layout.clusterBits}`,
    'extended_l2=off',
    'compression_type=zlib',
    `size=${size}`,
  ];
  if (layout.compatText !== undefined) parts.push(`compat=${layout.compatText}`);
  if (options.backingFile !== undefined) parts.push(`backing_file=${options.backingFile}`);
  if (options.backingFormat !== undefined) parts.push(`backing_fmt=${options.backingFormat}`);
  parts.push(`lazy_refcounts=${layout.lazyRefcounts ? 'on' : 'off'}`, `refcount_bits=${2 ** layout.refcountOrder}`);
  return parts.join(' ');
}

/** An empty raw image: a file of the size rounded up to whole sectors, sparse where the file system allows. */
export async function createRaw(path: string, size: number): Promise<void> {
  let handle;
  try {
    handle = await open(path, 'w');
  } catch (error) {
    throw new ImgError(`${path}: Could not create '${path}': ${systemReason(error)}`, 1, { cause: error });
  }
  try {
    await handle.truncate(Math.ceil(size / 512) * 512);
  } finally {
    await handle.close();
  }
}

/** A new qcow2 image; bad geometry from createQcow2 becomes a one-line error naming the file. */
export async function createQcow2Image(path: string, size: number, layout: Qcow2Layout, backing?: { file: string; format: DiskFormat }): Promise<void> {
  try {
    await createQcow2(path, {
      size,
      clusterBits: layout.clusterBits,
      refcountOrder: layout.refcountOrder,
      version: layout.version,
      lazyRefcounts: layout.lazyRefcounts,
      backingFile: backing?.file,
      backingFormat: backing?.format,
    });
  } catch (error) {
    if (error instanceof RangeError) throw new ImgError(`${path}: ${error.message}`, 1, { cause: error });
    if ((error as NodeJS.ErrnoException).code !== undefined) {
      throw new ImgError(`${path}: Could not create '${path}': ${systemReason(error)}`, 1, { cause: error });
    }
    throw error;
  }
}

export async function runCreate(argv: readonly string[]): Promise<number> {
  const parsed = getopt(argv, { short: { f: true, b: true, F: true, o: true, q: false, u: false, h: false }, long: { help: false } });
  const [path, sizeOperand, extra] = parsed.operands;
  if (path === undefined) throw new ImgError('Expecting image file name');
  let format: DiskFormat;
  try {
    format = requireFormat(lastValue(parsed, 'f') ?? 'raw', '-f');
  } catch (error) {
    throw new ImgError(`${path}: ${(error as Error).message}`, 1, { cause: error });
  }
  if (extra !== undefined) throw new ImgError(`Invalid argument '${extra}'`);
  const options = parseCreateOptions(format, parsed.options.filter((option) => option.name === 'o').map((option) => option.value!), path);
  options.backingFile = lastValue(parsed, 'b') ?? options.backingFile;
  options.backingFormat = lastValue(parsed, 'F') ?? options.backingFormat;
  const unsafe = hasFlag(parsed, 'u');

  const sizeText = sizeOperand ?? options.size;
  let size = sizeText === undefined ? undefined : parseImageSize(sizeText);
  let backing: { file: string; format: DiskFormat } | undefined;
  if (options.backingFile !== undefined) {
    if (format === 'raw') throw new ImgError(`${path}: Backing file not supported for file format 'raw'`);
    if (options.backingFormat === undefined) throw new ImgError(`${path}: Backing file specified without backing format (give it with -F raw|qcow2)`);
    const backingFormat = requireFormat(options.backingFormat, '-F');
    backing = { file: options.backingFile, format: backingFormat };
    // As qemu-img, the backing file must be there (unless -u), and it gives the size when none is given.
    if (!unsafe || size === undefined) {
      let backingSize: number;
      try {
        backingSize = (await readImageInfo(backingPath(path, options.backingFile), backingFormat)).virtualSize;
      } catch (error) {
        throw new ImgError(`${path}: Could not open backing image: ${(error as Error).message}`, 1, { cause: error });
      }
      size ??= backingSize;
    }
  }
  if (size === undefined) throw new ImgError(`${path}: Image creation needs a size parameter`);

  if (!hasFlag(parsed, 'q')) process.stdout.write(`${formattingLine(path, format, size, options)}\n`);
  if (format === 'raw') await createRaw(path, size);
  else await createQcow2Image(path, size, options.layout, backing);
  return 0;
}
