/* M-mode synchronous traps: cause, mepc, mtval and the mstatus stack on entry and
   on mret. Expectations are what QEMU 7.2 (virt, -bios none) does. */
#include "check.h"
#include "trap.h"

/* Nothing is mapped here on the virt board (between the platform bus and the PLIC);
   QEMU turns such accesses into access faults. */
#define UNMAPPED_PA 0x08000000UL

static void expect_trap(unsigned id, const char *what, uint64_t cause, uint64_t epc, uint64_t tval)
{
    check_eq(id, what, m_trap.cause, cause);
    check_eq(id, "  mepc", m_trap.epc, epc);
    check_eq(id, "  mtval", m_trap.tval, tval);
}

static void test_illegal_instructions(void)
{
    trap_reset();
    uint64_t pc = PC_OF("", ".word 0x0000000b");  /* custom-0 opcode: nothing implements it */
    expect_trap(1, "custom-0 opcode -> illegal instruction", CAUSE_ILLEGAL_INSN, pc, 0x0000000b);

    trap_reset();
    pc = PC_OF("", ".word 0xc0001073");  /* csrrw x0, cycle, x0: write to a read-only CSR */
    expect_trap(2, "write to read-only CSR cycle -> illegal instruction", CAUSE_ILLEGAL_INSN, pc, 0xc0001073);

    trap_reset();
    pc = PC_OF("", ".2byte 0x0000");  /* the all-zero halfword is defined illegal */
    expect_trap(3, "all-zero compressed instruction -> illegal instruction", CAUSE_ILLEGAL_INSN, pc, 0);

    trap_reset();
    pc = PC_OF("", "csrr t0, 0x3ff");  /* no CSR at this number */
    expect_trap(4, "read of unimplemented CSR 0x3ff -> illegal instruction", CAUSE_ILLEGAL_INSN, pc, 0x3ff022f3);

    trap_reset();
    pc = PC_OF("", "csrw mhartid, zero");
    expect_trap(5, "write to read-only mhartid -> illegal instruction", CAUSE_ILLEGAL_INSN, pc, 0xf1401073);
}

static void test_ecall_ebreak(void)
{
    trap_reset();
    csr_set(mstatus, MSTATUS_MIE);  /* no interrupt is enabled in mie, so nothing fires */
    uint64_t pc = PC_OF("", "ecall");
    expect_trap(6, "ecall from M -> cause 11", CAUSE_ECALL_M, pc, 0);
    check_eq(6, "  trap entry: MPP=M", (m_trap.status & MSTATUS_MPP) >> 11, PRV_M);
    check_eq(6, "  trap entry: MPIE=old MIE", !!(m_trap.status & MSTATUS_MPIE), 1);
    check_eq(6, "  trap entry: MIE=0", !!(m_trap.status & MSTATUS_MIE), 0);
    check_eq(6, "  mret restored MIE", !!(csr_read(mstatus) & MSTATUS_MIE), 1);
    csr_clear(mstatus, MSTATUS_MIE);

    trap_reset();
    pc = PC_OF("", ".option push\n.option norvc\nebreak\n.option pop");
    /* The spec allows mtval = pc or 0 for breakpoints; QEMU 7.2 writes 0. */
    expect_trap(7, "ebreak -> breakpoint, mtval=0", CAUSE_BREAKPOINT, pc, 0);

    trap_reset();
    pc = PC_OF("", "c.ebreak");
    expect_trap(8, "c.ebreak -> breakpoint, mtval=0", CAUSE_BREAKPOINT, pc, 0);
}

