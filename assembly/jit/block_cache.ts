// The block cache: which block starts have been translated, and entering them.
//
// The interpreter asks at block starts (jump and branch targets, the start of each slice). A start that
// keeps coming back (MACHINE_JIT_THRESHOLD times, counted in the heat table) is translated (translate.ts)
// into the batch; a full batch, or one that has waited BATCH_MAX_AGE instructions, becomes one module
// that the host compiles, putting each function into this instance's function table at its entry's index. From
// then on the start runs the compiled block. Entries are keyed by host address, so translations follow
// physical code and serve every virtual mapping of it.
//
// Code is not re-checked against memory at every entry: like a hardware instruction cache, the cache is
// made coherent by FENCE.I (and its remote forms), as the ISA requires of software that writes code.
// The cache, heat counters and batch live in the hart's JIT_STATE block; the functions in the instance's
// table.
import {
  HART_ID, HART_INSTRET, HART_PC, HART_FENCE_I_COUNT, JIT_STATE, JIT_STATE_SIZE, JIT_CACHE, JIT_HEAT, JIT_ENTRIES, JIT_ENTRY_SIZE,
  JIT_BATCH, JIT_BATCH_COUNT, JIT_BATCH_BODY_BYTES, JIT_BATCH_SINCE, JIT_BATCH_RECORDS, JIT_BATCH_MAX, JIT_RECORD_SIZE,
  JIT_RECORD_ENTRY, JIT_RECORD_KEY, JIT_RECORD_TABLE_INDEX, JIT_RECORD_LENGTH, JIT_RECORD_BYTES, JIT_RECORD_HASH,
  JIT_RECORD_FIRST_BLOCK, JIT_RECORD_BLOCK_COUNT, JIT_BATCH_BLOCKS, JIT_BATCH_BLOCKS_USED, JIT_BATCH_BLOCKS_MAX,
  JIT_REGION_MAX_BLOCKS, JIT_BODIES, JIT_BODIES_SIZE, JIT_MODULE, JIT_STATS_ADOPTED,
  JIT_MODULE_SIZE, JIT_STATS, JIT_REGION_BLOCKS, JIT_STATS_BLOCKS, JIT_STATS_MODULES, JIT_STATS_FAILED,
  JIT_KEY, JIT_RECENT, JIT_ENTRY_BLOCK, JIT_REGION_ENTRY, JIT_REGION_KEY, JIT_REGION_HASH, JIT_HEAT_COUNTERS,
  JIT_REGION_BLOCK_SIZE, JIT_REGION_BLOCK_START, JIT_REGION_BLOCK_LENGTH,
  JIT_LENGTH, JIT_GENERATION, JIT_BYTES, JIT_HASH, JIT_TABLE_BASE, MACHINE_FLAGS, MACHINE_FLAG_JIT, MACHINE_JIT_THRESHOLD, MACHINE_JIT_BATCH,
  TLB_FETCH, TLB_TAG, TLB_ADDEND,
} from "../abi/layout";
import { tlbIndex } from "../mmu/mmu";
import { hart } from "../cpu/hart";
import { spread } from "./heat";
import { translateBlock, writeModule, bodyLength, regionLow, regionBytes, regionBlockCount, LEFT_EARLY, CHECK_INTERRUPTS } from "./translate";

const PAGE_MASK: u64 = ~(<u64>0xfff);
/** Returned by enterBlock when no block ran. */
export const NO_BLOCK: i32 = -1;
/** Whether the last block enterBlock ran went to its end (else it stopped before an instruction it leaves to the interpreter). */
export let blockCompleted = false;
/** Whether the last start enterBlock found no block for begins with an instruction the translator does not take. */
export let startUntranslatable = false;
/** Whether the last block enterBlock ran may have made an interrupt deliverable (it set sstatus.SIE). */
export let interruptsToCheck = false;

// @ts-ignore: decorator
@external("wkvm", "jitCompile")
/**
 * Compiles the module in memory [ptr, ptr + length) and installs its function i (exported as "i") at the
 * table index in batch record i of `records` (JIT_RECORD_SIZE apart), for i below `count`; 0 if it could not.
 * The host may hand the module, the records and the `blockCount` region blocks at `blocks` they index to the
 * VM's other harts (adoptTranslations).
 */
