// The SBI console calls the core hands to the VMM: DBCN read/write and the legacy getchar/putchar.
import { describe, it, expect, beforeAll } from 'vitest';
import { Hypervisor } from '../../../host/kvm/index.js';
import { handleSbiExit, type SbiConsole } from '../../../host/vmm/sbi_console.js';
import { ByteQueue } from '../../../host/devices/legacy/byte_queue.js';
import { asm, program, li } from '../../helpers/asm.js';

const RAM = 0x8000_0000;
const BUFFER = RAM + 0x1000;
let hv: Hypervisor;

beforeAll(async () => {
  hv = await Hypervisor.create();
});

/** Runs `words` in S-mode with the SBI in the core, serving SBI exits with `console` until the final spin. */
function runSbiProgram(words: number[], console: SbiConsole) {
  const vm = hv.createVm({ sbiInCore: true });
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, size: 1 << 16 });
  vm.guestMemory(RAM, words.length * 4).set(program(words));
  const vcpu = vm.createVcpu(0);
  vcpu.reset(BigInt(RAM));
  vcpu.enterSupervisor();
  for (let i = 0; i < 10; i++) {
    const exit = vcpu.run(1000);
    if (exit.reason !== 'sbi') break;
    handleSbiExit(exit, vcpu, vm, console);
  }
  return { vm, vcpu };
}

function consoleWith(input: string) {
  const queue = new ByteQueue();
  queue.push(new TextEncoder().encode(input));
  const written: number[] = [];
  const console: SbiConsole = { write: (bytes) => written.push(...bytes), readByte: () => queue.shift() };
  return { console, queue, written };
}

describe('SBI console', () => {
  it('DBCN console_read copies the waiting input into guest memory, up to the size asked', () => {
    // a7 = DBCN, a6 = 1 (console_read), a0 = 4 bytes, a1 = buffer, a2 = 0; then the same again.
    // (a1 built as (BUFFER >> 12) << 12: li would sign-extend 0x80001000.)
    const read = [...li(17, 0x4442434e), ...li(16, 1), ...li(10, 4), ...li(11, BUFFER / 4096), asm.slli(11, 11, 12), ...li(12, 0), asm.ecall()];
    const { console, queue } = consoleWith('hello');
    const { vm, vcpu } = runSbiProgram([...read, asm.add(20, 11, 0), ...read, asm.add(21, 11, 0), asm.add(22, 10, 0), asm.jal(0, 0)], console);
    const x = vcpu.getRegs().x;
    expect(x[20]).toBe(4n); // the first call got four bytes
    expect(x[21]).toBe(1n); // the second, the one left
    expect(x[22]).toBe(0n); // SBI_SUCCESS
    expect(new TextDecoder().decode(vm.guestMemory(BUFFER, 4))).toBe('oell'); // "o" overwrote the "h" of "hell"
    expect(queue.length).toBe(0);
  });

  it('DBCN console_read outside guest RAM fails with SBI_ERR_INVALID_ADDRESS and consumes nothing', () => {
    const { console, queue } = consoleWith('x');
    const { vcpu } = runSbiProgram([...li(17, 0x4442434e), ...li(16, 1), ...li(10, 4), ...li(11, 0x1000), ...li(12, 0), asm.ecall(), asm.jal(0, 0)], console);
    expect(vcpu.getRegs().x[10]).toBe(BigInt.asUintN(64, -5n));
    expect(queue.length).toBe(1);
  });

  it('legacy getchar returns the next byte, then -1 when there is none', () => {
    const getchar = [...li(17, 2), asm.ecall()];
    const { console } = consoleWith('A');
    const { vcpu } = runSbiProgram([...getchar, asm.add(20, 10, 0), ...getchar, asm.add(21, 10, 0), asm.jal(0, 0)], console);
    const x = vcpu.getRegs().x;
    expect(x[20]).toBe(65n);
    expect(x[21]).toBe(BigInt.asUintN(64, -1n));
  });
});
