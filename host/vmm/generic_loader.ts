// QEMU's generic loader, `-device loader,...`: puts a file or a value into guest memory, and may set a
// hart's pc, before the machine starts. Three forms, as QEMU documents them:
//   file=F[,addr=A][,cpu-num=N][,force-raw=on]  an ELF at its own addresses (pc := its entry), or raw bytes at A (pc := A)
//   addr=A,data=D,data-len=L[,data-be=on]       the first L bytes (L = 1, 2, 4 or 8) of the 64-bit D, little- or big-endian, at A
//   addr=A,cpu-num=N                            hart N starts at A
// The pc is set only when cpu-num= is given. This module checks the options; virt_machine.ts applies them.
import { parseQemuBool } from '../qemu_bool.js';
import { parseQemuInteger } from '../qemu_number.js';
import type { BootInput } from './virt_machine.js';

export type GenericLoader =
  | { readonly kind: 'file'; readonly file: BootInput; readonly addr?: number; readonly cpu?: number; readonly forceRaw: boolean }
  | { readonly kind: 'data'; readonly addr: number; readonly data: bigint; readonly length: 1 | 2 | 4 | 8; readonly bigEndian: boolean }
  | { readonly kind: 'pc'; readonly addr: number; readonly cpu: number };

/** A -device loader whose options do not make one of the three forms. */
export class GenericLoaderError extends Error {
  override readonly name = 'GenericLoaderError';
  constructor(message: string) {
    super(`-device loader: ${message}`);
  }
}

const PROPERTIES = ['driver', 'id', 'file', 'addr', 'data', 'data-len', 'data-be', 'cpu-num', 'force-raw'];

/** QEMU's integer property syntax (0x hex, 0 octal, decimal), within 0..max. */
function integer(key: string, text: string, max: bigint): bigint {
  const value = parseQemuInteger(text);
  if (value === null) throw new GenericLoaderError(`${key}=${text}: not a number`);
  if (value > max) throw new GenericLoaderError(`${key}=${text}: out of range`);
  return value;
}

function bool(key: string, text: string | undefined): boolean {
  if (text === undefined) return false;
  const value = parseQemuBool(text);
  if (value === null) throw new GenericLoaderError(`${key}=${text}: expected on or off`);
  return value;
}

/** The loader a `-device loader,...` option's properties describe. */
export function parseGenericLoader(properties: Readonly<Record<string, string>>): GenericLoader {
  for (const key of Object.keys(properties)) {
    if (!PROPERTIES.includes(key)) throw new GenericLoaderError(`property '${key}' not found (it takes ${PROPERTIES.slice(2).join(', ')})`);
  }
  const addr = properties.addr === undefined ? undefined : Number(integer('addr', properties.addr, (1n << 64n) - 1n));
  if (addr !== undefined && !Number.isSafeInteger(addr)) throw new GenericLoaderError(`addr=${properties.addr}: beyond any guest memory`);
  const cpu = properties['cpu-num'] === undefined ? undefined : Number(integer('cpu-num', properties['cpu-num'], 0xffffn));
  const forceRaw = bool('force-raw', properties['force-raw']);
  const bigEndian = bool('data-be', properties['data-be']);
  if (properties.file !== undefined) {
    if (properties.data !== undefined || properties['data-len'] !== undefined || properties['data-be'] !== undefined) {
      throw new GenericLoaderError('data can not be specified when loading an image');
    }
    if (properties.file === '') throw new GenericLoaderError('file= is empty');
    return {
      kind: 'file', file: properties.file, forceRaw,
      ...(addr === undefined ? {} : { addr }), ...(cpu === undefined ? {} : { cpu }),
    };
  }
  if (addr === undefined) throw new GenericLoaderError('please include valid arguments: file=, or addr= with data= and data-len=, or addr= with cpu-num=');
  if (properties.data !== undefined || properties['data-len'] !== undefined) {
    if (properties.data === undefined || properties['data-len'] === undefined) throw new GenericLoaderError('data= and data-len= go together');
    const length = Number(integer('data-len', properties['data-len'], 255n));
    if (length !== 1 && length !== 2 && length !== 4 && length !== 8) {
      throw new GenericLoaderError(`data-len=${properties['data-len']}: must be 1, 2, 4 or 8`);
    }
    const data = integer('data', properties.data, (1n << 64n) - 1n);
    if (forceRaw) throw new GenericLoaderError('force-raw goes with file=');
    return { kind: 'data', addr, data, length, bigEndian };
  }
  if (cpu === undefined) throw new GenericLoaderError(`addr=${properties.addr} needs data= and data-len=, or cpu-num=`);
  return { kind: 'pc', addr, cpu };
}

/**
 * The bytes a data loader writes: the first data-len bytes of data= as a 64-bit value in memory order, as
 * QEMU writes them. So with data-be=on and data-len below 8 they are data='s high bytes (data-len=4,
 * data-be=on writes 12 34 56 78 for data=0x1234567800000000), and without it its low bytes.
 */
export function loaderDataBytes(loader: Extract<GenericLoader, { kind: 'data' }>): Uint8Array {
  const value = new DataView(new ArrayBuffer(8));
  value.setBigUint64(0, loader.data, !loader.bigEndian);
  return new Uint8Array(value.buffer, 0, loader.length);
}
