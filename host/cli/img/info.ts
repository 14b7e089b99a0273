// `wkvm img info [-f FMT] [--output=human|json] [--backing-chain] FILE`: qemu-img info's report, in its
// human and JSON forms, key for key, so scripts written against qemu-img read ours.

import { realpath } from 'node:fs/promises';
import { CachePolicy } from '../../block/cache-mode.js';
import { CorruptImageError, type DiskFormat } from '../../block/errors.js';
import type { BlockFile } from '../../block/file.js';
import { INCOMPAT_CORRUPT, INCOMPAT_DIRTY, INCOMPAT_EXTENDED_L2, COMPAT_LAZY_REFCOUNTS, readHeader, UnsupportedImageError } from '../../block/qcow2/header.js';
import { MetadataIo } from '../../block/qcow2/metadata-io.js';
import { readSnapshotTable, type Qcow2Snapshot } from '../../block/qcow2/snapshots.js';
import { readBitmapDirectory, type Qcow2Bitmap } from '../../block/qcow2/bitmaps.js';
import { RawDiskImage } from '../../block/raw.js';
import { ImgError } from './errors.js';
import { allocatedBytes, backingPath, openImageFile, requireFormat, resolveFormat } from './files.js';
import { getopt, hasFlag, lastValue } from './getopt.js';
import { formatSize } from './size.js';

export interface Qcow2Specific {
  compat: '0.10' | '1.1';
  lazyRefcounts: boolean;
  refcountBits: number;
  corrupt: boolean;
  extendedL2: boolean;
  bitmaps: Qcow2Bitmap[];
}

export interface ImageInfo {
  filename: string;
  format: DiskFormat;
  virtualSize: number;
  /** Bytes allocated on disk for the file. */
  actualSize: number;
  dirty: boolean;
  clusterSize?: number;
  backingFilename?: string;
  /** The backing file's path as this image's location makes it (what a backing chain follows). */
  fullBackingFilename?: string;
  backingFormat?: string;
  snapshots: Qcow2Snapshot[];
  qcow2?: Qcow2Specific;
}

/** Reads what info reports about one image (not its backing files). */
export async function readImageInfo(path: string, requestedFormat: string | undefined): Promise<ImageInfo> {
  const file = await openImageFile(path, false);
  try {
    const format = await resolveFormat(file, path, requestedFormat);
    const actualSize = await allocatedBytes(path);
    if (format === 'raw') {
      const raw = await RawDiskImage.open(file, path, { readOnly: true, cache: 'unsafe' });
      return { filename: path, format, virtualSize: raw.size, actualSize, dirty: false, snapshots: [] };
    }
    return await readQcow2Info(file, path, actualSize);
  } finally {
    await file.close();
  }
}

async function readQcow2Info(file: BlockFile, path: string, actualSize: number): Promise<ImageInfo> {
  try {
    const header = await readHeader(file);
    const io = new MetadataIo(file, new CachePolicy('unsafe'), await file.size());
    const { snapshots } = await readSnapshotTable(io, header);
    const info: ImageInfo = {
      filename: path,
      format: 'qcow2',
      virtualSize: header.size,
      actualSize,
      dirty: (header.incompatibleFeatures & INCOMPAT_DIRTY) !== 0n,
      clusterSize: header.clusterSize,
      snapshots,
      qcow2: {
        compat: header.version === 2 ? '0.10' : '1.1',
        lazyRefcounts: (header.compatibleFeatures & COMPAT_LAZY_REFCOUNTS) !== 0n,
        refcountBits: 2 ** header.refcountOrder,
        corrupt: (header.incompatibleFeatures & INCOMPAT_CORRUPT) !== 0n,
        extendedL2: (header.incompatibleFeatures & INCOMPAT_EXTENDED_L2) !== 0n,
        bitmaps: await readBitmapDirectory(io, header),
      },
    };
    if (header.backingFile !== undefined) {
      info.backingFilename = header.backingFile;
      info.fullBackingFilename = backingPath(path, header.backingFile);
      info.backingFormat = header.backingFormat;
    }
    return info;
  } catch (error) {
    if (error instanceof CorruptImageError || error instanceof UnsupportedImageError) {
      throw new ImgError(`Could not open '${path}': ${error.reason}`, 1, { cause: error });
    }
    throw error;
  }
}

