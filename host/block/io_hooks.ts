// What the VMM's run loop needs from the process's disk I/O thread (io_thread.ts), in a module that
// imports nothing from Node: the machine model must load in a browser, which has no such thread. In
// Node the thread registers itself here when it starts; until then, and in a browser, there is nothing
// to poll.

/** The VMM's side of a disk I/O thread. */
export interface BlockIoPoller {
  /** Settles the promises of finished requests; returns how many. */
  poll(): number;
  /** Does the next request the thread has not taken on the caller's thread; false if there is none. */
  performOne(): boolean;
  /** Requests given to the thread so far (a count that only grows). */
  readonly submittedCount: number;
  /** Lets the thread spin before it sleeps, or not. */
  allowSpin(allowed: boolean): void;
}

let poller: BlockIoPoller | null = null;
let spinAllowed = true;

/** Installs (or, with null, removes) the process's disk I/O thread; it gets the current spin setting. */
export function registerBlockIoPoller(next: BlockIoPoller | null): void {
  poller = next;
  next?.allowSpin(spinAllowed);
}

/**
 * Delivers finished disk I/O now, for a VMM that polls between vCPU slices instead of waiting for the
 * event loop; returns how many requests finished (their promises settle at the next microtask turns).
 */
export const pollBlockIo = (): number => poller?.poll() ?? 0;

/**
 * Does the disk I/O thread's next request on this thread, if its worker has not taken it (false if
 * there is none): for a VMM with nothing to do but wait for it. Deliver it with pollBlockIo.
 */
export const performBlockIoHere = (): boolean => poller?.performOne() ?? false;

/** How many requests the disk I/O thread has been given so far: a change shows a request reached it. */
export const blockIoSubmitted = (): number => poller?.submittedCount ?? 0;

/**
 * Lets the disk I/O thread spin before sleeping (the default) or not: with vCPU threads the cores are
 * theirs. Applies to a thread started later too.
 */
export const setBlockIoSpin = (allowed: boolean): void => {
  spinAllowed = allowed;
  poller?.allowSpin(allowed);
};
