/* Native build of the intbench kernels: prints the checksum the guest must produce,
   as an independent check of EXPECTED_CHECKSUM. Build with `make host-check`. */
#include <stdio.h>
#include "kernels.h"
#include "rounds.h"

int main(void)
{
    const struct { const char *name; uint32_t (*run)(unsigned); unsigned rounds; } kernels[] = {
        { "quicksort", kernel_quicksort, QUICKSORT_ROUNDS },
        { "mergesort", kernel_mergesort, MERGESORT_ROUNDS },
        { "crc32", kernel_crc32, CRC32_ROUNDS },
        { "matmul", kernel_matmul, MATMUL_ROUNDS },
        { "linked-list", kernel_linked_list, LINKED_LIST_ROUNDS },
        { "hash-table", kernel_hash_table, HASH_TABLE_ROUNDS },
    };
    uint32_t checksum = 0x811c9dc5u;
    for (unsigned i = 0; i < sizeof kernels / sizeof kernels[0]; i++) {
        uint32_t result = kernels[i].run(kernels[i].rounds);
        printf("host: %s result=0x%08x\n", kernels[i].name, result);
        checksum = (checksum ^ result) * 0x01000193u;
        checksum ^= checksum >> 15;
    }
    printf("host: checksum=0x%08x\n", checksum);
    return 0;
}
