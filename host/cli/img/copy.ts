// `wkvm img convert [-f FMT] [-O raw|qcow2] [-c] [-o OPTIONS] IN OUT` and
// `wkvm img resize [-f FMT] [--shrink] FILE [+|-]SIZE`.
//
// convert reads the input through openDiskImage (so a qcow2 input's backing chain and compressed
// clusters read as the guest would see them) and writes only what is not zero: a raw output stays
// sparse, a qcow2 output gets clusters only where there is data; -c stores each such cluster
// compressed when that saves at least a sector.

import { truncate } from 'node:fs/promises';
import { openDiskImage, type DiskImage } from '../../block/disk.js';
import { DiskImageError, DiskIoError, type DiskFormat } from '../../block/errors.js';
import { NodeBlockFile, type BlockFileOpener } from '../../block/file.js';
import { CompressionUnavailableError, deflateCluster } from '../../block/qcow2/deflate.js';
import { Qcow2DiskImage } from '../../block/qcow2/image.js';
import { createQcow2Image, createRaw, parseCreateOptions, parseImageSize } from './create.js';
import { ImgError } from './errors.js';
import { openImageFile, requireFormat, resolveFormat, systemReason } from './files.js';
import { getopt, hasFlag, lastValue } from './getopt.js';

/** Files for a one-shot tool: libuv's pool, no disk I/O thread to start and stop. */
const openWithoutIoThread: BlockFileOpener = (path, writable) => NodeBlockFile.open(path, writable, { ioThread: null });
/** How much of the input is read at a time (a whole number of clusters of any size qcow2 allows). */
const COPY_CHUNK_BYTES = 4 * 1024 * 1024;
/** The granule at which a raw output skips zeros. */
const RAW_ZERO_GRANULE = 64 * 1024;

async function openForTool(path: string, options: { format?: DiskFormat; readOnly: boolean }): Promise<DiskImage> {
  try {
    return await openDiskImage(path, { ...options, cache: 'unsafe', openFile: openWithoutIoThread });
  } catch (error) {
    if (error instanceof DiskImageError) {
      // An error from the file system reads as the OS says it; anything else is the image layer's reason.
      const reason = (error.cause as NodeJS.ErrnoException | undefined)?.code !== undefined ? systemReason(error.cause) : error.reason;
      throw new ImgError(`Could not open '${error.path}': ${reason}`, 1, { cause: error });
    }
    throw error;
  }
}

