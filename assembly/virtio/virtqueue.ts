// The split-virtqueue data plane (virtio 1.2 §2.7), run in the core like vhost runs in the kernel: the
// host's device models ask for the next available descriptor chain and get it back as a list of
// guest-RAM segments (host WASM addresses) they can read and write in place; completions go into the
// used ring here, with the ordering a driver on another hart relies on.
//
// Everything the guest wrote is hostile input. Each descriptor is read once into locals and checked
// against the memory slots before any use, chains are bounded by the table they live in (which catches
// loops), and every failure is a negative VIRTQ_ERR_* code with the offending index or address left in
// the record's ERROR_DETAIL; the host turns it into DEVICE_NEEDS_RESET. Nothing outside a RAM slot is
// ever read or written.
//
// Ordering: WebAssembly atomics are sequentially consistent. avail.idx is read with an atomic load
// before the ring entries it publishes (acquire); used.idx is written with an atomic store after the
// used element (release); and the event-index checks pair an atomic store with a later atomic load
// (the full barrier virtio's "mb()" asks for).
import {
  VIRTQ_RECORDS, VIRTQ_MAX_RECORDS, VIRTQ_RECORD_SIZE, VIRTQ_DESC, VIRTQ_AVAIL, VIRTQ_USED, VIRTQ_DESC_HOST,
  VIRTQ_AVAIL_HOST, VIRTQ_USED_HOST, VIRTQ_NUM, VIRTQ_FEATURES, VIRTQ_LAST_AVAIL, VIRTQ_USED_IDX,
  VIRTQ_SIGNALLED_USED, VIRTQ_SIGNALLED_VALID, VIRTQ_ERROR_DETAIL, VIRTQ_FEATURE_EVENT_IDX, VIRTQ_FEATURE_INDIRECT,
  VIRTQ_MAX_SIZE, VIRTQ_CHAIN_COUNT, VIRTQ_CHAIN_READABLE, VIRTQ_CHAIN_SEGMENTS, VIRTQ_SEGMENT_SIZE, VIRTQ_SEG_HOST,
  VIRTQ_SEG_LEN, VIRTQ_SEG_GPA, VIRTQ_MAX_SEGMENTS, VIRTQ_EMPTY, VIRTQ_ERR_NOT_READY, VIRTQ_ERR_AVAIL_IDX,
  VIRTQ_ERR_HEAD, VIRTQ_ERR_NEXT, VIRTQ_ERR_CHAIN_LENGTH, VIRTQ_ERR_BUFFER, VIRTQ_ERR_INDIRECT_FEATURE,
  VIRTQ_ERR_INDIRECT_NESTED, VIRTQ_ERR_INDIRECT_SIZE, VIRTQ_ERR_INDIRECT_TABLE, VIRTQ_ERR_INDIRECT_PLACE,
  VIRTQ_ERR_ORDER, VIRTQ_ERR_SEGMENTS, VIRTQ_ERR_USED_ID, VIRTQ_ERR_SIZE, VIRTQ_ERR_RING, VIRTQ_ERR_ALIGN,
  VIRTQ_ERR_RECORD,
} from "../abi/layout";
import { slotHost, slotSpan, spanLength } from "../mmu/mmu";

// Descriptor layout and flags (struct virtq_desc).
const DESC_SIZE: u32 = 16;
const DESC_ADDR = 0;
const DESC_LEN = 8;
const DESC_FLAGS = 12;
const DESC_NEXT = 14;
const F_NEXT: u32 = 1;
const F_WRITE: u32 = 2;
const F_INDIRECT: u32 = 4;
// Ring layouts: avail = flags, idx, ring[num], used_event; used = flags, idx, ring[num] of {id, len}, avail_event.
const AVAIL_F_NO_INTERRUPT: u32 = 1;

@inline function record(rec: i32): usize {
  return VIRTQ_RECORDS + <usize>rec * VIRTQ_RECORD_SIZE;
}

@inline function fail(q: usize, code: i32, detail: u64): i32 {
  store<u64>(q + VIRTQ_ERROR_DETAIL, detail);
  return code;
}