/** The image and each backing file under it, top first; a file that comes round again is a loop. */
export async function readBackingChain(path: string, requestedFormat: string | undefined): Promise<ImageInfo[]> {
  const chain: ImageInfo[] = [];
  const seen = new Set<string>();
  let next: { path: string; format: string | undefined } | undefined = { path, format: requestedFormat };
  while (next !== undefined) {
    const canonical = await realpath(next.path).catch(() => next!.path);
    if (seen.has(canonical)) throw new ImgError(`Backing file '${next.path}' creates an infinite loop`);
    seen.add(canonical);
    const info = await readImageInfo(next.path, next.format);
    chain.push(info);
    next = info.fullBackingFilename === undefined ? undefined : { path: info.fullBackingFilename, format: info.backingFormat };
  }
  return chain;
}

function pad2(value: number): string {
  return String(value).padStart(2, '0');
}

/** A snapshot's date in local time, as qemu-img lists it. */
function snapshotDate(seconds: number): string {
  const date = new Date(seconds * 1000);
  return `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())} ${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}`;
}

function vmClock(nanoseconds: bigint): string {
  const milliseconds = Number(nanoseconds / 1_000_000n);
  const seconds = Math.floor(milliseconds / 1000);
  return `${pad2(Math.floor(seconds / 3600))}:${pad2(Math.floor(seconds / 60) % 60)}:${pad2(seconds % 60)}.${String(milliseconds % 1000).padStart(3, '0')}`;
}

function snapshotRow(id: string, tag: string, vmSize: string, date: string, clock: string, icount: string): string {
  return `${id.padEnd(9)} ${tag.padEnd(17)} ${vmSize.padStart(7)}${date.padStart(20)} ${clock.padStart(12)} ${icount.padStart(10)}`;
}

export function formatInfoHuman(info: ImageInfo): string {
  const lines = [
    `image: ${info.filename}`,
    `file format: ${info.format}`,
    `virtual size: ${formatSize(info.virtualSize)} (${info.virtualSize} bytes)`,
    `disk size: ${formatSize(info.actualSize)}`,
  ];
  if (info.clusterSize !== undefined) lines.push(`cluster_size: ${info.clusterSize}`);
  if (info.dirty) lines.push('cleanly shut down: no');
  if (info.backingFilename !== undefined) {
    const actual = info.fullBackingFilename !== info.backingFilename ? ` (actual path: ${info.fullBackingFilename})` : '';
    lines.push(`backing file: ${info.backingFilename}${actual}`);
  }
  if (info.backingFormat !== undefined) lines.push(`backing file format: ${info.backingFormat}`);
  if (info.snapshots.length > 0) {
    lines.push('Snapshot list:', snapshotRow('ID', 'TAG', 'VM SIZE', 'DATE', 'VM CLOCK', 'ICOUNT'));
    for (const snapshot of info.snapshots) {
      lines.push(snapshotRow(snapshot.id, snapshot.name, formatSize(snapshot.vmStateSize), snapshotDate(snapshot.dateSeconds),
        vmClock(snapshot.vmClockNanoseconds), snapshot.icount === undefined ? '' : String(snapshot.icount)));
    }
  }
  const qcow2 = info.qcow2;
  if (qcow2 !== undefined) {
    lines.push('Format specific information:', `    compat: ${qcow2.compat}`, '    compression type: zlib');
    // Version 2 has no feature bits, so qemu-img leaves out what they would say.
    if (qcow2.compat !== '0.10') lines.push(`    lazy refcounts: ${qcow2.lazyRefcounts}`);
    if (qcow2.bitmaps.length > 0) {
      lines.push('    bitmaps:');
      qcow2.bitmaps.forEach((bitmap, index) => {
        lines.push(`        [${index}]:`, '            flags:');
        bitmap.flags.forEach((flag, flagIndex) => lines.push(`                [${flagIndex}]: ${flag}`));
        lines.push(`            name: ${bitmap.name}`, `            granularity: ${bitmap.granularity}`);
      });
    }
    lines.push(`    refcount bits: ${qcow2.refcountBits}`);
    if (qcow2.compat !== '0.10') lines.push(`    corrupt: ${qcow2.corrupt}`, `    extended l2: ${qcow2.extendedL2}`);
  }
  return `${lines.join('\n')}\n`;
}

