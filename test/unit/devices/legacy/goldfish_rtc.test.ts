import { describe, expect, it } from 'vitest';
import { NullIrqLine } from '../../../../host/devices/device.js';
import { GoldfishRtc, monotonicWallClock } from '../../../../host/devices/legacy/goldfish_rtc.js';

// Register offsets from Linux drivers/rtc/rtc-goldfish.c.
const TIMER_TIME_LOW = 0x00;
const TIMER_TIME_HIGH = 0x04;
const TIMER_ALARM_LOW = 0x08;
const TIMER_ALARM_HIGH = 0x0c;
const TIMER_IRQ_ENABLED = 0x10;
const TIMER_CLEAR_ALARM = 0x14;
const TIMER_ALARM_STATUS = 0x18;
const TIMER_CLEAR_INTERRUPT = 0x1c;

const NSEC_PER_SEC = 1_000_000_000n;

/** 2024-05-01T12:00:00Z, in nanoseconds since the epoch. */
const START_NS = 1_714_564_800n * NSEC_PER_SEC;

function setup(startNs = START_NS) {
  const clock = { nowNs: startNs };
  const irq = new NullIrqLine();
  const deadlines: (bigint | null)[] = [];
  const guestErrors: string[] = [];
  const rtc = new GoldfishRtc({
    irq,
    clock: () => clock.nowNs,
    onDeadlineChange: (deadline) => deadlines.push(deadline),
    onGuestError: (message) => guestErrors.push(message),
  });
  return { rtc, clock, irq, deadlines, guestErrors };
}

/** goldfish_rtc_read_time(): low word first (which latches the high word), then high. */
function readTimeNs(rtc: GoldfishRtc): bigint {
  const low = BigInt(rtc.read(TIMER_TIME_LOW, 4));
  const high = BigInt(rtc.read(TIMER_TIME_HIGH, 4));
  return (high << 32n) | low;
}

/** goldfish_rtc_set_time(): high word first, then low. */
function setTimeNs(rtc: GoldfishRtc, ns: bigint): void {
  rtc.write(TIMER_TIME_HIGH, 4, Number(ns >> 32n));
  rtc.write(TIMER_TIME_LOW, 4, Number(ns & 0xffff_ffffn));
}

/** goldfish_rtc_set_alarm() with the alarm enabled. */
function setAlarmNs(rtc: GoldfishRtc, ns: bigint): void {
  rtc.write(TIMER_ALARM_HIGH, 4, Number(ns >> 32n));
  rtc.write(TIMER_ALARM_LOW, 4, Number(ns & 0xffff_ffffn));
  rtc.write(TIMER_IRQ_ENABLED, 4, 1);
}

describe('GoldfishRtc time', () => {
  it('reads the clock as nanoseconds since the epoch', () => {
    const { rtc, clock } = setup();
    expect(readTimeNs(rtc)).toBe(START_NS);
    clock.nowNs += 1_500_000_000n;
    expect(readTimeNs(rtc)).toBe(START_NS + 1_500_000_000n);
    expect(readTimeNs(rtc) / NSEC_PER_SEC).toBe(1_714_564_801n);
  });

  it('latches the high word when the low word is read, so a carry between the reads does not tear the value', () => {
    const justBeforeCarry = (0x1234n << 32n) | 0xffff_fff0n;
    const { rtc, clock } = setup(justBeforeCarry);
    const low = rtc.read(TIMER_TIME_LOW, 4);
    clock.nowNs += 0x100n; // the low word wraps and the high word becomes 0x1235
    expect(rtc.read(TIMER_TIME_HIGH, 4)).toBe(0x1234);
    expect(low).toBe(0xffff_fff0);
    expect(rtc.read(TIMER_TIME_LOW, 4)).toBe(0xf0);
    expect(rtc.read(TIMER_TIME_HIGH, 4)).toBe(0x1235);
  });

  it('keeps a time set by the guest running from there, without touching the host clock', () => {
    const { rtc, clock } = setup();
    const guestTime = 946_684_800n * NSEC_PER_SEC; // 2000-01-01
    setTimeNs(rtc, guestTime);
    expect(readTimeNs(rtc)).toBe(guestTime);
    clock.nowNs += 3n * NSEC_PER_SEC;
    expect(readTimeNs(rtc)).toBe(guestTime + 3n * NSEC_PER_SEC);
    expect(rtc.timeNs()).toBe(guestTime + 3n * NSEC_PER_SEC);
  });

  it('replaces only the half of the time that is written', () => {
    const { rtc } = setup((7n << 32n) | 100n);
    rtc.write(TIMER_TIME_LOW, 4, 0xabcd);
    expect(readTimeNs(rtc)).toBe((7n << 32n) | 0xabcdn);
    rtc.write(TIMER_TIME_HIGH, 4, 9);
    expect(readTimeNs(rtc)).toBe((9n << 32n) | 0xabcdn);
  });

  it('reads and writes the whole time with one 8-byte access at TIME_LOW', () => {
    const { rtc, clock } = setup();
    expect(rtc.read64(TIMER_TIME_LOW)).toBe(START_NS);
    rtc.write64(TIMER_TIME_LOW, START_NS + 42n * NSEC_PER_SEC);
    clock.nowNs += 5n;
    expect(rtc.read64(TIMER_TIME_LOW)).toBe(START_NS + 42n * NSEC_PER_SEC + 5n);
  });

  it('keeps the time of day across a device reset', () => {
    const { rtc } = setup();
    setTimeNs(rtc, 123n * NSEC_PER_SEC);
    rtc.reset();
    expect(readTimeNs(rtc)).toBe(123n * NSEC_PER_SEC);
  });
});

