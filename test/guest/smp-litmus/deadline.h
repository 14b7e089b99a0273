/* Bounded spinning: every wait in the program gives up after a deadline on the
   CLINT's mtime, so a hart that never shows up becomes a FAIL line, not a hang.
   mtime is read only every DEADLINE_POLL_SPINS spins to keep MMIO traffic (a VM
   exit in some VMMs) out of the hot loops. */
#ifndef SMP_LITMUS_DEADLINE_H
#define SMP_LITMUS_DEADLINE_H

#include "guest.h"

#define DEADLINE_POLL_SPINS 1024u

/* Ticks per second of mtime; set by hart 0 (from the DTB) before any hart waits. */
extern volatile uint64_t litmus_timebase_hz;

struct deadline {
    uint64_t expires;
    unsigned countdown;
};

static inline uint64_t mtime_now(void) { return mmio_read64(CLINT_MTIME); }

static inline void deadline_start(struct deadline *d, uint64_t seconds)
{
    d->expires = mtime_now() + seconds * litmus_timebase_hz;
    d->countdown = DEADLINE_POLL_SPINS;
}

static inline int deadline_passed(struct deadline *d)
{
    if (--d->countdown != 0) return 0;
    d->countdown = DEADLINE_POLL_SPINS;
    return mtime_now() >= d->expires;
}

static inline uint64_t ticks_to_ms(uint64_t ticks) { return ticks * 1000 / litmus_timebase_hz; }

#endif
