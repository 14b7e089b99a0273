// randio: random-offset O_DIRECT reads or writes on a block device, one request at a time, timed with
// the guest's monotonic clock. The disk benchmark runs it in the Linux guest (busybox has no tool that
// seeks per request inside one process). Freestanding: raw Linux syscalls, no libc, so the static ELF
// is a few KiB.
//
//   randio DEVICE read|write BLOCK COUNT START SPAN SEED
//
// Offsets are START + k·BLOCK with k pseudo-random in [0, SPAN/BLOCK) (xorshift64 from SEED). Writes
// store 0xA5 bytes. Reads clear the first and last 8 bytes of the buffer before each request and fold
// them afterwards into a byte-wise OR and AND, so a caller that knows the range holds only 0xA5 can tell
// that every request transferred data, without a per-byte loop that would cost more guest instructions
// than the request itself (the benchmark checks every byte separately with md5). Prints one line:
//   randio: op=read block=4096 count=4096 ns=123456789 or=a5 and=a5
typedef unsigned long u64;
typedef long i64;

enum { SYS_openat = 56, SYS_close = 57, SYS_write = 64, SYS_pread64 = 67, SYS_pwrite64 = 68, SYS_exit_group = 94,
  SYS_clock_gettime = 113 };
enum { AT_FDCWD = -100, O_RDONLY = 0, O_RDWR = 2, O_DIRECT = 040000, CLOCK_MONOTONIC = 1 };
enum { MAX_BLOCK = 1 << 20 };

static i64 syscall6(i64 n, i64 a, i64 b, i64 c, i64 d, i64 e, i64 f) {
  register i64 a0 __asm__("a0") = a;
  register i64 a1 __asm__("a1") = b;
  register i64 a2 __asm__("a2") = c;
  register i64 a3 __asm__("a3") = d;
  register i64 a4 __asm__("a4") = e;
  register i64 a5 __asm__("a5") = f;
  register i64 a7 __asm__("a7") = n;
  __asm__ volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a3), "r"(a4), "r"(a5), "r"(a7) : "memory");
  return a0;
}

static unsigned char buffer[MAX_BLOCK] __attribute__((aligned(4096)));
static char line[256];
static int at;

static void put(const char *s) { while (*s && at < (int)sizeof line - 1) line[at++] = *s++; }
static void putNumber(u64 v, int base) {
  char digits[24];
  int n = 0;
  do { digits[n++] = "0123456789abcdef"[v % base]; v /= base; } while (v);
  if (base == 16 && n < 2) digits[n++] = '0';
  while (n && at < (int)sizeof line - 1) line[at++] = digits[--n];
}
static void flush(void) { syscall6(SYS_write, 1, (i64)line, at, 0, 0, 0); at = 0; }
static void fail(const char *what, i64 err) {
  put("randio: error: "); put(what); put(" (errno "); putNumber((u64)-err, 10); put(")\n"); flush();
  syscall6(SYS_exit_group, 1, 0, 0, 0, 0, 0);
}
static u64 parse(const char *s) { u64 v = 0; while (*s >= '0' && *s <= '9') v = v * 10 + (u64)(*s++ - '0'); return v; }
static u64 nowNs(void) {
  i64 ts[2];
  syscall6(SYS_clock_gettime, CLOCK_MONOTONIC, (i64)ts, 0, 0, 0, 0);
  return (u64)ts[0] * 1000000000ul + (u64)ts[1];
}

static int run(int argc, char **argv) {
  if (argc != 8) {
    put("usage: randio DEVICE read|write BLOCK COUNT START SPAN SEED\n"); flush();
    return 2;
  }
  const int writing = argv[2][0] == 'w';
  const u64 block = parse(argv[3]), count = parse(argv[4]), start = parse(argv[5]), span = parse(argv[6]);
  u64 state = parse(argv[7]) | 1;
  if (block == 0 || block > MAX_BLOCK || block % 512 != 0 || span < block) { put("randio: bad block or span\n"); flush(); return 2; }
  const i64 fd = syscall6(SYS_openat, AT_FDCWD, (i64)argv[1], (writing ? O_RDWR : O_RDONLY) | O_DIRECT, 0, 0, 0);
  if (fd < 0) fail("open", fd);
  unsigned char or = 0, and = 0xff;
  for (u64 i = 0; i < block; i++) buffer[i] = 0xa5;
  const u64 blocks = span / block;
  const u64 t0 = nowNs();
  for (u64 i = 0; i < count; i++) {
    state ^= state << 13; state ^= state >> 7; state ^= state << 17;
    const u64 offset = start + (state % blocks) * block;
    u64 *const first = (u64 *)buffer, *const last = (u64 *)(buffer + block - 8);
    if (!writing) { *first = 0; *last = 0; }
    const i64 done = syscall6(writing ? SYS_pwrite64 : SYS_pread64, fd, (i64)buffer, (i64)block, (i64)offset, 0, 0);
    if (done != (i64)block) fail(writing ? "pwrite" : "pread", done < 0 ? done : -5);
    if (!writing) {
      const u64 words[2] = { *(volatile u64 *)first, *(volatile u64 *)last };
      for (int w = 0; w < 2; w++) for (int b = 0; b < 8; b++) { or |= (unsigned char)(words[w] >> (8 * b)); and &= (unsigned char)(words[w] >> (8 * b)); }
    }
  }
  const u64 ns = nowNs() - t0;
  syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
  put("randio: op="); put(writing ? "write" : "read"); put(" block="); putNumber(block, 10); put(" count="); putNumber(count, 10);
  put(" ns="); putNumber(ns, 10);
  if (!writing) { put(" or="); putNumber(or, 16); put(" and="); putNumber(and, 16); }
  put("\n"); flush();
  return 0;
}

// The kernel starts us with argc at sp, then argv.
__attribute__((used)) void startC(u64 *sp) {
  syscall6(SYS_exit_group, run((int)sp[0], (char **)(sp + 1)), 0, 0, 0, 0, 0);
}

__asm__(".globl _start\n_start:\n  mv a0, sp\n  andi sp, sp, -16\n  call startC\n");
