#include "report.h"
#include "guest.h"
#include "sync.h"

/* Bounded so a hart that died holding the lock cannot silence the report. */
#define PRINT_LOCK_SPINS 10000000u

static volatile uint32_t print_lock SHARED;

void litmus_fail(enum litmus_exit status, const char *fmt, ...)
{
    for (unsigned spins = 0; spins < PRINT_LOCK_SPINS; spins++) {
        if (amoswap_w_aq(&print_lock, 1) == 0) break;
        cpu_pause();
    }
    va_list ap;
    va_start(ap, fmt);
    guest_printf("smp-litmus: FAIL ");
    guest_vprintf(fmt, ap);
    guest_printf("\n");
    va_end(ap);
    guest_exit(status);
}

/* crt0's trap vector lands here on the trapping hart's own trap stack. */
void report_trap(uint64_t hartid, uint64_t mcause, uint64_t mepc, uint64_t mtval)
{
    litmus_fail(EXIT_TRAP, "hart %lu: unexpected trap mcause=0x%lx mepc=0x%lx mtval=0x%lx",
                hartid, mcause, mepc, mtval);
}