/** qemu-img's JSON object for one image, its keys in qemu-img's order. */
export function infoJson(info: ImageInfo): Record<string, unknown> {
  const json: Record<string, unknown> = {};
  if (info.snapshots.length > 0) {
    json.snapshots = info.snapshots.map((snapshot) => ({
      ...(snapshot.icount === undefined ? {} : { icount: Number(snapshot.icount) }),
      'vm-clock-nsec': Number(snapshot.vmClockNanoseconds % 1_000_000_000n),
      name: snapshot.name,
      'date-sec': snapshot.dateSeconds,
      'date-nsec': snapshot.dateNanoseconds,
      'vm-clock-sec': Number(snapshot.vmClockNanoseconds / 1_000_000_000n),
      id: snapshot.id,
      'vm-state-size': snapshot.vmStateSize,
    }));
  }
  if (info.backingFormat !== undefined) json['backing-filename-format'] = info.backingFormat;
  json['virtual-size'] = info.virtualSize;
  json.filename = info.filename;
  if (info.clusterSize !== undefined) json['cluster-size'] = info.clusterSize;
  json.format = info.format;
  json['actual-size'] = info.actualSize;
  const qcow2 = info.qcow2;
  if (qcow2 !== undefined) {
    const data: Record<string, unknown> = { compat: qcow2.compat, 'compression-type': 'zlib' };
    if (qcow2.compat !== '0.10') data['lazy-refcounts'] = qcow2.lazyRefcounts;
    if (qcow2.bitmaps.length > 0) {
      data.bitmaps = qcow2.bitmaps.map((bitmap) => ({ flags: bitmap.flags, name: bitmap.name, granularity: bitmap.granularity }));
    }
    data['refcount-bits'] = qcow2.refcountBits;
    if (qcow2.compat !== '0.10') Object.assign(data, { corrupt: qcow2.corrupt, 'extended-l2': qcow2.extendedL2 });
    json['format-specific'] = { type: 'qcow2', data };
  }
  if (info.backingFilename !== undefined) {
    json['full-backing-filename'] = info.fullBackingFilename;
    json['backing-filename'] = info.backingFilename;
  }
  json['dirty-flag'] = info.dirty;
  return json;
}

/**
 * qemu-img's JSON layout: JSON.stringify's with four-space indents, except that an empty array or
 * object still opens and closes on lines of its own ("[\n    ]"), as QEMU's printer does.
 */
export function formatJson(value: unknown): string {
  const render = (item: unknown, indent: string): string => {
    const inner = `${indent}    `;
    if (Array.isArray(item)) {
      const lines = item.map((element) => `${inner}${render(element, inner)}`);
      return `[\n${lines.join(',\n')}${lines.length > 0 ? '\n' : ''}${indent}]`;
    }
    if (item !== null && typeof item === 'object') {
      const lines = Object.entries(item).map(([key, element]) => `${inner}${JSON.stringify(key)}: ${render(element, inner)}`);
      return `{\n${lines.join(',\n')}${lines.length > 0 ? '\n' : ''}${indent}}`;
    }
    return JSON.stringify(item);
  };
  return `${render(value, '')}\n`;
}

export function parseOutputFormat(value: string | undefined): 'human' | 'json' {
  if (value === undefined || value === 'human') return 'human';
  if (value === 'json') return 'json';
  throw new ImgError(`--output must be used with human or json as argument.`);
}

export async function runInfo(argv: readonly string[]): Promise<number> {
  const parsed = getopt(argv, { short: { f: true, h: false, U: false }, long: { output: true, 'backing-chain': false, 'force-share': false, help: false } });
  const output = parseOutputFormat(lastValue(parsed, 'output'));
  const format = lastValue(parsed, 'f');
  if (format !== undefined) requireFormat(format, '-f');
  if (parsed.operands.length === 0) throw new ImgError('Expecting one image file name');
  if (parsed.operands.length > 1) throw new ImgError(`Invalid argument '${parsed.operands[1]}'`);
  const path = parsed.operands[0]!;
  if (hasFlag(parsed, 'backing-chain')) {
    const chain = await readBackingChain(path, format);
    process.stdout.write(output === 'json' ? formatJson(chain.map(infoJson)) : chain.map(formatInfoHuman).join('\n'));
  } else {
    const info = await readImageInfo(path, format);
    process.stdout.write(output === 'json' ? formatJson(infoJson(info)) : formatInfoHuman(info));
  }
  return 0;
}
