/* Leaving the machine: the SiFive test finisher (virt) and the report for traps
   nobody expected. */
#include "guest.h"

void guest_exit(unsigned status)
{
    uint32_t command = status == 0 ? SIFIVE_TEST_PASS : (SIFIVE_TEST_FAIL | (status << 16));
    mmio_write32(SIFIVE_TEST_BASE, command);
    for (;;) __asm__ volatile("wfi");
}

void guest_reset(void)
{
    mmio_write32(SIFIVE_TEST_BASE, SIFIVE_TEST_RESET);
    for (;;) __asm__ volatile("wfi");
}

void report_unexpected_trap(uint64_t mcause, uint64_t mepc, uint64_t mtval)
{
    guest_printf("unexpected trap: mcause=0x%lx mepc=0x%lx mtval=0x%lx\n", mcause, mepc, mtval);
    guest_exit(EXIT_UNEXPECTED_TRAP);
}
