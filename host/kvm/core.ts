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
  readonly jitAdopt: (id: number, records: number, count: number, blocks: number, blockCount: number) => number;
}

/**
 * A module of translated regions one instance of the core compiled, as the VM's other vCPU threads adopt
 * it (SMP): the module compiles once and each thread instantiates it over the shared memory.
 */
export interface TranslatedBatch {
  readonly module: WebAssembly.Module;
  /** The batch records, JIT_RECORD_SIZE bytes each: record i for the module's export "i". */
  readonly records: Uint8Array;
  /** The regions' blocks the records index, JIT_REGION_BLOCK_SIZE bytes each. */
  readonly blocks: Uint8Array;
}

export interface JitHooks {
  /** Why a module of translated blocks failed to compile (a translator bug: its blocks stay interpreted). */
  readonly onError?: (message: string) => void;
  /** Each batch this instance compiled, for the VM's other vCPU threads to adopt. */
  readonly onCompiled?: (batch: TranslatedBatch) => void;
}

/** An instance of the core with its own function table: what one vCPU thread runs. */
export interface CoreInstance {
  readonly exports: CoreExports;
  /**
   * Takes the regions of a batch another instance of the same VM compiled into hart `hartId`'s block
   * cache here, where the cache has room and the hart has no translation of its own; returns how many went
   * in. Each is checked against the code in memory before it first runs. A batch this instance cannot use
   * (not a module of translated blocks, records that do not match it) is ignored.
   */
  adopt(hartId: number, batch: TranslatedBatch): number;
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

/** Puts function i of `instance` at the table slot record i names, for i below `count`; throws if one is wrong. */
function installFunctions(table: WebAssembly.Table, instance: WebAssembly.Instance, records: DataView, count: number, adopting: boolean): void {
  for (let i = 0; i < count; i++) {
    const tableIndex = records.getInt32(i * layout.JIT_RECORD_SIZE + layout.JIT_RECORD_TABLE_INDEX, true);
    if (adopting && tableIndex === -1) continue;
    if (tableIndex < layout.JIT_TABLE_BASE || tableIndex >= JIT_TABLE_SIZE) throw new RangeError(`table index ${tableIndex}`);
    growTable(table, tableIndex + 1);
    table.set(tableIndex, instance.exports[String(i)] as (...args: unknown[]) => unknown);
  }
}

/** Makes `table` at least `length` slots long (doubling, up to JIT_TABLE_SIZE). */
function growTable(table: WebAssembly.Table, length: number): void {
  if (table.length < length) table.grow(Math.min(JIT_TABLE_SIZE, Math.max(length, table.length * 2)) - table.length);
}

/** Whether `instance` exports the `count` functions of a batch, "0" to String(count - 1). */
function hasBatchFunctions(instance: WebAssembly.Instance, count: number): boolean {
  for (let i = 0; i < count; i++) if (typeof instance.exports[String(i)] !== 'function') return false;
  return true;
}

/**
 * The host half of the block translator: compiles a batch module the core wrote into memory and puts each
 * of its functions into the core's table at the slot the batch record names, where the core calls it. The
 * table is the instance's own, so every vCPU worker has its own table; `hooks.onCompiled` hands the batch to
 * the others (SMP). The core counts what was compiled and what failed (Vcpu.jitStatistics); `hooks.onError`
 * hears why a module failed (a translator bug: its blocks stay interpreted).
 */
function blockCompiler(memory: WebAssembly.Memory, table: WebAssembly.Table, hooks: JitHooks) {
  const imports = { e: { m: memory } };
  return (ptr: number, length: number, records: number, count: number, blocks: number, blockCount: number): number => {
    let module: WebAssembly.Module;
    try {
      // A module can only be compiled from unshared bytes, so copy them out of the shared memory.
      module = new WebAssembly.Module(new Uint8Array(memory.buffer, ptr, length).slice());
      const instance = new WebAssembly.Instance(module, imports);
      installFunctions(table, instance, new DataView(memory.buffer, records, count * layout.JIT_RECORD_SIZE), count, false);
    } catch (error) {
      hooks.onError?.((error as Error).message);
      return 0;
    }
    if (hooks.onCompiled !== undefined) {
      try {
        hooks.onCompiled({
          module,
          records: new Uint8Array(memory.buffer, records, count * layout.JIT_RECORD_SIZE).slice(),
          blocks: new Uint8Array(memory.buffer, blocks, blockCount * layout.JIT_REGION_BLOCK_SIZE).slice(),
        });
      } catch {
        // Sharing is an optimisation: the other harts translate this code themselves.
      }
    }
    return 1;
  };
}

export function instantiateCore(module: WebAssembly.Module, memory: WebAssembly.Memory, clock: TickClock, hooks: JitHooks = {}): CoreExports {
  return createCoreInstance(module, memory, clock, hooks).exports;
}

export function createCoreInstance(module: WebAssembly.Module, memory: WebAssembly.Memory, clock: TickClock, hooks: JitHooks = {}): CoreInstance {
  const table = new WebAssembly.Table({ element: 'anyfunc', initial: layout.JIT_TABLE_BASE });
  const imports = {
    env: {
      memory,
      table,
      abort: (_message: number, _file: number, line: number, column: number) => {
        throw new CoreLoadError('core', `core aborted at line ${line}:${column}`);
      },
    },
    wkvm: { clockTicks: clock, jitCompile: blockCompiler(memory, table, hooks) },
  };
  const instance = new WebAssembly.Instance(module, imports);
  const exports = instance.exports as unknown as CoreExports;
  if (exports.staticDataEnd() > layout.AS_STATIC_END) {
    throw new CoreLoadError('core', `static data ends at 0x${exports.staticDataEnd().toString(16)}, beyond AS_STATIC_END`);
  }
  const adopt = (hartId: number, batch: TranslatedBatch): number => {
    const count = batch.records.length / layout.JIT_RECORD_SIZE;
    const blockCount = batch.blocks.length / layout.JIT_REGION_BLOCK_SIZE;
    if (!Number.isInteger(hartId) || hartId < 0 || hartId >= layout.MAX_HARTS) return 0;
    if (!Number.isInteger(count) || count < 1 || count > layout.JIT_BATCH_MAX) return 0;
    if (!Number.isInteger(blockCount) || blockCount > layout.JIT_BATCH_BLOCKS_MAX) return 0;
    let instance: WebAssembly.Instance;
    try {
      instance = new WebAssembly.Instance(batch.module, { e: { m: memory } });
    } catch {
      return 0;
    }
    if (!hasBatchFunctions(instance, count)) return 0;
    // Every slot the hart's cache can name exists before its entries say the regions are there.
    growTable(table, layout.JIT_TABLE_BASE + (hartId + 1) * layout.JIT_ENTRIES);
    // The hart's module buffer is free between run() calls: the core only uses it while compiling a batch.
    const scratch = layout.JIT_STATE + hartId * layout.JIT_STATE_SIZE + layout.JIT_MODULE;
    const blocksAt = scratch + batch.records.length;
    new Uint8Array(memory.buffer, scratch, batch.records.length).set(batch.records);
    new Uint8Array(memory.buffer, blocksAt, batch.blocks.length).set(batch.blocks);
    const adopted = exports.jitAdopt(hartId, scratch, count, blocksAt, blockCount);
    if (adopted > 0) installFunctions(table, instance, new DataView(memory.buffer, scratch, batch.records.length), count, true);
    return adopted;
  };
  return { exports, adopt };
}
