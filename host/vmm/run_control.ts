// The VM's run state, one explicit state machine (Firecracker's lesson), that the monitor, QMP, the
// console's Ctrl-A x and signals all go through: running ⇄ paused (stop/cont), a reset or a quit
// requested by the host, and the events QMP reports for each change. It outlives the machines it
// drives: a reboot makes a new VirtMachine, which attaches itself here and, if the VM is paused, starts
// held. Guest time stands still while the VM is paused, as QEMU stops its virtual clock: the clock is
// read when the harts are held and set back to that on cont (KVM's KVM_GET_CLOCK/KVM_SET_CLOCK pair),
// so no guest instruction ever sees the pause. What the monitor reads meanwhile (mip's timer bits) is
// against the clock still running underneath. Node-free: the VMM also runs in a browser's Web Worker.
import type { MachineOutcome } from './virt_machine.js';

/**
 * QEMU's RunState names for what query-status reports: `prelaunch` is a VM that has not run since its
 * last reset (started with -S, or reset while paused); it is held like a paused one.
 */
export type RunStatus = 'running' | 'paused' | 'prelaunch';

/** QEMU's ShutdownCause names, as SHUTDOWN and RESET events carry them in `reason`. */
export type ShutdownCause = 'guest-shutdown' | 'guest-reset' | 'host-qmp-quit' | 'host-qmp-system-reset' | 'host-signal';

export type VmEvent =
  | { readonly event: 'STOP' }
  | { readonly event: 'RESUME' }
  | { readonly event: 'POWERDOWN' }
  | { readonly event: 'RESET'; readonly data: { readonly guest: boolean; readonly reason: ShutdownCause } }
  | { readonly event: 'SHUTDOWN'; readonly data: { readonly guest: boolean; readonly reason: ShutdownCause } };

/** What the run state needs of the machine it drives (VirtMachine implements it). */
export interface ControlledMachine {
  /** Holds every hart between slices; resolves once none runs guest code. */
  pauseHarts(): Promise<void>;
  /** Lets held harts run again. */
  resumeHarts(): void;
  /** Ends the machine's run() with `outcome`, as if the guest had asked for it. */
  endRun(outcome: MachineOutcome): void;
  /** The guest's time base (mtime) now, and setting it (KVM_GET_CLOCK / KVM_SET_CLOCK). */
  getClock(): bigint;
  setClock(ticks: bigint): void;
}

/** What the VMM does after a machine's run() has returned. */
export type AfterRun = { readonly next: 'reboot' } | { readonly next: 'exit'; readonly status: number };

export class RunControl {
  private state: RunStatus;
  private machine: ControlledMachine | null = null;
  /** mtime when the harts were held: what the guest reads again when they run on. */
  private frozenClock: bigint | null = null;
  /** A reset or quit the host asked for, which the machine's outcome must not be mistaken for the guest's. */
  private hostRequest: { readonly kind: 'reset' } | { readonly kind: 'quit'; readonly status: number } | null = null;
  private readonly runningWaiters = new Set<() => void>();
  private readonly listeners = new Set<(event: VmEvent) => void>();
  /** stop and cont one after another: a cont must not overtake the stop whose harts are still being held. */
  private transitions: Promise<void> = Promise.resolve();

  private readonly noReboot: boolean;

  /**
   * `startPaused` (-S with a monitor): the VM waits in prelaunch for `cont`. `noReboot` (-no-reboot): every
   * reset, the guest's or the host's, ends the VMM instead (QEMU's reboot action "shutdown").
   */
  constructor(options: { readonly startPaused?: boolean; readonly noReboot?: boolean } = {}) {
    this.state = options.startPaused ? 'prelaunch' : 'running';
    this.noReboot = options.noReboot ?? false;
  }

  get status(): RunStatus {
    return this.state;
  }

  get running(): boolean {
    return this.state === 'running';
  }

