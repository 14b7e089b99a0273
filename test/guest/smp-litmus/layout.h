/* Sizes shared by crt0.S, link.ld (which repeats them: keep both in step) and C. */
#ifndef SMP_LITMUS_LAYOUT_H
#define SMP_LITMUS_LAYOUT_H

#define SMP_MAX_HARTS           8
#define HART_STACK_SIZE         16384
#define HART_TRAP_STACK_SIZE    4096

#endif
