/* Sv39 / Sv48 / Sv57 translation (built three times: SV_LEVELS=3, 4 and 5). The program builds its
   own page tables, runs loads/stores/fetches from S and U, and checks the page
   faults (delegated to S) and what the hardware does with PTE A/D bits.
   Expectations are QEMU 7.2's: it sets A and D in the PTE itself (no fault). */
#include "check.h"
#include "trap.h"

#ifndef SV_LEVELS
#error "build with -DSV_LEVELS=3 (Sv39), 4 (Sv48) or 5 (Sv57)"
#endif
#if SV_LEVELS == 3
#define SATP_MODE 8UL
#define NAME "paging-sv39"
#elif SV_LEVELS == 4
#define SATP_MODE 9UL
#define NAME "paging-sv48"
#else
#define SATP_MODE 10UL
#define NAME "paging-sv57"
#endif

#define PTE_V (1UL << 0)
#define PTE_R (1UL << 1)
#define PTE_W (1UL << 2)
#define PTE_X (1UL << 3)
#define PTE_U (1UL << 4)
#define PTE_A (1UL << 6)
#define PTE_D (1UL << 7)
#define PTE_LEAF_RWX (PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D)

#define PAGE 4096UL
#define GIGA (1UL << 30)
#define MEGA (2UL << 20)

/* Virtual addresses used by the test (see build_tables). */
#define VA_USER_TEXT    0x40000000UL  /* 4K: user text page, R X U */
#define VA_USER_DATA    0x40001000UL  /* 4K: data page, R W U */
#define VA_AD_PAGE      0x40002000UL  /* 4K: data page, R W, A=0 D=0 */
#define VA_EXEC_ONLY    0x40003000UL  /* 4K: data page, X only */
#define VA_READ_ONLY    0x40004000UL  /* 4K: data page, R only */
#define VA_INVALID      0x40005000UL  /* 4K: V=0 */
#define VA_REMAP        0x40006000UL  /* 4K: data page, later page2 */
#define VA_W_NO_R       0x40007000UL  /* 4K: W without R: reserved encoding */
#define VA_BAD_MEGA     0x40200000UL  /* 2M leaf whose PPN is not 2M aligned */
#define VA_MEGA_ALIAS   0x40400000UL  /* 2M leaf -> PA 0x80000000 */
#define VA_GIGA_ALIAS   0xc0000000UL  /* 1G leaf -> PA 0x80000000 */
#define VA_BAD_GIGA     0x100000000UL /* 1G leaf whose PPN is not 1G aligned */
#if SV_LEVELS == 3
#define VA_NONCANONICAL 0x0000004000000000UL  /* bit 38 set, bits 63:39 clear */
#else
#define VA_TERA_ALIAS   0x0000008000000000UL  /* 512G leaf -> PA 0 */
#endif
#if SV_LEVELS == 4
#define VA_NONCANONICAL 0x0000800000000000UL  /* bit 47 set, bits 63:48 clear */
#endif
#if SV_LEVELS == 5
#define VA_PETA_ALIAS   0x0001000000000000UL  /* 256T leaf -> PA 0 */
#define VA_NONCANONICAL 0x0100000000000000UL  /* bit 56 set, bits 63:57 clear */
#endif
#define RAM_BASE        0x80000000UL

typedef uint64_t pte_t;
static pte_t root[512] __attribute__((aligned(4096)));
#if SV_LEVELS == 5
static pte_t table_l3[512] __attribute__((aligned(4096)));
#else
#define table_l3 root
#endif
#if SV_LEVELS >= 4
static pte_t table_l2[512] __attribute__((aligned(4096)));
#else
#define table_l2 root
#endif
static pte_t table_l1[512] __attribute__((aligned(4096)));
static pte_t table_l0[512] __attribute__((aligned(4096)));
static volatile uint64_t data_page[512] __attribute__((aligned(4096)));
static volatile uint64_t data_page2[512] __attribute__((aligned(4096)));
static volatile uint64_t ram_marker = 0x6d61726b65722121UL;

