// The virt board's real-time clock, Google's Goldfish RTC (device tree: compatible "google,goldfish-rtc";
// Linux drivers/rtc/rtc-goldfish.c; QEMU hw/rtc/goldfish_rtc.c is the behavioural reference). It counts
// nanoseconds since the Unix epoch as a 64-bit value and has one alarm that raises its interrupt.
//
// Registers (32-bit, little-endian):
//   0x00 TIME_LOW        read: low half of the time, and latches the high half into TIME_HIGH
//   0x04 TIME_HIGH       read: the half latched by the last TIME_LOW read
//                        a write to either replaces that half of the current time
//   0x08 ALARM_LOW       write: low half of the alarm time, and arms the alarm
//   0x0c ALARM_HIGH      write: high half of the alarm time (does not arm)
//   0x10 IRQ_ENABLED     bit 0 gates the interrupt line
//   0x14 CLEAR_ALARM     write: disarms the alarm
//   0x18 ALARM_STATUS    read: 1 while the alarm is armed and has not fired
//   0x1c CLEAR_INTERRUPT write: acknowledges a fired alarm
//
// Time: the RTC reads a host clock (nanoseconds since the epoch; injectable for tests) plus an offset
// that changes when the guest sets the time, so setting the time never touches the host.
//
// Timers: the device owns none, so it can never leak one. An armed alarm is checked whenever the guest
// touches the device, and the VMM drives it otherwise: `nextDeadlineNs()` says when (in the clock's own
// time base) the alarm is due, `onDeadlineChange` announces each change of that answer, and `tick()`
// fires the alarm once the clock has passed it. Calling `tick()` early or often is harmless.
//
// Accesses other than 4 bytes wide are ignored and reported as guest errors (QEMU only accepts 4-byte
// ones), except that an 8-byte access to TIME_LOW or ALARM_LOW reads or writes the whole 64-bit value.

import { type AccessSize, type IrqLine, type MmioDevice, NullIrqLine } from '../device.js';
import { type GuestErrorReporter, ignoreGuestErrors } from './guest_error.js';

/** Size of the RTC's MMIO window on the virt board. */
export const GOLDFISH_RTC_WINDOW_SIZE = 0x1000;

/** Returns the current time in nanoseconds since the Unix epoch. */
export type NanosecondClock = () => bigint;

export const GoldfishRtcReg = {
  TimeLow: 0x00,
  TimeHigh: 0x04,
  AlarmLow: 0x08,
  AlarmHigh: 0x0c,
  IrqEnabled: 0x10,
  ClearAlarm: 0x14,
  AlarmStatus: 0x18,
  ClearInterrupt: 0x1c,
} as const;

const LOW_WORD = 0xffff_ffffn;

/**
 * A clock that reads wall time once, at creation, and from then on advances with the monotonic
 * `performance.now()`, so that guest time never jumps when the host adjusts its clock.
 */
export function monotonicWallClock(offsetNs = 0n): NanosecondClock {
  const epochNsAtStart = BigInt(Date.now()) * 1_000_000n + offsetNs;
  const monotonicMsAtStart = performance.now();
  return () => epochNsAtStart + BigInt(Math.round((performance.now() - monotonicMsAtStart) * 1e6));
}

export interface GoldfishRtcOptions {
  /** Name used in guest-error reports; default "rtc". */
  name?: string;
  /** The RTC's interrupt line (PLIC source 11 on virt). Default: not connected. */
  irq?: IrqLine;
  /** Host time source; default `monotonicWallClock()`. */
  clock?: NanosecondClock;
  /** Called with the new `nextDeadlineNs()` whenever it changes, so the VMM can (re)schedule a tick. */
  onDeadlineChange?: (deadlineNs: bigint | null) => void;
  onGuestError?: GuestErrorReporter;
}

export class GoldfishRtc implements MmioDevice {
  readonly name: string;
  readonly size = GOLDFISH_RTC_WINDOW_SIZE;

  private readonly irq: IrqLine;
  private readonly clock: NanosecondClock;
  private readonly onDeadlineChange: (deadlineNs: bigint | null) => void;
  private readonly reportGuestError: GuestErrorReporter;
  private irqLevel = false;

  /** Guest time minus host time, in nanoseconds; signed, as the guest may set a time before the host's. */
  private offsetNs = 0n;
  private latchedTimeHigh = 0;
  private alarmNs = 0n;
  private alarmArmed = false;
  private interruptPending = false;
  private interruptEnabled = false;
  private announcedDeadline: bigint | null = null;

  constructor(options: GoldfishRtcOptions = {}) {
    this.name = options.name ?? 'rtc';
    this.irq = options.irq ?? new NullIrqLine();
    this.clock = options.clock ?? monotonicWallClock();
    this.onDeadlineChange = options.onDeadlineChange ?? (() => {});
    this.reportGuestError = options.onGuestError ?? ignoreGuestErrors;
  }

  /** The RTC's current time in nanoseconds since the epoch, as the guest would read it. */
  timeNs(hostNowNs: bigint = this.clock()): bigint {
    return BigInt.asUintN(64, hostNowNs + this.offsetNs);
  }

  /** When, in the clock's time base, the armed alarm is due; null when no alarm is armed. */
  nextDeadlineNs(): bigint | null {
    return this.alarmArmed ? this.alarmNs - this.offsetNs : null;
  }

  /** Fires the alarm if the clock has reached it. `hostNowNs` defaults to reading the clock. */
  tick(hostNowNs: bigint = this.clock()): void {
    if (!this.alarmArmed || this.timeNs(hostNowNs) < this.alarmNs) return;
    this.alarmArmed = false;
    this.interruptPending = true;
    this.updateIrq();
    this.announceDeadline();
  }

