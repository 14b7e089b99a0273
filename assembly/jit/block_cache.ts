// The block cache: which block starts have been translated, and entering them.
//
// The interpreter asks at block starts (jump and branch targets, the start of each slice). A start that
// keeps coming back (MACHINE_JIT_THRESHOLD times) is translated (translate.ts) and handed to the host, which
// compiles the module and puts its function into this instance's function table at the entry's index;
// from then on the start runs the compiled block. Entries are keyed by host address, so translations
// follow physical code and serve every virtual mapping of it.
//
// Code is never re-checked against memory: like a hardware instruction cache, the cache is made
// coherent by FENCE.I (and its remote forms), which empties it, as the ISA requires of software that
// writes code. The entries live in the hart's block; the functions in the instance's table.
import {
  HART_ID, HART_JIT_CACHE, HART_JIT_CODE, JIT_CODE_SIZE, JIT_ENTRIES, JIT_ENTRY_SIZE, JIT_KEY, JIT_HITS,
  JIT_LENGTH, JIT_TABLE_BASE, MACHINE_FLAGS, MACHINE_FLAG_JIT, MACHINE_JIT_THRESHOLD,
} from "../abi/layout";
import { hart } from "../cpu/hart";
import { translateBlock, moduleLength } from "./translate";

/** Returned by enterBlock when no block ran. */
export const NO_BLOCK: i32 = -1;
/** Whether the block enterBlock last ran went to its end (else it stopped before an instruction it leaves to the interpreter). */
export let blockCompleted = false;

// @ts-ignore: decorator
@external("wkvm", "jitCompile")
/** Compiles the module in memory [ptr, ptr + length) and installs its function at `tableIndex`; 0 if it could not. */
declare function jitCompile(ptr: usize, length: i32, tableIndex: i32): i32;

@inline export function jitEnabled(): bool {
  return (load<i32>(MACHINE_FLAGS) & MACHINE_FLAG_JIT) != 0;
}

/** Forgets every translation of this hart (FENCE.I). */
export function flushBlockCache(): void {
  memory.fill(hart + HART_JIT_CACHE, 0, JIT_ENTRIES * JIT_ENTRY_SIZE);
}

/**
 * At a block start: runs the translated block at host address `code` (virtual `pc`) if there is one of at
 * most `budget` instructions, translating it first when it has become hot. Returns the instructions it
 * retired, with the next pc in HART_PC, or NO_BLOCK.
 */
export function enterBlock(code: u32, pc: u64, budget: i32, dataTlb: usize, asidHash: usize, tag: u64): i32 {
  const index = (code >> 1) & (JIT_ENTRIES - 1);
  const entry = hart + HART_JIT_CACHE + <usize>index * JIT_ENTRY_SIZE;
  let length = <i32>load<i16>(entry, JIT_LENGTH);
  if (load<u32>(entry, JIT_KEY) != code) {
    store<u32>(entry, code, JIT_KEY);
    store<u16>(entry, 1, JIT_HITS);
    store<i16>(entry, 0, JIT_LENGTH);
    return NO_BLOCK;
  }
  const tableIndex = JIT_TABLE_BASE + load<i32>(hart + HART_ID) * JIT_ENTRIES + <i32>index;
  if (length == 0) {
    const hits = <i32>load<u16>(entry, JIT_HITS) + 1;
    store<u16>(entry, <u16>min(hits, 0xffff), JIT_HITS);
    if (hits < load<i32>(MACHINE_JIT_THRESHOLD)) return NO_BLOCK;
    const buffer = hart + HART_JIT_CODE;
    length = translateBlock(<usize>code, <u32>pc & 0xfff, buffer, JIT_CODE_SIZE);
    if (length == 0 || jitCompile(buffer, moduleLength, tableIndex) == 0) length = -1;
    store<i16>(entry, <i16>length, JIT_LENGTH);
  }
  if (length < 0 || length > budget) return NO_BLOCK;
  const retired = call_indirect<i32>(<u32>tableIndex, hart, pc, <i32>dataTlb, <i32>asidHash, tag);
  blockCompleted = retired == length;
  return retired;
}
