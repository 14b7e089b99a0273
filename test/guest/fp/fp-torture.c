// Bare-metal RISC-V F/D torture program. Runs every F and D computational instruction on a
// deterministic set of operands (special values, boundary values and LCG-generated values aimed at
// rounding, cancellation, overflow and underflow) under the five static rounding modes and the
// dynamic one, and prints one line per case over the 16550 UART:
//
//   <mnemonic> <rm> <operand>... = <result> <fflags>
//
// rm is s0..s4 for a static mode, d0..d4 for dyn with that frm value, "-" when the instruction has
// no rounding mode. Singles print 8 hex digits, doubles and integer registers 16. The output,
// captured from QEMU, is the reference that wkvm must reproduce byte for byte.

typedef unsigned long uint64_t;
typedef unsigned int uint32_t;

#define UART_THR ((volatile unsigned char *)0x10000000)
#define UART_LSR ((volatile unsigned char *)0x10000005)

static void putc_uart(char c) {
  while ((*UART_LSR & 0x20) == 0) {
  }
  *UART_THR = (unsigned char)c;
}

static void puts_uart(const char *s) {
  while (*s) putc_uart(*s++);
}

static void put_hex(uint64_t v, int digits) {
  for (int i = digits - 1; i >= 0; i--) putc_uart("0123456789abcdef"[(v >> (4 * i)) & 15]);
}

// ---- deterministic operand generation ----

static uint64_t lcg_state;

static uint64_t rnd(void) {
  lcg_state = lcg_state * 6364136223846793005UL + 1442695040888963407UL;
  uint64_t x = lcg_state;
  return (x ^ (x >> 29)) * 0xbf58476d1ce4e5b9UL >> 7 ^ (x >> 31);
}

static const uint64_t special_f64[] = {
    0x0000000000000000, 0x8000000000000000, 0x0000000000000001, 0x8000000000000001,
    0x000fffffffffffff, 0x800fffffffffffff, 0x0010000000000000, 0x8010000000000000,
    0x0010000000000001, 0x001fffffffffffff, 0x3ff0000000000000, 0xbff0000000000000,
    0x3ff8000000000000, 0xbff8000000000000, 0x7fefffffffffffff, 0xffefffffffffffff,
    0x7ff0000000000000, 0xfff0000000000000, 0x7ff8000000000000, 0xfff8000000000123,
    0x7ff0000000000001, 0xfff4000000000000, 0x4000000000000000, 0x3fe0000000000000,
    0x3fd5555555555555, 0x3ff0000000000001, 0x3fffffffffffffff, 0x7fe0000000000000,
    0x3fb999999999999a, 0x4008000000000000, 0x0018000000000000, 0x3ca0000000000000,
    // integer conversion boundaries: 2^31, 2^31-1, 2^31-0.5, -2^31, -2^31-0.5, -2^31-1, 2^32,
    // 2^32-1, 2^32-0.5, 2^63, -2^63, largest below 2^63, 2^64, largest below 2^64, ±0.5, ±1.5, ±2.5
    0x41e0000000000000, 0x41dfffffffc00000, 0x41dfffffffe00000, 0xc1e0000000000000,
    0xc1e0000000100000, 0xc1e0000000200000, 0x41f0000000000000, 0x41efffffffe00000,
    0x41efffffffff0000, 0x43e0000000000000, 0xc3e0000000000000, 0x43dfffffffffffff,
    0x43f0000000000000, 0x43efffffffffffff, 0x3fe0000000000000, 0xbfe0000000000000,
    0x3ff8000000000000, 0xbff8000000000000, 0x4004000000000000, 0xc004000000000000,
    0xbfefffffffffffff, 0xc3e0000000000001,
};
#define N_SPECIAL_F64 (sizeof(special_f64) / sizeof(special_f64[0]))

static const uint32_t special_f32[] = {
    0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007fffff, 0x807fffff, 0x00800000,
    0x80800000, 0x00800001, 0x00ffffff, 0x3f800000, 0xbf800000, 0x3fc00000, 0xbfc00000,
    0x7f7fffff, 0xff7fffff, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00123, 0x7f800001,
    0xffa00000, 0x40000000, 0x3f000000, 0x3eaaaaab, 0x3f800001, 0x3fffffff, 0x7f000000,
    0x3dcccccd, 0x40400000, 0x00c00000, 0x33800000,
    // 2^31, -2^31, largest below 2^31, 2^32, largest below 2^32, 2^63, -2^63, largest below 2^63,
    // 2^64, largest below 2^64, ±0.5, ±1.5, ±2.5, -(1-ulp), -(2^63 + ulp)
    0x4f000000, 0xcf000000, 0x4effffff, 0x4f800000, 0x4f7fffff, 0x5f000000, 0xdf000000,
    0x5effffff, 0x5f800000, 0x5f7fffff, 0x3f000000, 0xbf000000, 0x3fc00000, 0xbfc00000,
    0x40200000, 0xc0200000, 0xbf7fffff, 0xdf000001,
};
#define N_SPECIAL_F32 (sizeof(special_f32) / sizeof(special_f32[0]))

