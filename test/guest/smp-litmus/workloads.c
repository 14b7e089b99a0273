#include "workloads.h"
#include "config.h"
#include "idle.h"
#include "report.h"
#include "sync.h"

struct litmus_results litmus_results SHARED;

/* Each counter on a line of its own: contention is on the counter, not on neighbours. */
static volatile uint64_t amoadd_counter SHARED;
static volatile uint64_t lrsc_counter SHARED;
static volatile uint32_t spinlock_word SHARED;
static volatile uint64_t spinlock_counter SHARED;  /* only ever touched under spinlock_word */

void amoadd_workload(void)
{
    for (unsigned i = 0; i < LITMUS_ITERATIONS; i++) amoadd_d_discard(&amoadd_counter, 1);
}

void lrsc_workload(void)
{
    uint64_t failures = 0;
    for (unsigned i = 0; i < LITMUS_ITERATIONS; i++) failures += lrsc_increment(&lrsc_counter);
    amoadd_d_discard(&litmus_results.lrsc_sc_failures, failures);
}

/* Test-and-test-and-set: waiters spin on a plain load, so they do not keep stealing
   the line from the holder, and only retry the swap once the lock looks free. */
static unsigned spin_lock(volatile uint32_t *lock)
{
    unsigned contended = 0;
    while (amoswap_w_aq(lock, 1) != 0) {
        contended = 1;
        while (*lock != 0) cpu_pause();
    }
    return contended;
}

static void spin_unlock(volatile uint32_t *lock)
{
    fence_rw_w();   /* the critical section's loads and stores happen before the release */
    *lock = 0;
}

void spinlock_workload(void)
{
    uint64_t contended = 0;
    for (unsigned i = 0; i < LITMUS_ITERATIONS; i++) {
        contended += spin_lock(&spinlock_word);
        /* Deliberately not atomic: only the lock makes this read-modify-write exact. */
        uint64_t value = spinlock_counter;
        spinlock_counter = value + 1;
        spin_unlock(&spinlock_word);
    }
    amoadd_d_discard(&litmus_results.spinlock_contended, contended);
}

void collect_counter_totals(void)
{
    litmus_results.amoadd_total = amoadd_counter;
    litmus_results.lrsc_total = lrsc_counter;
    litmus_results.spinlock_total = spinlock_counter;
}

/* The message: payload first, then the flag announcing which round it holds. */
static volatile uint64_t mp_payload[LITMUS_MP_PAYLOAD_WORDS] SHARED;
static volatile uint64_t mp_flag SHARED;
static volatile uint32_t mp_acks SHARED;   /* consumer acknowledgements, cumulative over rounds */

void mp_producer(unsigned consumers)
{
    for (uint64_t round = 1; round <= LITMUS_MP_ROUNDS; round++) {
        /* Every consumer has finished reading round - 1 before its payload is overwritten. */
        uint32_t acks_wanted = (uint32_t)(consumers * (round - 1));
        struct waiter waiter;
        waiter_start(&waiter, 0, LITMUS_WAIT_SECONDS);
        while (mp_acks != acks_wanted) {
            if (waiter_idle(&waiter))
                litmus_fail(EXIT_TIMEOUT, "mp: producer waited %u s for acknowledgements of round %lu (%u of %u)",
                            LITMUS_WAIT_SECONDS, round - 1, mp_acks - consumers * (uint32_t)(round - 2), consumers);
        }
        fence_r_rw();
        for (unsigned i = 0; i < LITMUS_MP_PAYLOAD_WORDS; i++) mp_payload[i] = mp_payload_word(round, i);
        fence_w_w();
        mp_flag = round;
        idle_wake_all_but(0, consumers + 1);
    }
    struct waiter waiter;
    waiter_start(&waiter, 0, LITMUS_WAIT_SECONDS);
    while (mp_acks != consumers * LITMUS_MP_ROUNDS) {
        if (waiter_idle(&waiter))
            litmus_fail(EXIT_TIMEOUT, "mp: producer waited %u s for the last acknowledgements", LITMUS_WAIT_SECONDS);
    }
}

static void record_mp_error(unsigned hartid, uint64_t round, unsigned word, uint64_t value)
{
    amoadd_d_discard(&litmus_results.mp_errors, 1);
    if (amoswap_w_aq(&litmus_results.mp_first_error_claimed, 1) != 0) return;
    litmus_results.mp_first_error_hart = hartid;
    litmus_results.mp_first_error_round = round;
    litmus_results.mp_first_error_word = word;
    litmus_results.mp_first_error_value = value;
}

void mp_consumer(unsigned hartid, unsigned consumers)
{
    uint64_t checked = 0;
    for (uint64_t round = 1; round <= LITMUS_MP_ROUNDS; round++) {
        struct waiter waiter;
        waiter_start(&waiter, hartid, LITMUS_WAIT_SECONDS);
        uint64_t seen;
        while ((seen = mp_flag) < round) {
            if (waiter_idle(&waiter))
                litmus_fail(EXIT_TIMEOUT, "mp: hart %u waited %u s for round %lu (flag stuck at %lu)",
                            hartid, LITMUS_WAIT_SECONDS, round, seen);
        }
        fence_r_r();
        /* The producer cannot pass this round without our acknowledgement. */
        if (seen != round) record_mp_error(hartid, round, LITMUS_MP_PAYLOAD_WORDS, seen);
        for (unsigned i = 0; i < LITMUS_MP_PAYLOAD_WORDS; i++) {
            uint64_t value = mp_payload[i];
            if (value != mp_payload_word(round, i)) record_mp_error(hartid, round, i, value);
        }
        checked++;
        /* Release: our payload reads are complete before the producer can see the ack. */
        uint32_t acks = amoadd_w_rl(&mp_acks, 1) + 1;
        if (acks == consumers * round) idle_wake(0);
    }
    amoadd_d_discard(&litmus_results.mp_messages_checked, checked);
}