declare function jitCompile(ptr: usize, length: i32, records: usize, count: i32, blocks: usize, blockCount: i32): i32;

/** Instructions a batch that is not full may wait before it is compiled. */
const BATCH_MAX_AGE: u64 = 4_000_000;
/** Bytes of function body one block may need at most (the translator stops a block before this). */
const MAX_BODY_BYTES: u32 = 0x4000;

@inline export function jitEnabled(): bool {
  return (load<i32>(MACHINE_FLAGS) & MACHINE_FLAG_JIT) != 0;
}

/**
 * FENCE.I: makes this hart's translations answer to the code in memory again. Rather than throwing them
 * away (Linux fences after every patched jump label and every newly mapped page of code, hundreds of
 * times during boot), it starts a new generation; an older entry is checked against its code bytes the
 * next time it is reached, and translated again only if they changed.
 */
export function startCodeGeneration(): void {
  store<u32>(hart + HART_FENCE_I_COUNT, load<u32>(hart + HART_FENCE_I_COUNT) + 1);
}

/** A 64-bit hash of guest code (FNV-1a over 64- and 16-bit words). */
function codeHash(code: usize, bytes: u32): u64 {
  let h: u64 = 0xcbf29ce484222325;
  let i: u32 = 0;
  for (; i + 8 <= bytes; i += 8) h = (h ^ load<u64>(code + <usize>i)) * 0x100000001b3;
  for (; i < bytes; i += 2) h = (h ^ <u64>load<u16>(code + <usize>i)) * 0x100000001b3;
  return h ^ (h >> 29);
}

/** The hash of the code a region covers on the page of its entry `code`: (page offset << 16) | bytes. */
@inline function regionHash(code: u32, covered: u32): u64 {
  return codeHash(<usize>((code & ~0xfff) + (covered >> 16)), covered & 0xffff);
}

/** Whether the code region entry `entry` covers still hashes as it did when it was translated. */
@inline function codeUnchanged(entry: usize): bool {
  return regionHash(load<u32>(entry, JIT_KEY), load<u32>(entry, JIT_BYTES)) == load<u64>(entry, JIT_HASH);
}

/**
 * Translates the block at `code` into cache entry `entry` and the batch (compiling the batch first if it
 * is full); returns its length, 0 while it waits in the batch or -1 if it cannot be translated.
 */
