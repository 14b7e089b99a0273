/* Counts the harts in /cpus of a flattened device tree (devicetree spec v0.4, ch. 5).
   Every offset and length read from the blob is checked against its header before
   use, so a garbage a1 gives an error code, not a wild read past the blob. */
#include "fdt_cpus.h"

#define FDT_MAGIC           0xd00dfeedu
#define FDT_BEGIN_NODE      1u
#define FDT_END_NODE        2u
#define FDT_PROP            3u
#define FDT_NOP             4u
#define FDT_END             9u
#define FDT_HEADER_SIZE     40u
/* A virt DTB is a few KiB; anything this big is not what QEMU put there. */
#define FDT_MAX_SIZE        (1u << 20)

#define RAM_BASE            0x80000000UL
#define RAM_MAX_SIZE        0x80000000UL

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int str_eq(const char *a, const char *b)
{
    while (*a && *a == *b) a++, b++;
    return *a == *b;
}

static int starts_with(const char *s, const char *prefix)
{
    while (*prefix) if (*s++ != *prefix++) return 0;
    return 1;
}

/* Length of the NUL-terminated string at s within limit bytes, or -1 if unterminated. */
static long bounded_strlen(const uint8_t *s, uint32_t limit)
{
    for (uint32_t i = 0; i < limit; i++) if (s[i] == 0) return (long)i;
    return -1;
}

static uint32_t align4(uint32_t n) { return (n + 3u) & ~3u; }

enum fdt_result fdt_read_cpus(uintptr_t dtb, struct fdt_cpus *out)
{
    if (dtb < RAM_BASE || dtb >= RAM_BASE + RAM_MAX_SIZE || (dtb & 3) != 0) return FDT_NOT_IN_RAM;
    const uint8_t *blob = (const uint8_t *)dtb;
    if (be32(blob) != FDT_MAGIC) return FDT_BAD_MAGIC;

    uint32_t total_size = be32(blob + 4);
    uint32_t struct_off = be32(blob + 8), strings_off = be32(blob + 12);
    uint32_t strings_size = be32(blob + 32), struct_size = be32(blob + 36);
    if (total_size < FDT_HEADER_SIZE || total_size > FDT_MAX_SIZE
        || struct_off > total_size || struct_size > total_size - struct_off
        || strings_off > total_size || strings_size > total_size - strings_off
        || (struct_off & 3) != 0)
        return FDT_BAD_HEADER;

    const uint8_t *strings = blob + strings_off;
    uint32_t pos = struct_off, end = struct_off + struct_size;
    unsigned depth = 0, cpus_depth = 0, found_cpus = 0;
    int in_cpu_node = 0, cpu_disabled = 0;
    out->cpu_count = 0;
    out->timebase_hz = 0;

    for (;;) {
        if (end - pos < 4) return FDT_BAD_STRUCTURE;
        uint32_t token = be32(blob + pos);
        pos += 4;
        if (token == FDT_BEGIN_NODE) {
            const char *name = (const char *)(blob + pos);
            long len = bounded_strlen(blob + pos, end - pos);
            if (len < 0) return FDT_BAD_STRUCTURE;
            pos += align4((uint32_t)len + 1);
            if (pos > end) return FDT_BAD_STRUCTURE;
            depth++;
            if (depth == 2 && str_eq(name, "cpus")) {
                cpus_depth = depth;
                found_cpus = 1;
            } else if (cpus_depth != 0 && depth == cpus_depth + 1 && starts_with(name, "cpu@")) {
                in_cpu_node = 1;
                cpu_disabled = 0;
            }
        } else if (token == FDT_END_NODE) {
            if (depth == 0) return FDT_BAD_STRUCTURE;
            if (in_cpu_node && depth == cpus_depth + 1) {
                if (!cpu_disabled) out->cpu_count++;
                in_cpu_node = 0;
            }
            if (depth == cpus_depth) cpus_depth = 0;
            depth--;
        } else if (token == FDT_PROP) {
            if (end - pos < 8) return FDT_BAD_STRUCTURE;
            uint32_t len = be32(blob + pos), name_off = be32(blob + pos + 4);
            pos += 8;
            if (len > end - pos || name_off >= strings_size) return FDT_BAD_STRUCTURE;
            const uint8_t *value = blob + pos;
            pos += align4(len);
            if (pos > end) return FDT_BAD_STRUCTURE;
            if (bounded_strlen(strings + name_off, strings_size - name_off) < 0) return FDT_BAD_STRUCTURE;
            const char *prop = (const char *)(strings + name_off);
            if (cpus_depth != 0 && depth == cpus_depth && len == 4 && str_eq(prop, "timebase-frequency"))
                out->timebase_hz = be32(value);
            if (in_cpu_node && depth == cpus_depth + 1 && str_eq(prop, "status")
                && len >= 9 && starts_with((const char *)value, "disabled"))
                cpu_disabled = 1;
        } else if (token == FDT_NOP) {
            continue;
        } else if (token == FDT_END) {
            break;
        } else {
            return FDT_BAD_STRUCTURE;
        }
    }
    if (!found_cpus || out->cpu_count == 0) return FDT_NO_CPUS;
    return FDT_OK;
}

const char *fdt_result_name(enum fdt_result result)
{
    switch (result) {
    case FDT_OK: return "ok";
    case FDT_NOT_IN_RAM: return "a1 does not point into RAM";
    case FDT_BAD_MAGIC: return "no FDT magic at a1";
    case FDT_BAD_HEADER: return "FDT header out of bounds";
    case FDT_BAD_STRUCTURE: return "FDT structure block malformed";
    case FDT_NO_CPUS: return "no cpu@ nodes under /cpus";
    }
    return "?";
}
