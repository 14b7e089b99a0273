# Entry for qemu-system-riscv64 -M virt -bios none: the CPU starts here in M-mode at 0x80000000.
    .section .text.start
    .globl _start
_start:
    la      sp, __stack_top
    la      t0, trap_entry
    csrw    mtvec, t0
    li      t0, 0x2000          # mstatus.FS = Initial: FP instructions are illegal while FS is Off
    csrs    mstatus, t0
    call    main
    li      t0, 0x100000        # SiFive test finisher: 0x5555 = pass, powers the machine off
    li      t1, 0x5555
    sw      t1, 0(t0)
1:  wfi
    j       1b

# Any exception: record mcause in trap_record[0] and skip the (4-byte) faulting instruction. The
# state tests put only 32-bit instructions where a trap is expected, and preserve every register.
    .text
    .balign 4
trap_entry:
    csrw    mscratch, t0
    la      t0, trap_record
    sd      t1, 8(t0)
    csrr    t1, mcause
    sd      t1, 0(t0)
    csrr    t1, mepc
    addi    t1, t1, 4
    csrw    mepc, t1
    ld      t1, 8(t0)
    csrr    t0, mscratch
    mret

    .bss
    .balign 8
    .globl trap_record
trap_record:
    .zero   16