function translateInto(entry: usize, code: u32, pc: u64, generation: u32): i32 {
  const batch = jitState() + JIT_BATCH;
  let count = load<i32>(batch, JIT_BATCH_COUNT);
  let used = load<u32>(batch, JIT_BATCH_BODY_BYTES);
  let blocksUsed = load<i32>(batch, JIT_BATCH_BLOCKS_USED);
  if (count >= JIT_BATCH_MAX || used + MAX_BODY_BYTES > <u32>JIT_BODIES_SIZE || blocksUsed + JIT_REGION_MAX_BLOCKS > JIT_BATCH_BLOCKS_MAX) {
    compileBatch();
    count = 0;
    used = 0;
    blocksUsed = 0;
  }
  forgetEntryPoints(entry);
  const length = translateBlock(<usize>code, <u32>pc & 0xfff, jitState() + JIT_BODIES + used, MAX_BODY_BYTES,
    jitState() + JIT_REGION_BLOCKS, jitState() + JIT_HEAT, load<i32>(MACHINE_JIT_THRESHOLD) >> 3);
  store<u32>(entry, code, JIT_KEY);
  store<u8>(entry, 0, JIT_ENTRY_BLOCK);
  store<i16>(entry, length > 0 ? 0 : -1, JIT_LENGTH);
  store<u32>(entry, generation, JIT_GENERATION);
  const covered = (regionLow << 16) | regionBytes;
  store<u32>(entry, length > 0 ? covered : 0, JIT_BYTES);
  store<u64>(entry, length > 0 ? regionHash(code, covered) : 0, JIT_HASH);
  if (length <= 0) return -1;
  const record = batch + JIT_BATCH_RECORDS + <usize>count * JIT_RECORD_SIZE;
  store<u32>(record, <u32>entry, JIT_RECORD_ENTRY);
  store<u32>(record, code, JIT_RECORD_KEY);
  store<i32>(record, tableIndexOf(entry), JIT_RECORD_TABLE_INDEX);
  store<i32>(record, length, JIT_RECORD_LENGTH);
  store<u32>(record, covered, JIT_RECORD_BYTES);
  store<u64>(record, load<u64>(entry, JIT_HASH), JIT_RECORD_HASH);
  store<u16>(record, <u16>blocksUsed, JIT_RECORD_FIRST_BLOCK);
  store<u16>(record, <u16>regionBlockCount, JIT_RECORD_BLOCK_COUNT);
  memory.copy(batch + JIT_BATCH_BLOCKS + <usize>blocksUsed * JIT_REGION_BLOCK_SIZE, jitState() + JIT_REGION_BLOCKS,
    <usize>regionBlockCount * JIT_REGION_BLOCK_SIZE);
  store<i32>(batch, blocksUsed + regionBlockCount, JIT_BATCH_BLOCKS_USED);
  if (count == 0) store<u64>(batch, load<u64>(hart + HART_INSTRET), JIT_BATCH_SINCE);
  store<i32>(batch, count + 1, JIT_BATCH_COUNT);
  store<u32>(batch, used + bodyLength, JIT_BATCH_BODY_BYTES);
  addEntryPoints(entry, code, generation, jitState() + JIT_REGION_BLOCKS, regionBlockCount);
  if (count + 1 >= load<i32>(MACHINE_JIT_BATCH)) {
    compileBatch();
    return <i32>load<i16>(entry, JIT_LENGTH);
  }
  return 0;
}

/**
 * Hands the batch to the host as one module and makes its blocks runnable (those whose entries still hold
 * them: an entry taken over meanwhile by another block of the batch gets that block's function, which the
 * host installs later, at the same index).
 */
export function compileBatch(): void {
  const batch = jitState() + JIT_BATCH;
  const count = load<i32>(batch, JIT_BATCH_COUNT);
  if (count == 0) return;
  const module = jitState() + JIT_MODULE;
  const length = writeModule(jitState() + JIT_BODIES, load<u32>(batch, JIT_BATCH_BODY_BYTES), count, module, JIT_MODULE_SIZE);
  const records = batch + JIT_BATCH_RECORDS;
  const compiled = jitCompile(module, length, records, count, batch + JIT_BATCH_BLOCKS, load<i32>(batch, JIT_BATCH_BLOCKS_USED)) != 0;
  const stats = jitState() + JIT_STATS;
  if (compiled) {
    store<u32>(stats, load<u32>(stats, JIT_STATS_BLOCKS) + <u32>count, JIT_STATS_BLOCKS);
    store<u32>(stats, load<u32>(stats, JIT_STATS_MODULES) + 1, JIT_STATS_MODULES);
  } else {
    store<u32>(stats, load<u32>(stats, JIT_STATS_FAILED) + <u32>count, JIT_STATS_FAILED);
  }
  // Newest first: a block translated again (its code changed at a FENCE.I) is in the batch twice, and
  // its entry must get the newer length, as its table slot gets the newer function.
  for (let i = count - 1; i >= 0; i--) {
    const record = records + <usize>i * JIT_RECORD_SIZE;
    const entry = <usize>load<u32>(record, JIT_RECORD_ENTRY);
    if (load<u32>(entry, JIT_KEY) != load<u32>(record, JIT_RECORD_KEY) || load<i16>(entry, JIT_LENGTH) != 0) continue;
    store<i16>(entry, compiled ? <i16>load<i32>(record, JIT_RECORD_LENGTH) : -1, JIT_LENGTH);
  }
  store<i32>(batch, 0, JIT_BATCH_COUNT);
  store<u32>(batch, 0, JIT_BATCH_BODY_BYTES);
  store<i32>(batch, 0, JIT_BATCH_BLOCKS_USED);
}

