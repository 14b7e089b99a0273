import { describe, it, expect, beforeAll } from 'vitest';
import { Hypervisor, MemoryRegionError, VcpuStateError, GuestMemoryError, VmConfigError } from '../../../host/kvm/index.js';
import { asm, program, li } from '../../helpers/asm.js';

const RAM = 0x8000_0000;
let hv: Hypervisor;

beforeAll(async () => {
  hv = await Hypervisor.create();
});

function vmWithProgram(words: number[], options: { sbiInCore?: boolean; guestDebug?: boolean } = {}) {
  const vm = hv.createVm({ sbiInCore: options.sbiInCore, guestDebug: options.guestDebug });
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, size: 1 << 20 });
  vm.guestMemory(RAM, words.length * 4).set(program(words));
  const vcpu = vm.createVcpu(0);
  vcpu.reset(BigInt(RAM));
  return { vm, vcpu };
}

describe('Hypervisor', () => {
  it('reports its capabilities', () => {
    const caps = hv.capabilities;
    expect(caps.maxVcpus).toBe(8);
    expect(caps.mmuModes).toEqual(['bare', 'sv39', 'sv48', 'sv57']);
    expect(caps.irqchip).toBe(true);
  });
});

describe('the core module', () => {
  it('imports nothing but its memory, its function table, a clock, the block compiler and abort, so it runs unchanged in a browser', () => {
    const imports = WebAssembly.Module.imports(hv.module).map((i) => `${i.module}.${i.name}:${i.kind}`).sort();
    expect(imports).toEqual(['env.abort:function', 'env.memory:memory', 'env.table:table', 'wkvm.clockTicks:function', 'wkvm.jitCompile:function']);
  });
});

describe('memory slots', () => {
  it('refuses unaligned, overlapping and out-of-range slots with typed errors', () => {
    const vm = hv.createVm();
    expect(() => vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM + 1, size: 4096 })).toThrow(MemoryRegionError);
    expect(() => vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, size: 100 })).toThrow(MemoryRegionError);
    expect(() => vm.setUserMemoryRegion({ slot: 99, guestPhysAddr: RAM, size: 4096 })).toThrow(MemoryRegionError);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, size: 8192 });
    expect(() => vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: RAM + 4096, size: 4096 })).toThrow(/overlaps slot 0/);
    expect(() => vm.guestMemory(RAM + 4096, 8192)).toThrow(GuestMemoryError);
  });

  it('gives each slot its own zeroed host memory', () => {
    const vm = hv.createVm();
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, size: 4096 });
    vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0x1000_0000, size: 4096 });
    vm.guestMemory(RAM, 4).set([1, 2, 3, 4]);
    expect([...vm.guestMemory(0x1000_0000, 4)]).toEqual([0, 0, 0, 0]);
  });
});