static void test_access_faults(void)
{
    trap_reset();
    uint64_t pc = PC_OF("li t0, 0x08000000", "lw t1, 0(t0)");
    expect_trap(9, "load from unmapped PA -> load access fault", CAUSE_LOAD_ACCESS, pc, UNMAPPED_PA);

    trap_reset();
    pc = PC_OF("li t0, 0x08000000", "sd t0, 8(t0)");
    expect_trap(10, "store to unmapped PA -> store access fault", CAUSE_STORE_ACCESS, pc, UNMAPPED_PA + 8);

    trap_reset();
    __asm__ volatile("li t0, 0x08000000\n jalr t0" ::: "t0", "ra", "memory");
    expect_trap(11, "fetch from unmapped PA -> fetch access fault", CAUSE_FETCH_ACCESS, UNMAPPED_PA, UNMAPPED_PA);

    /* Past the end of RAM: -m 128M ends at 0x88000000. */
    trap_reset();
    pc = PC_OF("li t0, 0x88000000", "ld t1, 0(t0)");
    expect_trap(12, "load past end of 128M RAM -> load access fault", CAUSE_LOAD_ACCESS, pc, 0x88000000UL);
}

static void test_misaligned_data(void)
{
    static volatile uint8_t bytes[16] __attribute__((aligned(8))) = {
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00,
    };
    uint64_t w, d;
    trap_reset();
    __asm__ volatile("lw %0, 1(%2)\n ld %1, 3(%2)" : "=&r"(w), "=&r"(d) : "r"(bytes) : "memory");
    /* QEMU completes misaligned scalar loads/stores in hardware instead of trapping. */
    check_eq(13, "misaligned lw completes without trap", m_trap.count, 0);
    check_eq(13, "  lw value", w, 0x55443322UL);
    check_eq(13, "  ld value", d, 0xbbaa998877665544UL);
    __asm__ volatile("sw %0, 5(%1)" :: "r"(0xdeadbeefUL), "r"(bytes) : "memory");
    check_eq(14, "misaligned sw completes without trap", m_trap.count, 0);
    check_eq(14, "  bytes 0..7 after sw", *(volatile uint64_t *)(bytes + 0), 0xadbeef5544332211UL);
    check_eq(14, "  byte 8 after sw", bytes[8], 0xde);
}

static void test_mret_stack(void)
{
    uint64_t after;
    /* mret with MPP=M, MPIE=1, MIE=0: MIE <- 1, MPIE <- 1, MPP <- U (least privileged). */
    csr_clear(mstatus, MSTATUS_MIE);
    csr_set(mstatus, MSTATUS_MPP | MSTATUS_MPIE);
    __asm__ volatile("la t0, 1f\n csrw mepc, t0\n mret\n1: csrr %0, mstatus" : "=r"(after) :: "t0", "memory");
    check_eq(15, "mret: MIE <- MPIE", !!(after & MSTATUS_MIE), 1);
    check_eq(15, "  MPIE <- 1", !!(after & MSTATUS_MPIE), 1);
    check_eq(15, "  MPP <- U", (after & MSTATUS_MPP) >> 11, PRV_U);
    csr_clear(mstatus, MSTATUS_MIE);
}

static void test_warl_basics(void)
{
    /* The spec says mepc[0] reads 0; QEMU 7.2 keeps the bit as written. Accept both. */
    csr_write(mepc, 0x80001235UL);
    uint64_t mepc = csr_read(mepc);
    check_true(16, "mepc keeps the written address (bit 0 may read 0)",
               mepc == 0x80001234UL || mepc == 0x80001235UL, mepc);
    uint64_t misa = csr_read(misa);
    check_eq(17, "misa.MXL = 2 (RV64)", misa >> 62, 2);
    uint64_t need = (1 << ('I' - 'A')) | (1 << ('M' - 'A')) | (1 << ('A' - 'A')) | (1 << ('C' - 'A')) |
                    (1 << ('S' - 'A')) | (1 << ('U' - 'A'));
    check_eq(18, "misa has I, M, A, C, S, U", misa & need, need);
    check_eq(19, "mhartid of the boot hart is 0", csr_read(mhartid), 0);
    uint64_t mstatus = csr_read(mstatus);
    check_eq(20, "mstatus.UXL = 2", (mstatus >> 32) & 3, 2);
    check_eq(20, "mstatus.SXL = 2", (mstatus >> 34) & 3, 2);
}

int main(void)
{
    trap_init();
    check_begin("trap-m");
    test_illegal_instructions();
    test_ecall_ebreak();
    test_access_faults();
    test_misaligned_data();
    test_mret_stack();
    test_warl_basics();
    return check_done();
}
