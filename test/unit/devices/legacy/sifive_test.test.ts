import { describe, expect, it } from 'vitest';
import { SifiveTest, type SystemEvent } from '../../../../host/devices/legacy/sifive_test.js';

function setup() {
  const events: SystemEvent[] = [];
  const guestErrors: string[] = [];
  const finisher = new SifiveTest({
    onSystemEvent: (event) => events.push(event),
    onGuestError: (message) => guestErrors.push(message),
  });
  return { finisher, events, guestErrors };
}

describe('SifiveTest finisher', () => {
  it('powers off with status 0 on 0x5555 (Linux syscon-poweroff, riscv-tests pass)', () => {
    const { finisher, events } = setup();
    finisher.write(0, 4, 0x5555);
    expect(events).toEqual([{ type: 'poweroff', status: 0, outcome: 'pass' }]);
  });

  it('powers off with the code in bits 31:16 on 0x3333', () => {
    const { finisher, events } = setup();
    finisher.write(0, 4, 0x3333 | (42 << 16));
    finisher.write(0, 4, (0x3333 | (0xffff << 16)) >>> 0);
    expect(events).toEqual([
      { type: 'poweroff', status: 42, outcome: 'fail' },
      { type: 'poweroff', status: 0xffff, outcome: 'fail' },
    ]);
  });

  it('tells a fail with code 0 from a pass, though both exit with status 0 as in QEMU', () => {
    const { finisher, events } = setup();
    finisher.write(0, 4, 0x3333);
    expect(events).toEqual([{ type: 'poweroff', status: 0, outcome: 'fail' }]);
  });

  it('requests a reset on 0x7777 (Linux syscon-reboot)', () => {
    const { finisher, events } = setup();
    finisher.write(0, 4, 0x7777);
    expect(events).toEqual([{ type: 'reset' }]);
  });

  it('accepts the 16-bit writes OpenSBI uses', () => {
    const { finisher, events } = setup();
    finisher.write(0, 2, 0x5555);
    finisher.write(0, 2, 0x3333);
    finisher.write(0, 2, 0x7777);
    expect(events.map((event) => event.type)).toEqual(['poweroff', 'poweroff', 'reset']);
  });

  it('ignores other values, other offsets and byte writes, reporting each as a guest error', () => {
    const { finisher, events, guestErrors } = setup();
    finisher.write(0, 4, 0x1234);
    finisher.write(0, 4, 0x5554);
    finisher.write(4, 4, 0x5555);
    finisher.write(0, 1, 0x55);
    expect(events).toEqual([]);
    expect(guestErrors).toHaveLength(4);
    expect(guestErrors[0]).toContain('0x1234');
  });

  it('reads as 0', () => {
    const { finisher } = setup();
    finisher.write(0, 4, 0x1234);
    expect(finisher.read(0, 4)).toBe(0);
    expect(finisher.read(0x10, 2)).toBe(0);
  });
});
