// The /dev/kvm of wkvm: loads the core once, reports what it can do, and creates VMs.
import * as layout from '../../assembly/abi/layout.js';
import { compileCore, type CoreSource } from './core.js';
import { Vm, type VmOptions } from './vm.js';
import { CORE_ISA } from './isa.js';

export interface Capabilities {
  readonly maxVcpus: number;
  readonly maxMemorySlots: number;
  /** Largest total guest RAM (bytes) one VM can have: a 32-bit WebAssembly memory less the core's state. */
  readonly maxGuestMemory: number;
  readonly isa: string;
  readonly mmuModes: readonly string[];
  /** SBI extensions the core serves without exiting (KVM's in-kernel SBI). */
  readonly sbiInCore: readonly string[];
  /** In-core interrupt controller and timer (KVM_CAP_IRQCHIP). */
  readonly irqchip: boolean;
  /** Whether this engine has shared WebAssembly memory (needed for vCPU workers). */
  readonly sharedMemory: boolean;
}

export class Hypervisor {
  private constructor(readonly module: WebAssembly.Module) {}

  /** Loads build/core.wasm (or the given module/bytes/URL). */
  static async create(source?: CoreSource): Promise<Hypervisor> {
    return new Hypervisor(await compileCore(source));
  }

  get capabilities(): Capabilities {
    return {
      maxVcpus: layout.MAX_HARTS,
      maxMemorySlots: layout.MAX_SLOTS,
      maxGuestMemory: 4 * 1024 * 1024 * 1024 - layout.GUEST_RAM - 16 * layout.WASM_PAGE_SIZE,
      isa: CORE_ISA,
      mmuModes: ['bare', 'sv39', 'sv48', 'sv57'],
      sbiInCore: ['BASE', 'TIME', 'IPI', 'RFENCE', 'HSM', 'SRST'],
      irqchip: true,
      sharedMemory: typeof SharedArrayBuffer !== 'undefined',
    };
  }

  createVm(options: VmOptions = {}): Vm {
    return new Vm(this.module, options);
  }
}
