#include "barrier.h"
#include "config.h"
#include "idle.h"
#include "report.h"
#include "sync.h"

static volatile uint32_t barrier_count SHARED;
static volatile uint32_t barrier_sense SHARED;

static void barrier_wait_with(struct hart_context *self, const char *phase, int may_sleep)
{
    uint32_t sense = self->barrier_sense ^ 1u;
    self->barrier_sense = sense;
    uint32_t arrived = amoadd_w_aqrl(&barrier_count, 1) + 1;
    if (arrived == litmus_hart_count) {
        /* The reset must be visible before anyone can leave and arrive at the next barrier. */
        barrier_count = 0;
        fence_rw_w();
        barrier_sense = sense;
        if (may_sleep) idle_wake_all_but(self->hartid, litmus_hart_count);
        return;
    }
    struct waiter waiter;
    if (may_sleep) waiter_start(&waiter, self->hartid, LITMUS_WAIT_SECONDS);
    else waiter_start_spinning(&waiter, self->hartid, LITMUS_WAIT_SECONDS);
    while (barrier_sense != sense) {
        if (waiter_idle(&waiter))
            litmus_fail(EXIT_TIMEOUT, "hart %u: barrier after '%s' timed out after %u s (%u of %u harts arrived)",
                        self->hartid, phase, LITMUS_WAIT_SECONDS, barrier_count, litmus_hart_count);
    }
    fence_r_rw();
}

void barrier_wait(struct hart_context *self, const char *phase)
{
    barrier_wait_with(self, phase, 1);
}

void barrier_wait_spinning(struct hart_context *self, const char *phase)
{
    barrier_wait_with(self, phase, 0);
}
