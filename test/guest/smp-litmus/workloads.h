/* The four litmus workloads. Each hart runs its share; hart 0 checks the shared
   results after the barrier that ends the phase. */
#ifndef SMP_LITMUS_WORKLOADS_H
#define SMP_LITMUS_WORKLOADS_H

#include <stdint.h>

struct litmus_results {
    volatile uint64_t amoadd_total;
    volatile uint64_t lrsc_total;
    volatile uint64_t lrsc_sc_failures;
    volatile uint64_t spinlock_total;
    volatile uint64_t spinlock_contended;   /* acquisitions that found the lock taken */
    volatile uint64_t mp_messages_checked;  /* consumer reads of a complete round */
    volatile uint64_t mp_errors;
    /* The first stale or torn word any consumer saw (valid when mp_errors != 0). */
    volatile uint32_t mp_first_error_claimed;
    volatile uint32_t mp_first_error_hart;
    volatile uint64_t mp_first_error_round;
    volatile uint64_t mp_first_error_word;
    volatile uint64_t mp_first_error_value;
};

extern struct litmus_results litmus_results;

void amoadd_workload(void);
void lrsc_workload(void);
void spinlock_workload(void);
/* Copies the shared counters into litmus_results; call after the phase's barrier. */
void collect_counter_totals(void);
/* Hart 0 produces LITMUS_MP_ROUNDS messages; every other hart consumes each one. */
void mp_producer(unsigned consumers);
void mp_consumer(unsigned hartid, unsigned consumers);

/* The word a message of round `round` holds at `index`: differs from every other round's. */
static inline uint64_t mp_payload_word(uint64_t round, unsigned index)
{
    return (round << 8) | index;
}

#endif
