# Trap entries for the ISA tests. Each saves all registers into a frame on a
# dedicated trap stack (mscratch/sscratch hold its top while not in a handler),
# calls the C handler with the frame, restores and returns with mret/sret.

#define REGBYTES 8
#define FRAME_SIZE (32 * REGBYTES)

.macro SAVE_GPRS
    sd x1, 1*REGBYTES(sp)
    sd x3, 3*REGBYTES(sp)
    sd x4, 4*REGBYTES(sp)
    sd x5, 5*REGBYTES(sp)
    sd x6, 6*REGBYTES(sp)
    sd x7, 7*REGBYTES(sp)
    sd x8, 8*REGBYTES(sp)
    sd x9, 9*REGBYTES(sp)
    sd x10, 10*REGBYTES(sp)
    sd x11, 11*REGBYTES(sp)
    sd x12, 12*REGBYTES(sp)
    sd x13, 13*REGBYTES(sp)
    sd x14, 14*REGBYTES(sp)
    sd x15, 15*REGBYTES(sp)
    sd x16, 16*REGBYTES(sp)
    sd x17, 17*REGBYTES(sp)
    sd x18, 18*REGBYTES(sp)
    sd x19, 19*REGBYTES(sp)
    sd x20, 20*REGBYTES(sp)
    sd x21, 21*REGBYTES(sp)
    sd x22, 22*REGBYTES(sp)
    sd x23, 23*REGBYTES(sp)
    sd x24, 24*REGBYTES(sp)
    sd x25, 25*REGBYTES(sp)
    sd x26, 26*REGBYTES(sp)
    sd x27, 27*REGBYTES(sp)
    sd x28, 28*REGBYTES(sp)
    sd x29, 29*REGBYTES(sp)
    sd x30, 30*REGBYTES(sp)
    sd x31, 31*REGBYTES(sp)
.endm

# Restores everything but sp and t0 (x5), which the caller restores last.
.macro RESTORE_GPRS
    ld x1, 1*REGBYTES(sp)
    ld x3, 3*REGBYTES(sp)
    ld x4, 4*REGBYTES(sp)
    ld x6, 6*REGBYTES(sp)
    ld x7, 7*REGBYTES(sp)
    ld x8, 8*REGBYTES(sp)
    ld x9, 9*REGBYTES(sp)
    ld x10, 10*REGBYTES(sp)
    ld x11, 11*REGBYTES(sp)
    ld x12, 12*REGBYTES(sp)
    ld x13, 13*REGBYTES(sp)
    ld x14, 14*REGBYTES(sp)
    ld x15, 15*REGBYTES(sp)
    ld x16, 16*REGBYTES(sp)
    ld x17, 17*REGBYTES(sp)
    ld x18, 18*REGBYTES(sp)
    ld x19, 19*REGBYTES(sp)
    ld x20, 20*REGBYTES(sp)
    ld x21, 21*REGBYTES(sp)
    ld x22, 22*REGBYTES(sp)
    ld x23, 23*REGBYTES(sp)
    ld x24, 24*REGBYTES(sp)
    ld x25, 25*REGBYTES(sp)
    ld x26, 26*REGBYTES(sp)
    ld x27, 27*REGBYTES(sp)
    ld x28, 28*REGBYTES(sp)
    ld x29, 29*REGBYTES(sp)
    ld x30, 30*REGBYTES(sp)
    ld x31, 31*REGBYTES(sp)
.endm

    .file "trap.S"
    .text
    .align 6
    .globl m_trap_entry
m_trap_entry:
    csrrw   sp, mscratch, sp
    addi    sp, sp, -FRAME_SIZE
    SAVE_GPRS
    csrr    t0, mscratch
    sd      t0, 2*REGBYTES(sp)          # the interrupted sp
    mv      a0, sp
    call    m_trap_handler
    ld      t0, 2*REGBYTES(sp)
    csrw    mscratch, t0
    RESTORE_GPRS
    ld      t0, 5*REGBYTES(sp)
    addi    sp, sp, FRAME_SIZE
    csrrw   sp, mscratch, sp
    mret

    .align 6
    .globl s_trap_entry
s_trap_entry:
    csrrw   sp, sscratch, sp
    addi    sp, sp, -FRAME_SIZE
    SAVE_GPRS
    csrr    t0, sscratch
    sd      t0, 2*REGBYTES(sp)
    mv      a0, sp
    call    s_trap_handler
    ld      t0, 2*REGBYTES(sp)
    csrw    sscratch, t0
    RESTORE_GPRS
    ld      t0, 5*REGBYTES(sp)
    addi    sp, sp, FRAME_SIZE
    csrrw   sp, sscratch, sp
    sret

# Vectored mtvec: slot N records N, then joins the common entry. Slots must be
# exactly 4 bytes apart, so no compressed jumps here.
.macro VECTOR_STUB n
vector_stub_\n:
    csrrw   sp, mscratch, sp
    sd      t0, -8(sp)
    sd      t1, -16(sp)
    li      t0, \n
    la      t1, m_vector_slot
    sd      t0, 0(t1)
    ld      t0, -8(sp)
    ld      t1, -16(sp)
    csrrw   sp, mscratch, sp
    j       m_trap_entry
.endm

    .align 8
    .globl m_vector_table
m_vector_table:
    .option push
    .option norvc
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    j       vector_stub_\n
    .endr
    .option pop
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    VECTOR_STUB \n
    .endr

# uint64_t run_in_mode(unsigned priv, uint64_t (*fn)(uint64_t), uint64_t arg)
# Drops to `priv` at fn with a0 = arg and ra = lower_mode_exit; the M handler
# answers the RETURN_TO_M ecall by resuming at lower_mode_return in M mode.
    .globl run_in_mode
run_in_mode:
    addi    sp, sp, -112
    sd      ra, 0(sp)
    sd      s0, 8(sp)
    sd      s1, 16(sp)
    sd      s2, 24(sp)
    sd      s3, 32(sp)
    sd      s4, 40(sp)
    sd      s5, 48(sp)
    sd      s6, 56(sp)
    sd      s7, 64(sp)
    sd      s8, 72(sp)
    sd      s9, 80(sp)
    sd      s10, 88(sp)
    sd      s11, 96(sp)
    la      t0, saved_m_sp
    sd      sp, 0(t0)
    li      t0, 3 << 11
    csrc    mstatus, t0
    slli    t1, a0, 11
    csrs    mstatus, t1
    csrw    mepc, a1
    mv      a0, a2
    la      ra, lower_mode_exit
    mret

    .globl lower_mode_exit
lower_mode_exit:
    li      a7, 0x52544d21
    ecall

    .globl lower_mode_return
lower_mode_return:
    la      t0, saved_m_sp
    ld      sp, 0(t0)
    ld      ra, 0(sp)
    ld      s0, 8(sp)
    ld      s1, 16(sp)
    ld      s2, 24(sp)
    ld      s3, 32(sp)
    ld      s4, 40(sp)
    ld      s5, 48(sp)
    ld      s6, 56(sp)
    ld      s7, 64(sp)
    ld      s8, 72(sp)
    ld      s9, 80(sp)
    ld      s10, 88(sp)
    ld      s11, 96(sp)
    addi    sp, sp, 112
    ret

    .bss
    .align 3
saved_m_sp:
    .dword 0
    .globl m_vector_slot
m_vector_slot:
    .dword 0