/**
 * Takes into this hart's cache the `count` regions another hart of the VM translated and compiled: batch
 * records at `records` (JIT_RECORD_SIZE apart) and the `blockCount` region blocks at `blocks` they index,
 * copied from that hart's batch. Harts run the same kernel, and each used to translate and compile its own
 * copy of it (-smp 2 scaled 1.26x on a fresh boot, 1.8x once both harts were warm). A region goes only into
 * a free way of its set whose start this hart has no entry for (a hart's own translations and its waiting
 * batch stay), with a generation older than the hart's current one, so that it is checked against the code
 * in memory (its hash) before it first runs: the other hart translated it from the code as it was then.
 * Writes each record's function-table slot on this hart, or -1 where it did not go, for the host to install
 * the region's function at; returns how many went in.
 */
export function adoptTranslations(records: usize, count: i32, blocks: usize, blockCount: i32): i32 {
  const stale = load<u32>(hart + HART_FENCE_I_COUNT) - 1;
  let adopted = 0;
  // Newest first: a batch may hold two translations of a start (its code changed at a FENCE.I).
  for (let i = count - 1; i >= 0; i--) {
    const record = records + <usize>i * JIT_RECORD_SIZE;
    store<i32>(record, -1, JIT_RECORD_TABLE_INDEX);
    const code = load<u32>(record, JIT_RECORD_KEY);
    const length = load<i32>(record, JIT_RECORD_LENGTH);
    const firstBlock = <i32>load<u16>(record, JIT_RECORD_FIRST_BLOCK);
    const regionBlocks = <i32>load<u16>(record, JIT_RECORD_BLOCK_COUNT);
    if (code == 0 || length <= 0 || length > 0x7fff || regionBlocks > JIT_REGION_MAX_BLOCKS || firstBlock + regionBlocks > blockCount) continue;
    const way0 = cacheSet(code);
    if (wayHolding(way0, code) != 0) continue;
    const entry = freeWay(way0);
    if (entry == 0) continue;
    store<u32>(entry, code, JIT_KEY);
    store<u8>(entry, 0, JIT_RECENT);
    store<u8>(entry, 0, JIT_ENTRY_BLOCK);
    store<i16>(entry, <i16>length, JIT_LENGTH);
    store<u32>(entry, stale, JIT_GENERATION);
    store<u32>(entry, load<u32>(record, JIT_RECORD_BYTES), JIT_BYTES);
    store<u64>(entry, load<u64>(record, JIT_RECORD_HASH), JIT_HASH);
    store<i32>(record, tableIndexOf(entry), JIT_RECORD_TABLE_INDEX);
    addEntryPoints(entry, code, stale, blocks + <usize>firstBlock * JIT_REGION_BLOCK_SIZE, regionBlocks);
    adopted++;
  }
  const stats = jitState() + JIT_STATS;
  store<u32>(stats, load<u32>(stats, JIT_STATS_ADOPTED) + <u32>adopted, JIT_STATS_ADOPTED);
  return adopted;
}

/** At the end of run(): compiles a batch that has waited long enough. */
export function ageBatch(): void {
  const batch = jitState() + JIT_BATCH;
  if (load<i32>(batch, JIT_BATCH_COUNT) == 0) return;
  if (load<u64>(hart + HART_INSTRET) - load<u64>(batch, JIT_BATCH_SINCE) >= BATCH_MAX_AGE) compileBatch();
}

/**
 * At a block start: runs the translated block at host address `code` (virtual `pc`) if there is one of at
 * most `budget` instructions, translating it first when it has become hot, and then the blocks that follow
 * it for as long as they are translated and the budget lasts: on the code page (`page`, at host address
 * `page + addend`) and on the pages the fetch TLB at `fetchTlb` maps. Returns the instructions retired,
 * with the next pc in HART_PC, or NO_BLOCK.
 */