function isAllZero(bytes: Uint8Array): boolean {
  // Word at a time where the view is aligned (it is for every granule here), byte at a time otherwise.
  if (bytes.byteOffset % 4 === 0 && bytes.length % 4 === 0) {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
    return true;
  }
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/**
 * Copies `input` into `output` granule by granule, writing runs of non-zero granules; a compressing
 * qcow2 output takes each non-zero cluster compressed when that is smaller by a sector or more.
 */
async function copyData(input: DiskImage, output: DiskImage, granule: number, compress: boolean): Promise<void> {
  const chunk = new Uint8Array(COPY_CHUNK_BYTES);
  for (let offset = 0; offset < input.size; offset += chunk.length) {
    const length = Math.min(chunk.length, input.size - offset);
    const data = chunk.subarray(0, length);
    await input.read(offset, data);
    let runStart = -1;
    const flushRun = async (end: number) => {
      if (runStart >= 0) await output.write(offset + runStart, data.subarray(runStart, end));
      runStart = -1;
    };
    for (let at = 0; at < length; at += granule) {
      const piece = data.subarray(at, Math.min(at + granule, length));
      if (isAllZero(piece)) {
        await flushRun(at);
        continue;
      }
      if (compress && output instanceof Qcow2DiskImage) {
        // A compressed cluster always inflates to a whole cluster: the disk's last, partial one is padded.
        const whole = new Uint8Array(granule);
        whole.set(piece);
        const compressed = await deflateCluster(whole);
        if (compressed.length <= granule - 512) {
          await flushRun(at);
          await output.writeCompressedCluster((offset + at) / granule, compressed);
          continue;
        }
      }
      if (runStart < 0) runStart = at;
    }
    await flushRun(length);
  }
}

export async function runConvert(argv: readonly string[]): Promise<number> {
  const parsed = getopt(argv, { short: { f: true, O: true, c: false, o: true, p: false, q: false, h: false, U: false }, long: { help: false } });
  const inputFormat = lastValue(parsed, 'f');
  if (inputFormat !== undefined) requireFormat(inputFormat, '-f');
  const outputFormat = requireFormat(lastValue(parsed, 'O') ?? 'raw', '-O');
  const compress = hasFlag(parsed, 'c');
  if (parsed.operands.length < 2) throw new ImgError('Must specify image file name');
  if (parsed.operands.length > 2) throw new ImgError('wkvm img convert takes one input image (qemu-img can concatenate several)');
  const [inputPath, outputPath] = parsed.operands as [string, string];
  if (compress && outputFormat !== 'qcow2') throw new ImgError('Compression not supported for this file format');
  const options = parseCreateOptions(outputFormat, parsed.options.filter((option) => option.name === 'o').map((option) => option.value!), outputPath);
  if (options.backingFile !== undefined) throw new ImgError(`${outputPath}: convert into an image with a backing file is not supported by wkvm img`);

  const input = await openForTool(inputPath, { format: inputFormat as DiskFormat | undefined, readOnly: true });
  try {
    if (outputFormat === 'raw') await createRaw(outputPath, input.size);
    else await createQcow2Image(outputPath, input.size, options.layout);
    const output = await openForTool(outputPath, { format: outputFormat, readOnly: false });
    try {
      const granule = output instanceof Qcow2DiskImage ? output.clusterSize : RAW_ZERO_GRANULE;
      await copyData(input, output, granule, compress);
    } finally {
      await output.close();
    }
  } catch (error) {
    if (error instanceof CompressionUnavailableError) throw new ImgError(error.message, 1, { cause: error });
    if (error instanceof DiskIoError) throw new ImgError(`error while converting ${inputPath} to ${outputPath}: ${error.message}`, 1, { cause: error });
    throw error;
  } finally {
    await input.close();
  }
  return 0;
}

/** The size operand of resize: absolute, or +SIZE / -SIZE relative to the current size. */
function parseResizeSize(text: string): { relative: -1 | 0 | 1; bytes: number } {
  const sign = text[0] === '+' ? 1 : text[0] === '-' ? -1 : 0;
  const bytes = parseImageSize(sign === 0 ? text : text.slice(1));
  return { relative: sign, bytes };
}

export async function runResize(argv: readonly string[]): Promise<number> {
  // As in qemu-img, a last argument like -1G is the size, not an option.
  const last = argv[argv.length - 1];
  const negativeSize = last !== undefined && /^-\d/.test(last) ? last : undefined;
  const parsed = getopt(negativeSize === undefined ? argv : argv.slice(0, -1), { short: { f: true, q: false, h: false, U: false }, long: { shrink: false, help: false } });
  const operands = negativeSize === undefined ? parsed.operands : [...parsed.operands, negativeSize];
  if (operands.length < 2) throw new ImgError('Not enough arguments');
  if (operands.length > 2) throw new ImgError(`Invalid argument '${operands[2]}'`);
  const [path, sizeText] = operands as [string, string];
  const requested = lastValue(parsed, 'f');
  const change = parseResizeSize(sizeText);
  const shrinkAllowed = hasFlag(parsed, 'shrink');

  const file = await openImageFile(path, false);
  let format: DiskFormat;
  let fileSize: number;
  try {
    format = await resolveFormat(file, path, requested);
    fileSize = await file.size();
  } finally {
    await file.close();
  }
  const newSize = (current: number): number => {
    const size = change.relative === 0 ? change.bytes : current + change.relative * change.bytes;
    if (size < 0) throw new ImgError('New image size must be positive');
    if (size < current && !shrinkAllowed) throw new ImgError('Use the --shrink option to perform a shrink operation.');
    return size;
  };
  if (format === 'raw') {
    // A raw image is its file: resizing is truncating, to the byte (qemu-img does not round raw sizes).
    await truncate(path, newSize(fileSize));
  } else {
    const image = await openForTool(path, { format, readOnly: false });
    try {
      if (!(image instanceof Qcow2DiskImage)) throw new Error('a qcow2 image opened as something else');
      const size = newSize(image.size);
      if (size % 512 !== 0) throw new ImgError('The new size must be a multiple of 512');
      if (size < image.size) throw new ImgError('shrinking qcow2 images is not supported by wkvm img (qemu-img resize --shrink can)');
      if (size > image.size) await image.grow(size);
    } catch (error) {
      if (error instanceof DiskIoError) throw new ImgError(`Error resizing image: ${error.message}`, 1, { cause: error });
      throw error;
    } finally {
      await image.close();
    }
  }
  if (!hasFlag(parsed, 'q')) process.stdout.write('Image resized.\n');
  return 0;
}
