// Why Vcpu.run() returned: KVM's `kvm_run.exit_reason` as a typed union. Each variant documents what the
// host must do before the next run().

export type VcpuExit =
  /**
   * A load or store to guest-physical memory outside every RAM slot (a device, or nothing).
   * Before the next run(): for a read, call `vcpu.completeMmioRead(value)`; for a write, perform it.
   * Either way `vcpu.failMmio()` instead makes the guest take an access fault (no device there).
   * The instruction retires only on that next run().
   */
  | { readonly reason: 'mmio'; readonly isWrite: boolean; readonly addr: number; readonly size: 1 | 2 | 4 | 8; readonly data: bigint }
  /**
   * An SBI call the core does not serve itself (console, vendor or unknown extensions). `args` are a0..a5.
   * Before the next run(): `vcpu.setSbiResult(error, value)`; if the host does nothing the guest sees
   * SBI_ERR_NOT_SUPPORTED.
   */
  | { readonly reason: 'sbi'; readonly extension: number; readonly function: number; readonly args: readonly bigint[] }
  /** WFI with no interrupt pending. Nothing is required; sleep until `vcpu.timerDeadline()` or a device interrupt. */
  | { readonly reason: 'halt' }
  /** SBI system reset: the guest asked to power off or reboot the whole VM. */
  | { readonly reason: 'system-event'; readonly event: 'shutdown' | 'reset' }
  /** The instruction budget given to run() is spent. Nothing is required. */
  | { readonly reason: 'budget' }
  /** SBI HSM: this hart is stopped (or not started yet). Wait until another hart starts it. */
  | { readonly reason: 'hart-stopped' }
  /**
   * The VM debugs its guest (`createVm({ guestDebug: true })`, KVM_SET_GUEST_DEBUG) and the hart stopped
   * for the debugger. `hit` says why: 'software-breakpoint', an EBREAK, and `vcpu.pc` is the EBREAK's, which
   * has not run (resuming runs it, a guest's own EBREAK, unless the debugger has put back the instruction it
   * replaced); 'hardware-breakpoint', `vcpu.pc` reached one of `vm.setGuestDebug`'s breakpoints, before
   * running it; 'watch-write' / 'watch-read', the instruction before `vcpu.pc` wrote or read `address`,
   * inside one of its watchpoints.
   */
  | { readonly reason: 'debug'; readonly hit: DebugHit }
  /** The core cannot go on (a bug, or a VM set up wrongly). The vCPU must not be run again. */
  | { readonly reason: 'internal-error'; readonly message: string };

export type VcpuExitReason = VcpuExit['reason'];

/** Why a 'debug' exit stopped the hart. */
export type DebugHit =
  | { readonly kind: 'software-breakpoint' | 'hardware-breakpoint' }
  | { readonly kind: 'watch-write' | 'watch-read'; readonly address: bigint };