export function enterBlock(code: u32, pc: u64, budget: i32, dataTlb: usize, asidHash: usize, tag: u64, page: u64, addend: u64, fetchTlb: usize): i32 {
  interruptsToCheck = false;
  let entry = findBlock(code, pc);
  if (entry == 0) return NO_BLOCK;
  let length = <i32>load<i16>(entry, JIT_LENGTH);
  if (length > budget) return NO_BLOCK;
  let total: i32 = 0;
  while (true) {
    const result = runEntry(entry, pc, dataTlb, asidHash, tag, budget);
    const retired = result & (LEFT_EARLY - 1);
    total += retired;
    // A block that left early stopped at an instruction for the interpreter (a TLB miss, say).
    blockCompleted = (result & LEFT_EARLY) == 0;
    if (!blockCompleted) return total;
    if ((result & CHECK_INTERRUPTS) != 0) {
      interruptsToCheck = true;
      return total;
    }
    budget -= retired;
    pc = load<u64>(hart + HART_PC);
    if ((pc & PAGE_MASK) != page) {
      // Calls and returns cross pages all the time (690 of 860 block exits per 4 KiB disk read in the
      // guest kernel); the next page's block is one fetch-TLB hit away, so going back to the interpreter's
      // loop for it only costs time. A miss, or an instruction that may straddle into the page after
      // (offset 0xffe), goes back: the interpreter walks the page table and assembles split instructions.
      if ((pc & 0xfff) >= 0xffe) return total;
      const e = fetchTlb + TLB_FETCH + tlbIndex(pc, asidHash);
      if (load<u64>(e, TLB_TAG) != ((pc & PAGE_MASK) | tag)) return total;
      page = pc & PAGE_MASK;
      addend = load<u64>(e, TLB_ADDEND);
    }
    entry = readyBlock(<u32>(pc + addend));
    if (entry == 0) return total;
    length = <i32>load<i16>(entry, JIT_LENGTH);
    if (length > budget) return total;
  }
}

/** Runs the translated code of cache entry `entry` from virtual `pc`: its region's function, from the entry's block. */
@inline function runEntry(entry: usize, pc: u64, dataTlb: usize, asidHash: usize, tag: u64, budget: i32): i32 {
  const firstBlock = <i32>load<u8>(entry, JIT_ENTRY_BLOCK);
  if (firstBlock == 0) {
    return call_indirect<i32>(<u32>tableIndexOf(entry), hart, pc, <i32>dataTlb, <i32>asidHash, tag, budget, 0);
  }
  // The region's function takes the virtual address of the region's own entry, on the same page.
  const regionPc = pc - <u64>load<u32>(entry, JIT_KEY) + <u64>load<u32>(entry, JIT_REGION_KEY);
  const region = <usize>load<u32>(entry, JIT_REGION_ENTRY);
  return call_indirect<i32>(<u32>tableIndexOf(region), hart, regionPc, <i32>dataTlb, <i32>asidHash, tag, budget, firstBlock);
}

/** The cache entry of the block at `code` if it is translated, compiled and checked since the last FENCE.I; else 0. */
@inline function readyBlock(code: u32): usize {
  const way0 = cacheSet(code);
  const entry = wayHolding(way0, code);
  if (entry == 0) return 0;
  const generation = load<u32>(hart + HART_FENCE_I_COUNT);
  if (load<i16>(entry, JIT_LENGTH) <= 0 || load<u32>(entry, JIT_GENERATION) != generation) return 0;
  if (load<u8>(entry, JIT_ENTRY_BLOCK) != 0 && !regionReady(entry, generation)) return 0;
  markRecent(way0, entry);
  return entry;
}

/**
 * Whether entry point `point`'s region entry still holds a region from the start it was made for (the region
 * may not be compiled yet). A cheap guard: what makes the block number right is forgetEntryPoints, which
 * removes an entry point before its region's entry takes another translation.
 */
@inline function regionHolds(point: usize): bool {
  const region = <usize>load<u32>(point, JIT_REGION_ENTRY);
  return load<u32>(region, JIT_KEY) == load<u32>(point, JIT_REGION_KEY) && load<u8>(region, JIT_ENTRY_BLOCK) == 0 &&
    <u32>load<u64>(region, JIT_HASH) == load<u32>(point, JIT_REGION_HASH);
}

