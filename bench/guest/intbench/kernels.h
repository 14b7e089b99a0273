/* CPU-bound integer kernels for intbench. Plain C on fixed-width integers only, so
   the same file also builds natively to cross-check the expected checksum. */
#ifndef INTBENCH_KERNELS_H
#define INTBENCH_KERNELS_H

#include <stdint.h>

uint32_t kernel_quicksort(unsigned rounds);
uint32_t kernel_mergesort(unsigned rounds);
uint32_t kernel_crc32(unsigned rounds);
uint32_t kernel_matmul(unsigned rounds);
uint32_t kernel_linked_list(unsigned rounds);
uint32_t kernel_hash_table(unsigned rounds);

/* CRC-32 (IEEE) of "123456789" must be 0xcbf43926; kernel_crc32 returns 0 otherwise. */
#define CRC32_CHECK_VALUE 0xcbf43926u

#endif
