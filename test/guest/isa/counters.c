/* Counter CSRs: mcycle/minstret count, and mcounteren/scounteren gate cycle, time
   and instret for S and U (illegal instruction when the gate is closed). */
#include "check.h"
#include "trap.h"

#define CY (1UL << 0)
#define TM (1UL << 1)
#define IR (1UL << 2)

/* Each returns the address of the read; the handler skips it if it traps. */
static uint64_t read_cycle(uint64_t arg) { (void)arg; return PC_OF("", "rdcycle t0"); }
static uint64_t read_time(uint64_t arg) { (void)arg; return PC_OF("", "rdtime t0"); }
static uint64_t read_instret(uint64_t arg) { (void)arg; return PC_OF("", "rdinstret t0"); }

static const struct {
    const char *name;
    uint64_t bit;
    uint64_t (*reader)(uint64_t);
    uint32_t encoding;
} counters[] = {
    { "cycle", CY, read_cycle, 0xc00022f3 },
    { "time", TM, read_time, 0xc01022f3 },
    { "instret", IR, read_instret, 0xc02022f3 },
};

static void expect_access(unsigned id, unsigned priv, unsigned which, int allowed)
{
    static const char *const mode_names[] = { "U", "S" };
    trap_reset();
    uint64_t pc = run_in_mode(priv, counters[which].reader, 0);
    guest_printf("  %s reads %s, %s:\n", mode_names[priv], counters[which].name, allowed ? "allowed" : "gated");
    if (allowed) {
        check_eq(id, "    no trap", m_trap.count, 0);
        return;
    }
    check_eq(id, "    illegal instruction", m_trap.cause, CAUSE_ILLEGAL_INSN);
    check_eq(id, "    mepc", m_trap.epc, pc);
    check_eq(id, "    mtval = instruction bits", m_trap.tval, counters[which].encoding);
}

static void test_counting(void)
{
    uint64_t c0 = csr_read(mcycle), i0 = csr_read(minstret);
    for (volatile int i = 0; i < 1000; i++) {
    }
    uint64_t c1 = csr_read(mcycle), i1 = csr_read(minstret);
    check_true(1, "mcycle advances", c1 > c0, c1 - c0);
    check_true(2, "minstret advances over 1000 loop iterations", i1 - i0 >= 1000, i1 - i0);
    check_eq(3, "cycle mirrors mcycle in M (monotonic)", csr_read(cycle) >= c1, 1);
}

static void test_gating(void)
{
    unsigned id = 10;
    for (unsigned which = 0; which < 3; which++, id += 10) {
        uint64_t bit = counters[which].bit;
        csr_write(mcounteren, 0);
        csr_write(scounteren, 0);
        expect_access(id + 1, PRV_S, which, 0);
        expect_access(id + 2, PRV_U, which, 0);

        csr_write(mcounteren, bit);
        expect_access(id + 3, PRV_S, which, 1);
        expect_access(id + 4, PRV_U, which, 0);

        csr_write(scounteren, bit);
        expect_access(id + 5, PRV_U, which, 1);

        csr_write(mcounteren, 0);
        expect_access(id + 6, PRV_U, which, 0);
    }
    csr_write(mcounteren, 0);
    csr_write(scounteren, 0);
}

static void test_warl(void)
{
    csr_write(mcounteren, 7);
    check_eq(50, "mcounteren CY/TM/IR writable", csr_read(mcounteren) & 7, 7);
    csr_write(scounteren, 7);
    check_eq(51, "scounteren CY/TM/IR writable", csr_read(scounteren) & 7, 7);
    csr_write(mcounteren, 0);
    csr_write(scounteren, 0);
}

int main(void)
{
    trap_init();
    check_begin("counters");
    test_counting();
    test_gating();
    test_warl();
    return check_done();
}
