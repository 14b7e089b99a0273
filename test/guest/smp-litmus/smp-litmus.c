/* Multi-hart litmus test for -M virt -bios none -smp N (N = 1..8): every hart
   increments shared counters with amoadd.d, with an LR/SC loop and under a
   spinlock, ITERATIONS times each, and the totals must be exactly N x ITERATIONS;
   then hart 0 passes messages guarded by fences to all the others, who must never
   see a stale or half-written payload. Hart 0 coordinates and prints; see README.md. */
#include "barrier.h"
#include "config.h"
#include "deadline.h"
#include "fdt_cpus.h"
#include "guest.h"
#include "idle.h"
#include "layout.h"
#include "report.h"
#include "sync.h"
#include "workloads.h"

/* In .data, not .bss: the secondaries read it before they know .bss is clear. */
volatile uint64_t litmus_timebase_hz = LITMUS_DEFAULT_TIMEBASE_HZ;
volatile uint32_t litmus_hart_count SHARED;

static volatile uint32_t harts_arrived SHARED;     /* secondaries that reached C */
static volatile uint32_t start_gate SHARED;        /* opened once litmus_hart_count is known */
static volatile uint32_t stray_hart_id SHARED;     /* 1 + id of a hart the count left out */

static void run_workloads(struct hart_context *self);

/* Waits until no new hart has arrived for LITMUS_ARRIVAL_QUIET_MS: the fallback when
   there is no device tree to read the count from. */
static unsigned count_arrivals_until_quiet(void)
{
    uint64_t quiet_ticks = (uint64_t)LITMUS_ARRIVAL_QUIET_MS * litmus_timebase_hz / 1000;
    uint32_t seen = harts_arrived;
    uint64_t last_change = mtime_now();
    while (mtime_now() - last_change < quiet_ticks) {
        cpu_pause();
        uint32_t now = harts_arrived;
        if (now != seen) {
            seen = now;
            last_change = mtime_now();
        }
    }
    return seen + 1;
}

static void wait_for_arrivals(unsigned hart_count)
{
    struct deadline deadline;
    deadline_start(&deadline, LITMUS_WAIT_SECONDS);
    while (harts_arrived < hart_count - 1) {
        cpu_pause();
        if (deadline_passed(&deadline))
            litmus_fail(EXIT_HART_DISCOVERY, "only %u of %u harts started within %u s",
                        harts_arrived + 1, hart_count, LITMUS_WAIT_SECONDS);
    }
}

int boot_hart_main(uint64_t hartid, uintptr_t dtb)
{
    struct fdt_cpus cpus;
    enum fdt_result dtb_result = fdt_read_cpus(dtb, &cpus);
    unsigned hart_count;
    if (dtb_result == FDT_OK) {
        if (cpus.timebase_hz != 0) litmus_timebase_hz = cpus.timebase_hz;
        hart_count = cpus.cpu_count;
        if (hart_count > SMP_MAX_HARTS)
            litmus_fail(EXIT_HART_DISCOVERY, "the device tree lists %u harts; at most %u are supported",
                        hart_count, SMP_MAX_HARTS);
        wait_for_arrivals(hart_count);
        guest_printf("smp-litmus: harts=%u (device tree), timebase=%lu Hz\n", hart_count, litmus_timebase_hz);
    } else {
        hart_count = count_arrivals_until_quiet();
        guest_printf("smp-litmus: harts=%u (counted arrivals; device tree unusable: %s)\n",
                     hart_count, fdt_result_name(dtb_result));
    }
    guest_printf("smp-litmus: iterations=%u per hart, mp-rounds=%u, payload=%u words\n",
                 LITMUS_ITERATIONS, LITMUS_MP_ROUNDS, LITMUS_MP_PAYLOAD_WORDS);

    litmus_hart_count = hart_count;
    fence_rw_w();
    start_gate = 1;

    struct hart_context self = { .hartid = (unsigned)hartid, .barrier_sense = 0 };
    run_workloads(&self);
    return 0;
}

void secondary_hart_main(uint64_t hartid)
{
    amoadd_w_aqrl(&harts_arrived, 1);
    /* No deadline: hart 0 either opens the gate or stops the machine. */
    while (start_gate == 0) cpu_pause();
    fence_r_rw();
    if (hartid >= litmus_hart_count) {
        stray_hart_id = (uint32_t)hartid + 1;
        return;     /* crt0 parks it */
    }
    struct hart_context self = { .hartid = (unsigned)hartid, .barrier_sense = 0 };
    run_workloads(&self);
}

static void check_total(const char *what, uint64_t got, uint64_t want, enum litmus_exit status)
{
    if (got != want)
        litmus_fail(status, "%s=%lu, expected %lu (lost %ld updates)", what, got, want, (int64_t)(want - got));
}

/* When each hart ran its share of the current phase, in mtime ticks. */
static volatile uint64_t phase_started[SMP_MAX_HARTS] SHARED;
static volatile uint64_t phase_finished[SMP_MAX_HARTS] SHARED;

/* Starts every hart on the workload at once, and returns when all have finished. */
static void race(struct hart_context *self, const char *phase, void (*workload)(struct hart_context *))
{
    barrier_wait_spinning(self, "start line");
    phase_started[self->hartid] = mtime_now();
    workload(self);
    phase_finished[self->hartid] = mtime_now();
    barrier_wait(self, phase);
}

/* How long the phase took, and for what share of it every hart was running: a
   race where the harts ran one after another proves little, so the figure is
   printed (it is no pass criterion; the host's scheduler decides it). */
struct phase_timing {
    uint64_t elapsed_ms;
    unsigned overlap_percent;
};