static const uint64_t special_int[] = {
    0, 1, 0xffffffffffffffff, 0x1000001, 0x20000000000001, 0x7fffffff, 0xffffffff80000000,
    0xffffffff, 0x7fffffffffffffff, 0x8000000000000000, 0x8000000000000001, 0x0123456789abcdef,
    0x1000000000000001, 0xfedcba9876543210, 0x0000000100000001, 0x80000001, 0xfffffffe00000003,
    0x7fffffc0, 0x7fffffe0, 0xffffffffffffff80,
};
#define N_SPECIAL_INT (sizeof(special_int) / sizeof(special_int[0]))

static uint64_t last_f64;
static uint32_t last_f32;

// Values concentrated where arithmetic is interesting: specials, near 1, the subnormal range,
// near overflow, sparse and dense significands, neighbours of the previous value (cancellation,
// ties), and magnitudes whose products straddle the overflow and underflow thresholds.
static uint64_t gen_f64(void) {
  uint64_t r = rnd();
  uint64_t sign = (r & 1) << 63;
  uint64_t frac = rnd() & 0x000fffffffffffffUL;
  uint64_t exp;
  uint64_t v;
  switch ((r >> 1) % 10) {
  case 0:
  case 1:
    v = special_f64[rnd() % N_SPECIAL_F64];
    break;
  case 2:
    v = rnd();
    break;
  case 3:
    exp = 1019 + rnd() % 9;
    v = sign | exp << 52 | frac;
    break;
  case 4:
    exp = rnd() % 3;
    v = sign | exp << 52 | (frac >> (rnd() % 53));
    break;
  case 5:
    exp = 2046 - rnd() % 3;
    v = sign | exp << 52 | frac;
    break;
  case 6:
    exp = 1023 - 60 + rnd() % 121;
    frac = (1UL << (rnd() % 52)) | (1UL << (rnd() % 52));
    v = sign | exp << 52 | (frac & 0x000fffffffffffffUL);
    break;
  case 7:
    exp = 1023 - 60 + rnd() % 121;
    frac = (0x000fffffffffffffUL >> (rnd() % 52)) << (rnd() % 8);
    v = sign | exp << 52 | (frac & 0x000fffffffffffffUL);
    break;
  case 8:
    v = last_f64 + (rnd() % 5) - 2;
    if (rnd() & 1) v ^= 1UL << 63;
    if (rnd() & 1) v += (rnd() % 3 - 1) << 52;
    break;
  default:
    exp = (rnd() & 1 ? 1023 + 511 : 1023 - 511) + rnd() % 5 - 2;
    v = sign | exp << 52 | frac;
    break;
  }
  last_f64 = v;
  return v;
}

static uint32_t gen_f32(void) {
  uint64_t r = rnd();
  uint32_t sign = (uint32_t)(r & 1) << 31;
  uint32_t frac = (uint32_t)rnd() & 0x7fffff;
  uint32_t exp;
  uint32_t v;
  switch ((r >> 1) % 10) {
  case 0:
  case 1:
    v = special_f32[rnd() % N_SPECIAL_F32];
    break;
  case 2:
    v = (uint32_t)rnd();
    break;
  case 3:
    exp = 123 + rnd() % 9;
    v = sign | exp << 23 | frac;
    break;
  case 4:
    exp = rnd() % 3;
    v = sign | exp << 23 | (frac >> (rnd() % 24));
    break;
  case 5:
    exp = 254 - rnd() % 3;
    v = sign | exp << 23 | frac;
    break;
  case 6:
    exp = 127 - 30 + rnd() % 61;
    frac = (1u << (rnd() % 23)) | (1u << (rnd() % 23));
    v = sign | exp << 23 | (frac & 0x7fffff);
    break;
  case 7:
    exp = 127 - 30 + rnd() % 61;
    frac = (0x7fffffu >> (rnd() % 23)) << (rnd() % 6);
    v = sign | exp << 23 | (frac & 0x7fffff);
    break;
  case 8:
    v = last_f32 + (uint32_t)(rnd() % 5) - 2;
    if (rnd() & 1) v ^= 1u << 31;
    if (rnd() & 1) v += (uint32_t)(rnd() % 3 - 1) << 23;
    break;
  default:
    exp = (rnd() & 1 ? 127 + 63 : 127 - 63) + rnd() % 5 - 2;
    v = sign | exp << 23 | frac;
    break;
  }
  last_f32 = v;
  return v;
}

// Integers for the int → float conversions; the upper half of a register is noise for the
// 32-bit sources (the instruction must ignore it).
static uint64_t gen_int(void) {
  uint64_t r = rnd();
  switch (r % 6) {
  case 0:
  case 1:
    return special_int[rnd() % N_SPECIAL_INT];
  case 2:
    return rnd();
  case 3:
    return rnd() >> (rnd() % 64);
  case 4:
    return -(rnd() >> (rnd() % 64));
  default: {
    uint64_t top = rnd() % 64;
    return (1UL << top) | (rnd() & ((1UL << top) - 1) & ~(rnd() << (rnd() % 64)));
  }
  }
}

// ---- one wrapper per instruction: operands arrive in integer registers, fflags is cleared just
// before the instruction and read just after it ----

