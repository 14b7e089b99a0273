/* HTIF mailbox (Spike/riscv-tests convention): the host finds tohost/fromhost by
   symbol and polls them. Writing (status << 1) | 1 to tohost ends the run. */
#include "guest.h"

volatile uint64_t tohost __attribute__((section(".tohost"), aligned(64)));
volatile uint64_t fromhost __attribute__((section(".tohost"), aligned(64)));

void htif_exit(unsigned status)
{
    tohost = ((uint64_t)status << 1) | 1;
    for (;;) __asm__ volatile("wfi");
}
