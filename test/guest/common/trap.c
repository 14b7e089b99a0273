/* C side of the trap handlers: record the trap, then resume. Exceptions resume at
   the next instruction, except instruction-fetch faults, which "return" to the
   caller (ra) since there is no instruction to skip. Interrupts are silenced at
   the source so they do not fire again. */
#include "trap.h"

volatile struct trap_record m_trap;
volatile struct trap_record s_trap;
extern volatile uint64_t m_vector_slot;
extern char lower_mode_return[];

enum { REG_RA = 1, REG_A0 = 10, REG_A7 = 17 };

/* Bounds a runaway: a test bug that re-traps forever must end the run, not hang it. */
#define MAX_TRAPS_PER_MODE 100000

void trap_reset(void)
{
    m_trap = (struct trap_record){ .vector_slot = ~0UL };
    s_trap = (struct trap_record){ .vector_slot = ~0UL };
    m_vector_slot = ~0UL;
}

void trap_init(void)
{
    extern char __s_trap_stack_top[];
    trap_reset();
    csr_write(mtvec, (uintptr_t)m_trap_entry);
    csr_write(sscratch, (uintptr_t)__s_trap_stack_top);
}

static int is_fetch_fault(uint64_t cause)
{
    return cause == CAUSE_MISALIGNED_FETCH || cause == CAUSE_FETCH_ACCESS || cause == CAUSE_FETCH_PAGE;
}

/* Length of the instruction at epc; `epc` is readable in the handler's mode because
   the tests keep all trapping code identity-mapped (or, for U pages, SUM is set). */
static uint64_t insn_length(uint64_t epc)
{
    uint16_t low = *(volatile uint16_t *)epc;
    return (low & 3) == 3 ? 4 : 2;
}

static void record(volatile struct trap_record *r, uint64_t cause, uint64_t epc, uint64_t tval, uint64_t from,
                   uint64_t status)
{
    r->status = status;
    r->count++;
    r->cause = cause;
    r->epc = epc;
    r->tval = tval;
    r->from_priv = from;
    if (r->count > MAX_TRAPS_PER_MODE) {
        guest_printf("trap storm: cause=0x%lx epc=0x%lx tval=0x%lx\n", cause, epc, tval);
        guest_exit(EXIT_UNEXPECTED_TRAP);
    }
}

static void silence_m_interrupt(uint64_t irq)
{
    switch (irq) {
    case IRQ_M_TIMER:
        mmio_write64(CLINT_MTIMECMP(0), ~0UL);
        break;
    case IRQ_M_SOFT:
        mmio_write32(CLINT_MSIP(0), 0);
        break;
    case IRQ_S_TIMER:
    case IRQ_S_SOFT:
        csr_clear(mip, 1UL << irq);
        break;
    default:
        csr_clear(mie, 1UL << irq);
    }
}

void m_trap_handler(uint64_t *regs)
{
    uint64_t cause = csr_read(mcause);
    uint64_t epc = csr_read(mepc);
    uint64_t tval = csr_read(mtval);
    uint64_t status = csr_read(mstatus);
    uint64_t from = (status & MSTATUS_MPP) >> 11;

    if ((cause == CAUSE_ECALL_U || cause == CAUSE_ECALL_S) && regs[REG_A7] == RETURN_TO_M_MAGIC) {
        csr_set(mstatus, MSTATUS_MPP);
        csr_write(mepc, (uintptr_t)lower_mode_return);
        return;
    }
    record(&m_trap, cause, epc, tval, from, status);
    m_trap.vector_slot = m_vector_slot;
    m_vector_slot = ~0UL;
    if (cause & CAUSE_INTERRUPT) {
        silence_m_interrupt(cause & ~CAUSE_INTERRUPT);
        return;
    }
    if (is_fetch_fault(cause)) {
        csr_write(mepc, regs[REG_RA]);
        return;
    }
    csr_write(mepc, epc + insn_length(epc));
}

/* U's "return to M" ecall was delegated to S: leave the S handler for good (so its
   stack is free again) and repeat the ecall from S, which M does not delegate. */
static void __attribute__((noreturn)) forward_return_to_m(uint64_t result)
{
    extern char __s_trap_stack_top[];
    csr_write(sscratch, (uintptr_t)__s_trap_stack_top);
    register uint64_t a0 __asm__("a0") = result;
    register uint64_t a7 __asm__("a7") = RETURN_TO_M_MAGIC;
    __asm__ volatile("ecall" :: "r"(a0), "r"(a7) : "memory");
    __builtin_unreachable();
}

void s_trap_handler(uint64_t *regs)
{
    uint64_t cause = csr_read(scause);
    uint64_t epc = csr_read(sepc);
    uint64_t tval = csr_read(stval);
    uint64_t status = csr_read(sstatus);
    uint64_t from = (status & MSTATUS_SPP) ? PRV_S : PRV_U;

    if (cause == CAUSE_ECALL_U && regs[REG_A7] == RETURN_TO_M_MAGIC) {
        forward_return_to_m(regs[REG_A0]);
    }

    record(&s_trap, cause, epc, tval, from, status);
    if (cause & CAUSE_INTERRUPT) {
        uint64_t irq = cause & ~CAUSE_INTERRUPT;
        if (irq == IRQ_S_SOFT) csr_clear(sip, 1UL << IRQ_S_SOFT);
        else csr_clear(sie, 1UL << irq);
        return;
    }
    if (is_fetch_fault(cause)) {
        csr_write(sepc, regs[REG_RA]);
        return;
    }
    uint64_t saved = csr_read(sstatus);
    csr_set(sstatus, MSTATUS_SUM);
    uint64_t len = insn_length(epc);
    csr_write(sstatus, saved);
    csr_write(sepc, epc + len);
}
