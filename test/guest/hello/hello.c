/* First light: UART output, a few CSRs, a computed value, clean exit (status 0). */
#include "guest.h"

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s) {
        h ^= (uint8_t)*s++;
        h *= 16777619u;
    }
    return h;
}

int main(void)
{
    static const char greeting[] = "Hello from wkvm bare metal!\n";
    uart_puts(greeting);

    uint64_t sum = 0;
    for (uint64_t i = 1; i <= 1000; i++) sum += i * i;

    guest_printf("fnv1a(greeting)=0x%08x\n", fnv1a(greeting));
    guest_printf("sum of squares 1..1000=%lu\n", sum);
    guest_printf("mhartid=%lu\n", csr_read(mhartid));
    guest_printf("misa=0x%016lx\n", csr_read(misa));
    uart_puts("hello: done\n");
    return 0;
}
