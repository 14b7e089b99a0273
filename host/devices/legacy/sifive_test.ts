// The virt board's SiFive test finisher at 0x100000 (QEMU hw/misc/sifive_test.c). The device tree also
// names it as the syscon that "syscon-poweroff" and "syscon-reboot" write to, so Linux's poweroff and
// reboot, OpenSBI's system reset and bare-metal test programs all end the machine through it.
//
// A 2- or 4-byte write to offset 0 is decoded as `status | code << 16`:
//   status 0x5555  pass: power off with exit status 0
//   status 0x3333  fail: power off with exit status `code` (QEMU exits with `code`, even when it is 0)
//   status 0x7777  reset the machine
// Any other write does nothing and is reported as a guest error (a 1-byte write never holds a command,
// which matches QEMU refusing 1-byte accesses). Reads return 0.
// The device only announces the event; stopping or resetting the machine is the VMM's job.

import type { AccessSize, MmioDevice } from '../device.js';
import { type GuestErrorReporter, ignoreGuestErrors } from './guest_error.js';

/** Size of the finisher's MMIO window on the virt board. */
export const SIFIVE_TEST_WINDOW_SIZE = 0x1000;

export const FINISHER_FAIL = 0x3333;
export const FINISHER_PASS = 0x5555;
export const FINISHER_RESET = 0x7777;

export type SystemEvent =
  /** `status` is the exit status for the host process; `outcome` tells a pass from a fail with code 0. */
  | { type: 'poweroff'; status: number; outcome: 'pass' | 'fail' }
  | { type: 'reset' };

export interface SifiveTestOptions {
  /** Name used in guest-error reports; default "test". */
  name?: string;
  onSystemEvent?: (event: SystemEvent) => void;
  onGuestError?: GuestErrorReporter;
}

export class SifiveTest implements MmioDevice {
  readonly name: string;
  readonly size = SIFIVE_TEST_WINDOW_SIZE;
  /** Called synchronously while the guest's finisher write is being handled. */
  onSystemEvent: (event: SystemEvent) => void;
  private readonly reportGuestError: GuestErrorReporter;

  constructor(options: SifiveTestOptions = {}) {
    this.name = options.name ?? 'test';
    this.onSystemEvent = options.onSystemEvent ?? (() => {});
    this.reportGuestError = options.onGuestError ?? ignoreGuestErrors;
  }

  read(_offset: number, _size: AccessSize): number {
    return 0;
  }

  write(offset: number, size: AccessSize, value: number): void {
    if (offset === 0) {
      const event = decodeFinisherWrite(value);
      if (event) {
        this.onSystemEvent(event);
        return;
      }
    }
    this.reportGuestError(
      `${this.name}: ${size}-byte write of 0x${value.toString(16)} at offset 0x${offset.toString(16)} is not a finisher command`,
    );
  }
}

function decodeFinisherWrite(value: number): SystemEvent | undefined {
  const status = value & 0xffff;
  const code = (value >>> 16) & 0xffff;
  switch (status) {
    case FINISHER_PASS:
      return { type: 'poweroff', status: 0, outcome: 'pass' };
    case FINISHER_FAIL:
      return { type: 'poweroff', status: code, outcome: 'fail' };
    case FINISHER_RESET:
      return { type: 'reset' };
    default:
      return undefined;
  }
}