/**
 * Sets up queue record `rec` for a ring the driver made ready: checks the size (a power of two, at most
 * VIRTQ_MAX_SIZE), the alignment and that each ring lies in guest RAM (the used ring in writable RAM),
 * and caches the rings' host addresses. Returns 0 or a VIRTQ_ERR_* code (the queue stays unconfigured).
 */
export function virtqConfigure(rec: i32, num: i32, desc: u64, avail: u64, used: u64, features: i32): i32 {
  if (rec < 0 || rec >= VIRTQ_MAX_RECORDS) return VIRTQ_ERR_RECORD;
  const q = record(rec);
  memory.fill(q, 0, VIRTQ_RECORD_SIZE);
  store<u64>(q + VIRTQ_DESC, desc);
  store<u64>(q + VIRTQ_AVAIL, avail);
  store<u64>(q + VIRTQ_USED, used);
  if (num <= 0 || (num & (num - 1)) != 0 || num > VIRTQ_MAX_SIZE) return fail(q, VIRTQ_ERR_SIZE, <u64>num);
  if ((desc & 15) != 0) return fail(q, VIRTQ_ERR_ALIGN, desc);
  if ((avail & 1) != 0) return fail(q, VIRTQ_ERR_ALIGN, avail);
  if ((used & 3) != 0) return fail(q, VIRTQ_ERR_ALIGN, used);
  const n = <u64>num;
  const descHost = slotHost(desc, n * DESC_SIZE, false);
  if (descHost == 0) return fail(q, VIRTQ_ERR_RING, desc);
  const availHost = slotHost(avail, 6 + 2 * n, false);
  if (availHost == 0) return fail(q, VIRTQ_ERR_RING, avail);
  const usedHost = slotHost(used, 6 + 8 * n, true);
  if (usedHost == 0) return fail(q, VIRTQ_ERR_RING, used);
  store<u32>(q + VIRTQ_NUM, <u32>num);
  store<u32>(q + VIRTQ_FEATURES, <u32>features);
  store<u32>(q + VIRTQ_AVAIL_HOST, <u32>availHost);
  store<u32>(q + VIRTQ_USED_HOST, <u32>usedHost);
  // Written last: a non-zero DESC_HOST is what marks the record usable.
  store<u32>(q + VIRTQ_DESC_HOST, <u32>descHost);
  return 0;
}

/** Forgets queue record `rec` (device reset, QueueReady = 0). */
export function virtqReset(rec: i32): void {
  if (rec < 0 || rec >= VIRTQ_MAX_RECORDS) return;
  memory.fill(record(rec), 0, VIRTQ_RECORD_SIZE);
}

/**
 * Takes the next available chain of queue `rec`. Returns its head index, with the chain's segments in
 * VIRTQ_CHAIN_* (device-readable ones first); VIRTQ_EMPTY when the driver has made nothing new available;
 * or a VIRTQ_ERR_* code, leaving the queue where it was.
 */
export function virtqPop(rec: i32): i32 {
  if (rec < 0 || rec >= VIRTQ_MAX_RECORDS) return VIRTQ_ERR_RECORD;
  const q = record(rec);
  const descHost = <usize>load<u32>(q + VIRTQ_DESC_HOST);
  if (descHost == 0) return VIRTQ_ERR_NOT_READY;
  const num = load<u32>(q + VIRTQ_NUM);
  const features = load<u32>(q + VIRTQ_FEATURES);
  const availHost = <usize>load<u32>(q + VIRTQ_AVAIL_HOST);
  const last = load<u32>(q + VIRTQ_LAST_AVAIL);
  let availIdx = <u32>atomic.load<u16>(availHost + 2);
  let pending = (availIdx - last) & 0xffff;
  if (pending == 0) {
    if ((features & VIRTQ_FEATURE_EVENT_IDX) == 0) return VIRTQ_EMPTY;
    // Ask for a notification at the next buffer, then look again: the driver may have added one
    // between our read of avail.idx and its read of avail_event.
    setAvailEvent(q, availHost, num, last);
    availIdx = <u32>atomic.load<u16>(availHost + 2);
    pending = (availIdx - last) & 0xffff;
    if (pending == 0) return VIRTQ_EMPTY;
  }
  if (pending > num) return fail(q, VIRTQ_ERR_AVAIL_IDX, <u64>availIdx);
  const head = <u32>load<u16>(availHost + 4 + ((<usize>(last & (num - 1))) << 1));
  if (head >= num) return fail(q, VIRTQ_ERR_HEAD, <u64>head);
  const result = walkChain(q, descHost, num, head, features);
  if (result < 0) return result;
  const next = (last + 1) & 0xffff;
  store<u32>(q + VIRTQ_LAST_AVAIL, next);
  // With pops still to come the driver need not notify; once we find the ring empty we ask again.
  if ((features & VIRTQ_FEATURE_EVENT_IDX) != 0) setAvailEvent(q, availHost, num, next);
  return <i32>head;
}

