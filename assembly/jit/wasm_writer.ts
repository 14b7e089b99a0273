// Writes WebAssembly binary code into linear memory: the byte-level half of the block translator.
// Sizes that are only known afterwards (sections, the function body) are written as padded 5-byte
// LEB128 placeholders and patched, which the binary format allows.

/** Next byte to write. */
export let pos: usize = 0;
/** Bytes at or beyond this are not ours; the translator stops a block well before it. */
export let limit: usize = 0;

export function startWriting(buffer: usize, size: usize): void {
  pos = buffer;
  limit = buffer + size;
}

@inline export function room(): usize {
  return limit - pos;
}

@inline export function byte(b: u32): void {
  store<u8>(pos, <u8>b);
  pos++;
}

export function u32leb(v: u32): void {
  do {
    let b = v & 0x7f;
    v >>= 7;
    if (v != 0) b |= 0x80;
    byte(b);
  } while (v != 0);
}

export function s64leb(v: i64): void {
  while (true) {
    const b = <u32>(v & 0x7f);
    v >>= 7;
    if ((v == 0 && (b & 0x40) == 0) || (v == -1 && (b & 0x40) != 0)) {
      byte(b);
      return;
    }
    byte(b | 0x80);
  }
}

/** Reserves a 5-byte u32 for `patchSize`; returns where it is. */
export function sizePlaceholder(): usize {
  const at = pos;
  pos += 5;
  return at;
}