describe('GoldfishRtc alarm', () => {
  it('fires at its deadline, raising the interrupt until the guest clears it', () => {
    const { rtc, clock, irq } = setup();
    const alarm = START_NS + 10n * NSEC_PER_SEC;
    setAlarmNs(rtc, alarm);
    expect(rtc.read(TIMER_ALARM_STATUS, 4)).toBe(1);
    expect(rtc.read(TIMER_ALARM_LOW, 4)).toBe(Number(alarm & 0xffff_ffffn));
    expect(rtc.read(TIMER_ALARM_HIGH, 4)).toBe(Number(alarm >> 32n));
    expect(rtc.nextDeadlineNs()).toBe(alarm);

    rtc.tick(alarm - 1n);
    expect(irq.level).toBe(false);
    clock.nowNs = alarm;
    rtc.tick();
    expect(irq.level).toBe(true);
    expect(rtc.read(TIMER_ALARM_STATUS, 4)).toBe(0);
    expect(rtc.nextDeadlineNs()).toBeNull();

    // goldfish_rtc_interrupt() acknowledges with CLEAR_INTERRUPT.
    rtc.write(TIMER_CLEAR_INTERRUPT, 4, 1);
    expect(irq.level).toBe(false);
  });

  it('notices a passed alarm on the next guest access even if the VMM never ticked', () => {
    const { rtc, clock, irq } = setup();
    setAlarmNs(rtc, START_NS + 1000n);
    clock.nowNs += 2000n;
    expect(rtc.read(TIMER_ALARM_STATUS, 4)).toBe(0);
    expect(irq.level).toBe(true);
  });

  it('fires at once when set in the past', () => {
    const { rtc, irq } = setup();
    setAlarmNs(rtc, START_NS - NSEC_PER_SEC);
    expect(irq.level).toBe(true);
    expect(rtc.read(TIMER_ALARM_STATUS, 4)).toBe(0);
  });

  it('is armed by the ALARM_LOW write only, with the high word written before it', () => {
    const { rtc } = setup();
    rtc.write(TIMER_ALARM_HIGH, 4, Number((START_NS + NSEC_PER_SEC) >> 32n));
    expect(rtc.read(TIMER_ALARM_STATUS, 4)).toBe(0);
    expect(rtc.nextDeadlineNs()).toBeNull();
  });

  it('does not fire once cleared', () => {
    const { rtc, irq, deadlines } = setup();
    const alarm = START_NS + NSEC_PER_SEC;
    setAlarmNs(rtc, alarm);
    rtc.write(TIMER_CLEAR_ALARM, 4, 1);
    expect(rtc.read(TIMER_ALARM_STATUS, 4)).toBe(0);
    rtc.tick(alarm + NSEC_PER_SEC);
    expect(irq.level).toBe(false);
    expect(deadlines).toEqual([alarm, null]);
  });

  it('holds a fired alarm pending while IRQ_ENABLED is 0 and raises the line once enabled', () => {
    const { rtc, irq } = setup();
    rtc.write(TIMER_ALARM_HIGH, 4, Number(START_NS >> 32n));
    rtc.write(TIMER_ALARM_LOW, 4, Number((START_NS + 5n) & 0xffff_ffffn));
    rtc.tick(START_NS + 5n);
    expect(irq.level).toBe(false);
    expect(rtc.read(TIMER_IRQ_ENABLED, 4)).toBe(0);
    rtc.write(TIMER_IRQ_ENABLED, 4, 1);
    expect(irq.level).toBe(true);
    expect(rtc.read(TIMER_IRQ_ENABLED, 4)).toBe(1);
    rtc.write(TIMER_IRQ_ENABLED, 4, 0);
    expect(irq.level).toBe(false);
  });

  it('moves its host deadline when the guest sets the time, and fires when the time is set past it', () => {
    const { rtc, deadlines, irq } = setup();
    const alarm = START_NS + 100n * NSEC_PER_SEC;
    setAlarmNs(rtc, alarm);
    setTimeNs(rtc, START_NS + 60n * NSEC_PER_SEC); // guest clock jumps 60 s ahead of the host's
    expect(rtc.nextDeadlineNs()).toBe(START_NS + 40n * NSEC_PER_SEC);
    expect(deadlines.at(-1)).toBe(START_NS + 40n * NSEC_PER_SEC);
    expect(irq.level).toBe(false);
    setTimeNs(rtc, alarm + 1n);
    expect(irq.level).toBe(true);
    expect(deadlines.at(-1)).toBeNull();
  });

  it('fires during the very write that sets the time past it', () => {
    const { rtc, irq } = setup(5n << 32n);
    setAlarmNs(rtc, (5n << 32n) + 1000n);
    rtc.write(TIMER_TIME_LOW, 4, 2000);
    expect(irq.level).toBe(true);
  });

  it('writes a whole alarm with one 8-byte access, arming it with both halves', () => {
    const { rtc } = setup();
    const alarm = START_NS + 7n * NSEC_PER_SEC;
    rtc.write64(TIMER_ALARM_LOW, alarm);
    expect(rtc.read64(TIMER_ALARM_LOW)).toBe(alarm);
    expect(rtc.nextDeadlineNs()).toBe(alarm);
  });

  it('drops alarm and interrupt state on reset', () => {
    const { rtc, irq, deadlines } = setup();
    setAlarmNs(rtc, START_NS + NSEC_PER_SEC);
    rtc.reset();
    expect(irq.level).toBe(false);
    expect(rtc.nextDeadlineNs()).toBeNull();
    expect(deadlines.at(-1)).toBeNull();
    expect(rtc.read(TIMER_IRQ_ENABLED, 4)).toBe(0);
    rtc.tick(START_NS + 2n * NSEC_PER_SEC);
    expect(irq.level).toBe(false);
  });
});

