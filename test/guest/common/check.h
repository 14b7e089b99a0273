/* Numbered checks for the ISA tests: each failure prints what was expected and
   exits with the check's number, so the exit status alone names the broken check. */
#ifndef WKVM_CHECK_H
#define WKVM_CHECK_H

#include "guest.h"

void check_begin(const char *program);
void check_eq(unsigned id, const char *what, uint64_t got, uint64_t want);
void check_true(unsigned id, const char *what, int ok, uint64_t detail);
/* Prints the PASS line and returns 0 for main to return. */
int check_done(void);

#endif