/** Whether entry point `point`'s region is its translation, compiled and checked in FENCE.I generation `generation`. */
@inline function regionReady(point: usize, generation: u32): bool {
  const region = <usize>load<u32>(point, JIT_REGION_ENTRY);
  return regionHolds(point) && load<i16>(region, JIT_LENGTH) > 0 && load<u32>(region, JIT_GENERATION) == generation;
}

/**
 * Makes the blocks of the region just translated into `region` (its start `code`; `blockCount` blocks at
 * `blocks`, as JIT_REGION_BLOCKS holds them) entry points where
 * their cache set has a free way: a start the interpreter reaches that the region already holds (a
 * function's second entry, a loop the region reaches from its start) then runs that code at once, where
 * it would otherwise be counted until hot and translated again, into a region of its own.
 */
function addEntryPoints(region: usize, code: u32, generation: u32, blocks: usize, blockCount: i32): void {
  const page = code & ~0xfff;
  const hash = <u32>load<u64>(region, JIT_HASH);
  for (let i = 1; i < blockCount; i++) {
    const block = blocks + <usize>i * JIT_REGION_BLOCK_SIZE;
    const start = page + load<u32>(block, JIT_REGION_BLOCK_START);
    const way0 = cacheSet(start);
    if (wayHolding(way0, start) != 0) continue;
    const point = freeWay(way0);
    if (point == 0) continue; // the set's translations stay
    store<u32>(point, start, JIT_KEY);
    store<u8>(point, 0, JIT_RECENT);
    store<u8>(point, <u8>i, JIT_ENTRY_BLOCK);
    store<i16>(point, <i16>load<i32>(block, JIT_REGION_BLOCK_LENGTH), JIT_LENGTH);
    store<u32>(point, generation, JIT_GENERATION);
    store<u32>(point, <u32>region, JIT_REGION_ENTRY);
    store<u32>(point, code, JIT_REGION_KEY);
    store<u32>(point, hash, JIT_REGION_HASH);
  }
}

/**
 * Removes the entry points into the region at cache entry `region` (if it holds one) before the entry takes
 * another translation. Kept, they could outlive it: when the same start is translated again into the same
 * entry (after an eviction), the region can cover the same bytes (same key, same hash) with its blocks
 * numbered otherwise, because more of the page has become warm, and an old entry point would then run the
 * wrong block (a Linux boot at jit-threshold=16 crashed in 5 of 6 runs). Entry points are only ever made
 * for block starts inside the region's bytes, so those are the only starts to look up.
 */
function forgetEntryPoints(region: usize): void {
  const key = load<u32>(region, JIT_KEY);
  const covered = load<u32>(region, JIT_BYTES);
  if (key == 0 || load<u8>(region, JIT_ENTRY_BLOCK) != 0 || covered == 0) return;
  const page = key & ~0xfff;
  const end = (covered >> 16) + (covered & 0xffff);
  for (let offset = covered >> 16; offset < end; offset += 2) {
    const start = page + offset;
    const point = wayHolding(cacheSet(start), start);
    if (point != 0 && load<u8>(point, JIT_ENTRY_BLOCK) != 0 && <usize>load<u32>(point, JIT_REGION_ENTRY) == region) {
      store<u32>(point, 0, JIT_KEY);
    }
  }
}

/** The first of the two entries (ways) of the cache set `code` belongs to. */
@inline function cacheSet(code: u32): usize {
  return jitState() + JIT_CACHE + <usize>spread(code, JIT_ENTRIES / 2) * (2 * JIT_ENTRY_SIZE);
}

/** The way of the set at `way0` that holds the block at `code`, or 0. */
@inline function wayHolding(way0: usize, code: u32): usize {
  if (load<u32>(way0, JIT_KEY) == code) return way0;
  const way1 = way0 + JIT_ENTRY_SIZE;
  return load<u32>(way1, JIT_KEY) == code ? way1 : 0;
}

/** A way of the set at `way0` that holds nothing, or 0. */
@inline function freeWay(way0: usize): usize {
  if (load<u32>(way0, JIT_KEY) == 0) return way0;
  const way1 = way0 + JIT_ENTRY_SIZE;
  return load<u32>(way1, JIT_KEY) == 0 ? way1 : 0;
}