static struct phase_timing phase_timing(unsigned harts)
{
    uint64_t first_start = UINT64_MAX, last_start = 0, first_end = UINT64_MAX, last_end = 0;
    for (unsigned h = 0; h < harts; h++) {
        if (phase_started[h] < first_start) first_start = phase_started[h];
        if (phase_started[h] > last_start) last_start = phase_started[h];
        if (phase_finished[h] < first_end) first_end = phase_finished[h];
        if (phase_finished[h] > last_end) last_end = phase_finished[h];
    }
    uint64_t span = last_end - first_start;
    uint64_t overlap = first_end > last_start ? first_end - last_start : 0;
    struct phase_timing t = { ticks_to_ms(span), span == 0 ? 100 : (unsigned)(overlap * 100 / span) };
    return t;
}

static void run_amoadd(struct hart_context *self) { (void)self; amoadd_workload(); }
static void run_lrsc(struct hart_context *self) { (void)self; lrsc_workload(); }
static void run_spinlock(struct hart_context *self) { (void)self; spinlock_workload(); }

static void run_message_passing(struct hart_context *self)
{
    if (self->hartid == 0) mp_producer(litmus_hart_count - 1);
    else mp_consumer(self->hartid, litmus_hart_count - 1);
}

static void check_message_passing(unsigned harts)
{
    struct litmus_results *r = &litmus_results;
    struct phase_timing t = phase_timing(harts);
    guest_printf("smp-litmus: mp-rounds=%u consumers=%u messages-checked=%lu mp-errors=%lu in %lu ms\n",
                 LITMUS_MP_ROUNDS, harts - 1, r->mp_messages_checked, r->mp_errors, t.elapsed_ms);
    if (r->mp_errors != 0) {
        if (r->mp_first_error_word == LITMUS_MP_PAYLOAD_WORDS)
            litmus_fail(EXIT_MESSAGE_PASSING, "mp: %lu errors; first: hart %u in round %lu saw flag %lu",
                        r->mp_errors, r->mp_first_error_hart, r->mp_first_error_round, r->mp_first_error_value);
        litmus_fail(EXIT_MESSAGE_PASSING, "mp: %lu errors; first: hart %u in round %lu read word %lu = 0x%lx, expected 0x%lx",
                    r->mp_errors, r->mp_first_error_hart, r->mp_first_error_round, r->mp_first_error_word,
                    r->mp_first_error_value,
                    mp_payload_word(r->mp_first_error_round, (unsigned)r->mp_first_error_word));
    }
    uint64_t expected_reads = (uint64_t)(harts - 1) * LITMUS_MP_ROUNDS;
    if (r->mp_messages_checked != expected_reads)
        litmus_fail(EXIT_MESSAGE_PASSING, "mp: %lu messages checked, expected %lu",
                    r->mp_messages_checked, expected_reads);
}

static void run_workloads(struct hart_context *self)
{
    int coordinator = self->hartid == 0;
    unsigned harts = litmus_hart_count;
    uint64_t expected = (uint64_t)harts * LITMUS_ITERATIONS;
    struct litmus_results *r = &litmus_results;
    struct phase_timing t;

    idle_init(self->hartid);
    barrier_wait(self, "start");
    if (coordinator && stray_hart_id != 0)
        litmus_fail(EXIT_HART_DISCOVERY, "hart %u started but only %u harts were counted", stray_hart_id - 1, harts);

    race(self, "amoadd", run_amoadd);
    if (coordinator) {
        collect_counter_totals();
        t = phase_timing(harts);
        guest_printf("smp-litmus: amoadd=%lu (expected %lu) in %lu ms, overlap %u%%\n",
                     r->amoadd_total, expected, t.elapsed_ms, t.overlap_percent);
        check_total("amoadd", r->amoadd_total, expected, EXIT_AMOADD);
    }

    race(self, "lrsc", run_lrsc);
    if (coordinator) {
        collect_counter_totals();
        t = phase_timing(harts);
        guest_printf("smp-litmus: lrsc=%lu (expected %lu, sc failures %lu) in %lu ms, overlap %u%%\n",
                     r->lrsc_total, expected, r->lrsc_sc_failures, t.elapsed_ms, t.overlap_percent);
        check_total("lrsc", r->lrsc_total, expected, EXIT_LRSC);
    }

    race(self, "spinlock", run_spinlock);
    if (coordinator) {
        collect_counter_totals();
        t = phase_timing(harts);
        guest_printf("smp-litmus: spinlock=%lu (expected %lu, contended acquisitions %lu) in %lu ms, overlap %u%%\n",
                     r->spinlock_total, expected, r->spinlock_contended, t.elapsed_ms, t.overlap_percent);
        check_total("spinlock", r->spinlock_total, expected, EXIT_SPINLOCK);
    }

    race(self, "message passing", run_message_passing);
    if (!coordinator) return;
    check_message_passing(harts);

    /* Other wake-ups (neither msip nor the timer pending after WFI) are legal but, by the
       thousand, mean the VMM's WFI does not really sleep. */
    guest_printf("smp-litmus: waits: sleeps=%lu ipi-wakeups=%lu timer-wakeups=%lu other-wakeups=%lu\n",
                 idle_stats.sleeps, idle_stats.ipi_wakeups, idle_stats.timer_wakeups,
                 idle_stats.sleeps - idle_stats.ipi_wakeups - idle_stats.timer_wakeups);
    guest_printf("smp-litmus: harts=%u amoadd=%lu lrsc=%lu spinlock=%lu mp-rounds=%u mp-errors=%lu\n",
                 harts, r->amoadd_total, r->lrsc_total, r->spinlock_total, LITMUS_MP_ROUNDS, r->mp_errors);
    guest_printf("smp-litmus: PASS\n");
}
