#include "idle.h"
#include "guest.h"
#include "sync.h"

/* Spins before the first sleep: enough to catch a hand-off from a hart that is running. */
#define SPINS_BEFORE_SLEEP 256u
/* Longest single sleep: the cost of an IPI that never arrives. */
#define SLEEP_BACKSTOP_HZ  100u

#define MIP_MSIP (1u << 3)
#define MIP_MTIP (1u << 7)
#define MSTATUS_MIE (1u << 3)

struct idle_stats idle_stats SHARED;

/* I/O (the CLINT) and memory ordered both ways: the msip clear before the
   condition's load, the flag's store before the msip set. */
static inline void fence_io_memory(void) { __asm__ volatile("fence iorw, iorw" ::: "memory"); }

void idle_init(unsigned hartid)
{
    /* Pending-and-enabled in mie is what ends a WFI; with mstatus.MIE clear, neither
       interrupt is taken, whatever state the reset left. */
    csr_clear(mstatus, MSTATUS_MIE);
    mmio_write32(CLINT_MSIP(hartid), 0);
    mmio_write64(CLINT_MTIMECMP(hartid), UINT64_MAX);
    csr_write(mie, MIP_MSIP | MIP_MTIP);
}

void waiter_start(struct waiter *w, unsigned hartid, uint64_t timeout_seconds)
{
    deadline_start(&w->deadline, timeout_seconds);
    w->hartid = hartid;
    w->spins = 0;
    w->ipi_cleared = 0;
    w->may_sleep = 1;
}

void waiter_start_spinning(struct waiter *w, unsigned hartid, uint64_t timeout_seconds)
{
    waiter_start(w, hartid, timeout_seconds);
    w->may_sleep = 0;
}

int waiter_idle(struct waiter *w)
{
    if (!w->may_sleep) {
        cpu_pause();
        return deadline_passed(&w->deadline);
    }
    if (w->spins < SPINS_BEFORE_SLEEP) {
        w->spins++;
        cpu_pause();
        return 0;
    }
    if (!w->ipi_cleared) {
        /* Clear first, then let the caller look once more: a wake-up sent after that
           look leaves msip set, so the WFI below cannot miss it. */
        mmio_write32(CLINT_MSIP(w->hartid), 0);
        fence_io_memory();
        w->ipi_cleared = 1;
        return 0;
    }
    mmio_write64(CLINT_MTIMECMP(w->hartid), mtime_now() + litmus_timebase_hz / SLEEP_BACKSTOP_HZ);
    fence_io_memory();
    __asm__ volatile("wfi" ::: "memory");
    uint64_t pending = csr_read(mip);
    amoadd_d_discard(&idle_stats.sleeps, 1);
    if (pending & MIP_MSIP) amoadd_d_discard(&idle_stats.ipi_wakeups, 1);
    else if (pending & MIP_MTIP) amoadd_d_discard(&idle_stats.timer_wakeups, 1);
    mmio_write64(CLINT_MTIMECMP(w->hartid), UINT64_MAX);
    w->ipi_cleared = 0;
    return mtime_now() >= w->deadline.expires;
}

void idle_wake(unsigned hartid)
{
    fence_io_memory();
    mmio_write32(CLINT_MSIP(hartid), 1);
}

void idle_wake_all_but(unsigned hartid, unsigned hart_count)
{
    fence_io_memory();
    for (unsigned h = 0; h < hart_count; h++)
        if (h != hartid) mmio_write32(CLINT_MSIP(h), 1);
}
