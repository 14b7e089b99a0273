// Where the interpreter reaches the F/D arithmetic (exec_fp.ts, issue #3). Until it lands every FP
// arithmetic instruction is illegal (FP loads/stores and fcsr already work).
export function execFpOp(hartBase: usize, insn: u32): i32 {
  return hartBase != 0 && insn != 0 ? 1 : 1;
}
