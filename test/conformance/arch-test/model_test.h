// riscv-arch-test's model interface for QEMU's virt board and wkvm's (`-M virt -bios none`): the test runs
// in M-mode from 0x80000000; at the end RVMODEL_HALT prints the signature on UART0 as 32-bit words in hex,
// one per line (the reference signature format), and powers the machine off through the SiFive test
// finisher. The same ELF then runs on both machines and their outputs are compared.
#ifndef _COMPLIANCE_MODEL_H
#define _COMPLIANCE_MODEL_H

#define RVMODEL_DATA_SECTION \
  .pushsection .tohost,"aw",@progbits; .align 8; .global tohost; tohost: .dword 0; \
  .align 8; .global fromhost; fromhost: .dword 0; .popsection;

#define RVMODEL_HALT \
  la t0, begin_signature; la t1, end_signature; li t2, 0x10000000; \
91: bgeu t0, t1, 94f; lwu t3, 0(t0); li t4, 28; \
92: srl t5, t3, t4; andi t5, t5, 15; addi t5, t5, 48; li t6, 58; blt t5, t6, 93f; addi t5, t5, 39; \
93: sb t5, 0(t2); addi t4, t4, -4; bgez t4, 92b; li t5, 10; sb t5, 0(t2); addi t0, t0, 4; j 91b; \
94: li t0, 0x100000; li t1, 0x5555; sw t1, 0(t0); \
95: j 95b;

#define RVMODEL_BOOT
#define RVMODEL_DATA_BEGIN RVMODEL_DATA_SECTION .align 4; .global begin_signature; begin_signature:
#define RVMODEL_DATA_END .align 4; .global end_signature; end_signature:

#define RVMODEL_IO_INIT
#define RVMODEL_IO_WRITE_STR(_R, _STR)
#define RVMODEL_IO_CHECK()
#define RVMODEL_IO_ASSERT_GPR_EQ(_S, _R, _I)
#define RVMODEL_IO_ASSERT_SFPR_EQ(_F, _R, _I)
#define RVMODEL_IO_ASSERT_DFPR_EQ(_D, _R, _I)

// The virt board's CLINT (msip of hart 0).
#define RVMODEL_SET_MSW_INT li t1, 1; li t2, 0x2000000; sw t1, 0(t2);
#define RVMODEL_CLEAR_MSW_INT li t2, 0x2000000; sw x0, 0(t2);
#define RVMODEL_CLEAR_MTIMER_INT
#define RVMODEL_CLEAR_MEXT_INT

#endif
