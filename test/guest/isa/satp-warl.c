/* satp is WARL: writes with an unsupported MODE are ignored as a whole, the ASID
   field keeps only the bits the hart implements. Runs in M, where satp does not
   translate, so the PPN may point anywhere. */
#include "check.h"
#include "trap.h"

#define SATP(mode, asid, ppn) (((uint64_t)(mode) << 60) | ((uint64_t)(asid) << 44) | (uint64_t)(ppn))
#define SATP_ASID_MASK (0xffffUL << 44)
#define PPN 0x80123UL

static uint64_t write_satp(uint64_t value)
{
    csr_write(satp, value);
    return csr_read(satp);
}

int main(void)
{
    trap_init();
    check_begin("satp-warl");

    check_eq(1, "satp is 0 (Bare) at reset", csr_read(satp), 0);
    check_eq(2, "Bare mode write with PPN 0 reads back", write_satp(0), 0);

    uint64_t sv39 = SATP(8, 0, PPN);
    check_eq(3, "Sv39 (mode 8) accepted", write_satp(sv39), sv39);
    check_eq(4, "reserved mode 1 ignored (satp unchanged)", write_satp(SATP(1, 0, 0x1234)), sv39);
    check_eq(5, "reserved mode 15 ignored", write_satp(SATP(15, 0, 0x1234)), sv39);

    uint64_t sv48 = SATP(9, 0, PPN + 1);
    check_eq(6, "Sv48 (mode 9) accepted", write_satp(sv48), sv48);

    /* Sv57: QEMU 7.2 implements it; wkvm may not. Either accepted whole, or ignored. */
    uint64_t sv57 = SATP(10, 0, PPN + 2);
    uint64_t got = write_satp(sv57);
    guest_printf("  satp after writing Sv57: 0x%lx (%s)\n", got, got == sv57 ? "supported" : "not supported");
    check_true(7, "Sv57 write either taken or ignored, nothing else", got == sv57 || got == sv48, got);

    /* ASID: the implemented bits are the low ASIDLEN bits (0 <= ASIDLEN <= 16). */
    got = write_satp(SATP(8, 0xffff, PPN));
    uint64_t asid = (got & SATP_ASID_MASK) >> 44;
    guest_printf("  ASID bits implemented: 0x%lx\n", asid);
    check_eq(8, "ASID write keeps mode and PPN", got & ~SATP_ASID_MASK, SATP(8, 0, PPN));
    check_true(8, "implemented ASID bits are the low ones", (asid & (asid + 1)) == 0, asid);

    check_eq(9, "back to Bare", write_satp(0), 0);
    check_eq(9, "  no traps at any point", m_trap.count, 0);
    return check_done();
}
