/* Exits through the SiFive test finisher with status 3 (0x3333 | 3 << 16). */
#include "guest.h"

int main(void)
{
    uart_puts("exit-code: exiting with status 3\n");
    guest_exit(3);
}
