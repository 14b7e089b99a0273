/* Failure reports: any hart may fail the run; output from several harts at once
   is serialised by a lock so the FAIL line stays readable. */
#ifndef SMP_LITMUS_REPORT_H
#define SMP_LITMUS_REPORT_H

#include <stdint.h>

/* Exit statuses, so the finisher's code alone says which part failed. */
enum litmus_exit {
    EXIT_HART_DISCOVERY = 1,
    EXIT_AMOADD = 2,
    EXIT_LRSC = 3,
    EXIT_SPINLOCK = 4,
    EXIT_MESSAGE_PASSING = 5,
    EXIT_TIMEOUT = 6,
    EXIT_TRAP = 99,
};

/* Prints "smp-litmus: FAIL <message>" and stops the machine with the given status. */
__attribute__((noreturn, format(printf, 2, 3))) void litmus_fail(enum litmus_exit status, const char *fmt, ...);

#endif
