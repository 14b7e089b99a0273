/* The synchronisation primitives the litmus workloads are made of, spelled out in
   RISC-V instructions so the test exercises exactly the instructions it names
   (no compiler builtins that might pick other sequences). */
#ifndef SMP_LITMUS_SYNC_H
#define SMP_LITMUS_SYNC_H

#include <stdint.h>

/* Shared variables get a 64-byte line each, so unrelated counters never share one. */
#define CACHE_LINE 64
#define SHARED __attribute__((aligned(CACHE_LINE)))

static inline void cpu_pause(void)
{
    /* Zihintpause's pause is fence w,0: harmless as a fence where the hint is unknown. */
    __asm__ volatile(".4byte 0x0100000f" ::: "memory");
}

static inline void fence_rw_rw(void) { __asm__ volatile("fence rw, rw" ::: "memory"); }
static inline void fence_w_w(void)   { __asm__ volatile("fence w, w" ::: "memory"); }
static inline void fence_r_r(void)   { __asm__ volatile("fence r, r" ::: "memory"); }
static inline void fence_r_rw(void)  { __asm__ volatile("fence r, rw" ::: "memory"); }
static inline void fence_rw_w(void)  { __asm__ volatile("fence rw, w" ::: "memory"); }

static inline uint64_t amoadd_d(volatile uint64_t *p, uint64_t v)
{
    uint64_t old;
    __asm__ volatile("amoadd.d %0, %2, (%1)" : "=r"(old) : "r"(p), "r"(v) : "memory");
    return old;
}

/* Adds without wanting the old value: rd = x0, the plain counter form. */
static inline void amoadd_d_discard(volatile uint64_t *p, uint64_t v)
{
    __asm__ volatile("amoadd.d zero, %1, (%0)" :: "r"(p), "r"(v) : "memory");
}

static inline uint32_t amoadd_w_aqrl(volatile uint32_t *p, uint32_t v)
{
    uint32_t old;
    __asm__ volatile("amoadd.w.aqrl %0, %2, (%1)" : "=r"(old) : "r"(p), "r"(v) : "memory");
    return old;
}

/* Release: every earlier load and store of this hart is visible before the add. */
static inline uint32_t amoadd_w_rl(volatile uint32_t *p, uint32_t v)
{
    uint32_t old;
    __asm__ volatile("amoadd.w.rl %0, %2, (%1)" : "=r"(old) : "r"(p), "r"(v) : "memory");
    return old;
}

static inline uint32_t amoswap_w_aq(volatile uint32_t *p, uint32_t v)
{
    uint32_t old;
    __asm__ volatile("amoswap.w.aq %0, %2, (%1)" : "=r"(old) : "r"(p), "r"(v) : "memory");
    return old;
}

/* Increments *p with an LR/SC loop and returns how many times the SC failed. The
   retry path stays inside the asm so the loop is a constrained LR/SC sequence
   (base integer instructions only, well under 16), which is what guarantees
   forward progress. */
static inline uint64_t lrsc_increment(volatile uint64_t *p)
{
    uint64_t value, failed, retries = 0;
    __asm__ volatile(
        "1: lr.d    %0, (%3)\n"
        "   addi    %0, %0, 1\n"
        "   sc.d    %1, %0, (%3)\n"
        "   beqz    %1, 2f\n"
        "   addi    %2, %2, 1\n"
        "   j       1b\n"
        "2:\n"
        : "=&r"(value), "=&r"(failed), "+r"(retries)
        : "r"(p)
        : "memory");
    return retries;
}

#endif
