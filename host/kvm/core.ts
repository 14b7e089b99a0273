// Loading and instantiating the WASM core, in Node.js or a browser. The core imports its memory (shared,
// so vCPU workers can run over the same guest RAM), a clock and AssemblyScript's abort hook.
import * as layout from '../../assembly/abi/layout.js';
import { CoreLoadError } from './errors.js';

/** The raw exports of build/core.wasm (see assembly/index.ts). i64 values cross as bigint. */
export interface CoreExports {
  readonly staticDataEnd: () => number;
  readonly layoutLimit: () => number;
  readonly initMachine: (numHarts: number, flags: number) => number;
  readonly resetHart: (id: number, pc: bigint, started: number) => void;
  readonly enterSupervisor: (id: number) => void;
  readonly run: (id: number, budget: number) => number;
  readonly getCsr: (id: number, num: number) => bigint;
  readonly setCsr: (id: number, num: number, value: bigint) => number;
  readonly lastCsrIllegal: () => number;
  readonly setPrivilege: (id: number, priv: number) => void;
  readonly flushTlb: (id: number) => void;
  readonly setIrqLevel: (src: number, level: number) => void;
  readonly mtime: () => number;
  readonly timerDeadline: (id: number) => number;
}

/** Where the compiled core lives relative to this module, from the sources (vitest) and from dist/. */
const CORE_CANDIDATES = ['../../build/core.wasm', '../../../build/core.wasm'];

export type CoreSource = WebAssembly.Module | BufferSource | URL | string;

const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

export async function compileCore(source?: CoreSource): Promise<WebAssembly.Module> {
  if (source instanceof WebAssembly.Module) return source;
  if (source !== undefined && !(source instanceof URL) && typeof source !== 'string') {
    return compileBytes(source, 'the given bytes');
  }
  const urls = source !== undefined ? [new URL(source.toString(), import.meta.url)] : CORE_CANDIDATES.map((c) => new URL(c, import.meta.url));
  const failures: string[] = [];
  for (const url of urls) {
    try {
      return await compileBytes((await readUrl(url)) as Uint8Array<ArrayBuffer>, url.href);
    } catch (error) {
      if (error instanceof CoreLoadError) throw error;
      failures.push(`${url.href}: ${(error as Error).message}`);
    }
  }
  throw new CoreLoadError(urls.map((u) => u.href).join(' or '), `not found (run \`npm run build\`): ${failures.join('; ')}`);
}

async function readUrl(url: URL): Promise<Uint8Array<ArrayBuffer>> {
  if (isNode && url.protocol === 'file:') {
    const fs = await import('node:fs/promises');
    return new Uint8Array(await fs.readFile(url));
  }
  const response = await fetch(url);
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function compileBytes(bytes: BufferSource, origin: string): Promise<WebAssembly.Module> {
  try {
    return await WebAssembly.compile(bytes);
  } catch (error) {
    throw new CoreLoadError(origin, (error as Error).message);
  }
}

/** A clock in timebase ticks since the VM's epoch; every instance of a VM must agree on the epoch. */
export type TickClock = () => number;

export function realTimeClock(epochMs: number): TickClock {
  const ticksPerMs = layout.TIMEBASE_HZ / 1000;
  const origin = performance.timeOrigin;
  return () => (origin + performance.now() - epochMs) * ticksPerMs;
}

/** The largest function-table index any hart's block cache uses, plus one. */
const JIT_TABLE_SIZE = layout.JIT_TABLE_BASE + layout.MAX_HARTS * layout.JIT_ENTRIES;

/**
 * The host half of the block translator: compiles a batch module the core wrote into memory and puts each
 * of its functions into the core's table at the slot the batch record names, where the core calls it. The
 * table is the instance's own, so every vCPU worker has its own translations. The core counts what was
 * compiled and what failed (Vcpu.jitStatistics); `onError` hears why a module failed (a translator bug:
 * its blocks stay interpreted).
 */
function blockCompiler(memory: WebAssembly.Memory, table: WebAssembly.Table, onError: (message: string) => void) {
  const imports = { e: { m: memory } };
  return (ptr: number, length: number, records: number, count: number): number => {
    try {
      // A module can only be compiled from unshared bytes, so copy them out of the shared memory.
      const bytes = new Uint8Array(memory.buffer, ptr, length).slice();
      const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), imports);
      const view = new DataView(memory.buffer);
      for (let i = 0; i < count; i++) {
        const tableIndex = view.getInt32(records + i * layout.JIT_RECORD_SIZE + layout.JIT_RECORD_TABLE_INDEX, true);
        if (tableIndex < layout.JIT_TABLE_BASE || tableIndex >= JIT_TABLE_SIZE) throw new RangeError(`table index ${tableIndex}`);
        if (table.length <= tableIndex) table.grow(Math.min(JIT_TABLE_SIZE, Math.max(tableIndex + 1, table.length * 2)) - table.length);
        table.set(tableIndex, instance.exports[String(i)] as (...args: unknown[]) => unknown);
      }
      return 1;
    } catch (error) {
      onError((error as Error).message);
      return 0;
    }
  };
}

export function instantiateCore(
  module: WebAssembly.Module, memory: WebAssembly.Memory, clock: TickClock, onJitError: (message: string) => void = () => {},
): CoreExports {
  const table = new WebAssembly.Table({ element: 'anyfunc', initial: layout.JIT_TABLE_BASE });
  const imports = {
    env: {
      memory,
      table,
      abort: (_message: number, _file: number, line: number, column: number) => {
        throw new CoreLoadError('core', `core aborted at line ${line}:${column}`);
      },
    },
    wkvm: { clockTicks: clock, jitCompile: blockCompiler(memory, table, onJitError) },
  };
  const instance = new WebAssembly.Instance(module, imports);
  const exports = instance.exports as unknown as CoreExports;
  if (exports.staticDataEnd() > layout.AS_STATIC_END) {
    throw new CoreLoadError('core', `static data ends at 0x${exports.staticDataEnd().toString(16)}, beyond AS_STATIC_END`);
  }
  return exports;
}
