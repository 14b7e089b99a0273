#include "check.h"

static const char *program_name = "?";
static unsigned checks_passed;

void check_begin(const char *program)
{
    program_name = program;
    checks_passed = 0;
    guest_printf("%s: start\n", program);
}

void check_eq(unsigned id, const char *what, uint64_t got, uint64_t want)
{
    if (got == want) {
        checks_passed++;
        guest_printf("  ok %u %s\n", id, what);
        return;
    }
    guest_printf("  FAIL %u %s: got 0x%lx want 0x%lx\n", id, what, got, want);
    guest_printf("%s: FAIL check %u\n", program_name, id);
    guest_exit(id);
}

void check_true(unsigned id, const char *what, int ok, uint64_t detail)
{
    if (ok) {
        checks_passed++;
        guest_printf("  ok %u %s\n", id, what);
        return;
    }
    guest_printf("  FAIL %u %s (detail 0x%lx)\n", id, what, detail);
    guest_printf("%s: FAIL check %u\n", program_name, id);
    guest_exit(id);
}

int check_done(void)
{
    guest_printf("%s: PASS (%u checks)\n", program_name, checks_passed);
    return 0;
}
