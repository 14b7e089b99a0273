# Entry point for single-hart bare-metal programs. Hart 0 runs main(); any other
# hart parks in WFI (QEMU virt starts all harts at the ELF entry with -bios none).
# main's return value becomes the exit status through the SiFive test finisher.

    .file "crt0.S"
    .section .text.init, "ax"
    .globl _start
_start:
    csrr    t0, mhartid
    bnez    t0, park_secondary_hart

    la      sp, __stack_top
    la      t0, __m_trap_stack_top
    csrw    mscratch, t0

    la      t0, __bss_start
    la      t1, __bss_end
1:  bgeu    t0, t1, 2f
    sd      zero, 0(t0)
    addi    t0, t0, 8
    j       1b
2:
    # Anything that traps before a program installs its own handler gets reported.
    la      t0, unexpected_trap_entry
    csrw    mtvec, t0

    # With no PMP entry configured, QEMU denies every S/U-mode access; open the
    # whole address space (pmpaddr0 all ones = NAPOT over everything, cfg R|W|X|NAPOT).
    li      t0, -1
    csrw    pmpaddr0, t0
    li      t0, 0x1f
    csrw    pmpcfg0, t0

    call    main
    call    guest_exit

park_secondary_hart:
    wfi
    j       park_secondary_hart

# Minimal handler: report the trap and stop with status 99. Programs that expect
# traps install the full handler from trap.S instead.
    .align 4
unexpected_trap_entry:
    la      sp, __m_trap_stack_top
    csrr    a0, mcause
    csrr    a1, mepc
    csrr    a2, mtval
    call    report_unexpected_trap
3:  j       3b
