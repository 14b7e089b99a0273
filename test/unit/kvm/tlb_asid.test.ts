// The software TLB is tagged by ASID: switching satp between address spaces keeps each one's entries,
// and SFENCE.VMA with an address and an ASID removes exactly that translation.
import { describe, it, expect } from 'vitest';
import { Hypervisor } from '../../../host/kvm/index.js';
import { asm, program } from '../../helpers/asm.js';

const RAM = 0x8000_0000;
const PTE_V = 1n, PTE_R = 2n, PTE_W = 4n, PTE_X = 8n, PTE_G = 32n, PTE_A = 64n, PTE_D = 128n;
const leaf = (pa: number, flags: bigint) => (BigInt(pa >>> 12) << 10n) | flags | PTE_V | PTE_A | PTE_D;
const pointer = (pa: number) => (BigInt(pa >>> 12) << 10n) | PTE_V;
const sv39 = (root: number, asid: number) => (8n << 60n) | (BigInt(asid) << 44n) | BigInt(root >>> 12);
const sfenceVma = (rs1: number, rs2: number) => (0x09 << 25) | (rs2 << 20) | (rs1 << 15) | 0x73;

describe('ASID-tagged TLB', () => {
  it('keeps translations across satp switches and flushes one (va, asid) on SFENCE.VMA', async () => {
    const hv = await Hypervisor.create();
    const vm = hv.createVm();
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, size: 8 << 20 });
    const mem = vm.guestMemory(RAM, 8 << 20);
    const view = new DataView(mem.buffer, mem.byteOffset, mem.byteLength);
    const put64 = (pa: number, v: bigint) => view.setBigUint64(pa - RAM, v, true);

    // Two address spaces. Both map the code/table gigapage at 0x80000000 as a global page; VA
    // 0x40000000 is a 2 MiB page onto 0x80200000 in ASID 1 and onto 0x80400000 in ASID 2.
    const rootA = RAM + 0x10000, rootB = RAM + 0x11000, midA = RAM + 0x12000, midB = RAM + 0x13000;
    for (const root of [rootA, rootB]) put64(root + 2 * 8, leaf(RAM, PTE_R | PTE_W | PTE_X | PTE_G));
    put64(rootA + 1 * 8, pointer(midA));
    put64(rootB + 1 * 8, pointer(midB));
    put64(midA, leaf(RAM + 0x200000, PTE_R | PTE_W));
    put64(midB, leaf(RAM + 0x400000, PTE_R | PTE_W));
    put64(RAM + 0x200000, 0x1111n);
    put64(RAM + 0x400000, 0x2222n);

    // s0 = VA, s1/s2 = satp values, s3 = address of ASID 1's PTE for VA, s4 = the PTE retargeted to
    // ASID 2's page, s5 = 1 (the ASID for the fence).
    const code = [
      asm.csrrw(0, 0x180, 9), asm.ld(10, 8, 0), // satp = A; a0 = [va]
      asm.csrrw(0, 0x180, 18), asm.ld(11, 8, 0), // satp = B (no fence); a1 = [va]
      asm.csrrw(0, 0x180, 9), asm.sd(20, 19, 0), asm.ld(12, 8, 0), // back to A; change A's PTE; a2 = [va]
      sfenceVma(8, 21), asm.ld(13, 8, 0), // fence (va, asid 1); a3 = [va]
      asm.jal(0, 0),
    ];
    mem.set(program(code), 0);
    const vcpu = vm.createVcpu(0);
    vcpu.reset(BigInt(RAM));
    const regs = vcpu.getRegs();
    regs.x[8] = 0x4000_0000n;
    regs.x[9] = sv39(rootA, 1);
    regs.x[18] = sv39(rootB, 2);
    regs.x[19] = BigInt(midA);
    regs.x[20] = leaf(RAM + 0x400000, PTE_R | PTE_W);
    regs.x[21] = 1n;
    vcpu.setRegs(regs);
    vcpu.setPrivilege('S');
    vcpu.run(12);

    const x = vcpu.getRegs().x;
    expect(x[10]).toBe(0x1111n); // ASID 1's page
    expect(x[11]).toBe(0x2222n); // ASID 2's page: ASID 1's entry did not hit
    expect(x[12]).toBe(0x1111n); // ASID 1's entry survived both satp switches (the PTE change is not seen yet)
    expect(x[13]).toBe(0x2222n); // after SFENCE.VMA va, asid=1 the new PTE is walked
    expect(vcpu.getCsr(0x342)).toBe(0n); // and no trap was taken
  });
});