static uint64_t g_flags;

#define CLOBBER_F "ft0", "ft1", "ft2", "ft3"
#define OUTS "=&r"(r), "=&r"(f)
#define INS "r"(a), "r"(b), "r"(c)

// rd (float) ← op(rs1, rs2) with a rounding mode
#define FF_F_ASM(MN, IN, OUT, RM)                                                                  \
  asm volatile(IN " ft0,%2\n\t" IN " ft1,%3\n\tfsflags x0\n\t" MN " ft3,ft0,ft1," RM                \
                  "\n\tfrflags %1\n\t" OUT " %0,ft3"                                               \
               : OUTS : INS : CLOBBER_F)

#define DEF_FF_F(NAME, MN, IN, OUT)                                                                \
  static uint64_t NAME(uint64_t a, uint64_t b, uint64_t c, int rm) {                               \
    uint64_t r, f;                                                                                 \
    (void)c;                                                                                       \
    switch (rm) {                                                                                  \
    case 0: FF_F_ASM(MN, IN, OUT, "rne"); break;                                                   \
    case 1: FF_F_ASM(MN, IN, OUT, "rtz"); break;                                                   \
    case 2: FF_F_ASM(MN, IN, OUT, "rdn"); break;                                                   \
    case 3: FF_F_ASM(MN, IN, OUT, "rup"); break;                                                   \
    case 4: FF_F_ASM(MN, IN, OUT, "rmm"); break;                                                   \
    default: FF_F_ASM(MN, IN, OUT, "dyn"); break;                                                  \
    }                                                                                              \
    g_flags = f;                                                                                   \
    return r;                                                                                      \
  }

// rd ← op(rs1, rs2, rs3) with a rounding mode
#define FFF_F_ASM(MN, IN, OUT, RM)                                                                 \
  asm volatile(IN " ft0,%2\n\t" IN " ft1,%3\n\t" IN " ft2,%4\n\tfsflags x0\n\t" MN                 \
                  " ft3,ft0,ft1,ft2," RM "\n\tfrflags %1\n\t" OUT " %0,ft3"                        \
               : OUTS : INS : CLOBBER_F)
#define DEF_FFF_F(NAME, MN, IN, OUT)                                                               \
  static uint64_t NAME(uint64_t a, uint64_t b, uint64_t c, int rm) {                               \
    uint64_t r, f;                                                                                 \
    switch (rm) {                                                                                  \
    case 0: FFF_F_ASM(MN, IN, OUT, "rne"); break;                                                  \
    case 1: FFF_F_ASM(MN, IN, OUT, "rtz"); break;                                                  \
    case 2: FFF_F_ASM(MN, IN, OUT, "rdn"); break;                                                  \
    case 3: FFF_F_ASM(MN, IN, OUT, "rup"); break;                                                  \
    case 4: FFF_F_ASM(MN, IN, OUT, "rmm"); break;                                                  \
    default: FFF_F_ASM(MN, IN, OUT, "dyn"); break;                                                 \
    }                                                                                              \
    g_flags = f;                                                                                   \
    return r;                                                                                      \
  }

// rd ← op(rs1) with a rounding mode; IN moves the operand into ft0 (empty for an integer source),
// OUT moves the result to %0 (empty for an integer destination).
#define ONE_ASM(MN, IN, OUT, RM)                                                                   \
  asm volatile(IN "\n\tfsflags x0\n\t" MN "," RM "\n\tfrflags %1\n\t" OUT                          \
               : OUTS : INS : CLOBBER_F)
#define DEF_ONE(NAME, MN, IN, OUT)                                                                 \
  static uint64_t NAME(uint64_t a, uint64_t b, uint64_t c, int rm) {                               \
    uint64_t r, f;                                                                                 \
    (void)b, (void)c;                                                                              \
    switch (rm) {                                                                                  \
    case 0: ONE_ASM(MN, IN, OUT, "rne"); break;                                                    \
    case 1: ONE_ASM(MN, IN, OUT, "rtz"); break;                                                    \
    case 2: ONE_ASM(MN, IN, OUT, "rdn"); break;                                                    \
    case 3: ONE_ASM(MN, IN, OUT, "rup"); break;                                                    \
    case 4: ONE_ASM(MN, IN, OUT, "rmm"); break;                                                    \
    default: ONE_ASM(MN, IN, OUT, "dyn"); break;                                                   \
    }                                                                                              \
    g_flags = f;                                                                                   \
    return r;                                                                                      \
  }

// Instructions without a rounding mode: the whole body is given.
#define DEF_PLAIN(NAME, BODY)                                                                      \
  static uint64_t NAME(uint64_t a, uint64_t b, uint64_t c, int rm) {                               \
    uint64_t r, f;                                                                                 \
    (void)a, (void)b, (void)c, (void)rm;                                                           \
    asm volatile(BODY : OUTS : INS : CLOBBER_F);                                                   \
    g_flags = f;                                                                                   \
    return r;                                                                                      \
  }

#define MS "fmv.w.x"
#define MD "fmv.d.x"
#define XS "fmv.x.w"
#define XD "fmv.x.d"

