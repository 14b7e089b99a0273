# Entry point for the multi-hart litmus program. QEMU virt with -bios none starts
# every hart here at once, in M-mode, with a0 = mhartid and a1 = the DTB address.
# Each hart gets its own stack and trap stack; hart 0 clears .bss and then lets the
# others into C, so nobody reads a shared variable before it has been zeroed.

#include "layout.h"

    .file "crt0.S"
    .section .text.init, "ax"
    .globl _start
_start:
    csrr    t0, mhartid
    li      t1, SMP_MAX_HARTS
    bgeu    t0, t1, park_forever        # no stack for it, so it cannot take part

    li      t1, HART_STACK_SIZE
    mul     t2, t0, t1
    la      sp, __hart_stacks_top
    sub     sp, sp, t2

    li      t1, HART_TRAP_STACK_SIZE
    mul     t2, t0, t1
    la      t3, __hart_trap_stacks_top
    sub     t3, t3, t2
    csrw    mscratch, t3
    la      t1, trap_entry
    csrw    mtvec, t1

    mv      a0, t0                      # a1 (DTB) passes through untouched
    bnez    t0, secondary_hart

    la      t1, __bss_start
    la      t2, __bss_end
1:  bgeu    t1, t2, 2f
    sd      zero, 0(t1)
    addi    t1, t1, 8
    j       1b
2:  fence   rw, w                       # the zeroes are visible before the release flag
    la      t1, boot_bss_cleared
    li      t2, 1
    sw      t2, 0(t1)
    call    boot_hart_main
    call    guest_exit

secondary_hart:
    la      t1, boot_bss_cleared
3:  lw      t2, 0(t1)
    bnez    t2, 4f
    .4byte  0x0100000f                  # pause (Zihintpause; a plain fence where unsupported)
    j       3b
4:  fence   r, rw
    call    secondary_hart_main
park_forever:
    wfi
    j       park_forever

# Any trap is unexpected: report it with the hart id on this hart's trap stack and stop.
    .align 4
trap_entry:
    csrrw   sp, mscratch, sp
    csrr    a0, mhartid
    csrr    a1, mcause
    csrr    a2, mepc
    csrr    a3, mtval
    call    report_trap
5:  j       5b

    .data
    .align  2
    .globl boot_bss_cleared
boot_bss_cleared:
    .word   0