/** Marks `entry` the more recently used way of its set (the other is the one to replace). */
@inline function markRecent(way0: usize, entry: usize): void {
  if (load<u8>(entry, JIT_RECENT) == 0) {
    store<u8>(entry, 1, JIT_RECENT);
    store<u8>(entry == way0 ? way0 + JIT_ENTRY_SIZE : way0, 0, JIT_RECENT);
  }
}

/**
 * The cache entry of the block at `code` (virtual `pc`) if it is ready to run; else 0, after counting the
 * visit, translating a block that has become hot or checking one against its code after a FENCE.I.
 */
function findBlock(code: u32, pc: u64): usize {
  startUntranslatable = false;
  const way0 = cacheSet(code);
  const generation = load<u32>(hart + HART_FENCE_I_COUNT);
  let entry = wayHolding(way0, code);
  if (entry != 0 && load<u8>(entry, JIT_ENTRY_BLOCK) != 0) {
    // An entry point runs while its region is the translation it was made from; it waits while the region
    // waits in the batch, and after a FENCE.I it is checked with its region. Else it is forgotten, and the
    // start is counted like any other.
    const region = <usize>load<u32>(entry, JIT_REGION_ENTRY);
    if (regionHolds(entry)) {
      const regionLength = <i32>load<i16>(region, JIT_LENGTH);
      if (regionLength == 0) return 0;
      if (regionLength > 0 && load<u32>(region, JIT_GENERATION) != generation && codeUnchanged(region)) {
        store<u32>(region, generation, JIT_GENERATION);
      }
      if (regionLength > 0 && load<u32>(region, JIT_GENERATION) == generation) {
        store<u32>(entry, generation, JIT_GENERATION);
        markRecent(way0, entry);
        return entry;
      }
    }
    store<u32>(entry, 0, JIT_KEY);
    entry = 0;
  }
  let length: i32;
  if (entry == 0) {
    const heat = jitState() + JIT_HEAT + (<usize>spread(code, JIT_HEAT_COUNTERS) << 2);
    const visits = load<i32>(heat) + 1;
    const threshold = load<i32>(MACHINE_JIT_THRESHOLD);
    if (visits < threshold) {
      store<i32>(heat, visits);
      return 0;
    }
    // Half the count stays: enough for the translator to count the start warm when a region reaches it,
    // not so much that a start evicted from the cache is translated again at its next visit.
    store<i32>(heat, threshold >> 1);
    // A free way, else the one used less recently.
    entry = freeWay(way0);
    if (entry == 0) entry = load<u8>(way0, JIT_RECENT) != 0 ? way0 + JIT_ENTRY_SIZE : way0;
    length = translateInto(entry, code, pc, generation);
  } else {
    length = <i32>load<i16>(entry, JIT_LENGTH);
    if (load<u32>(entry, JIT_GENERATION) != generation) {
      // A FENCE.I since this entry was last checked: the code may have changed.
      if (length >= 0 && codeUnchanged(entry)) {
        store<u32>(entry, generation, JIT_GENERATION);
      } else {
        length = translateInto(entry, code, pc, generation);
      }
    }
  }
  markRecent(way0, entry);
  startUntranslatable = length < 0;
  return length > 0 ? entry : 0;
}

/** The function-table slot of a cache entry: JIT_TABLE_BASE + hart id × JIT_ENTRIES + entry number. */
@inline function tableIndexOf(entry: usize): i32 {
  return JIT_TABLE_BASE + load<i32>(hart + HART_ID) * JIT_ENTRIES + <i32>((entry - (jitState() + JIT_CACHE)) / JIT_ENTRY_SIZE);
}

/** This hart's block of JIT_STATE. */
@inline function jitState(): usize {
  return JIT_STATE + <usize>load<i32>(hart + HART_ID) * JIT_STATE_SIZE;
}

/** Forgets every translation of this hart: its power-on state. */
export function resetBlockCache(): void {
  memory.fill(jitState(), 0, JIT_STATE_SIZE);
}