DEF_FF_F(fadd_s, "fadd.s", MS, XS)
DEF_FF_F(fsub_s, "fsub.s", MS, XS)
DEF_FF_F(fmul_s, "fmul.s", MS, XS)
DEF_FF_F(fdiv_s, "fdiv.s", MS, XS)
DEF_FF_F(fadd_d, "fadd.d", MD, XD)
DEF_FF_F(fsub_d, "fsub.d", MD, XD)
DEF_FF_F(fmul_d, "fmul.d", MD, XD)
DEF_FF_F(fdiv_d, "fdiv.d", MD, XD)

DEF_FFF_F(fmadd_s, "fmadd.s", MS, XS)
DEF_FFF_F(fmsub_s, "fmsub.s", MS, XS)
DEF_FFF_F(fnmsub_s, "fnmsub.s", MS, XS)
DEF_FFF_F(fnmadd_s, "fnmadd.s", MS, XS)
DEF_FFF_F(fmadd_d, "fmadd.d", MD, XD)
DEF_FFF_F(fmsub_d, "fmsub.d", MD, XD)
DEF_FFF_F(fnmsub_d, "fnmsub.d", MD, XD)
DEF_FFF_F(fnmadd_d, "fnmadd.d", MD, XD)

DEF_ONE(fsqrt_s, "fsqrt.s ft3,ft0", MS " ft0,%2", XS " %0,ft3")
DEF_ONE(fsqrt_d, "fsqrt.d ft3,ft0", MD " ft0,%2", XD " %0,ft3")
DEF_ONE(fcvt_s_d, "fcvt.s.d ft3,ft0", MD " ft0,%2", XS " %0,ft3")
DEF_ONE(fcvt_w_s, "fcvt.w.s %0,ft0", MS " ft0,%2", "")
DEF_ONE(fcvt_wu_s, "fcvt.wu.s %0,ft0", MS " ft0,%2", "")
DEF_ONE(fcvt_l_s, "fcvt.l.s %0,ft0", MS " ft0,%2", "")
DEF_ONE(fcvt_lu_s, "fcvt.lu.s %0,ft0", MS " ft0,%2", "")
DEF_ONE(fcvt_w_d, "fcvt.w.d %0,ft0", MD " ft0,%2", "")
DEF_ONE(fcvt_wu_d, "fcvt.wu.d %0,ft0", MD " ft0,%2", "")
DEF_ONE(fcvt_l_d, "fcvt.l.d %0,ft0", MD " ft0,%2", "")
DEF_ONE(fcvt_lu_d, "fcvt.lu.d %0,ft0", MD " ft0,%2", "")
DEF_ONE(fcvt_s_w, "fcvt.s.w ft3,%2", "", XS " %0,ft3")
DEF_ONE(fcvt_s_wu, "fcvt.s.wu ft3,%2", "", XS " %0,ft3")
DEF_ONE(fcvt_s_l, "fcvt.s.l ft3,%2", "", XS " %0,ft3")
DEF_ONE(fcvt_s_lu, "fcvt.s.lu ft3,%2", "", XS " %0,ft3")
DEF_ONE(fcvt_d_l, "fcvt.d.l ft3,%2", "", XD " %0,ft3")
DEF_ONE(fcvt_d_lu, "fcvt.d.lu ft3,%2", "", XD " %0,ft3")

// Conversions that are always exact: the assembler gives them no rounding-mode operand.
DEF_PLAIN(fcvt_d_s, MS " ft0,%2\n\tfsflags x0\n\tfcvt.d.s ft3,ft0\n\tfrflags %1\n\t" XD " %0,ft3")
DEF_PLAIN(fcvt_d_w, "fsflags x0\n\tfcvt.d.w ft3,%2\n\tfrflags %1\n\t" XD " %0,ft3")
DEF_PLAIN(fcvt_d_wu, "fsflags x0\n\tfcvt.d.wu ft3,%2\n\tfrflags %1\n\t" XD " %0,ft3")

#define BIN_PLAIN(NAME, MN, IN, OUT)                                                               \
  DEF_PLAIN(NAME, IN " ft0,%2\n\t" IN " ft1,%3\n\tfsflags x0\n\t" MN " ft3,ft0,ft1\n\tfrflags %1\n\t" OUT " %0,ft3")
#define CMP_PLAIN(NAME, MN, IN)                                                                    \
  DEF_PLAIN(NAME, IN " ft0,%2\n\t" IN " ft1,%3\n\tfsflags x0\n\t" MN " %0,ft0,ft1\n\tfrflags %1")

