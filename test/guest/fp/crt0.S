# Entry for qemu-system-riscv64 -M virt -bios none: the CPU starts here in M-mode at 0x80000000.
    .section .text.start
    .globl _start
_start:
    la      sp, __stack_top
    li      t0, 0x2000          # mstatus.FS = Initial: FP instructions are illegal while FS is Off
    csrs    mstatus, t0
    call    main
    li      t0, 0x100000        # SiFive test finisher: 0x5555 = pass, powers the machine off
    li      t1, 0x5555
    sw      t1, 0(t0)
1:  wfi
    j       1b
