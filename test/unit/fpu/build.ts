// Compiles test/unit/fpu/entry.ts with the AssemblyScript compiler in memory (no build artifact on
// disk) and instantiates it standalone.
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import asc from 'assemblyscript/asc';

export interface FpuCore {
  memory: WebAssembly.Memory;
  flags(): number;
  clearFlags(): void;
  execFpOp(hartBase: number, insn: number): number;
  nanBox32(v: number): bigint;
  unboxF32(v: bigint): number;
  HARTS: WebAssembly.Global;
  HART_F: WebAssembly.Global;
  HART_X: WebAssembly.Global;
  CSR_FCSR: WebAssembly.Global;
  [name: string]: unknown;
}

export class FpuBuildError extends Error {
  constructor(
    readonly diagnostics: string,
    readonly entry: string,
  ) {
    super(`compiling ${entry} failed:\n${diagnostics}`);
    this.name = 'FpuBuildError';
  }
}

const here = path.dirname(fileURLToPath(import.meta.url));
let cached: Promise<FpuCore> | undefined;

async function build(): Promise<FpuCore> {
  const entry = path.join(here, 'entry.ts');
  let binary: Uint8Array | undefined;
  const stderr = asc.createMemoryStream();
  const { error } = await asc.main(
    [entry, '--config', path.join(here, 'asconfig.json'), '--outFile', 'fpu.wasm'],
    {
      stderr,
      writeFile(name: string, contents: Uint8Array | string) {
        if (name.endsWith('.wasm') && typeof contents !== 'string') binary = contents;
      },
    },
  );
  if (error || !binary) throw new FpuBuildError(stderr.toString() || String(error), entry);
  const module = await WebAssembly.compile(binary as Uint8Array<ArrayBuffer>);
  const instance = await WebAssembly.instantiate(module, {
    env: {
      abort(_msg: number, _file: number, line: number, col: number) {
        throw new Error(`AssemblyScript abort at ${line}:${col}`);
      },
    },
  });
  return instance.exports as unknown as FpuCore;
}

export function loadFpuCore(): Promise<FpuCore> {
  cached ??= build();
  return cached;
}