BIN_PLAIN(fmin_s, "fmin.s", MS, XS)
BIN_PLAIN(fmax_s, "fmax.s", MS, XS)
BIN_PLAIN(fsgnj_s, "fsgnj.s", MS, XS)
BIN_PLAIN(fsgnjn_s, "fsgnjn.s", MS, XS)
BIN_PLAIN(fsgnjx_s, "fsgnjx.s", MS, XS)
BIN_PLAIN(fmin_d, "fmin.d", MD, XD)
BIN_PLAIN(fmax_d, "fmax.d", MD, XD)
BIN_PLAIN(fsgnj_d, "fsgnj.d", MD, XD)
BIN_PLAIN(fsgnjn_d, "fsgnjn.d", MD, XD)
BIN_PLAIN(fsgnjx_d, "fsgnjx.d", MD, XD)
CMP_PLAIN(feq_s, "feq.s", MS)
CMP_PLAIN(flt_s, "flt.s", MS)
CMP_PLAIN(fle_s, "fle.s", MS)
CMP_PLAIN(feq_d, "feq.d", MD)
CMP_PLAIN(flt_d, "flt.d", MD)
CMP_PLAIN(fle_d, "fle.d", MD)
DEF_PLAIN(fclass_s, MS " ft0,%2\n\tfsflags x0\n\tfclass.s %0,ft0\n\tfrflags %1")
DEF_PLAIN(fclass_d, MD " ft0,%2\n\tfsflags x0\n\tfclass.d %0,ft0\n\tfrflags %1")

// Improperly NaN-boxed single operands (the 64-bit pattern goes in with fmv.d.x): each must read as
// the canonical NaN, except for fmv.x.w which moves the low 32 bits untouched.
DEF_PLAIN(unboxed_fadd_s, MD " ft0,%2\n\t" MS " ft1,%3\n\tfsflags x0\n\tfadd.s ft3,ft0,ft1\n\tfrflags %1\n\t" XD " %0,ft3")
DEF_PLAIN(unboxed_fsgnj_s, MD " ft0,%2\n\t" MS " ft1,%3\n\tfsflags x0\n\tfsgnj.s ft3,ft0,ft1\n\tfrflags %1\n\t" XD " %0,ft3")
DEF_PLAIN(unboxed_fmin_s, MD " ft0,%2\n\t" MS " ft1,%3\n\tfsflags x0\n\tfmin.s ft3,ft0,ft1\n\tfrflags %1\n\t" XD " %0,ft3")
DEF_PLAIN(unboxed_fcvt_d_s, MD " ft0,%2\n\tfsflags x0\n\tfcvt.d.s ft3,ft0\n\tfrflags %1\n\t" XD " %0,ft3")
DEF_PLAIN(unboxed_fclass_s, MD " ft0,%2\n\tfsflags x0\n\tfclass.s %0,ft0\n\tfrflags %1")
DEF_PLAIN(unboxed_feq_s, MD " ft0,%2\n\t" MS " ft1,%3\n\tfsflags x0\n\tfeq.s %0,ft0,ft1\n\tfrflags %1")
DEF_PLAIN(unboxed_fmv_x_w, MD " ft0,%2\n\tfsflags x0\n\tfmv.x.w %0,ft0\n\tfrflags %1")

// ---- the case table ----

typedef uint64_t (*op_fn)(uint64_t, uint64_t, uint64_t, int);

// Operand and result kinds: 'S' single (8 digits), 'D' double, 'X' integer register (16 digits).
struct op {
  const char *name;
  op_fn fn;
  const char *operands; // one kind per operand
  char result;
  int rounded;          // takes a rounding mode
  int cases;            // per rounding-mode variant (or in total when not rounded)
};

