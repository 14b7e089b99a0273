// The Node.js options wkvm's launchers (`npm start`, the benchmarks) start the VMM's process with.
//
// V8 keeps a pool of background threads, four by default whatever the machine, for its optimizing compiler
// and its garbage collector. The VMM's own threads need the cores more: the vCPU (the main thread, with
// -smp 1) and the disk I/O thread. While the guest runs new kernel paths, the block translator emits
// hundreds of functions that V8 tiers up on that pool; on a 2-core machine four compiler threads then take
// CPU from the vCPU and delay every disk request the I/O thread would finish in microseconds. One pool
// thread there made the first pass of guest dd faster (bench/README.md, sixth session). The pool's size can
// only be given on the command line, so `node bin/wkvm.js` run by hand keeps Node's default; add
// `--v8-pool-size=N` there for the same effect.
import { availableParallelism } from 'node:os';

/** V8's own default pool size, which more cores do not raise. */
const NODE_DEFAULT_POOL = 4;
/** Cores kept for the vCPU thread and the disk I/O thread. */
const VMM_THREADS = 2;

/** Node options for a process that runs a VMM on a machine with `cores` cores. */
export function vmmNodeOptions(cores: number = availableParallelism()): string[] {
  const pool = Math.max(1, Math.min(NODE_DEFAULT_POOL, cores - VMM_THREADS));
  return [`--v8-pool-size=${pool}`];
}
