/* Trap plumbing for the ISA tests: M- and S-mode handlers that record the last trap
   and resume, and a way to run a function in S or U mode and come back to M. */
#ifndef WKVM_TRAP_H
#define WKVM_TRAP_H

#include "guest.h"

#define PRV_U 0
#define PRV_S 1
#define PRV_M 3

#define MSTATUS_SIE   (1UL << 1)
#define MSTATUS_MIE   (1UL << 3)
#define MSTATUS_SPIE  (1UL << 5)
#define MSTATUS_MPIE  (1UL << 7)
#define MSTATUS_SPP   (1UL << 8)
#define MSTATUS_MPP   (3UL << 11)
#define MSTATUS_MPRV  (1UL << 17)
#define MSTATUS_SUM   (1UL << 18)
#define MSTATUS_MXR   (1UL << 19)
#define MSTATUS_TVM   (1UL << 20)
#define MSTATUS_TW    (1UL << 21)
#define MSTATUS_TSR   (1UL << 22)

#define CAUSE_INTERRUPT        (1UL << 63)
#define CAUSE_MISALIGNED_FETCH 0
#define CAUSE_FETCH_ACCESS     1
#define CAUSE_ILLEGAL_INSN     2
#define CAUSE_BREAKPOINT       3
#define CAUSE_MISALIGNED_LOAD  4
#define CAUSE_LOAD_ACCESS      5
#define CAUSE_MISALIGNED_STORE 6
#define CAUSE_STORE_ACCESS     7
#define CAUSE_ECALL_U          8
#define CAUSE_ECALL_S          9
#define CAUSE_ECALL_M          11
#define CAUSE_FETCH_PAGE       12
#define CAUSE_LOAD_PAGE        13
#define CAUSE_STORE_PAGE       15

#define IRQ_S_SOFT   1
#define IRQ_M_SOFT   3
#define IRQ_S_TIMER  5
#define IRQ_M_TIMER  7
#define IRQ_S_EXT    9
#define IRQ_M_EXT    11

/* What the last trap taken in one mode looked like. */
struct trap_record {
    uint64_t count;      /* traps taken in this mode since trap_reset() */
    uint64_t cause;
    uint64_t epc;
    uint64_t tval;
    uint64_t from_priv;  /* privilege the trap came from (MPP/SPP) */
    uint64_t status;     /* mstatus/sstatus as the handler saw it */
    uint64_t vector_slot;/* for vectored interrupts: which mtvec slot ran, else ~0 */
};

extern volatile struct trap_record m_trap;
extern volatile struct trap_record s_trap;

/* Installs the M handler (direct mode) and clears both records. */
void trap_init(void);
void trap_reset(void);

/* Runs fn(arg) in privilege `priv` (PRV_S or PRV_U) and returns its result in M.
   A C function may simply return; asm under paging ends with RETURN_TO_M (see trap.S). */
uint64_t run_in_mode(unsigned priv, uint64_t (*fn)(uint64_t), uint64_t arg);

/* mtvec/stvec values for the handlers in trap.S. */
extern char m_trap_entry[], s_trap_entry[], m_vector_table[];

/* a7 value of the ecall that ends a run_in_mode() call. */
#define RETURN_TO_M_MAGIC 0x52544d21UL

/* Runs `setup` then the instruction `insn` (asm text) and yields the instruction's
   address, so a test can compare the recorded epc/tval with it. Both may use t0-t2. */
#define PC_OF(setup, insn) ({ uint64_t pc_; \
    __asm__ volatile(setup "\n la %0, 1f\n1: " insn : "=&r"(pc_) :: "t0", "t1", "t2", "memory"); pc_; })

#endif