  read(offset: number, size: AccessSize): number {
    if (size !== 4) {
      this.reportGuestError(`${this.name}: ${size}-byte read at offset 0x${offset.toString(16)}; only 4-byte accesses work`);
      return 0;
    }
    const hostNowNs = this.clock();
    this.tick(hostNowNs);
    switch (offset) {
      case GoldfishRtcReg.TimeLow: {
        const time = this.timeNs(hostNowNs);
        this.latchedTimeHigh = Number(time >> 32n);
        return Number(time & LOW_WORD);
      }
      case GoldfishRtcReg.TimeHigh:
        return this.latchedTimeHigh;
      case GoldfishRtcReg.AlarmLow:
        return Number(this.alarmNs & LOW_WORD);
      case GoldfishRtcReg.AlarmHigh:
        return Number(this.alarmNs >> 32n);
      case GoldfishRtcReg.IrqEnabled:
        return this.interruptEnabled ? 1 : 0;
      case GoldfishRtcReg.AlarmStatus:
        return this.alarmArmed ? 1 : 0;
      default:
        this.reportGuestError(`${this.name}: read of write-only or missing register at offset 0x${offset.toString(16)}`);
        return 0;
    }
  }

  write(offset: number, size: AccessSize, value: number): void {
    if (size !== 4) {
      this.reportGuestError(`${this.name}: ${size}-byte write at offset 0x${offset.toString(16)}; only 4-byte accesses work`);
      return;
    }
    const hostNowNs = this.clock();
    this.tick(hostNowNs);
    const word = BigInt(value >>> 0);
    switch (offset) {
      case GoldfishRtcReg.TimeLow:
        this.setTime((this.timeNs(hostNowNs) & ~LOW_WORD) | word, hostNowNs);
        break;
      case GoldfishRtcReg.TimeHigh:
        this.setTime((word << 32n) | (this.timeNs(hostNowNs) & LOW_WORD), hostNowNs);
        break;
      case GoldfishRtcReg.AlarmLow:
        this.alarmNs = (this.alarmNs & ~LOW_WORD) | word;
        this.armAlarm(hostNowNs);
        break;
      case GoldfishRtcReg.AlarmHigh:
        this.alarmNs = (word << 32n) | (this.alarmNs & LOW_WORD);
        break;
      case GoldfishRtcReg.IrqEnabled:
        this.interruptEnabled = (value & 1) !== 0;
        this.updateIrq();
        break;
      case GoldfishRtcReg.ClearAlarm:
        this.alarmArmed = false;
        break;
      case GoldfishRtcReg.ClearInterrupt:
        this.interruptPending = false;
        this.updateIrq();
        break;
      default:
        this.reportGuestError(`${this.name}: write of 0x${value.toString(16)} to read-only or missing register at offset 0x${offset.toString(16)}`);
        return;
    }
    // Setting the time forward past an armed alarm makes it due.
    this.tick(hostNowNs);
    this.announceDeadline();
  }

  read64(offset: number): bigint {
    if (offset === GoldfishRtcReg.TimeLow) {
      const low = this.read(GoldfishRtcReg.TimeLow, 4);
      return (BigInt(this.latchedTimeHigh) << 32n) | BigInt(low);
    }
    if (offset === GoldfishRtcReg.AlarmLow) return this.alarmNs;
    this.reportGuestError(`${this.name}: 8-byte read at offset 0x${offset.toString(16)}; only 4-byte accesses work`);
    return 0n;
  }

  write64(offset: number, value: bigint): void {
    const high = Number(BigInt.asUintN(64, value) >> 32n);
    const low = Number(value & LOW_WORD);
    // High half first: ALARM_LOW is the write that arms the alarm, and it must see the whole new value.
    if (offset === GoldfishRtcReg.TimeLow) {
      this.write(GoldfishRtcReg.TimeHigh, 4, high);
      this.write(GoldfishRtcReg.TimeLow, 4, low);
    } else if (offset === GoldfishRtcReg.AlarmLow) {
      this.write(GoldfishRtcReg.AlarmHigh, 4, high);
      this.write(GoldfishRtcReg.AlarmLow, 4, low);
    } else {
      this.reportGuestError(`${this.name}: 8-byte write at offset 0x${offset.toString(16)}; only 4-byte accesses work`);
    }
  }

  /** Disarms the alarm and drops interrupt state, as QEMU's reset does; the time of day keeps running. */
  reset(): void {
    this.alarmNs = 0n;
    this.alarmArmed = false;
    this.interruptPending = false;
    this.interruptEnabled = false;
    this.latchedTimeHigh = 0;
    this.irqLevel = false;
    this.irq.set(false);
    this.announceDeadline();
  }

  private setTime(guestNowNs: bigint, hostNowNs: bigint): void {
    this.offsetNs = guestNowNs - hostNowNs;
  }

  private armAlarm(hostNowNs: bigint): void {
    this.alarmArmed = true;
    // An alarm set in the past fires at once, as in QEMU.
    this.tick(hostNowNs);
  }

  private updateIrq(): void {
    const level = this.interruptPending && this.interruptEnabled;
    if (level === this.irqLevel) return;
    this.irqLevel = level;
    this.irq.set(level);
  }

  private announceDeadline(): void {
    const deadline = this.nextDeadlineNs();
    if (deadline === this.announcedDeadline) return;
    this.announcedDeadline = deadline;
    this.onDeadlineChange(deadline);
  }
}