describe('vcpu.run exits', () => {
  it('round-trips an MMIO read and write through the host', () => {
    // t0 = 0x10000000 (not RAM); a0 = lw 0(t0); a0 += 1; sw a0, 4(t0); then spin.
    const { vcpu } = vmWithProgram([
      asm.lui(5, 0x10000),
      asm.lw(10, 5, 0),
      asm.addi(10, 10, 1),
      asm.sw(10, 5, 4),
      asm.jal(0, 0),
    ]);
    const read = vcpu.run(100);
    expect(read).toMatchObject({ reason: 'mmio', isWrite: false, addr: 0x1000_0000, size: 4 });
    expect(() => vcpu.run(100)).toThrow(VcpuStateError); // the read must be completed first
    vcpu.completeMmioRead(0xffff_fffe); // lw sign-extends
    const write = vcpu.run(100);
    expect(write).toMatchObject({ reason: 'mmio', isWrite: true, addr: 0x1000_0004, size: 4 });
    if (write.reason === 'mmio') expect(write.data).toBe(0xffff_ffffn);
    expect(vcpu.getRegs().x[10]).toBe(0xffff_ffff_ffff_ffffn);
    expect(vcpu.run(10)).toEqual({ reason: 'budget' });
    expect(vcpu.pc).toBe(BigInt(RAM + 16));
  });

  it('stops at an EBREAK with a debug exit when the VM debugs its guest, else the guest traps', () => {
    const EBREAK = 0x0010_0073;
    const debugged = vmWithProgram([asm.addi(10, 0, 7), EBREAK, asm.addi(10, 10, 1), asm.jal(0, 0)], { guestDebug: true });
    expect(debugged.vcpu.run(100)).toEqual({ reason: 'debug', hit: { kind: 'software-breakpoint' } });
    expect(debugged.vcpu.pc).toBe(BigInt(RAM + 4)); // at the EBREAK, which has not run
    expect(debugged.vcpu.instructionsRetired).toBe(1n);
    expect(debugged.vcpu.getCsr(0x342)).toBe(0n); // no trap in the guest
    // The debugger takes its breakpoint out (a nop in its place) and the hart runs on.
    debugged.vm.guestMemory(RAM + 4, 4).set(program([asm.addi(0, 0, 0)]));
    expect(debugged.vcpu.run(2)).toEqual({ reason: 'budget' });
    expect(debugged.vcpu.getRegs().x[10]).toBe(8n);
    const plain = vmWithProgram([asm.addi(10, 0, 7), EBREAK, asm.jal(0, 0)]);
    plain.vcpu.setCsr(0x305, BigInt(RAM + 8)); // mtvec: the spin loop
    expect(plain.vcpu.run(10)).toEqual({ reason: 'budget' });
    expect(plain.vcpu.getCsr(0x342)).toBe(3n); // mcause: breakpoint
  });

  it('stops at hardware breakpoints before the instruction, and after accesses to watched bytes (KVM_SET_GUEST_DEBUG)', () => {
    const DATA = RAM + 0x2000;
    const { vm, vcpu } = vmWithProgram([
      ...li(5, DATA >>> 12), asm.slli(5, 5, 12), // 0, 4, 8 (lui alone would sign-extend bit 31)
      asm.addi(6, 0, 42), // 12
      asm.sd(6, 5, 8), // 16: writes DATA+8..15
      asm.ld(7, 5, 0), // 20: reads DATA..7, outside the watch
      asm.ld(7, 5, 12), // 24: reads DATA+12..19
      asm.addi(10, 0, 1), // 28
      asm.addi(10, 10, 1), // 32
      asm.jal(0, 0), // 36
    ], { guestDebug: true });
    vm.setGuestDebug({
      hardwareBreakpoints: [BigInt(RAM + 32)],
      watchpoints: [{ address: BigInt(DATA + 8), length: 8, access: 'write' }, { address: BigInt(DATA + 16), length: 4, access: 'read' }],
    });
    expect(vcpu.run(100)).toEqual({ reason: 'debug', hit: { kind: 'watch-write', address: BigInt(DATA + 8) } });
    expect(vcpu.pc).toBe(BigInt(RAM + 20)); // after the store, which has happened
    expect(vm.guestMemory(DATA + 8, 1)[0]).toBe(42);
    expect(vcpu.run(100)).toEqual({ reason: 'debug', hit: { kind: 'watch-read', address: BigInt(DATA + 16) } });
    expect(vcpu.pc).toBe(BigInt(RAM + 28)); // the load at 20 touched nothing watched
    expect(vcpu.run(100)).toEqual({ reason: 'debug', hit: { kind: 'hardware-breakpoint' } });
    expect(vcpu.pc).toBe(BigInt(RAM + 32));
    expect(vcpu.getRegs().x[10]).toBe(1n); // the instruction at the breakpoint has not run
    expect(vcpu.run(100)).toEqual({ reason: 'budget' }); // resuming there runs it
    expect(vcpu.getRegs().x[10]).toBe(2n);
    vm.setGuestDebug({});
    vcpu.reset(BigInt(RAM));
    expect(vcpu.run(100)).toEqual({ reason: 'budget' }); // nothing set: nothing stops it
  });

  it('does not stop for a watched access that faults, and refuses debug points a VM cannot have', () => {
    // A watched address that is not RAM: the load leaves for the host, which finds no device there.
    const { vm, vcpu } = vmWithProgram([...li(5, (RAM + (1 << 20)) >>> 12), asm.slli(5, 5, 12), asm.ld(6, 5, 0), asm.jal(0, 0)], { guestDebug: true });
    vcpu.setCsr(0x305, BigInt(RAM + 16)); // mtvec: the spin loop
    vm.setGuestDebug({ watchpoints: [{ address: BigInt(RAM + (1 << 20)), length: 8, access: 'access' }] });
    const exit = vcpu.run(100);
    expect(exit.reason).toBe('mmio'); // not RAM: the access leaves for the host, no watch hit
    vcpu.failMmio();
    expect(vcpu.run(100)).toEqual({ reason: 'budget' });
    expect(vcpu.getCsr(0x342)).toBe(5n); // load access fault, in the guest
    expect(vcpu.getCsr(0x343)).toBe(BigInt(RAM + (1 << 20))); // at the watched address
    expect(() => vmWithProgram([asm.jal(0, 0)]).vm.setGuestDebug({ hardwareBreakpoints: [1n] })).toThrow(VmConfigError);
    expect(() => vm.setGuestDebug({ hardwareBreakpoints: [1n, 2n, 3n, 4n, 5n] })).toThrow(/at most 4/);
    expect(() => vm.setGuestDebug({ watchpoints: [{ address: 0n, length: 0, access: 'read' }] })).toThrow(/1 byte to 1 MiB/);
  });

  it('turns an MMIO access no device answers into a load access fault', () => {
    const { vcpu } = vmWithProgram([asm.lui(5, 0x10000), asm.lw(10, 5, 0), asm.jal(0, 0)]);
    vcpu.setCsr(0x305, BigInt(RAM + 8)); // mtvec: the spin loop
    const exit = vcpu.run(100);
    expect(exit.reason).toBe('mmio');
    vcpu.failMmio();
    vcpu.run(10);
    expect(vcpu.getCsr(0x342)).toBe(5n); // mcause: load access fault
    expect(vcpu.getCsr(0x343)).toBe(0x1000_0000n); // mtval
    expect(vcpu.getCsr(0x341)).toBe(BigInt(RAM + 4)); // mepc: the lw
  });

  it('makes guest writes to a read-only slot exit while reads come from memory', () => {
    const vm = hv.createVm();
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, size: 4096 });
    vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: RAM + 4096, size: 4096, readonly: true });
    vm.guestMemory(RAM + 4096, 8).set([0x2a, 0, 0, 0, 0, 0, 0, 0]);
        // t0 = 0x80001000 (lui alone would sign-extend it).
    const code = [asm.addi(5, 0, 1), asm.slli(5, 5, 31), asm.lui(6, 1), asm.add(5, 5, 6), asm.ld(10, 5, 0), asm.sd(10, 5, 8), asm.jal(0, 0)];
    vm.guestMemory(RAM, code.length * 4).set(program(code));
    const vcpu = vm.createVcpu(0);
    vcpu.reset(BigInt(RAM));
    const exit = vcpu.run(100);
    expect(exit).toMatchObject({ reason: 'mmio', isWrite: true, addr: RAM + 4096 + 8, size: 8 });
    expect(vcpu.getRegs().x[10]).toBe(0x2an);
  });

  it('returns halt for WFI with nothing pending and budget when the budget is spent', () => {
    const { vcpu } = vmWithProgram([asm.wfi(), asm.jal(0, 0)]);
    expect(vcpu.run(100)).toEqual({ reason: 'halt' });
    expect(vcpu.pc).toBe(BigInt(RAM + 4));
    expect(vcpu.run(1000)).toEqual({ reason: 'budget' });
    expect(vcpu.lastRunInstructions).toBe(1000);
  });

  it('exits for SBI calls the core does not serve and hands the result back', () => {
    // a7 = DBCN (0x4442434e), a6 = 2 (write_byte), a0 = 'A'; ecall from S-mode.
    const { vcpu } = vmWithProgram([...li(17, 0x4442434e), ...li(16, 2), ...li(10, 65), asm.ecall(), asm.jal(0, 0)], { sbiInCore: true });
    vcpu.enterSupervisor();
    const exit = vcpu.run(100);
    expect(exit).toMatchObject({ reason: 'sbi', extension: 0x4442434e, function: 2 });
    if (exit.reason === 'sbi') expect(exit.args[0]).toBe(65n);
    vcpu.setSbiResult(0, 7);
    vcpu.run(5);
    expect(vcpu.getRegs().x[10]).toBe(0n);
    expect(vcpu.getRegs().x[11]).toBe(7n);
  });

  it('serves SBI BASE in the core and reports SRST as a system event', () => {
    // sbi_get_spec_version, then system_reset(shutdown).
    const { vcpu } = vmWithProgram(
      [...li(17, 0x10), ...li(16, 0), asm.ecall(), asm.add(20, 10, 0), asm.add(21, 11, 0),
        asm.lui(17, 0x53525), asm.addi(17, 17, 0x354), ...li(16, 0), ...li(10, 0), ...li(11, 0), asm.ecall()],
      { sbiInCore: true },
    );
    vcpu.enterSupervisor();
    expect(vcpu.run(100)).toEqual({ reason: 'system-event', event: 'shutdown' });
    const x = vcpu.getRegs().x;
    expect(x[20]).toBe(0n); // SBI_SUCCESS
    expect(x[21]).toBe(2n << 24n); // v2.0
  });

  it('applies CSR WARL rules through setCsr and refuses CSRs that do not exist', () => {
    const { vcpu } = vmWithProgram([asm.jal(0, 0)]);
    vcpu.setCsr(0x180, (11n << 60n) | 5n); // satp: mode 11 (Sv64) is not implemented, so the write is ignored
    expect(vcpu.getCsr(0x180)).toBe(0n);
    vcpu.setCsr(0x180, (9n << 60n) | 5n); // Sv48 is
    expect(vcpu.getCsr(0x180)).toBe((9n << 60n) | 5n);
    vcpu.setCsr(0x180, (10n << 60n) | 6n); // and Sv57, as QEMU 7.2
    expect(vcpu.getCsr(0x180)).toBe((10n << 60n) | 6n);
    expect(() => vcpu.getCsr(0x7c0)).toThrow(VcpuStateError);
    expect(() => vcpu.setCsr(0xf14, 1n)).toThrow(VcpuStateError); // mhartid is read-only
  });

  it('counts minstret as the spec says: a write suppresses its own increment, a read excludes itself', () => {
    // csrwi minstret, 0 ; csrr a0, minstret ; addi x0,x0,0 ; csrr a1, minstret
    const csrwi = (csr: number, imm: number) => (csr << 20) | (imm << 15) | (5 << 12) | 0x73;
    const { vcpu } = vmWithProgram([csrwi(0xb02, 0), asm.csrrs(10, 0xb02, 0), asm.addi(0, 0, 0), asm.csrrs(11, 0xb02, 0), asm.jal(0, 0)]);
    vcpu.run(4);
    const x = vcpu.getRegs().x;
    expect(x[10]).toBe(0n);
    expect(x[11]).toBe(2n);
    vcpu.setCsr(0xb02, 100n); // the host's write is the value the next instruction reads
    expect(vcpu.getCsr(0xb02)).toBe(100n);
  });

  it("keeps the PLIC's SEIP line out of the software SEIP bit when csrs/csrc rewrite mip", () => {
    // Program the PLIC for hart 0's S context (source 1, priority 1, enabled, threshold 0), then
    // csrrs a0, mip, t1 (t1 = SSIP) while the line is high, and read mip again after it drops.
    const { vm, vcpu } = vmWithProgram([
      ...li(5, 0x0c00_0000),
      asm.addi(6, 0, 1),
      asm.sw(6, 5, 4), // priority[1] = 1
      ...li(7, 0x0c00_2080),
      asm.addi(6, 0, 2),
      asm.sw(6, 7, 0), // context 1 enables source 1
      ...li(7, 0x0c20_1000),
      asm.sw(0, 7, 0), // context 1 threshold 0
      asm.addi(6, 0, 2),
      asm.csrrs(10, 0x344, 6),
      asm.jal(0, 0),
    ]);
    vm.setIrqLine(1, true);
    vcpu.run(13 + 20);
    expect(vcpu.getRegs().x[10] & 0x200n).toBe(0x200n); // the read sees the line
    vm.setIrqLine(1, false);
    expect(vcpu.getCsr(0x344)).toBe(0x2n); // SSIP set by the csrrs; SEIP went with the line
  });

  it('returns from run() when every fetch faults (traps count against the budget)', () => {
    const { vcpu } = vmWithProgram([asm.jal(0, 0)]);
    vcpu.reset(0x1000_0000n); // nothing there, and mtvec = 0 is nothing either
    expect(vcpu.run(1000)).toEqual({ reason: 'budget' });
    expect(vcpu.getCsr(0x342)).toBe(1n); // instruction access fault
    expect(vcpu.trapsTaken).toBe(1000n);
  });

  it('raises illegal-instruction with the instruction bits in mtval', () => {
    const { vcpu } = vmWithProgram([0xffffffff, asm.jal(0, 0)]);
    vcpu.setCsr(0x305, BigInt(RAM + 4));
    vcpu.run(10);
    expect(vcpu.getCsr(0x342)).toBe(2n);
    expect(vcpu.getCsr(0x343)).toBe(0xffffffffn);
  });
});