static const struct op ops[] = {
    {"fadd.s", fadd_s, "SS", 'S', 1, 48},      {"fsub.s", fsub_s, "SS", 'S', 1, 48},
    {"fmul.s", fmul_s, "SS", 'S', 1, 48},      {"fdiv.s", fdiv_s, "SS", 'S', 1, 48},
    {"fsqrt.s", fsqrt_s, "S", 'S', 1, 40},     {"fmadd.s", fmadd_s, "SSS", 'S', 1, 32},
    {"fmsub.s", fmsub_s, "SSS", 'S', 1, 32},   {"fnmsub.s", fnmsub_s, "SSS", 'S', 1, 32},
    {"fnmadd.s", fnmadd_s, "SSS", 'S', 1, 32}, {"fadd.d", fadd_d, "DD", 'D', 1, 48},
    {"fsub.d", fsub_d, "DD", 'D', 1, 48},      {"fmul.d", fmul_d, "DD", 'D', 1, 48},
    {"fdiv.d", fdiv_d, "DD", 'D', 1, 48},      {"fsqrt.d", fsqrt_d, "D", 'D', 1, 40},
    {"fmadd.d", fmadd_d, "DDD", 'D', 1, 32},   {"fmsub.d", fmsub_d, "DDD", 'D', 1, 32},
    {"fnmsub.d", fnmsub_d, "DDD", 'D', 1, 32}, {"fnmadd.d", fnmadd_d, "DDD", 'D', 1, 32},
    {"fcvt.s.d", fcvt_s_d, "D", 'S', 1, 40},   {"fcvt.d.s", fcvt_d_s, "S", 'D', 0, 64},
    {"fcvt.w.s", fcvt_w_s, "S", 'X', 1, 32},   {"fcvt.wu.s", fcvt_wu_s, "S", 'X', 1, 32},
    {"fcvt.l.s", fcvt_l_s, "S", 'X', 1, 32},   {"fcvt.lu.s", fcvt_lu_s, "S", 'X', 1, 32},
    {"fcvt.w.d", fcvt_w_d, "D", 'X', 1, 32},   {"fcvt.wu.d", fcvt_wu_d, "D", 'X', 1, 32},
    {"fcvt.l.d", fcvt_l_d, "D", 'X', 1, 32},   {"fcvt.lu.d", fcvt_lu_d, "D", 'X', 1, 32},
    {"fcvt.s.w", fcvt_s_w, "X", 'S', 1, 24},   {"fcvt.s.wu", fcvt_s_wu, "X", 'S', 1, 24},
    {"fcvt.s.l", fcvt_s_l, "X", 'S', 1, 24},   {"fcvt.s.lu", fcvt_s_lu, "X", 'S', 1, 24},
    {"fcvt.d.w", fcvt_d_w, "X", 'D', 0, 48},   {"fcvt.d.wu", fcvt_d_wu, "X", 'D', 0, 48},
    {"fcvt.d.l", fcvt_d_l, "X", 'D', 1, 24},   {"fcvt.d.lu", fcvt_d_lu, "X", 'D', 1, 24},
    {"fmin.s", fmin_s, "SS", 'S', 0, 96},      {"fmax.s", fmax_s, "SS", 'S', 0, 96},
    {"fsgnj.s", fsgnj_s, "SS", 'S', 0, 32},    {"fsgnjn.s", fsgnjn_s, "SS", 'S', 0, 32},
    {"fsgnjx.s", fsgnjx_s, "SS", 'S', 0, 32},  {"feq.s", feq_s, "SS", 'X', 0, 96},
    {"flt.s", flt_s, "SS", 'X', 0, 96},        {"fle.s", fle_s, "SS", 'X', 0, 96},
    {"fclass.s", fclass_s, "S", 'X', 0, 64},   {"fmin.d", fmin_d, "DD", 'D', 0, 96},
    {"fmax.d", fmax_d, "DD", 'D', 0, 96},      {"fsgnj.d", fsgnj_d, "DD", 'D', 0, 32},
    {"fsgnjn.d", fsgnjn_d, "DD", 'D', 0, 32},  {"fsgnjx.d", fsgnjx_d, "DD", 'D', 0, 32},
    {"feq.d", feq_d, "DD", 'X', 0, 96},        {"flt.d", flt_d, "DD", 'X', 0, 96},
    {"fle.d", fle_d, "DD", 'X', 0, 96},        {"fclass.d", fclass_d, "D", 'X', 0, 64},
};
#define N_OPS (sizeof(ops) / sizeof(ops[0]))

// Local stress runs build with -DCASE_SCALE=N for N times the cases (the committed reference uses 1).
#ifndef CASE_SCALE
#define CASE_SCALE 1
#endif
#ifndef LCG_SEED
#define LCG_SEED 0x243f6a8885a308d3UL
#endif

static uint64_t gen(char kind) {
  if (kind == 'S') return gen_f32();
  if (kind == 'D') return gen_f64();
  return gen_int();
}

static int digits(char kind) { return kind == 'S' ? 8 : 16; }

static void set_frm(uint64_t frm) { asm volatile("fsrm x0, %0" : : "r"(frm)); }

// Makes the fused ops' addend cancel the product (nearly) in a quarter of the cases: the single
// rounding of fma is visible only there.
static uint64_t cancelling_addend(const struct op *op, uint64_t a, uint64_t b, uint64_t c) {
  uint64_t r = rnd() % 8;
  if (r >= 2) return c;
  uint64_t p;
  if (op->operands[0] == 'S') {
    p = fmul_s(a, b, 0, 0) & 0xffffffffUL;
    if (r == 1) p ^= 1u << 31;
    p += rnd() % 3 - 1;
    return p & 0xffffffffUL;
  }
  p = fmul_d(a, b, 0, 0);
  if (r == 1) p ^= 1UL << 63;
  return p + rnd() % 3 - 1;
}

static void run_case(const struct op *op, int rm, int frm) {
  uint64_t v[3] = {0, 0, 0};
  int n = 0;
  for (const char *k = op->operands; *k; k++) v[n++] = gen(*k);
  if (n == 3) v[2] = cancelling_addend(op, v[0], v[1], v[2]);
  if (rm == 5) set_frm((uint64_t)frm);
  uint64_t r = op->fn(v[0], v[1], v[2], rm);
  uint64_t flags = g_flags;
  puts_uart(op->name);
  putc_uart(' ');
  if (!op->rounded) {
    putc_uart('-');
  } else {
    putc_uart(rm == 5 ? 'd' : 's');
    putc_uart((char)('0' + (rm == 5 ? frm : rm)));
  }
  for (int i = 0; i < n; i++) {
    putc_uart(' ');
    put_hex(v[i], digits(op->operands[i]));
  }
  puts_uart(" = ");
  put_hex(r, digits(op->result));
  putc_uart(' ');
  put_hex(flags, 2);
  putc_uart('\n');
}

static const uint64_t unboxed_patterns[] = {
    0x000000003f800000, 0x7fffffff3f800000, 0xfffffffe3f800000, 0x00000000ffffffff,
    0xffffffff3f800000, 0xffffffff7f800001, 0x8000000000000000, 0xfffffff07fc00000,
};

