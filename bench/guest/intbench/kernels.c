#include "kernels.h"

/* Deterministic input: xorshift32, one stream per kernel round. */
static uint32_t xorshift32(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

static uint32_t mix(uint32_t hash, uint32_t value)
{
    hash ^= value;
    hash *= 0x9e3779b1u;
    return (hash << 13) | (hash >> 19);
}

/* ---- sorting ------------------------------------------------------------- */

#define SORT_N 4096
static uint32_t sort_data[SORT_N];
static uint32_t sort_tmp[SORT_N];

static void fill_random(uint32_t *a, unsigned n, uint32_t seed)
{
    uint32_t s = seed | 1;
    for (unsigned i = 0; i < n; i++) a[i] = xorshift32(&s);
}

/* Sortedness check folded into the result, so a wrong sort changes the checksum. */
static uint32_t digest_sorted(const uint32_t *a, unsigned n)
{
    uint32_t h = 0, inversions = 0;
    for (unsigned i = 0; i < n; i++) {
        if (i > 0 && a[i - 1] > a[i]) inversions++;
        if ((i & 255) == 0) h = mix(h, a[i]);
    }
    return mix(h, inversions);
}

static void quicksort(uint32_t *a, int lo, int hi)
{
    while (lo < hi) {
        uint32_t pivot = a[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) {
                uint32_t t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        }
        /* Recurse into the smaller side to bound the stack depth. */
        if (j - lo < hi - i) {
            quicksort(a, lo, j);
            lo = i;
        } else {
            quicksort(a, i, hi);
            hi = j;
        }
    }
}

uint32_t kernel_quicksort(unsigned rounds)
{
    uint32_t h = 0;
    for (unsigned r = 0; r < rounds; r++) {
        fill_random(sort_data, SORT_N, 0x12345u + r);
        quicksort(sort_data, 0, SORT_N - 1);
        h = mix(h, digest_sorted(sort_data, SORT_N));
    }
    return h;
}

uint32_t kernel_mergesort(unsigned rounds)
{
    uint32_t h = 0;
    for (unsigned r = 0; r < rounds; r++) {
        fill_random(sort_data, SORT_N, 0xabcdefu + r);
        uint32_t *src = sort_data, *dst = sort_tmp;
        for (unsigned width = 1; width < SORT_N; width *= 2) {
            for (unsigned lo = 0; lo < SORT_N; lo += 2 * width) {
                unsigned mid = lo + width < SORT_N ? lo + width : SORT_N;
                unsigned hi = lo + 2 * width < SORT_N ? lo + 2 * width : SORT_N;
                unsigned i = lo, j = mid, k = lo;
                while (i < mid && j < hi) dst[k++] = src[i] <= src[j] ? src[i++] : src[j++];
                while (i < mid) dst[k++] = src[i++];
                while (j < hi) dst[k++] = src[j++];
            }
            uint32_t *t = src;
            src = dst;
            dst = t;
        }
        h = mix(h, digest_sorted(src, SORT_N));
    }
    return h;
}

/* ---- CRC-32 -------------------------------------------------------------- */

#define CRC_BUF_BYTES 16384
static uint8_t crc_buf[CRC_BUF_BYTES];
static uint32_t crc_table[256];

static uint32_t crc32_bitwise(const uint8_t *p, unsigned n)
{
    uint32_t crc = 0xffffffffu;
    for (unsigned i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

static uint32_t crc32_table_driven(const uint8_t *p, unsigned n)
{
    uint32_t crc = 0xffffffffu;
    for (unsigned i = 0; i < n; i++) crc = (crc >> 8) ^ crc_table[(crc ^ p[i]) & 0xff];
    return ~crc;
}

uint32_t kernel_crc32(unsigned rounds)
{
    static const uint8_t check[9] = { '1', '2', '3', '4', '5', '6', '7', '8', '9' };
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int b = 0; b < 8; b++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
        crc_table[i] = c;
    }
    if (crc32_bitwise(check, 9) != CRC32_CHECK_VALUE || crc32_table_driven(check, 9) != CRC32_CHECK_VALUE) {
        return 0;
    }
    uint32_t h = 0;
    for (unsigned r = 0; r < rounds; r++) {
        uint32_t s = 0x5eed0000u + r;
        for (unsigned i = 0; i < CRC_BUF_BYTES; i++) crc_buf[i] = (uint8_t)xorshift32(&s);
        uint32_t table = crc32_table_driven(crc_buf, CRC_BUF_BYTES);
        uint32_t bitwise = crc32_bitwise(crc_buf, CRC_BUF_BYTES / 4);
        h = mix(mix(h, table), bitwise);
    }
    return h;
}

/* ---- integer matrix multiply -------------------------------------------- */

#define MAT_N 48
static uint32_t mat_a[MAT_N][MAT_N], mat_b[MAT_N][MAT_N], mat_c[MAT_N][MAT_N];

uint32_t kernel_matmul(unsigned rounds)
{
    uint32_t h = 0;
    for (unsigned r = 0; r < rounds; r++) {
        uint32_t s = 0x4d415400u + r;
        for (int i = 0; i < MAT_N; i++) {
            for (int j = 0; j < MAT_N; j++) {
                mat_a[i][j] = xorshift32(&s) & 0xffff;
                mat_b[i][j] = xorshift32(&s) & 0xffff;
            }
        }
        for (int i = 0; i < MAT_N; i++) {
            for (int j = 0; j < MAT_N; j++) {
                uint32_t sum = 0;
                for (int k = 0; k < MAT_N; k++) sum += mat_a[i][k] * mat_b[k][j];
                mat_c[i][j] = sum;
            }
        }
        for (int i = 0; i < MAT_N; i++) h = mix(h, mat_c[i][(i * 7) % MAT_N]);
    }
    return h;
}

/* ---- linked list --------------------------------------------------------- */

#define LIST_NODES 8192
struct node {
    struct node *next;
    uint32_t value;
};
static struct node node_pool[LIST_NODES];

uint32_t kernel_linked_list(unsigned rounds)
{
    uint32_t h = 0;
    for (unsigned r = 0; r < rounds; r++) {
        /* Link the pool in a shuffled order so traversal is not sequential. */
        uint32_t s = 0x115700u + r;
        struct node *head = 0;
        for (unsigned i = 0; i < LIST_NODES; i++) {
            unsigned slot = (i * 2654435761u) % LIST_NODES;  /* odd multiplier: a permutation */
            struct node *n = &node_pool[slot];
            n->value = xorshift32(&s);
            n->next = head;
            head = n;
        }
        uint32_t sum = 0, count = 0;
        for (struct node *n = head; n; n = n->next) {
            sum += n->value ^ count;
            count++;
        }
        struct node *reversed = 0;
        while (head) {
            struct node *next = head->next;
            head->next = reversed;
            reversed = head;
            head = next;
        }
        uint32_t weighted = 0;
        count = 0;
        for (struct node *n = reversed; n; n = n->next) weighted += n->value * ++count;
        h = mix(mix(mix(h, sum), weighted), count);
    }
    return h;
}

/* ---- open-addressing hash table ----------------------------------------- */

#define HASH_SLOTS 16384
#define HASH_KEYS 8192
static uint32_t hash_keys[HASH_SLOTS];
static uint32_t hash_values[HASH_SLOTS];

static uint32_t hash_u32(uint32_t k)
{
    k ^= k >> 16;
    k *= 0x7feb352du;
    k ^= k >> 15;
    k *= 0x846ca68bu;
    return k ^ (k >> 16);
}

/* Key 0 marks an empty slot, so keys are forced nonzero. */
static void hash_put(uint32_t key, uint32_t value)
{
    uint32_t i = hash_u32(key) & (HASH_SLOTS - 1);
    while (hash_keys[i] != 0 && hash_keys[i] != key) i = (i + 1) & (HASH_SLOTS - 1);
    hash_keys[i] = key;
    hash_values[i] = value;
}

static int hash_get(uint32_t key, uint32_t *value)
{
    uint32_t i = hash_u32(key) & (HASH_SLOTS - 1);
    while (hash_keys[i] != 0) {
        if (hash_keys[i] == key) {
            *value = hash_values[i];
            return 1;
        }
        i = (i + 1) & (HASH_SLOTS - 1);
    }
    return 0;
}

uint32_t kernel_hash_table(unsigned rounds)
{
    uint32_t h = 0;
    for (unsigned r = 0; r < rounds; r++) {
        for (unsigned i = 0; i < HASH_SLOTS; i++) hash_keys[i] = 0;
        uint32_t s = 0x4a5400u + r;
        for (unsigned i = 0; i < HASH_KEYS; i++) hash_put((xorshift32(&s) & 0xfffff) | 1, i);
        uint32_t hits = 0, acc = 0;
        s = 0x4a5400u + r;
        for (unsigned i = 0; i < 2 * HASH_KEYS; i++) {
            uint32_t v;
            uint32_t key = (i & 1) ? (xorshift32(&s) & 0xfffff) | 1 : (i * 40503u) | 1;
            if (hash_get(key, &v)) {
                hits++;
                acc += v;
            }
        }
        h = mix(mix(h, hits), acc);
    }
    return h;
}
