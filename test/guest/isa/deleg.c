/* Trap delegation to S mode: medeleg/mideleg, stvec, scause/sepc/stval, sret, and
   when delegated interrupts are taken (by mode, sstatus.SIE and sie). */
#include "check.h"
#include "trap.h"

#define SIP_SSIP (1UL << IRQ_S_SOFT)
#define SIP_STIP (1UL << IRQ_S_TIMER)

static uint64_t do_ecall(uint64_t arg)
{
    (void)arg;
    uint64_t pc;
    __asm__ volatile("li a7, 0\n la %0, 1f\n1: ecall" : "=&r"(pc) :: "a7", "memory");
    return pc;
}

static uint64_t do_illegal(uint64_t arg) { (void)arg; return PC_OF("", ".word 0x0000000b"); }

/* S mode: make a supervisor software interrupt pending and enabled. */
static uint64_t raise_ssi_in_s(uint64_t arg)
{
    (void)arg;
    csr_set(sie, SIP_SSIP);
    csr_set(sstatus, MSTATUS_SIE);
    csr_set(sip, SIP_SSIP);
    __asm__ volatile("nop\n nop" ::: "memory");
    csr_clear(sstatus, MSTATUS_SIE);
    return s_trap.count;
}

/* S mode with SIE=0: the pending interrupt must wait. */
static uint64_t raise_ssi_masked(uint64_t arg)
{
    (void)arg;
    csr_clear(sstatus, MSTATUS_SIE);
    csr_set(sie, SIP_SSIP);
    csr_set(sip, SIP_SSIP);
    __asm__ volatile("nop\n nop" ::: "memory");
    return s_trap.count;
}

static uint64_t s_enable_sie(uint64_t arg)
{
    (void)arg;
    csr_set(sstatus, MSTATUS_SIE);
    __asm__ volatile("nop\n nop" ::: "memory");
    csr_clear(sstatus, MSTATUS_SIE);
    return s_trap.count;
}

static uint64_t u_spin(uint64_t arg)
{
    __asm__ volatile("nop\n nop\n nop" ::: "memory");
    return arg;
}

static uint64_t s_enable_stie(uint64_t arg)
{
    (void)arg;
    csr_set(sie, SIP_STIP);
    csr_set(sstatus, MSTATUS_SIE);
    __asm__ volatile("nop\n nop" ::: "memory");
    csr_clear(sstatus, MSTATUS_SIE);
    return s_trap.count;
}

static void test_warl(void)
{
    csr_write(medeleg, ~0UL);
    uint64_t medeleg = csr_read(medeleg);
    guest_printf("  medeleg after writing all ones: 0x%lx\n", medeleg);
    uint64_t needed = (1UL << CAUSE_ILLEGAL_INSN) | (1UL << CAUSE_BREAKPOINT) | (1UL << CAUSE_ECALL_U) |
                      (1UL << CAUSE_FETCH_PAGE) | (1UL << CAUSE_LOAD_PAGE) | (1UL << CAUSE_STORE_PAGE);
    check_eq(1, "medeleg: page faults, illegal, breakpoint, U ecall delegable", medeleg & needed, needed);
    /* The spec makes medeleg[11] (ecall from M) read-only zero; QEMU 7.2 lets it be
       set (reads back 0xf0bfff), which is harmless since M traps are never delegated. */
    csr_write(medeleg, 0);
    check_eq(3, "medeleg cleared", csr_read(medeleg), 0);

    csr_write(mideleg, 0x222);
    uint64_t mideleg = csr_read(mideleg);
    guest_printf("  mideleg after writing 0x222: 0x%lx\n", mideleg);
    check_eq(4, "mideleg: SSIP, STIP, SEIP delegable", mideleg & 0xaaa, 0x222);
    csr_write(mideleg, 0);
}