@inline function setAvailEvent(q: usize, availHost: usize, num: u32, value: u32): void {
  const usedHost = <usize>load<u32>(q + VIRTQ_USED_HOST);
  atomic.store<u16>(usedHost + 4 + (<usize>num << 3), <u16>value);
}

/** Walks the chain at `head` into the segment list; returns the segment count or a VIRTQ_ERR_* code. */
function walkChain(q: usize, descHost: usize, num: u32, head: u32, features: u32): i32 {
  let table = descHost;
  let tableSize = num;
  let inIndirect = false;
  let index = head;
  let visited: u32 = 0;
  let segments: u32 = 0;
  let readable: u32 = 0;
  let sawWritable = false;
  store<u32>(VIRTQ_CHAIN_COUNT, 0);
  store<u32>(VIRTQ_CHAIN_READABLE, 0);
  while (true) {
    // A chain can visit each descriptor of its table at most once; one more visit means a loop.
    if (visited >= tableSize) return fail(q, VIRTQ_ERR_CHAIN_LENGTH, <u64>index);
    visited++;
    const d = table + <usize>index * DESC_SIZE;
    const addr = load<u64>(d, DESC_ADDR);
    const len = load<u32>(d, DESC_LEN);
    const flags = <u32>load<u16>(d, DESC_FLAGS);
    const next = <u32>load<u16>(d, DESC_NEXT);
    if ((flags & F_INDIRECT) != 0) {
      if (inIndirect) return fail(q, VIRTQ_ERR_INDIRECT_NESTED, <u64>index);
      if ((features & VIRTQ_FEATURE_INDIRECT) == 0) return fail(q, VIRTQ_ERR_INDIRECT_FEATURE, <u64>index);
      if ((flags & F_NEXT) != 0 || visited != 1) return fail(q, VIRTQ_ERR_INDIRECT_PLACE, <u64>index);
      if (len == 0 || (len & (DESC_SIZE - 1)) != 0 || len / DESC_SIZE > <u32>VIRTQ_MAX_SIZE) {
        return fail(q, VIRTQ_ERR_INDIRECT_SIZE, <u64>len);
      }
      const indirect = slotHost(addr, <u64>len, false);
      if (indirect == 0) return fail(q, VIRTQ_ERR_INDIRECT_TABLE, addr);
      table = indirect;
      tableSize = len / DESC_SIZE;
      inIndirect = true;
      index = 0;
      visited = 0;
      continue;
    }
    const writable = (flags & F_WRITE) != 0;
    if (!writable && sawWritable) return fail(q, VIRTQ_ERR_ORDER, <u64>index);
    if (writable) sawWritable = true;
    // Each RAM slot the buffer touches becomes one segment; a zero-length buffer becomes none.
    let gpa = addr;
    let remaining = <u64>len;
    while (remaining != 0) {
      const host = slotSpan(gpa, remaining, writable);
      if (host == 0) return fail(q, VIRTQ_ERR_BUFFER, addr);
      if (segments >= <u32>VIRTQ_MAX_SEGMENTS) return fail(q, VIRTQ_ERR_SEGMENTS, <u64>index);
      const seg = VIRTQ_CHAIN_SEGMENTS + <usize>segments * VIRTQ_SEGMENT_SIZE;
      store<u32>(seg + VIRTQ_SEG_HOST, <u32>host);
      store<u32>(seg + VIRTQ_SEG_LEN, <u32>spanLength);
      store<u64>(seg + VIRTQ_SEG_GPA, gpa);
      segments++;
      if (!writable) readable = segments;
      gpa += spanLength;
      remaining -= spanLength;
    }
    if ((flags & F_NEXT) == 0) break;
    if (next >= tableSize) return fail(q, VIRTQ_ERR_NEXT, <u64>next);
    index = next;
  }
  store<u32>(VIRTQ_CHAIN_COUNT, segments);
  store<u32>(VIRTQ_CHAIN_READABLE, readable);
  return <i32>segments;
}

