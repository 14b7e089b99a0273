/* Sense-reversing barrier built from AMOs: the last hart to arrive resets the
   count and flips the shared sense; the others spin until it matches their own. */
#ifndef SMP_LITMUS_BARRIER_H
#define SMP_LITMUS_BARRIER_H

#include <stdint.h>

struct hart_context {
    unsigned hartid;
    uint32_t barrier_sense;     /* this hart's sense, flipped at every barrier */
};

/* Every one of the run's harts calls it; none returns before all have arrived.
   A hart still waiting after the deadline fails the run, naming the phase. */
void barrier_wait(struct hart_context *self, const char *phase);
/* The same, but waiting harts spin instead of sleeping, so they all leave at once:
   the start line of a phase whose point is that the harts race. */
void barrier_wait_spinning(struct hart_context *self, const char *phase);

/* How many harts take part; set by hart 0 before it opens the start gate. */
extern volatile uint32_t litmus_hart_count;

#endif
