// Where a block start's heat counter is: shared by the block cache (which counts visits) and the
// translator (which grows a region only into starts that have been visited).

/**
 * Block start `code`'s slot among `slots` (a power of two). Its low bits alone would be its page offset, and
 * hot code at the same offset of different pages (every function entry aligned alike) would fight over one
 * slot; a multiplicative (Fibonacci) hash spreads the whole address over the slots.
 */
@inline export function spread(code: u32, slots: u32): u32 {
  return ((code >> 1) * 0x9e3779b1) >> (32 - ctz(slots));
}