/**
 * Puts chain `head` into the used ring with `written` bytes, and publishes it. Returns 0, or
 * VIRTQ_ERR_USED_ID / VIRTQ_ERR_NOT_READY (host mistakes, never the guest's).
 */
export function virtqPushUsed(rec: i32, head: i32, written: u32): i32 {
  if (rec < 0 || rec >= VIRTQ_MAX_RECORDS) return VIRTQ_ERR_RECORD;
  const q = record(rec);
  if (load<u32>(q + VIRTQ_DESC_HOST) == 0) return VIRTQ_ERR_NOT_READY;
  const num = load<u32>(q + VIRTQ_NUM);
  if (head < 0 || <u32>head >= num) return VIRTQ_ERR_USED_ID;
  const usedHost = <usize>load<u32>(q + VIRTQ_USED_HOST);
  const usedIdx = load<u32>(q + VIRTQ_USED_IDX);
  const elem = usedHost + 4 + (<usize>(usedIdx & (num - 1)) << 3);
  store<u32>(elem, <u32>head);
  store<u32>(elem, written, 4);
  const next = (usedIdx + 1) & 0xffff;
  store<u32>(q + VIRTQ_USED_IDX, next);
  atomic.store<u16>(usedHost + 2, <u16>next);
  return 0;
}

/**
 * Whether the driver wants an interrupt for what was pushed since the last call (virtio's
 * vring_need_event with used_event, or the avail ring's NO_INTERRUPT flag without EVENT_IDX).
 * 1 yes, 0 no, or VIRTQ_ERR_NOT_READY.
 */
export function virtqNeedNotify(rec: i32): i32 {
  if (rec < 0 || rec >= VIRTQ_MAX_RECORDS) return VIRTQ_ERR_RECORD;
  const q = record(rec);
  if (load<u32>(q + VIRTQ_DESC_HOST) == 0) return VIRTQ_ERR_NOT_READY;
  const availHost = <usize>load<u32>(q + VIRTQ_AVAIL_HOST);
  const num = load<u32>(q + VIRTQ_NUM);
  // used.idx went out with an atomic store; these atomic loads cannot be reordered before it.
  if ((load<u32>(q + VIRTQ_FEATURES) & VIRTQ_FEATURE_EVENT_IDX) == 0) {
    return (<u32>atomic.load<u16>(availHost) & AVAIL_F_NO_INTERRUPT) != 0 ? 0 : 1;
  }
  const newIdx = load<u32>(q + VIRTQ_USED_IDX);
  const oldIdx = load<u32>(q + VIRTQ_SIGNALLED_USED);
  const valid = load<u32>(q + VIRTQ_SIGNALLED_VALID);
  store<u32>(q + VIRTQ_SIGNALLED_USED, newIdx);
  store<u32>(q + VIRTQ_SIGNALLED_VALID, 1);
  if (valid == 0) return 1;
  const usedEvent = <u32>atomic.load<u16>(availHost + 4 + (<usize>num << 1));
  return vringNeedEvent(usedEvent, newIdx, oldIdx) ? 1 : 0;
}

/** virtio's vring_need_event: did the index move from `oldIdx` to `newIdx` cross `event`? (u16 arithmetic) */
@inline function vringNeedEvent(event: u32, newIdx: u32, oldIdx: u32): bool {
  return ((newIdx - event - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}
