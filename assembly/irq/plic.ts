// The PLIC of the virt board (SiFive PLIC 1.0.0 layout), emulated in the core like KVM's in-kernel irqchip:
// devices raise level-triggered lines with setIrqLevel(); the PLIC decides which hart context sees an
// external interrupt and sets MEIP/SEIP in that hart's HART_EXT_IP word without any exit.
// Context 2·h is hart h's M-mode, 2·h+1 its S-mode (as on QEMU virt).
//
// Register map: priority 0x000000 + 4·src; pending 0x001000; enables 0x002000 + 0x80·ctx;
// threshold 0x200000 + 0x1000·ctx; claim/complete 0x200004 + 0x1000·ctx.
import {
  HARTS, HART_SIZE, HART_EXT_IP, MACHINE_LOCK, MACHINE_NUM_HARTS, PLIC_SOURCES, PLIC_PRIORITY, PLIC_PENDING,
  PLIC_LEVEL, PLIC_CLAIMED, PLIC_CTX, PLIC_CTX_SIZE, PLIC_CTX_ENABLE, PLIC_CTX_THRESHOLD,
} from "../abi/layout";
import { MIP_MEIP, MIP_SEIP } from "../cpu/hart";
import { wakeHart } from "./clint";

const WORDS = PLIC_SOURCES / 32;
const PRIORITY_MASK: u32 = 7;

@inline function lock(): void {
  while (atomic.cmpxchg<i32>(MACHINE_LOCK, 0, 1) != 0) {}
}
@inline function unlock(): void {
  atomic.store<i32>(MACHINE_LOCK, 0);
}

@inline function ctxBase(ctx: i32): usize {
  return PLIC_CTX + <usize>ctx * PLIC_CTX_SIZE;
}

@inline function bitGet(base: usize, src: u32): bool {
  return ((load<u32>(base + ((<usize>src >> 5) << 2)) >> (src & 31)) & 1) != 0;
}
@inline function bitSet(base: usize, src: u32, on: bool): void {
  const addr = base + ((<usize>src >> 5) << 2);
  const mask: u32 = 1 << (src & 31);
  store<u32>(addr, on ? (load<u32>(addr) | mask) : (load<u32>(addr) & ~mask));
}

/** The best source `ctx` may claim: pending, enabled, not claimed, priority above threshold; or 0. */
function bestSource(ctx: i32): u32 {
  const threshold = load<u32>(ctxBase(ctx) + PLIC_CTX_THRESHOLD);
  let best: u32 = 0;
  let bestPriority: u32 = threshold;
  for (let w = 0; w < WORDS; w++) {
    let bits = load<u32>(PLIC_PENDING + (<usize>w << 2)) & load<u32>(ctxBase(ctx) + PLIC_CTX_ENABLE + (<usize>w << 2)) &
      ~load<u32>(PLIC_CLAIMED + (<usize>w << 2));
    while (bits != 0) {
      const src = (<u32>w << 5) + ctz(bits);
      bits &= bits - 1;
      const priority = load<u32>(PLIC_PRIORITY + (<usize>src << 2));
      if (priority > bestPriority) {
        bestPriority = priority;
        best = src;
      }
    }
  }
  return best;
}

/** Recomputes every context's external-interrupt line into its hart's HART_EXT_IP (lock held). */
function updateLines(): void {
  const harts = load<i32>(MACHINE_NUM_HARTS);
  for (let h = 0; h < harts; h++) {
    const block = HARTS + <usize>h * HART_SIZE;
    let bits: i32 = 0;
    if (bestSource(2 * h) != 0) bits |= <i32>MIP_MEIP;
    if (bestSource(2 * h + 1) != 0) bits |= <i32>MIP_SEIP;
    const old = atomic.xchg<i32>(block + HART_EXT_IP, bits);
    if ((bits & ~old) != 0) wakeHart(h);
  }
}

/** A device's interrupt line changed (level-triggered: pending follows the level until claimed). */
export function setIrqLevel(src: u32, level: bool): void {
  if (src == 0 || src >= <u32>PLIC_SOURCES) return;
  lock();
  bitSet(PLIC_LEVEL, src, level);
  if (level) bitSet(PLIC_PENDING, src, true);
  else if (!bitGet(PLIC_CLAIMED, src)) bitSet(PLIC_PENDING, src, false);
  updateLines();
  unlock();
}

export function plicRead(offset: u32): u32 {
  const harts = load<i32>(MACHINE_NUM_HARTS);
  let value: u32 = 0;
  lock();
  if (offset < 0x1000) {
    const src = offset >> 2;
    if (src < <u32>PLIC_SOURCES) value = load<u32>(PLIC_PRIORITY + (<usize>src << 2));
  } else if (offset >= 0x1000 && offset < 0x1000 + WORDS * 4) {
    value = load<u32>(PLIC_PENDING + <usize>(offset - 0x1000));
  } else if (offset >= 0x2000 && offset < 0x200000) {
    const ctx = <i32>((offset - 0x2000) >> 7);
    const word = (offset - 0x2000) & 0x7f;
    if (ctx < 2 * harts && word < <u32>(WORDS * 4)) value = load<u32>(ctxBase(ctx) + PLIC_CTX_ENABLE + <usize>word);
  } else if (offset >= 0x200000) {
    const ctx = <i32>((offset - 0x200000) >> 12);
    const reg = (offset - 0x200000) & 0xfff;
    if (ctx < 2 * harts) {
      if (reg == 0) value = load<u32>(ctxBase(ctx) + PLIC_CTX_THRESHOLD);
      else if (reg == 4) {
        // Claim: hand out the best source and hold it until complete.
        const src = bestSource(ctx);
        if (src != 0) {
          bitSet(PLIC_CLAIMED, src, true);
          bitSet(PLIC_PENDING, src, false);
          updateLines();
        }
        value = src;
      }
    }
  }
  unlock();
  return value;
}

export function plicWrite(offset: u32, value: u32): void {
  const harts = load<i32>(MACHINE_NUM_HARTS);
  lock();
  if (offset < 0x1000) {
    const src = offset >> 2;
    if (src > 0 && src < <u32>PLIC_SOURCES) store<u32>(PLIC_PRIORITY + (<usize>src << 2), value & PRIORITY_MASK);
  } else if (offset >= 0x2000 && offset < 0x200000) {
    const ctx = <i32>((offset - 0x2000) >> 7);
    const word = (offset - 0x2000) & 0x7f;
    if (ctx < 2 * harts && word < <u32>(WORDS * 4)) {
      store<u32>(ctxBase(ctx) + PLIC_CTX_ENABLE + <usize>word, word == 0 ? value & ~1 : value);
    }
  } else if (offset >= 0x200000) {
    const ctx = <i32>((offset - 0x200000) >> 12);
    const reg = (offset - 0x200000) & 0xfff;
    if (ctx < 2 * harts) {
      if (reg == 0) store<u32>(ctxBase(ctx) + PLIC_CTX_THRESHOLD, value & PRIORITY_MASK);
      else if (reg == 4 && value > 0 && value < <u32>PLIC_SOURCES && bitGet(ctxBase(ctx) + PLIC_CTX_ENABLE, value)) {
        // Complete: the gateway forwards the line again if it is still high.
        bitSet(PLIC_CLAIMED, value, false);
        if (bitGet(PLIC_LEVEL, value)) bitSet(PLIC_PENDING, value, true);
      }
    }
  }
  updateLines();
  unlock();
}