static void run_unboxed(void) {
  static const struct op unboxed_ops[] = {
      {"unboxed.fadd.s", unboxed_fadd_s, "DS", 'D', 0, 0},
      {"unboxed.fsgnj.s", unboxed_fsgnj_s, "DS", 'D', 0, 0},
      {"unboxed.fmin.s", unboxed_fmin_s, "DS", 'D', 0, 0},
      {"unboxed.fcvt.d.s", unboxed_fcvt_d_s, "D", 'D', 0, 0},
      {"unboxed.fclass.s", unboxed_fclass_s, "D", 'X', 0, 0},
      {"unboxed.feq.s", unboxed_feq_s, "DS", 'X', 0, 0},
      {"unboxed.fmv.x.w", unboxed_fmv_x_w, "D", 'X', 0, 0},
  };
  for (unsigned o = 0; o < sizeof(unboxed_ops) / sizeof(unboxed_ops[0]); o++) {
    const struct op *op = &unboxed_ops[o];
    for (unsigned i = 0; i < sizeof(unboxed_patterns) / sizeof(unboxed_patterns[0]); i++) {
      uint64_t a = unboxed_patterns[i];
      uint64_t b = 0x3f800000;
      uint64_t r = op->fn(a, b, 0, 0);
      puts_uart(op->name);
      puts_uart(" - ");
      put_hex(a, 16);
      if (op->operands[1]) {
        putc_uart(' ');
        put_hex(b, 8);
      }
      puts_uart(" = ");
      put_hex(r, 16);
      putc_uart(' ');
      put_hex(g_flags, 2);
      putc_uart('\n');
    }
  }
}

// ---- FP state: what the interpreter (not the arithmetic) must get right ----
// Lines "state.<what> = <value>": traps (mcause, or "none"), fcsr masking, loads/stores and their
// NaN-boxing, compressed FP loads/stores, and mstatus.FS/SD tracking.

extern volatile uint64_t trap_record[2];
#define NO_TRAP 0xffUL
#define MSTATUS_FS 0x6000UL

static void report(const char *what, uint64_t v) {
  puts_uart("state.");
  puts_uart(what);
  puts_uart(" = ");
  put_hex(v, 16);
  putc_uart('\n');
}

static void report_trap(const char *what) {
  report(what, trap_record[0]);
  trap_record[0] = NO_TRAP;
}

static void set_fs(uint64_t fs) {
  asm volatile("csrc mstatus, %0\n\tcsrs mstatus, %1" : : "r"(MSTATUS_FS), "r"(fs << 13) : "memory");
}

static uint64_t fs_and_sd(void) {
  uint64_t m;
  asm volatile("csrr %0, mstatus" : "=r"(m));
  return ((m >> 63) << 4) | ((m >> 13) & 3);
}

