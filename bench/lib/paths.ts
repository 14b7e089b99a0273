// Where the things the benchmarks need live, found from this module's own location so the runner works
// from dist/bench (npm run bench) and from the sources (vitest) alike.
import { existsSync, readFileSync, statSync, readdirSync } from 'node:fs';
import { dirname, join, delimiter } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchSetupError } from './errors.js';

/** The checkout's root: the nearest directory upwards holding wkvm's package.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'wkvm') return dir;
      } catch {
        // not ours (or unreadable): keep looking upwards
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new BenchSetupError(fileURLToPath(import.meta.url), 'not inside the wkvm checkout (no package.json named wkvm above it)');
    dir = parent;
  }
}

export interface BenchPaths {
  readonly root: string;
  readonly coreWasm: string;
  readonly cli: string;
  readonly intbenchElf: string;
}

export function benchPaths(root = repoRoot()): BenchPaths {
  return {
    root,
    coreWasm: join(root, 'build', 'core.wasm'),
    cli: join(root, 'bin', 'wkvm.js'),
    intbenchElf: join(root, 'bench', 'guest', 'intbench', 'intbench.elf'),
  };
}

/** Refuses to go on without the compiled core and the guest program; warns when the core looks stale. */
export function checkBuild(paths: BenchPaths, warn: (line: string) => void): void {
  if (!existsSync(paths.coreWasm)) {
    throw new BenchSetupError(paths.coreWasm, 'the WASM core is not built: run `npm run build` (or `npm run bench`, which builds first)');
  }
  if (!existsSync(paths.intbenchElf)) {
    throw new BenchSetupError(paths.intbenchElf, 'the intbench guest is missing: run `make -C bench/guest` (needs gcc-riscv64-unknown-elf)');
  }
  const coreTime = statSync(paths.coreWasm).mtimeMs;
  const newest = newestSource(join(paths.root, 'assembly'));
  if (newest !== null && newest.mtimeMs > coreTime) {
    warn(`build/core.wasm is older than ${newest.path}: the figures may not reflect the current sources (run \`npm run build\`)`);
  }
}

function newestSource(dir: string): { path: string; mtimeMs: number } | null {
  let newest: { path: string; mtimeMs: number } | null = null;
  if (!existsSync(dir)) return null;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const path = join(entry.parentPath, entry.name);
    const mtimeMs = statSync(path).mtimeMs;
    if (newest === null || mtimeMs > newest.mtimeMs) newest = { path, mtimeMs };
  }
  return newest;
}

/** The first executable called `name` on PATH, or null. */
export function findOnPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      const stat = statSync(candidate);
      if (stat.isFile() && (stat.mode & 0o111) !== 0) return candidate;
    } catch {
      // not in this directory
    }
  }
  return null;
}