static void test_exception_delegation(void)
{
    csr_write(stvec, (uintptr_t)s_trap_entry);
    csr_write(medeleg, (1UL << CAUSE_ECALL_U) | (1UL << CAUSE_ILLEGAL_INSN));

    trap_reset();
    uint64_t pc = run_in_mode(PRV_U, do_ecall, 0);
    check_eq(5, "delegated U ecall reaches S: scause 8", s_trap.cause, CAUSE_ECALL_U);
    check_eq(5, "  sepc", s_trap.epc, pc);
    check_eq(5, "  stval", s_trap.tval, 0);
    check_eq(5, "  SPP = U", s_trap.from_priv, PRV_U);
    check_eq(5, "  M saw nothing", m_trap.count, 0);

    trap_reset();
    pc = run_in_mode(PRV_U, do_illegal, 0);
    check_eq(6, "delegated illegal instruction from U: scause 2", s_trap.cause, CAUSE_ILLEGAL_INSN);
    check_eq(6, "  sepc", s_trap.epc, pc);
    check_eq(6, "  stval = instruction bits", s_trap.tval, 0x0000000b);
    check_eq(6, "  M saw nothing", m_trap.count, 0);

    trap_reset();
    pc = run_in_mode(PRV_S, do_illegal, 0);
    check_eq(7, "delegated illegal instruction from S stays in S", s_trap.cause, CAUSE_ILLEGAL_INSN);
    check_eq(7, "  SPP = S", s_trap.from_priv, PRV_S);
    check_eq(7, "  sepc", s_trap.epc, pc);
    check_eq(7, "  M saw nothing", m_trap.count, 0);

    trap_reset();
    pc = run_in_mode(PRV_S, do_ecall, 0);
    check_eq(8, "S ecall (not delegated) goes to M", m_trap.cause, CAUSE_ECALL_S);
    check_eq(8, "  S saw nothing", s_trap.count, 0);

    trap_reset();
    pc = PC_OF("", ".word 0x0000000b");
    check_eq(9, "delegation never applies to traps taken in M", m_trap.cause, CAUSE_ILLEGAL_INSN);
    check_eq(9, "  mepc", m_trap.epc, pc);
    check_eq(9, "  S saw nothing", s_trap.count, 0);

    csr_write(medeleg, 0);
}

static void test_interrupt_delegation(void)
{
    csr_write(stvec, (uintptr_t)s_trap_entry);
    csr_write(mideleg, SIP_SSIP | SIP_STIP);

    trap_reset();
    check_eq(10, "S software interrupt taken in S", run_in_mode(PRV_S, raise_ssi_in_s, 0), 1);
    check_eq(10, "  scause", s_trap.cause, CAUSE_INTERRUPT | IRQ_S_SOFT);
    check_eq(10, "  sstatus.SPIE = 1 (SIE was set)", !!(s_trap.status & MSTATUS_SPIE), 1);
    check_eq(10, "  sstatus.SIE = 0 in handler", !!(s_trap.status & MSTATUS_SIE), 0);
    check_eq(10, "  M saw nothing", m_trap.count, 0);

    trap_reset();
    check_eq(11, "S software interrupt waits while sstatus.SIE=0", run_in_mode(PRV_S, raise_ssi_masked, 0), 0);
    check_eq(11, "  sip.SSIP pending", !!(csr_read(mip) & SIP_SSIP), 1);

    /* Still pending from above: dropping to U takes it, whatever sstatus.SIE says. */
    trap_reset();
    check_eq(12, "pending S interrupt taken on entering U", run_in_mode(PRV_U, u_spin, 7), 7);
    check_eq(12, "  one S trap", s_trap.count, 1);
    check_eq(12, "  scause", s_trap.cause, CAUSE_INTERRUPT | IRQ_S_SOFT);
    check_eq(12, "  SPP = U", s_trap.from_priv, PRV_U);

    /* A delegated interrupt never traps to M, even with mstatus.MIE set. */
    trap_reset();
    csr_set(mie, SIP_SSIP);
    csr_set(mip, SIP_SSIP);
    csr_set(mstatus, MSTATUS_MIE);
    __asm__ volatile("nop\n nop\n nop" ::: "memory");
    csr_clear(mstatus, MSTATUS_MIE);
    check_eq(13, "delegated SSI not taken in M", m_trap.count + s_trap.count, 0);
    check_eq(14, "  and taken once S enables it", run_in_mode(PRV_S, s_enable_sie, 0), 1);
    check_eq(14, "  scause", s_trap.cause, CAUSE_INTERRUPT | IRQ_S_SOFT);

    /* M raises a supervisor timer interrupt by setting mip.STIP. */
    trap_reset();
    csr_set(mip, SIP_STIP);
    check_eq(15, "mip.STIP writable from M", !!(csr_read(mip) & SIP_STIP), 1);
    check_eq(16, "STI delegated to S", run_in_mode(PRV_S, s_enable_stie, 0), 1);
    check_eq(16, "  scause", s_trap.cause, CAUSE_INTERRUPT | IRQ_S_TIMER);
    csr_clear(mip, SIP_STIP);
    check_eq(16, "  M saw nothing", m_trap.count, 0);

    csr_write(mie, 0);
    csr_write(mideleg, 0);
}

int main(void)
{
    trap_init();
    check_begin("deleg");
    test_warl();
    test_exception_delegation();
    test_interrupt_delegation();
    return check_done();
}
