// The SBI calls the core hands to the VMM (KVM_EXIT_RISCV_SBI): the debug console (DBCN) and the legacy
// console calls. Everything else is answered SBI_ERR_NOT_SUPPORTED (the vCPU's default answer).
import type { VcpuExit } from '../kvm/exits.js';
import type { Vcpu } from '../kvm/vcpu.js';
import type { Vm } from '../kvm/vm.js';

const EXT_DBCN = 0x4442434e;
const LEGACY_CONSOLE_PUTCHAR = 1;
const LEGACY_CONSOLE_GETCHAR = 2;
const SBI_SUCCESS = 0n;
const SBI_ERR_INVALID_PARAM = -3n;
const SBI_ERR_INVALID_ADDRESS = -5n;

export interface SbiConsole {
  write(bytes: Uint8Array): void;
  /** The next input byte, or -1 when there is none. */
  readByte(): number;
}

export function handleSbiExit(exit: Extract<VcpuExit, { reason: 'sbi' }>, vcpu: Vcpu, vm: Vm, console: SbiConsole): void {
  const [a0 = 0n, a1 = 0n, a2 = 0n] = exit.args;
  if (exit.extension === LEGACY_CONSOLE_PUTCHAR) {
    console.write(Uint8Array.of(Number(a0 & 0xffn)));
    vcpu.setSbiResult(0n, 0n);
    return;
  }
  if (exit.extension === LEGACY_CONSOLE_GETCHAR) {
    vcpu.setSbiResult(BigInt(console.readByte()), 0n);
    return;
  }
  if (exit.extension !== EXT_DBCN) return;
  switch (exit.function) {
    case 0: { // console_write(num_bytes, base_addr_lo, base_addr_hi)
      const addr = a1 + (a2 << 32n);
      if (a0 > 0x10000n) {
        vcpu.setSbiResult(SBI_ERR_INVALID_PARAM, 0n);
        return;
      }
      try {
        console.write(vm.guestMemory(Number(addr), Number(a0)).slice());
        vcpu.setSbiResult(SBI_SUCCESS, a0);
      } catch {
        vcpu.setSbiResult(SBI_ERR_INVALID_ADDRESS, 0n);
      }
      return;
    }
    case 1: { // console_read(num_bytes, base_addr_lo, base_addr_hi): what input there is, possibly none
      const addr = a1 + (a2 << 32n);
      const want = Number(a0 > 0x10000n ? 0x10000n : a0);
      let target: Uint8Array;
      try {
        target = vm.guestMemory(Number(addr), want);
      } catch {
        vcpu.setSbiResult(SBI_ERR_INVALID_ADDRESS, 0n);
        return;
      }
      let count = 0;
      while (count < want) {
        const byte = console.readByte();
        if (byte < 0) break;
        target[count++] = byte;
      }
      vcpu.setSbiResult(SBI_SUCCESS, BigInt(count));
      return;
    }
    case 2: // console_write_byte
      console.write(Uint8Array.of(Number(a0 & 0xffn)));
      vcpu.setSbiResult(SBI_SUCCESS, 0n);
      return;
  }
}
