/* Shared helpers for wkvm's bare-metal guest programs (QEMU virt board, -bios none). */
#ifndef WKVM_GUEST_H
#define WKVM_GUEST_H

#include <stdarg.h>
#include <stdint.h>

#define UART0_BASE          0x10000000UL
#define UART_THR            0
#define UART_LSR            5
#define UART_LSR_THRE       0x20

#define SIFIVE_TEST_BASE    0x100000UL
#define SIFIVE_TEST_PASS    0x5555u
#define SIFIVE_TEST_FAIL    0x3333u
#define SIFIVE_TEST_RESET   0x7777u

#define CLINT_BASE          0x2000000UL
#define CLINT_MSIP(h)       (CLINT_BASE + 4UL * (h))
#define CLINT_MTIMECMP(h)   (CLINT_BASE + 0x4000UL + 8UL * (h))
#define CLINT_MTIME         (CLINT_BASE + 0xbff8UL)

/* Exit status used when a trap arrives that no test asked for. */
#define EXIT_UNEXPECTED_TRAP 99

#define csr_read(csr) ({ uint64_t v_; __asm__ volatile("csrr %0, " #csr : "=r"(v_) :: "memory"); v_; })
#define csr_write(csr, val) __asm__ volatile("csrw " #csr ", %0" :: "rK"((uint64_t)(val)) : "memory")
#define csr_set(csr, bits) __asm__ volatile("csrs " #csr ", %0" :: "rK"((uint64_t)(bits)) : "memory")
#define csr_clear(csr, bits) __asm__ volatile("csrc " #csr ", %0" :: "rK"((uint64_t)(bits)) : "memory")
#define csr_swap(csr, val) ({ uint64_t v_; __asm__ volatile("csrrw %0, " #csr ", %1" : "=r"(v_) : "rK"((uint64_t)(val)) : "memory"); v_; })

static inline uint32_t mmio_read32(uintptr_t addr) { return *(volatile uint32_t *)addr; }
static inline void mmio_write32(uintptr_t addr, uint32_t v) { *(volatile uint32_t *)addr = v; }
static inline uint64_t mmio_read64(uintptr_t addr) { return *(volatile uint64_t *)addr; }
static inline void mmio_write64(uintptr_t addr, uint64_t v) { *(volatile uint64_t *)addr = v; }

void uart_putc(char c);
void uart_puts(const char *s);
void guest_printf(const char *fmt, ...);
void guest_vprintf(const char *fmt, va_list ap);

/* Stops the machine through the SiFive test finisher: 0 = pass, else failure status. */
__attribute__((noreturn)) void guest_exit(unsigned status);
__attribute__((noreturn)) void guest_reset(void);

/* Stops the machine through HTIF tohost: 0 = pass, else failure status. */
__attribute__((noreturn)) void htif_exit(unsigned status);

#endif
