/* Dropping to S and U through mret/MPP, ecall from each mode, and the privileged
   instructions and CSRs a lower mode may not use. No paging, no delegation: every
   trap lands in M. */
#include "check.h"
#include "trap.h"

/* Lower-mode bodies: run one instruction and return its address, so the test can
   compare it with the recorded mepc. The handler skips the instruction. */
#define LOWER_INSN(name, insn) \
    static uint64_t name(uint64_t arg) { (void)arg; return PC_OF("", insn); }

LOWER_INSN(do_ebreak, "ebreak")
LOWER_INSN(read_mstatus, "csrr t0, mstatus")
LOWER_INSN(read_sstatus, "csrr t0, sstatus")
LOWER_INSN(read_satp, "csrr t0, satp")
LOWER_INSN(do_mret, "mret")
LOWER_INSN(do_sret, "sret")
LOWER_INSN(do_wfi, "wfi")
LOWER_INSN(do_sfence, "sfence.vma")

static uint64_t do_ecall(uint64_t arg)
{
    (void)arg;
    uint64_t pc;
    __asm__ volatile("li a7, 0\n la %0, 1f\n1: ecall" : "=&r"(pc) :: "a7", "memory");
    return pc;
}

static uint64_t add_one(uint64_t arg) { return arg + 1; }

static void expect_m_trap(unsigned id, const char *what, uint64_t cause, uint64_t epc, uint64_t tval, uint64_t from)
{
    check_eq(id, what, m_trap.cause, cause);
    check_eq(id, "  count", m_trap.count, 1);
    check_eq(id, "  mepc", m_trap.epc, epc);
    check_eq(id, "  mtval", m_trap.tval, tval);
    check_eq(id, "  MPP (mode trapped from)", m_trap.from_priv, from);
}

int main(void)
{
    trap_init();
    check_begin("priv-modes");

    trap_reset();
    check_eq(1, "run_in_mode(S) round trip", run_in_mode(PRV_S, add_one, 41), 42);
    check_eq(1, "  no trap recorded", m_trap.count, 0);
    check_eq(2, "run_in_mode(U) round trip", run_in_mode(PRV_U, add_one, 99), 100);

    trap_reset();
    uint64_t pc = run_in_mode(PRV_S, do_ecall, 0);
    expect_m_trap(3, "ecall from S -> cause 9", CAUSE_ECALL_S, pc, 0, PRV_S);

    trap_reset();
    pc = run_in_mode(PRV_U, do_ecall, 0);
    expect_m_trap(4, "ecall from U -> cause 8", CAUSE_ECALL_U, pc, 0, PRV_U);

    trap_reset();
    pc = run_in_mode(PRV_U, do_ebreak, 0);
    expect_m_trap(5, "ebreak from U -> breakpoint", CAUSE_BREAKPOINT, pc, 0, PRV_U);

    trap_reset();
    pc = run_in_mode(PRV_U, read_mstatus, 0);
    expect_m_trap(6, "U reads mstatus -> illegal", CAUSE_ILLEGAL_INSN, pc, 0x300022f3, PRV_U);

    trap_reset();
    pc = run_in_mode(PRV_U, read_sstatus, 0);
    expect_m_trap(7, "U reads sstatus -> illegal", CAUSE_ILLEGAL_INSN, pc, 0x100022f3, PRV_U);

    trap_reset();
    pc = run_in_mode(PRV_S, read_mstatus, 0);
    expect_m_trap(8, "S reads mstatus -> illegal", CAUSE_ILLEGAL_INSN, pc, 0x300022f3, PRV_S);

    trap_reset();
    run_in_mode(PRV_S, read_sstatus, 0);
    check_eq(9, "S reads sstatus without trapping", m_trap.count, 0);

    trap_reset();
    pc = run_in_mode(PRV_S, do_mret, 0);
    expect_m_trap(10, "mret in S -> illegal", CAUSE_ILLEGAL_INSN, pc, 0x30200073, PRV_S);

    trap_reset();
    pc = run_in_mode(PRV_U, do_sret, 0);
    expect_m_trap(11, "sret in U -> illegal", CAUSE_ILLEGAL_INSN, pc, 0x10200073, PRV_U);

    trap_reset();
    csr_set(mstatus, MSTATUS_TSR);
    pc = run_in_mode(PRV_S, do_sret, 0);
    csr_clear(mstatus, MSTATUS_TSR);
    expect_m_trap(12, "sret in S with mstatus.TSR -> illegal", CAUSE_ILLEGAL_INSN, pc, 0x10200073, PRV_S);

    trap_reset();
    csr_set(mstatus, MSTATUS_TVM);
    pc = run_in_mode(PRV_S, read_satp, 0);
    expect_m_trap(13, "satp access in S with mstatus.TVM -> illegal", CAUSE_ILLEGAL_INSN, pc, 0x180022f3, PRV_S);
    trap_reset();
    pc = run_in_mode(PRV_S, do_sfence, 0);
    expect_m_trap(14, "sfence.vma in S with mstatus.TVM -> illegal", CAUSE_ILLEGAL_INSN, pc, 0x12000073, PRV_S);
    csr_clear(mstatus, MSTATUS_TVM);

    trap_reset();
    run_in_mode(PRV_S, read_satp, 0);
    check_eq(15, "satp readable in S without TVM", m_trap.count, 0);

    trap_reset();
    csr_set(mstatus, MSTATUS_TW);
    pc = run_in_mode(PRV_S, do_wfi, 0);
    csr_clear(mstatus, MSTATUS_TW);
    expect_m_trap(16, "wfi in S with mstatus.TW -> illegal", CAUSE_ILLEGAL_INSN, pc, 0x10500073, PRV_S);

    /* With S mode present, U-mode wfi is illegal regardless of TW (QEMU traps at once). */
    trap_reset();
    pc = run_in_mode(PRV_U, do_wfi, 0);
    expect_m_trap(17, "wfi in U -> illegal", CAUSE_ILLEGAL_INSN, pc, 0x10500073, PRV_U);

    return check_done();
}