static pte_t leaf(uint64_t pa, uint64_t flags) { return ((pa >> 12) << 10) | flags; }
static pte_t pointer(const void *table) { return (((uintptr_t)table >> 12) << 10) | PTE_V; }
static uint64_t ram_offset(volatile void *p) { return (uintptr_t)p - RAM_BASE; }

extern char __user_text_start[];
/* U-mode code lives in .user_text and runs at VA_USER_TEXT; it ends with the
   return-to-M ecall instead of returning (its ra points at non-U code). */
extern char user_load[], user_store[], user_fetch[];
__asm__(".pushsection .user_text, \"ax\"\n"
        "user_load:  ld a0, 0(a0)\n li a7, 0x52544d21\n ecall\n"
        "user_store: li t0, 0x75\n sd t0, 0(a0)\n li a7, 0x52544d21\n ecall\n"
        "user_fetch: jalr a0\n li a7, 0x52544d21\n ecall\n"
        ".popsection");
static uint64_t user_va(char *fn) { return VA_USER_TEXT + (uint64_t)(fn - __user_text_start); }
static uint64_t run_user(char *fn, uint64_t arg) { return run_in_mode(PRV_U, (uint64_t(*)(uint64_t))user_va(fn), arg); }

static void build_tables(void)
{
#if SV_LEVELS == 5
    root[0] = pointer(table_l3);
    root[1] = leaf(0, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);           /* 256T petapage */
#endif
#if SV_LEVELS >= 4
    table_l3[0] = pointer(table_l2);
    table_l3[1] = leaf(0, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);       /* 512G terapage */
#endif
    table_l2[0] = leaf(0, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);       /* MMIO, 1G */
    table_l2[1] = pointer(table_l1);
    table_l2[2] = leaf(RAM_BASE, PTE_LEAF_RWX);                         /* identity RAM */
    table_l2[3] = leaf(RAM_BASE, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
    table_l2[4] = leaf(RAM_BASE + MEGA, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);

    table_l1[0] = pointer(table_l0);
    table_l1[1] = leaf(RAM_BASE + PAGE, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
    table_l1[2] = leaf(RAM_BASE, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);

    uint64_t data = (uintptr_t)data_page;
    table_l0[0] = leaf((uintptr_t)__user_text_start, PTE_V | PTE_R | PTE_X | PTE_U | PTE_A);
    table_l0[1] = leaf(data, PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D);
    table_l0[2] = leaf(data, PTE_V | PTE_R | PTE_W);
    table_l0[3] = leaf(data, PTE_V | PTE_X | PTE_A);
    table_l0[4] = leaf(data, PTE_V | PTE_R | PTE_A);
    table_l0[5] = 0;
    table_l0[6] = leaf(data, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
    table_l0[7] = leaf(data, PTE_V | PTE_W | PTE_A | PTE_D);
}

#define SENTINEL 0x5e5e5e5e5e5e5e5eUL

static uint64_t s_load(uint64_t va)
{
    uint64_t v = SENTINEL;
    __asm__ volatile("ld %0, 0(%1)" : "+r"(v) : "r"(va) : "memory");
    return v;
}

static uint64_t s_store(uint64_t va)
{
    __asm__ volatile("sd %0, 0(%1)" :: "r"(0x5353UL), "r"(va) : "memory");
    return 0;
}

static uint64_t s_fetch(uint64_t va)
{
    __asm__ volatile("jalr %0" :: "r"(va) : "ra", "memory");
    return 0;
}

static uint64_t s_sfence_page_then_load(uint64_t va)
{
    __asm__ volatile("sfence.vma %0, zero" :: "r"(va) : "memory");
    return s_load(va);
}

static uint64_t s_sfence_all_then_load(uint64_t va)
{
    __asm__ volatile("sfence.vma" ::: "memory");
    return s_load(va);
}

static void expect_s_fault(unsigned id, const char *what, uint64_t cause, uint64_t va, uint64_t from)
{
    check_eq(id, what, s_trap.cause, cause);
    check_eq(id, "  stval = faulting address", s_trap.tval, va);
    check_eq(id, "  came from", s_trap.from_priv, from);
    check_eq(id, "  one trap, in S", s_trap.count * 10 + m_trap.count, 10);
}

static void expect_no_trap(unsigned id, const char *what)
{
    check_eq(id, what, s_trap.count + m_trap.count, 0);
}

static void test_satp(void)
{
    uint64_t satp = (SATP_MODE << 60) | ((uintptr_t)root >> 12);
    csr_write(satp, satp);
    check_eq(1, "satp accepts the mode and root PPN", csr_read(satp), satp);
    __asm__ volatile("sfence.vma" ::: "memory");
}

static void test_leaf_sizes(void)
{
    trap_reset();
    check_eq(2, "S load through identity 1G page", run_in_mode(PRV_S, s_load, (uintptr_t)&ram_marker), ram_marker);
    check_eq(3, "S load through 2M page alias", run_in_mode(PRV_S, s_load, VA_MEGA_ALIAS + ram_offset(&ram_marker)),
             ram_marker);
    check_eq(4, "S load through 1G page alias", run_in_mode(PRV_S, s_load, VA_GIGA_ALIAS + ram_offset(&ram_marker)),
             ram_marker);
#if SV_LEVELS >= 4
    check_eq(5, "S load through 512G page alias",
             run_in_mode(PRV_S, s_load, VA_TERA_ALIAS + (uintptr_t)&ram_marker), ram_marker);
#endif
#if SV_LEVELS == 5
    check_eq(5, "S load through 256T page alias",
             run_in_mode(PRV_S, s_load, VA_PETA_ALIAS + (uintptr_t)&ram_marker), ram_marker);
#endif
    data_page[3] = 0x4b4b;
    check_eq(6, "S load through 4K page (SUM irrelevant: non-U page)", run_in_mode(PRV_S, s_load, VA_REMAP + 24),
             0x4b4b);
    expect_no_trap(6, "  no traps so far");

    trap_reset();
    run_in_mode(PRV_S, s_load, VA_BAD_MEGA + 8);
    expect_s_fault(7, "misaligned 2M superpage -> load page fault", CAUSE_LOAD_PAGE, VA_BAD_MEGA + 8, PRV_S);
    trap_reset();
    run_in_mode(PRV_S, s_load, VA_BAD_GIGA + 16);
    expect_s_fault(8, "misaligned 1G superpage -> load page fault", CAUSE_LOAD_PAGE, VA_BAD_GIGA + 16, PRV_S);
    trap_reset();
    run_in_mode(PRV_S, s_load, VA_NONCANONICAL);
    expect_s_fault(9, "non-canonical address -> load page fault", CAUSE_LOAD_PAGE, VA_NONCANONICAL, PRV_S);
}

static void test_invalid_and_permissions(void)
{
    trap_reset();
    run_in_mode(PRV_S, s_load, VA_INVALID + 8);
    expect_s_fault(10, "V=0 -> load page fault", CAUSE_LOAD_PAGE, VA_INVALID + 8, PRV_S);
    trap_reset();
    run_in_mode(PRV_S, s_store, VA_INVALID + 16);
    expect_s_fault(11, "V=0 -> store page fault", CAUSE_STORE_PAGE, VA_INVALID + 16, PRV_S);
    trap_reset();
    run_in_mode(PRV_S, s_fetch, VA_INVALID);
    expect_s_fault(12, "V=0 -> instruction page fault", CAUSE_FETCH_PAGE, VA_INVALID, PRV_S);

    trap_reset();
    data_page[0] = 0;
    run_in_mode(PRV_S, s_store, VA_READ_ONLY);
    expect_s_fault(13, "store to read-only page -> store page fault", CAUSE_STORE_PAGE, VA_READ_ONLY, PRV_S);
    check_eq(13, "  memory untouched", data_page[0], 0);

    trap_reset();
    run_in_mode(PRV_S, s_load, VA_W_NO_R);
    expect_s_fault(14, "W without R (reserved) -> load page fault", CAUSE_LOAD_PAGE, VA_W_NO_R, PRV_S);

    trap_reset();
    run_in_mode(PRV_S, s_fetch, VA_AD_PAGE + 0x100);
    expect_s_fault(15, "fetch from non-X page -> instruction page fault", CAUSE_FETCH_PAGE, VA_AD_PAGE + 0x100, PRV_S);
}

static void test_user_pages(void)
{
    data_page[1] = 0x1111;
    trap_reset();
    check_eq(20, "U load from U page", run_user(user_load, VA_USER_DATA + 8), 0x1111);
    expect_no_trap(20, "  no trap");
    run_user(user_store, VA_USER_DATA + 16);
    check_eq(21, "U store to U page", data_page[2], 0x75);
    expect_no_trap(21, "  no trap");

    trap_reset();
    run_user(user_load, (uintptr_t)&ram_marker);
    expect_s_fault(22, "U load from non-U page -> load page fault", CAUSE_LOAD_PAGE, (uintptr_t)&ram_marker, PRV_U);
    trap_reset();
    run_user(user_fetch, (uintptr_t)&s_load);
    expect_s_fault(23, "U fetch from non-U page -> instruction page fault", CAUSE_FETCH_PAGE, (uintptr_t)&s_load,
                   PRV_U);

    /* S and U pages: without SUM, S may not touch U data; never execute U code. */
    trap_reset();
    csr_clear(mstatus, MSTATUS_SUM);
    run_in_mode(PRV_S, s_load, VA_USER_DATA + 8);
    expect_s_fault(24, "S load from U page, SUM=0 -> load page fault", CAUSE_LOAD_PAGE, VA_USER_DATA + 8, PRV_S);
    trap_reset();
    run_in_mode(PRV_S, s_store, VA_USER_DATA + 32);
    expect_s_fault(25, "S store to U page, SUM=0 -> store page fault", CAUSE_STORE_PAGE, VA_USER_DATA + 32, PRV_S);

    trap_reset();
    csr_set(mstatus, MSTATUS_SUM);
    check_eq(26, "S load from U page with SUM=1", run_in_mode(PRV_S, s_load, VA_USER_DATA + 8), 0x1111);
    run_in_mode(PRV_S, s_store, VA_USER_DATA + 32);
    check_eq(27, "S store to U page with SUM=1", data_page[4], 0x5353);
    expect_no_trap(27, "  no trap");
    trap_reset();
    run_in_mode(PRV_S, s_fetch, VA_USER_TEXT);
    expect_s_fault(28, "S fetch from U page, even with SUM=1 -> instruction page fault", CAUSE_FETCH_PAGE,
                   VA_USER_TEXT, PRV_S);
    csr_clear(mstatus, MSTATUS_SUM);
}

static void test_mxr(void)
{
    data_page[5] = 0x5858;
    trap_reset();
    run_in_mode(PRV_S, s_load, VA_EXEC_ONLY + 40);
    expect_s_fault(30, "load from X-only page, MXR=0 -> load page fault", CAUSE_LOAD_PAGE, VA_EXEC_ONLY + 40, PRV_S);
    trap_reset();
    csr_set(mstatus, MSTATUS_MXR);
    check_eq(31, "load from X-only page with MXR=1", run_in_mode(PRV_S, s_load, VA_EXEC_ONLY + 40), 0x5858);
    expect_no_trap(31, "  no trap");
    csr_clear(mstatus, MSTATUS_MXR);
}

/* QEMU 7.2 updates A and D in the PTE on access instead of faulting (the spec
   allows either); wkvm follows QEMU. */
static void test_accessed_dirty(void)
{
    table_l0[2] = leaf((uintptr_t)data_page, PTE_V | PTE_R | PTE_W);
    __asm__ volatile("sfence.vma" ::: "memory");
    data_page[6] = 0x6666;
    trap_reset();
    check_eq(40, "load through PTE with A=0 succeeds", run_in_mode(PRV_S, s_load, VA_AD_PAGE + 48), 0x6666);
    expect_no_trap(40, "  no page fault");
    check_eq(41, "  hardware set A", !!(table_l0[2] & PTE_A), 1);
    check_eq(41, "  D still clear after a load", !!(table_l0[2] & PTE_D), 0);
    run_in_mode(PRV_S, s_store, VA_AD_PAGE + 56);
    expect_no_trap(42, "store through PTE with D=0 succeeds");
    check_eq(42, "  hardware set D", !!(table_l0[2] & PTE_D), 1);
    check_eq(42, "  stored", data_page[7], 0x5353);

    /* Store first on a fresh PTE: both bits set at once. */
    table_l0[2] = leaf((uintptr_t)data_page, PTE_V | PTE_R | PTE_W);
    __asm__ volatile("sfence.vma" ::: "memory");
    run_in_mode(PRV_S, s_store, VA_AD_PAGE + 64);
    check_eq(43, "first access is a store: A and D set", table_l0[2] & (PTE_A | PTE_D), PTE_A | PTE_D);
}

static void test_sfence(void)
{
    data_page[9] = 0xaaaa;
    data_page2[9] = 0xbbbb;
    trap_reset();
    check_eq(50, "VA_REMAP maps data_page", run_in_mode(PRV_S, s_load, VA_REMAP + 72), 0xaaaa);
    table_l0[6] = leaf((uintptr_t)data_page2, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
    check_eq(51, "after PTE change + sfence.vma rs1=va: new page", run_in_mode(PRV_S, s_sfence_page_then_load, VA_REMAP + 72),
             0xbbbb);
    table_l0[6] = leaf((uintptr_t)data_page, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
    check_eq(52, "after PTE change + sfence.vma x0,x0: old page again",
             run_in_mode(PRV_S, s_sfence_all_then_load, VA_REMAP + 72), 0xaaaa);
    /* Invalidating the PTE must also be seen after sfence. */
    table_l0[6] = 0;
    run_in_mode(PRV_S, s_sfence_page_then_load, VA_REMAP + 72);
    expect_s_fault(53, "after clearing the PTE + sfence.vma: page fault", CAUSE_LOAD_PAGE, VA_REMAP + 72, PRV_S);
    table_l0[6] = leaf((uintptr_t)data_page, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
    __asm__ volatile("sfence.vma" ::: "memory");
}

/* M-mode load with MPRV=1: translated and checked as if in mode MPP. The trap
   handler's mret leaves MPP=U with MPRV still set, so the sequence clears MPRV
   itself right after the access, before touching memory again. */
static uint64_t mprv_load(unsigned mpp, uint64_t va)
{
    uint64_t v = SENTINEL;
    csr_clear(mstatus, MSTATUS_MPP);
    csr_set(mstatus, (uint64_t)mpp << 11);
    __asm__ volatile("csrs mstatus, %2\n ld %0, 0(%1)\n csrc mstatus, %2"
                     : "+r"(v) : "r"(va), "r"(MSTATUS_MPRV) : "memory");
    return v;
}

static void test_mprv(void)
{
    trap_reset();
    check_eq(60, "MPRV=1 MPP=S: M load translated (2M alias)",
             mprv_load(PRV_S, VA_MEGA_ALIAS + ram_offset(&ram_marker)), ram_marker);
    data_page[10] = 0xa0a0;
    check_eq(61, "MPRV=1 MPP=U: M load from U page", mprv_load(PRV_U, VA_USER_DATA + 80), 0xa0a0);
    expect_no_trap(61, "  no trap");
    trap_reset();
    check_eq(62, "MPRV=1 MPP=S SUM=0: load from U page faults", mprv_load(PRV_S, VA_USER_DATA + 80), SENTINEL);
    check_eq(62, "  trap taken in M (never delegated from M)", m_trap.cause, CAUSE_LOAD_PAGE);
    check_eq(62, "  mtval", m_trap.tval, VA_USER_DATA + 80);
    check_eq(62, "  S saw nothing", s_trap.count, 0);
    trap_reset();
    check_eq(63, "MPRV=1 MPP=M: no translation", mprv_load(PRV_M, (uintptr_t)&ram_marker), ram_marker);
    expect_no_trap(63, "  no trap");
}

int main(void)
{
    trap_init();
    check_begin(NAME);
    build_tables();
    csr_write(stvec, (uintptr_t)s_trap_entry);
    csr_write(medeleg, (1UL << CAUSE_FETCH_PAGE) | (1UL << CAUSE_LOAD_PAGE) | (1UL << CAUSE_STORE_PAGE));
    test_satp();
    test_leaf_sizes();
    test_invalid_and_permissions();
    test_user_pages();
    test_mxr();
    test_accessed_dirty();
    test_sfence();
    test_mprv();
    csr_write(satp, 0);
    csr_write(medeleg, 0);
    return check_done();
}
