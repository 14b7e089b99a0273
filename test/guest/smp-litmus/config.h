/* Compile-time knobs (override with EXTRA_CFLAGS=-DLITMUS_ITERATIONS=... etc.). */
#ifndef SMP_LITMUS_CONFIG_H
#define SMP_LITMUS_CONFIG_H

/* Increments per hart in each of the amoadd, LR/SC and spinlock phases. */
#ifndef LITMUS_ITERATIONS
#define LITMUS_ITERATIONS 1000000u
#endif

/* Producer/consumer rounds in the message-passing phase. */
#ifndef LITMUS_MP_ROUNDS
#define LITMUS_MP_ROUNDS 10000u
#endif

/* Words of payload per message: two cache lines, so a reordering host has room to show it. */
#ifndef LITMUS_MP_PAYLOAD_WORDS
#define LITMUS_MP_PAYLOAD_WORDS 16u
#endif

/* Longest any hart waits for another (arrival, barrier, message, acknowledgement). */
#ifndef LITMUS_WAIT_SECONDS
#define LITMUS_WAIT_SECONDS 60u
#endif

/* Without a usable DTB, hart 0 counts arrivals until none has come for this long. */
#ifndef LITMUS_ARRIVAL_QUIET_MS
#define LITMUS_ARRIVAL_QUIET_MS 200u
#endif

/* mtime rate assumed when the DTB gives none (QEMU virt's 10 MHz). */
#define LITMUS_DEFAULT_TIMEBASE_HZ 10000000u

#endif
