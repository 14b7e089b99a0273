/* intbench: CPU-bound integer workload for comparing wkvm against QEMU. Prints the
   instructions each kernel retired (minstret; on QEMU this counts instructions
   only with -icount shift=0, otherwise it follows host time) and a checksum of all
   results, which must equal EXPECTED_CHECKSUM. Exit status 0 = ok, 1 = mismatch. */
#include "guest.h"
#include "kernels.h"
#include "rounds.h"

/* Computed once (the native build in Makefile's `host-check` agrees). */
#define EXPECTED_CHECKSUM 0x2263cca8u

struct kernel {
    const char *name;
    uint32_t (*run)(unsigned rounds);
    unsigned rounds;
};

static const struct kernel kernels[] = {
    { "quicksort", kernel_quicksort, QUICKSORT_ROUNDS },
    { "mergesort", kernel_mergesort, MERGESORT_ROUNDS },
    { "crc32", kernel_crc32, CRC32_ROUNDS },
    { "matmul", kernel_matmul, MATMUL_ROUNDS },
    { "linked-list", kernel_linked_list, LINKED_LIST_ROUNDS },
    { "hash-table", kernel_hash_table, HASH_TABLE_ROUNDS },
};

static uint32_t combine(uint32_t checksum, uint32_t result)
{
    checksum = (checksum ^ result) * 0x01000193u;
    return checksum ^ (checksum >> 15);
}

int main(void)
{
    uint32_t checksum = 0x811c9dc5u;
    uint64_t total_start = csr_read(minstret);
    for (unsigned i = 0; i < sizeof kernels / sizeof kernels[0]; i++) {
        uint64_t start = csr_read(minstret);
        uint32_t result = kernels[i].run(kernels[i].rounds);
        uint64_t insns = csr_read(minstret) - start;
        guest_printf("intbench: %s rounds=%u result=0x%08x insns=%lu\n", kernels[i].name, kernels[i].rounds,
                     result, insns);
        checksum = combine(checksum, result);
    }
    uint64_t total = csr_read(minstret) - total_start;
    int ok = checksum == EXPECTED_CHECKSUM;
    guest_printf("intbench: checksum=0x%08x insns=%lu %s\n", checksum, total, ok ? "ok" : "FAIL");
    return ok ? 0 : 1;
}