static void run_state(void) {
  static volatile uint64_t buf[4];
  uint64_t v;
  trap_record[0] = NO_TRAP;

  // With FS = Off every FP instruction and every fcsr access is illegal (mcause 2).
  set_fs(0);
  asm volatile(".option push\n\t.option norvc\n\tfadd.d ft0, ft1, ft2\n\t.option pop" ::: "ft0", "memory");
  report_trap("fs-off.fadd.d");
  asm volatile(".option push\n\t.option norvc\n\tcsrr %0, fflags\n\t.option pop" : "=r"(v) : : "memory");
  report_trap("fs-off.csrr-fflags");
  asm volatile(".option push\n\t.option norvc\n\tfld ft0, 0(%0)\n\t.option pop" : : "r"(buf) : "ft0", "memory");
  report_trap("fs-off.fld");
  asm volatile(".option push\n\t.option norvc\n\tfmv.x.d %0, ft0\n\t.option pop" : "=r"(v) : : "memory");
  report_trap("fs-off.fmv.x.d");
  report("fs-off.mstatus-fs-sd", fs_and_sd());
  set_fs(1);

  // Reserved rounding modes: static 5 and 6, and dyn while frm holds 5, 6 or 7.
  asm volatile(".insn r 0x53, 5, 0x01, ft0, ft1, ft2" ::: "ft0", "memory");
  report_trap("rm5.fadd.d");
  asm volatile(".insn r 0x53, 6, 0x00, ft0, ft1, ft2" ::: "ft0", "memory");
  report_trap("rm6.fadd.s");
  asm volatile(".insn r4 0x43, 5, 1, ft0, ft1, ft2, ft3" ::: "ft0", "memory");
  report_trap("rm5.fmadd.d");
  for (uint64_t frm = 5; frm <= 7; frm++) {
    asm volatile("fsrm x0, %1\n\tfcvt.w.d %0, ft1, dyn" : "=&r"(v) : "r"(frm) : "memory");
    report_trap(frm == 5 ? "dyn-frm5.fcvt.w.d" : frm == 6 ? "dyn-frm6.fcvt.w.d" : "dyn-frm7.fcvt.w.d");
  }
  asm volatile("fsrm x0, %0\n\tfadd.d ft0, ft1, ft2, rne" : : "r"(7) : "ft0", "memory");
  report_trap("frm7.static-rne.fadd.d");
  asm volatile("fsrm x0, %0\n\tfsgnj.d ft0, ft1, ft2" : : "r"(7) : "ft0", "memory");
  report_trap("frm7.fsgnj.d");
  asm volatile("fsrm x0, x0");

  // fcsr, frm and fflags views and their masks.
  asm volatile("fscsr x0, %1\n\tfrcsr %0" : "=r"(v) : "r"(0xffffffffffffffffUL));
  report("fscsr-all-ones.frcsr", v);
  asm volatile("frrm %0" : "=r"(v));
  report("fscsr-all-ones.frrm", v);
  asm volatile("frflags %0" : "=r"(v));
  report("fscsr-all-ones.frflags", v);
  asm volatile("fsflags %0, x0" : "=r"(v));
  report("fsflags.old", v);
  asm volatile("frcsr %0" : "=r"(v));
  report("fsflags-0.frcsr", v);
  asm volatile("fsrmi %0, 2" : "=r"(v));
  report("fsrmi.old", v);
  asm volatile("fsflagsi x0, 0x15\n\tfrcsr %0" : "=r"(v));
  report("fsflagsi-15.frcsr", v);
  asm volatile("csrrwi %0, fflags, 0" : "=r"(v));
  report("csrrwi-fflags.old", v);
  asm volatile("fscsr x0, x0");

  // Loads and stores move raw bits; flw NaN-boxes, fsw stores the low half of any register.
  buf[0] = 0x1122334455667788UL;
  buf[1] = 0;
  buf[2] = 0x7ff0000000000001UL;
  buf[3] = 0;
  asm volatile("flw ft0, 0(%1)\n\tfmv.x.d %0, ft0" : "=r"(v) : "r"(buf) : "ft0", "memory");
  report("flw.boxed", v);
  asm volatile("flw ft0, 4(%1)\n\tfmv.x.d %0, ft0" : "=r"(v) : "r"(buf) : "ft0", "memory");
  report("flw-offset4.boxed", v);
  asm volatile("fmv.d.x ft0, %0\n\tfsw ft0, 8(%1)" : : "r"(0x1234567887654321UL), "r"(buf) : "ft0", "memory");
  report("fsw-unboxed.memory", buf[1]);
  asm volatile("fld ft0, 16(%1)\n\tfsd ft0, 24(%1)\n\tfmv.x.d %0, ft0" : "=r"(v) : "r"(buf) : "ft0", "memory");
  report("fld-snan.register", v);
  report("fsd-snan.memory", buf[3]);
  buf[3] = 0;
  asm volatile("mv a0, %1\n\tc.fld fa0, 16(a0)\n\tc.fsd fa0, 24(a0)\n\tfmv.x.d %0, fa0"
               : "=r"(v) : "r"(buf) : "a0", "fa0", "memory");
  report("c.fld-c.fsd.register", v);
  report("c.fld-c.fsd.memory", buf[3]);
  asm volatile("fmv.d.x fa1, %1\n\taddi sp, sp, -16\n\tc.fsdsp fa1, 8(sp)\n\tc.fldsp fa2, 8(sp)\n\t"
               "ld %0, 8(sp)\n\taddi sp, sp, 16"
               : "=r"(v) : "r"(0xfedcba9876543210UL) : "fa1", "fa2", "memory");
  report("c.fsdsp.memory", v);
  asm volatile("fmv.x.d %0, fa2" : "=r"(v));
  report("c.fldsp.register", v);

  // mstatus.FS: Clean stays Clean without FP writes; an f-register or fcsr write makes it Dirty,
  // and SD (bit 63, reported here as 0x10) follows.
  set_fs(2);
  report("fs-clean.mstatus-fs-sd", fs_and_sd());
  asm volatile("fmv.d.x ft0, x0" ::: "ft0");
  report("fs-after-fmv.d.x.mstatus-fs-sd", fs_and_sd());
  set_fs(2);
  asm volatile("fsflags x0");
  report("fs-after-fsflags.mstatus-fs-sd", fs_and_sd());
  set_fs(2);
  asm volatile("fld ft0, 0(%0)" : : "r"(buf) : "ft0", "memory");
  report("fs-after-fld.mstatus-fs-sd", fs_and_sd());
  set_fs(2);
  asm volatile("fadd.d ft0, ft1, ft2" ::: "ft0");
  report("fs-after-fadd.d.mstatus-fs-sd", fs_and_sd());
  set_fs(1);
  report("fs-initial.mstatus-fs-sd", fs_and_sd());
}

int main(void) {
  lcg_state = LCG_SEED;
  puts_uart("# wkvm fp-torture v1\n");
  for (unsigned o = 0; o < N_OPS; o++) {
    const struct op *op = &ops[o];
    if (!op->rounded) {
      for (int i = 0; i < op->cases * CASE_SCALE; i++) run_case(op, 0, 0);
      continue;
    }
    for (int rm = 0; rm <= 5; rm++) {
      for (int i = 0; i < op->cases * CASE_SCALE; i++) run_case(op, rm, i % 5);
    }
  }
  run_unboxed();
  set_frm(0);
  run_state();
  puts_uart("# end\n");
  return 0;
}