  /** Reports every state change from now on; returns the unsubscribe function. */
  subscribe(listener: (event: VmEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The machine now running (VirtMachine.run calls it): held from the start if the VM is paused. */
  attach(machine: ControlledMachine): void {
    this.machine = machine;
    this.frozenClock = this.running ? null : machine.getClock();
    // A quit that came while the machine was being built ends it before it runs.
    if (this.hostRequest?.kind === 'quit') machine.endRun({ kind: 'poweroff', status: this.hostRequest.status });
  }

  detach(machine: ControlledMachine): void {
    if (this.machine === machine) this.machine = null;
  }

  /** Calls `wake` once the VM runs (at once if it does); returns a function that forgets it. */
  onceRunning(wake: () => void): () => void {
    if (this.running) {
      wake();
      return () => {};
    }
    this.runningWaiters.add(wake);
    return () => this.runningWaiters.delete(wake);
  }

  /** QMP/HMP `stop`: holds every hart; a VM already held stays as it is, without an event (as QEMU). */
  stop(): Promise<void> {
    return this.serialize(async () => {
      if (!this.running) return;
      this.state = 'paused';
      const machine = this.machine;
      if (machine !== null) {
        await machine.pauseHarts();
        // A quit or reset may have ended the machine meanwhile; its clock no longer matters then.
        if (this.machine === machine) this.frozenClock = machine.getClock();
      }
      this.emit({ event: 'STOP' });
    });
  }

  /** QMP/HMP `cont`: runs held harts on, guest time continuing from where it stopped. */
  cont(): Promise<void> {
    return this.serialize(async () => {
      if (this.running) return;
      this.state = 'running';
      if (this.machine !== null && this.frozenClock !== null) this.machine.setClock(this.frozenClock);
      this.frozenClock = null;
      this.machine?.resumeHarts();
      for (const wake of [...this.runningWaiters]) wake();
      this.runningWaiters.clear();
      this.emit({ event: 'RESUME' });
    });
  }

  /**
   * `system_reset`: the machine resets as for a guest's reboot (wkvm builds it anew). A paused VM comes
   * back in prelaunch and stays held until `cont`, as QEMU's does.
   */
  systemReset(): void {
    if (this.noReboot) {
      this.endVm('host-qmp-system-reset', 0);
      return;
    }
    this.emit({ event: 'RESET', data: { guest: false, reason: 'host-qmp-system-reset' } });
    if (this.state === 'paused') this.state = 'prelaunch';
    this.hostRequest = { kind: 'reset' };
    this.machine?.endRun({ kind: 'reset' });
  }

  /**
   * `system_powerdown`: QEMU reports POWERDOWN and presses the board's power button; the riscv `virt`
   * board of QEMU 7.2 has none (no ACPI, no gpio-keys), so the guest sees nothing. wkvm does the same.
   */
  systemPowerdown(): void {
    this.emit({ event: 'POWERDOWN' });
  }

  /**
   * `quit` (QMP, HMP, Ctrl-A x) or a signal: the VMM exits with `status` (QEMU's 0) once the machine has
   * stopped. SHUTDOWN goes out now, before the command's reply, as QEMU sends it.
   */
  quit(reason: 'host-qmp-quit' | 'host-signal', status = 0): void {
    this.endVm(reason, status);
  }

  /** Whether a quit is under way (a machine about to start should not). */
  get quitting(): boolean {
    return this.hostRequest?.kind === 'quit';
  }

  /**
   * After a machine's run() returned `outcome`: reports what the guest did (QMP's SHUTDOWN or RESET, the
   * host's own requests having been reported when made) and says whether to boot again.
   */
  afterRun(outcome: MachineOutcome): AfterRun {
    const request = this.hostRequest;
    this.hostRequest = null;
    if (request?.kind === 'quit') {
      this.hostRequest = request; // stays: nothing boots after a quit
      return { next: 'exit', status: request.status };
    }
    if (request?.kind === 'reset' && outcome.kind === 'reset') return { next: 'reboot' };
    if (outcome.kind === 'poweroff') {
      this.emit({ event: 'SHUTDOWN', data: { guest: true, reason: 'guest-shutdown' } });
      return { next: 'exit', status: outcome.status };
    }
    if (this.noReboot) {
      this.emit({ event: 'SHUTDOWN', data: { guest: true, reason: 'guest-reset' } });
      return { next: 'exit', status: 0 };
    }
    this.emit({ event: 'RESET', data: { guest: true, reason: 'guest-reset' } });
    return { next: 'reboot' };
  }

  private endVm(reason: ShutdownCause, status: number): void {
    if (this.hostRequest?.kind === 'quit') return;
    this.emit({ event: 'SHUTDOWN', data: { guest: false, reason } });
    this.hostRequest = { kind: 'quit', status };
    this.machine?.endRun({ kind: 'poweroff', status });
  }

  private serialize(transition: () => Promise<void>): Promise<void> {
    const next = this.transitions.then(transition);
    this.transitions = next.catch(() => undefined);
    return next;
  }

  private emit(event: VmEvent): void {
    for (const listener of [...this.listeners]) listener(event);
  }
}
