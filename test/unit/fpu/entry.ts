// Test-only WebAssembly entry: exposes the FP core to vitest without the rest of the CPU. Built
// standalone (own memory, not the project's imported shared memory) by build.ts.
import * as sf from '../../../assembly/cpu/softfloat';
import { nanBox32 as box, unboxF32 as unbox } from '../../../assembly/cpu/exec_fp';

export * from '../../../assembly/cpu/softfloat';
export { execFpOp } from '../../../assembly/cpu/exec_fp';
export { HARTS, HART_F, HART_X, CSR_FCSR } from '../../../assembly/abi/layout';

export function flags(): u32 {
  return sf.fpFlags;
}
export function clearFlags(): void {
  sf.fpFlags = 0;
}
export function nanBox32(v: u32): u64 {
  return box(v);
}
export function unboxF32(v: u64): u32 {
  return unbox(v);
}