describe('GoldfishRtc bad guest accesses', () => {
  it('ignores accesses narrower than 4 bytes and reports them', () => {
    const { rtc, guestErrors } = setup();
    expect(rtc.read(TIMER_TIME_LOW, 2)).toBe(0);
    rtc.write(TIMER_TIME_HIGH, 1, 0xff);
    expect(readTimeNs(rtc)).toBe(START_NS);
    expect(guestErrors).toHaveLength(2);
  });

  it('reads write-only and unknown registers as 0 and reports them', () => {
    const { rtc, guestErrors } = setup();
    expect(rtc.read(TIMER_CLEAR_INTERRUPT, 4)).toBe(0);
    expect(rtc.read(0x800, 4)).toBe(0);
    rtc.write(TIMER_ALARM_STATUS, 4, 1);
    expect(rtc.nextDeadlineNs()).toBeNull();
    expect(guestErrors).toHaveLength(3);
  });
});

describe('monotonicWallClock', () => {
  it('starts at the wall-clock time and never goes backwards', () => {
    const before = BigInt(Date.now()) * 1_000_000n;
    const clock = monotonicWallClock();
    const first = clock();
    const second = clock();
    const after = BigInt(Date.now()) * 1_000_000n;
    expect(first >= before).toBe(true);
    expect(first <= after + 1_000_000_000n).toBe(true); // generous: Date.now() and performance.now() tick differently
    expect(second >= first).toBe(true);
  });
});
