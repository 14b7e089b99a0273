/* Vectored mtvec with CLINT interrupts: the machine timer (mtimecmp/mtime) and the
   machine software interrupt (msip), pending bits in mip, wfi wake-up, and the time
   CSR. QEMU virt's CLINT runs mtime at 10 MHz. */
#include "check.h"
#include "trap.h"

#define MIP_MSIP (1UL << IRQ_M_SOFT)
#define MIP_MTIP (1UL << IRQ_M_TIMER)
/* Long enough for any emulator to get there: 10 s of guest time at 10 MHz. */
#define GIVE_UP_TICKS 100000000UL

static uint64_t mtime(void) { return mmio_read64(CLINT_MTIME); }

static void wait_for_trap(unsigned id)
{
    uint64_t start = mtime();
    while (m_trap.count == 0) {
        if (mtime() - start > GIVE_UP_TICKS) check_true(id, "interrupt arrived in time", 0, mtime() - start);
    }
}

static void test_mtime_and_time_csr(void)
{
    uint64_t a = mtime();
    for (volatile int i = 0; i < 10000; i++) {
    }
    uint64_t t = csr_read(time);
    uint64_t b = mtime();
    check_true(1, "mtime advances", b > a, b - a);
    check_true(2, "time CSR reads mtime", a <= t && t <= b, t);
}

static void test_vectored_mode(void)
{
    uint64_t vectored = (uintptr_t)m_vector_table | 1;
    csr_write(mtvec, vectored);
    check_eq(3, "mtvec keeps vectored mode and base", csr_read(mtvec), vectored);

    trap_reset();
    uint64_t pc = PC_OF("", "ecall");
    check_eq(4, "synchronous trap in vectored mode uses slot 0", m_trap.vector_slot, 0);
    check_eq(4, "  mcause", m_trap.cause, CAUSE_ECALL_M);
    check_eq(4, "  mepc", m_trap.epc, pc);
}

static void test_timer_interrupt(void)
{
    trap_reset();
    mmio_write64(CLINT_MTIMECMP(0), ~0UL);
    check_eq(5, "no MTIP while mtimecmp is in the far future", csr_read(mip) & MIP_MTIP, 0);

    mmio_write64(CLINT_MTIMECMP(0), 0);
    check_eq(6, "MTIP pending once mtime >= mtimecmp", !!(csr_read(mip) & MIP_MTIP), 1);
    check_eq(6, "  not taken: mie.MTIE and mstatus.MIE are clear", m_trap.count, 0);
    mmio_write64(CLINT_MTIMECMP(0), ~0UL);
    check_eq(7, "MTIP clears when mtimecmp moves ahead", csr_read(mip) & MIP_MTIP, 0);

    csr_set(mie, MIP_MTIP);
    csr_set(mstatus, MSTATUS_MIE);
    mmio_write64(CLINT_MTIMECMP(0), mtime() + 10000);  /* 1 ms */
    wait_for_trap(8);
    csr_clear(mstatus, MSTATUS_MIE);
    check_eq(8, "timer interrupt: mcause", m_trap.cause, CAUSE_INTERRUPT | IRQ_M_TIMER);
    check_eq(8, "  vectored to slot 7", m_trap.vector_slot, IRQ_M_TIMER);
    check_eq(8, "  taken once", m_trap.count, 1);
    check_eq(8, "  mtval = 0", m_trap.tval, 0);
    check_eq(8, "  MPIE = 1 (MIE was set)", !!(m_trap.status & MSTATUS_MPIE), 1);

    /* wfi with the interrupt pending but globally masked resumes without a trap. */
    trap_reset();
    mmio_write64(CLINT_MTIMECMP(0), mtime() + 1000);
    __asm__ volatile("wfi" ::: "memory");
    uint64_t start = mtime();
    while ((csr_read(mip) & MIP_MTIP) == 0 && mtime() - start < GIVE_UP_TICKS) {
        __asm__ volatile("wfi" ::: "memory");
    }
    check_eq(9, "wfi wakes on a pending interrupt even with MIE=0", !!(csr_read(mip) & MIP_MTIP), 1);
    check_eq(9, "  and no trap is taken", m_trap.count, 0);
    csr_set(mstatus, MSTATUS_MIE);
    __asm__ volatile("nop" ::: "memory");
    csr_clear(mstatus, MSTATUS_MIE);
    check_eq(10, "setting MIE takes the pending timer interrupt at once", m_trap.count, 1);
    check_eq(10, "  slot 7", m_trap.vector_slot, IRQ_M_TIMER);
    csr_clear(mie, MIP_MTIP);
}

static void test_software_interrupt(void)
{
    trap_reset();
    mmio_write32(CLINT_MSIP(0), 1);
    check_eq(11, "CLINT msip sets mip.MSIP", !!(csr_read(mip) & MIP_MSIP), 1);
    check_eq(11, "  msip reads back 1", mmio_read32(CLINT_MSIP(0)), 1);
    csr_set(mie, MIP_MSIP);
    csr_set(mstatus, MSTATUS_MIE);
    __asm__ volatile("nop" ::: "memory");
    csr_clear(mstatus, MSTATUS_MIE);
    check_eq(12, "software interrupt: mcause", m_trap.cause, CAUSE_INTERRUPT | IRQ_M_SOFT);
    check_eq(12, "  vectored to slot 3", m_trap.vector_slot, IRQ_M_SOFT);
    check_eq(12, "  handler cleared msip", csr_read(mip) & MIP_MSIP, 0);
    csr_clear(mie, MIP_MSIP);
}

/* Timer interrupts are taken in lower modes regardless of mstatus.MIE. */
static uint64_t spin_until_trap(uint64_t arg)
{
    (void)arg;
    while (m_trap.count == 0) {
    }
    return m_trap.cause;
}

static void test_interrupt_from_lower_mode(void)
{
    trap_reset();
    csr_clear(mstatus, MSTATUS_MIE);
    csr_set(mie, MIP_MTIP);
    mmio_write64(CLINT_MTIMECMP(0), mtime() + 5000);
    uint64_t cause = run_in_mode(PRV_U, spin_until_trap, 0);
    check_eq(13, "M timer interrupt preempts U even with mstatus.MIE=0", cause, CAUSE_INTERRUPT | IRQ_M_TIMER);
    check_eq(13, "  MPP = U", m_trap.from_priv, PRV_U);
    check_eq(13, "  slot 7", m_trap.vector_slot, IRQ_M_TIMER);
    csr_clear(mie, MIP_MTIP);
}

int main(void)
{
    trap_init();
    check_begin("timer-irq");
    test_mtime_and_time_csr();
    test_vectored_mode();
    test_timer_interrupt();
    test_software_interrupt();
    test_interrupt_from_lower_mode();
    csr_write(mtvec, (uintptr_t)m_trap_entry);
    return check_done();
}
