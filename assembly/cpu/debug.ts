// Guest debugging beyond EBREAK (MACHINE_FLAG_GUEST_DEBUG): a debugger's hardware breakpoints and
// watchpoints, as KVM_SET_GUEST_DEBUG gives them. The TLB never holds a page that has one (translate asks
// `keepsPageOutOfTlb`), so fetches and accesses there take the slow paths, which compare; the inline fast
// paths never look. A breakpoint stops before the instruction at its pc; a watchpoint after the access
// that touched it (gdb then compares the old and new values), with the data address reported.
import {
  MACHINE_FLAGS, MACHINE_FLAG_GUEST_DEBUG, MACHINE_DEBUG_BREAKPOINT_COUNT, MACHINE_DEBUG_WATCHPOINT_COUNT, MACHINE_DEBUG_RESUME_PC,
  MACHINE_DEBUG_HIT_ADDRESS, MACHINE_DEBUG_HIT_KIND, MACHINE_DEBUG_BREAKPOINTS, MACHINE_DEBUG_WATCHPOINTS, DEBUG_WATCHPOINT_SIZE,
  DEBUG_WATCHPOINT_ADDRESS, DEBUG_WATCHPOINT_LENGTH, DEBUG_WATCHPOINT_ACCESS, DEBUG_WATCH_WRITE, DEBUG_WATCH_READ,
  DEBUG_HIT_HARDWARE_BREAKPOINT, DEBUG_HIT_WATCH_WRITE, DEBUG_HIT_WATCH_READ,
} from "../abi/layout";

const PAGE_MASK: u64 = ~(<u64>0xfff);
const ACCESS_FETCH = 0;
const ACCESS_STORE = 2;

/** A watched access happened in the instruction running now: stop once it retires. */
export let watchHitPending = false;

@inline function debugging(): bool {
  return (load<i32>(MACHINE_FLAGS) & MACHINE_FLAG_GUEST_DEBUG) != 0;
}

/** Whether the page of `va` must stay out of the TLB for `access` (0 fetch, 1 load, 2 store) because a breakpoint or watchpoint is on it. */
export function keepsPageOutOfTlb(access: i32, va: u64): bool {
  if (!debugging()) return false;
  const page = va & PAGE_MASK;
  if (access == ACCESS_FETCH) {
    const count = load<i32>(MACHINE_DEBUG_BREAKPOINT_COUNT);
    for (let i = 0; i < count; i++) {
      if ((load<u64>(MACHINE_DEBUG_BREAKPOINTS + (<usize>i << 3)) & PAGE_MASK) == page) return true;
    }
    return false;
  }
  const want = access == ACCESS_STORE ? DEBUG_WATCH_WRITE : DEBUG_WATCH_READ;
  const count = load<i32>(MACHINE_DEBUG_WATCHPOINT_COUNT);
  for (let i = 0; i < count; i++) {
    const w = MACHINE_DEBUG_WATCHPOINTS + <usize>i * DEBUG_WATCHPOINT_SIZE;
    if ((load<i32>(w, DEBUG_WATCHPOINT_ACCESS) & want) == 0) continue;
    const start = load<u64>(w, DEBUG_WATCHPOINT_ADDRESS);
    const last = start + load<u64>(w, DEBUG_WATCHPOINT_LENGTH) - 1;
    if ((start & PAGE_MASK) <= page && page <= (last & PAGE_MASK)) return true;
  }
  return false;
}

/**
 * Whether the hart must stop before the instruction at `pc` for a hardware breakpoint. Not for the first
 * instruction of a run() at the pc it stopped at last: the debugger resumes from there.
 */
export function hardwareBreakpointAt(pc: u64, firstOfRun: bool): bool {
  if (!debugging()) return false;
  const count = load<i32>(MACHINE_DEBUG_BREAKPOINT_COUNT);
  if (count == 0 || (firstOfRun && pc == load<u64>(MACHINE_DEBUG_RESUME_PC))) return false;
  for (let i = 0; i < count; i++) {
    if (load<u64>(MACHINE_DEBUG_BREAKPOINTS + (<usize>i << 3)) == pc) {
      store<i32>(MACHINE_DEBUG_HIT_KIND, DEBUG_HIT_HARDWARE_BREAKPOINT);
      return true;
    }
  }
  return false;
}

/** A data access of `size` bytes at `va` is about to happen: note it if it touches a watchpoint. */
export function noteDataAccess(va: u64, size: i32, isWrite: bool): void {
  if (!debugging()) return;
  const count = load<i32>(MACHINE_DEBUG_WATCHPOINT_COUNT);
  const want = isWrite ? DEBUG_WATCH_WRITE : DEBUG_WATCH_READ;
  for (let i = 0; i < count; i++) {
    const w = MACHINE_DEBUG_WATCHPOINTS + <usize>i * DEBUG_WATCHPOINT_SIZE;
    if ((load<i32>(w, DEBUG_WATCHPOINT_ACCESS) & want) == 0) continue;
    const start = load<u64>(w, DEBUG_WATCHPOINT_ADDRESS);
    const end = start + load<u64>(w, DEBUG_WATCHPOINT_LENGTH);
    if (va < end && start < va + <u64>size) {
      watchHitPending = true;
      store<u64>(MACHINE_DEBUG_HIT_ADDRESS, va > start ? va : start);
      store<i32>(MACHINE_DEBUG_HIT_KIND, isWrite ? DEBUG_HIT_WATCH_WRITE : DEBUG_HIT_WATCH_READ);
      return;
    }
  }
}

/** The noted access did not happen (it trapped, or left for the host as MMIO). */
export function forgetDataAccess(): void {
  watchHitPending = false;
}

/** A debug exit stops at `pc`: resuming there does not stop at a breakpoint again at once. */
export function stopDebugAt(pc: u64): void {
  watchHitPending = false;
  store<u64>(MACHINE_DEBUG_RESUME_PC, pc);
}
