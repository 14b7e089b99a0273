/* Polled output on the virt board's 16550 UART0: wait for THRE like a real driver
   (a VMM may model a transmitter that is not always ready). */
#include "guest.h"

void uart_putc(char c)
{
    volatile uint8_t *uart = (volatile uint8_t *)UART0_BASE;
    while ((uart[UART_LSR] & UART_LSR_THRE) == 0) {
    }
    uart[UART_THR] = (uint8_t)c;
}

void uart_puts(const char *s)
{
    while (*s) uart_putc(*s++);
}