/** Writes the number of bytes from just after the placeholder to the current position into it. */
export function patchSize(at: usize): void {
  let v = <u32>(pos - at - 5);
  for (let i: usize = 0; i < 4; i++) {
    store<u8>(at + i, <u8>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  store<u8>(at + 4, <u8>v);
}

/** A name that is the decimal digits of `n`. */
export function decimalName(n: u32): void {
  let digits: u32 = 1;
  for (let v = n; v >= 10; v /= 10) digits++;
  byte(digits);
  for (let i = digits; i > 0; i--) {
    store<u8>(pos + i - 1, <u8>(0x30 + n % 10));
    n /= 10;
  }
  pos += digits;
}

export function name(text: string): void {
  u32leb(<u32>text.length);
  for (let i = 0; i < text.length; i++) byte(<u32>text.charCodeAt(i));
}

// ---- instructions ----
export const OP_BLOCK: u32 = 0x02;
export const OP_LOOP: u32 = 0x03;
export const OP_IF: u32 = 0x04;
export const OP_ELSE: u32 = 0x05;
export const OP_END: u32 = 0x0b;
export const OP_BR: u32 = 0x0c;
export const OP_BR_TABLE: u32 = 0x0e;
export const OP_DROP: u32 = 0x1a;
export const OP_SELECT: u32 = 0x1b;
export const OP_I32_LOAD: u32 = 0x28;
export const OP_I64_LOAD: u32 = 0x29;
export const OP_I64_LOAD8_S: u32 = 0x30;
export const OP_I64_LOAD8_U: u32 = 0x31;
export const OP_I64_LOAD16_S: u32 = 0x32;
export const OP_I64_LOAD16_U: u32 = 0x33;
export const OP_I64_LOAD32_S: u32 = 0x34;
export const OP_I64_LOAD32_U: u32 = 0x35;
export const OP_I64_STORE: u32 = 0x37;
export const OP_I64_STORE8: u32 = 0x3c;
export const OP_I64_STORE16: u32 = 0x3d;
export const OP_I64_STORE32: u32 = 0x3e;
export const OP_I32_CONST: u32 = 0x41;
export const OP_I64_CONST: u32 = 0x42;
export const OP_I32_EQZ: u32 = 0x45;
export const OP_I64_EQZ: u32 = 0x50;
export const OP_I64_EQ: u32 = 0x51;
export const OP_I64_NE: u32 = 0x52;
export const OP_I64_LT_S: u32 = 0x53;
export const OP_I64_LT_U: u32 = 0x54;
export const OP_I64_GE_S: u32 = 0x59;
export const OP_I64_GE_U: u32 = 0x5a;
export const OP_I32_NE: u32 = 0x47;
export const OP_I32_GT_S: u32 = 0x4a;
export const OP_I32_CLZ: u32 = 0x67;
export const OP_I32_CTZ: u32 = 0x68;
export const OP_I32_POPCNT: u32 = 0x69;
export const OP_I32_ADD: u32 = 0x6a;
export const OP_I32_SUB: u32 = 0x6b;
export const OP_I32_MUL: u32 = 0x6c;
export const OP_I32_AND: u32 = 0x71;
export const OP_I32_OR: u32 = 0x72;
export const OP_I32_XOR: u32 = 0x73;
export const OP_I32_SHL: u32 = 0x74;
export const OP_I32_SHR_S: u32 = 0x75;
export const OP_I32_SHR_U: u32 = 0x76;
export const OP_I32_ROTL: u32 = 0x77;
export const OP_I32_ROTR: u32 = 0x78;
export const OP_I64_CLZ: u32 = 0x79;
export const OP_I64_CTZ: u32 = 0x7a;
export const OP_I64_POPCNT: u32 = 0x7b;
export const OP_I64_ADD: u32 = 0x7c;
export const OP_I64_SUB: u32 = 0x7d;
export const OP_I64_MUL: u32 = 0x7e;
export const OP_I64_AND: u32 = 0x83;
export const OP_I64_OR: u32 = 0x84;
export const OP_I64_XOR: u32 = 0x85;
export const OP_I64_SHL: u32 = 0x86;
export const OP_I64_SHR_S: u32 = 0x87;
export const OP_I64_SHR_U: u32 = 0x88;
export const OP_I64_ROTL: u32 = 0x89;
export const OP_I64_ROTR: u32 = 0x8a;
export const OP_I32_WRAP_I64: u32 = 0xa7;
export const OP_I64_EXTEND_I32_S: u32 = 0xac;
export const OP_I64_EXTEND_I32_U: u32 = 0xad;
export const OP_I64_EXTEND8_S: u32 = 0xc2;
export const OP_I64_EXTEND16_S: u32 = 0xc3;
export const BLOCKTYPE_VOID: u32 = 0x40;
export const TYPE_I32: u32 = 0x7f;
export const TYPE_I64: u32 = 0x7e;

export function localGet(index: u32): void {
  byte(0x20);
  u32leb(index);
}

export function localSet(index: u32): void {
  byte(0x21);
  u32leb(index);
}

export function localTee(index: u32): void {
  byte(0x22);
  u32leb(index);
}

export function i32Const(v: i32): void {
  byte(OP_I32_CONST);
  s64leb(<i64>v);
}

export function i64Const(v: i64): void {
  byte(OP_I64_CONST);
  s64leb(v);
}

/** A load or store with its memarg; `alignLog2` is only a hint, misaligned accesses still work. */
export function memoryOp(op: u32, alignLog2: u32, offset: u32): void {
  byte(op);
  u32leb(alignLog2);
  u32leb(offset);
}

// The threads proposal's atomic memory instructions (prefix 0xfe): naturally aligned, sequentially consistent.
export const OP_I32_ATOMIC_LOAD: u32 = 0x10;
export const OP_I64_ATOMIC_LOAD: u32 = 0x11;
export const OP_I32_ATOMIC_RMW_ADD: u32 = 0x1e;
export const OP_I64_ATOMIC_RMW_ADD: u32 = 0x1f;
export const OP_I32_ATOMIC_RMW_AND: u32 = 0x2c;
export const OP_I64_ATOMIC_RMW_AND: u32 = 0x2d;
export const OP_I32_ATOMIC_RMW_OR: u32 = 0x33;
export const OP_I64_ATOMIC_RMW_OR: u32 = 0x34;
export const OP_I32_ATOMIC_RMW_XOR: u32 = 0x3a;
export const OP_I64_ATOMIC_RMW_XOR: u32 = 0x3b;
export const OP_I32_ATOMIC_RMW_XCHG: u32 = 0x41;
export const OP_I64_ATOMIC_RMW_XCHG: u32 = 0x42;
export const OP_I32_ATOMIC_RMW_CMPXCHG: u32 = 0x48;
export const OP_I64_ATOMIC_RMW_CMPXCHG: u32 = 0x49;

/** An atomic memory instruction with its memarg (`alignLog2` must be the access's natural alignment). */
export function atomicOp(op: u32, alignLog2: u32, offset: u32): void {
  byte(0xfe);
  byte(op);
  u32leb(alignLog2);
  u32leb(offset);
}

/** i32.atomic.rmw.add: FENCE's full barrier, as the interpreter does it. */
export function atomicAddI32(offset: u32): void {
  atomicOp(OP_I32_ATOMIC_RMW_ADD, 2, offset);
}
