/* Waiting without hogging the host: a hart spins briefly, then sleeps in WFI until
   another hart's IPI (CLINT msip) says something changed. Spinning alone is fine
   while every vCPU has a host core, but with more vCPUs than cores a spinning
   waiter steals the core the hart it waits for needs, and each hand-off costs a
   host scheduler time slice. A CLINT timer armed before every WFI bounds the sleep,
   so a lost or unimplemented IPI costs latency (counted as a timer wakeup), never a
   hang; mstatus.MIE stays 0, so neither interrupt is ever taken as a trap. */
#ifndef SMP_LITMUS_IDLE_H
#define SMP_LITMUS_IDLE_H

#include <stdint.h>
#include "deadline.h"

struct waiter {
    struct deadline deadline;
    unsigned hartid;
    unsigned spins;
    int ipi_cleared;    /* msip cleared since the caller last found its condition false */
    int may_sleep;
};

/* Per hart, once: lets msip and the CLINT timer end a WFI. */
void idle_init(unsigned hartid);

void waiter_start(struct waiter *w, unsigned hartid, uint64_t timeout_seconds);
/* A waiter that only ever spins: it leaves the moment the condition holds, where a
   sleeper first has to be woken (what a start line for racing harts needs). */
void waiter_start_spinning(struct waiter *w, unsigned hartid, uint64_t timeout_seconds);

/* For loops of the form `while (!condition) if (waiter_idle(&w)) fail(...);`: call
   it each time the condition is false. Returns nonzero once the timeout has passed. */
int waiter_idle(struct waiter *w);

/* Tells a waiting hart to look again; call after the store it should see. */
void idle_wake(unsigned hartid);
void idle_wake_all_but(unsigned hartid, unsigned hart_count);

struct idle_stats {
    volatile uint64_t sleeps;
    volatile uint64_t ipi_wakeups;
    volatile uint64_t timer_wakeups;    /* the backstop fired: an IPI came late or not at all */
};
extern struct idle_stats idle_stats;

#endif
