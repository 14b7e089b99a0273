// Instruction fetch obeys PMP regions smaller than a page: a page that PMP does not treat uniformly is
// checked on every fetch, not only when execution enters it (found by riscv-arch-test pmp64-NA4-*).
import { describe, it, expect } from 'vitest';
import { Hypervisor } from '../../../host/kvm/index.js';
import { asm, program } from '../../helpers/asm.js';

const RAM = 0x8000_0000;
const PMPCFG0 = 0x3a0, PMPADDR0 = 0x3b0, MTVEC = 0x305, MEPC = 0x341, MCAUSE = 0x342;
const L = 0x80, NA4 = 0x10, NAPOT = 0x18, R = 1, X = 4, RWX = 7;
const CAUSE_FETCH_ACCESS = 1n;
const HANDLER = RAM + 0x800;

/** A VM whose M-mode code is `code` at RAM, with locked PMP entries `cfg` (entry i: pmpaddr[i], cfg[i]). */
async function boot(code: Uint8Array, pmp: Array<[number, bigint]>) {
  const hv = await Hypervisor.create();
  const vm = hv.createVm();
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, size: 1 << 16 });
  const mem = vm.guestMemory(RAM, 1 << 16);
  mem.set(code, 0);
  mem.set(program([asm.jal(0, 0)]), HANDLER - RAM);
  const vcpu = vm.createVcpu(0);
  vcpu.reset(BigInt(RAM));
  vcpu.setCsr(MTVEC, BigInt(HANDLER));
  let cfg = 0n;
  pmp.forEach(([c, addr], i) => {
    vcpu.setCsr(PMPADDR0 + i, addr);
    cfg |= BigInt(c) << BigInt(8 * i);
  });
  vcpu.setCsr(PMPCFG0, cfg);
  return vcpu;
}

// The last entry gives M-mode (locked) access to everything else.
const ALL: [number, bigint] = [L | NAPOT | RWX, (1n << 54n) - 1n];

describe('PMP on instruction fetch', () => {
  it('faults on a jump into a 4-byte region without X on a page that was already executing', async () => {
    const target = RAM + 0x40;
    const code = program([asm.addi(5, 0, 1), asm.jal(0, target - (RAM + 4))]);
    const padded = new Uint8Array(0x48);
    padded.set(code, 0);
    padded.set(program([asm.addi(6, 0, 1), asm.jal(0, 0)]), target - RAM);
    const vcpu = await boot(padded, [[L | NA4 | R, BigInt(target) >> 2n], ALL]);
    vcpu.run(10);
    const x = vcpu.getRegs().x;
    expect(x[5]).toBe(1n); // the code before the region ran
    expect(x[6]).toBe(0n); // the instruction in the region did not
    expect(vcpu.getCsr(MCAUSE)).toBe(CAUSE_FETCH_ACCESS);
    expect(vcpu.getCsr(MEPC)).toBe(BigInt(target));
  });

  it('faults on a 32-bit instruction whose upper half lies in the next 4-byte region, without X', async () => {
    // [RAM+0x40, +4) executable, [RAM+0x44, +4) not; a 32-bit addi sits at RAM+0x42 after a c.nop.
    const granule = RAM + 0x40;
    const bytes = new Uint8Array(0x50);
    bytes.set(program([asm.addi(5, 0, 1), asm.jal(0, granule - (RAM + 4))]), 0);
    const addi = asm.addi(6, 0, 1);
    bytes.set([0x01, 0x00, addi & 0xff, (addi >> 8) & 0xff, (addi >> 16) & 0xff, addi >>> 24], granule - RAM);
    bytes.set(program([asm.jal(0, 0)]), granule - RAM + 8);
    const vcpu = await boot(bytes, [
      [L | NA4 | X, BigInt(granule) >> 2n],
      [L | NA4, BigInt(granule + 4) >> 2n],
      ALL,
    ]);
    vcpu.run(10);
    const x = vcpu.getRegs().x;
    expect(x[5]).toBe(1n);
    expect(x[6]).toBe(0n);
    expect(vcpu.getCsr(MCAUSE)).toBe(CAUSE_FETCH_ACCESS);
    expect(vcpu.getCsr(MEPC)).toBe(BigInt(granule + 2));
  });

  it('still runs code on such a page where PMP allows it', async () => {
    const target = RAM + 0x40;
    const padded = new Uint8Array(0x48);
    padded.set(program([asm.addi(5, 0, 1), asm.jal(0, target - (RAM + 4))]), 0);
    padded.set(program([asm.addi(6, 0, 1), asm.jal(0, 0)]), target - RAM);
    const vcpu = await boot(padded, [[L | NA4 | X, BigInt(target) >> 2n], ALL]);
    vcpu.run(10);
    expect(vcpu.getRegs().x[6]).toBe(1n);
    expect(vcpu.getCsr(MCAUSE)).toBe(0n);
  });
});
