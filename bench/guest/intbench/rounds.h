/* Work per kernel, tuned so the whole run retires about 300 M instructions on
   rv64imac (-O2). Changing any number changes EXPECTED_CHECKSUM. */
#ifndef INTBENCH_ROUNDS_H
#define INTBENCH_ROUNDS_H

#define QUICKSORT_ROUNDS 80
#define MERGESORT_ROUNDS 50
#define CRC32_ROUNDS 78
#define MATMUL_ROUNDS 60
#define LINKED_LIST_ROUNDS 180
#define HASH_TABLE_ROUNDS 48

#endif
