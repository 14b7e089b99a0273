/* Hart discovery from the flattened device tree QEMU hands every hart in a1. */
#ifndef SMP_LITMUS_FDT_CPUS_H
#define SMP_LITMUS_FDT_CPUS_H

#include <stdint.h>

struct fdt_cpus {
    unsigned cpu_count;     /* cpu@N children of /cpus, minus those with status "disabled" */
    uint32_t timebase_hz;   /* /cpus timebase-frequency (0 when absent) */
};

/* Why a blob was not used; FDT_OK when *out is filled in. */
enum fdt_result {
    FDT_OK = 0,
    FDT_NOT_IN_RAM,
    FDT_BAD_MAGIC,
    FDT_BAD_HEADER,
    FDT_BAD_STRUCTURE,
    FDT_NO_CPUS,
};

enum fdt_result fdt_read_cpus(uintptr_t dtb, struct fdt_cpus *out);
const char *fdt_result_name(enum fdt_result result);

#endif
