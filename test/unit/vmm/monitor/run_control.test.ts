import { describe, it, expect } from 'vitest';
import { RunControl, type VmEvent } from '../../../../host/vmm/run_control.js';
import { FakeMachine } from './fake_vm.js';

function recorded(control: RunControl): VmEvent[] {
  const events: VmEvent[] = [];
  control.subscribe((event) => events.push(event));
  return events;
}

describe('RunControl: the VM run state', () => {
  it('stop holds the harts and freezes guest time; cont resumes it where it stopped', async () => {
    const control = new RunControl();
    const machine = new FakeMachine();
    control.attach(machine);
    const events = recorded(control);
    await control.stop();
    expect(control.status).toBe('paused');
    expect(machine.pauses).toBe(1);
    machine.clock = 99_999n; // host time went on while paused
    await control.cont();
    expect(control.status).toBe('running');
    expect(machine.resumes).toBe(1);
    expect(machine.clockSets).toEqual([1000n]); // the guest reads the time it stopped at
    expect(events.map((e) => e.event)).toEqual(['STOP', 'RESUME']);
  });

  it('a second stop or cont changes nothing and reports nothing, as QEMU', async () => {
    const control = new RunControl();
    const machine = new FakeMachine();
    control.attach(machine);
    const events = recorded(control);
    await control.cont();
    await control.stop();
    await control.stop();
    expect(machine.pauses).toBe(1);
    expect(events.map((e) => e.event)).toEqual(['STOP']);
  });

  it('runs a cont that arrives while a stop is still holding harts after that stop', async () => {
    const control = new RunControl();
    let release: () => void = () => {};
    const machine = new FakeMachine();
    machine.pauseHarts = () => new Promise<void>((resolve) => (release = resolve));
    control.attach(machine);
    const events = recorded(control);
    const stopping = control.stop();
    const continuing = control.cont();
    await Promise.resolve();
    expect(events).toEqual([]);
    release();
    await Promise.all([stopping, continuing]);
    expect(events.map((e) => e.event)).toEqual(['STOP', 'RESUME']);
    expect(control.status).toBe('running');
  });

  it('system_reset ends the run as a reset; a paused VM comes back in prelaunch', async () => {
    const control = new RunControl();
    const machine = new FakeMachine();
    control.attach(machine);
    const events = recorded(control);
    await control.stop();
    control.systemReset();
    expect(machine.ended).toEqual([{ kind: 'reset' }]);
    expect(control.status).toBe('prelaunch');
    expect(control.afterRun({ kind: 'reset' })).toEqual({ next: 'reboot' });
    expect(events).toEqual([{ event: 'STOP' }, { event: 'RESET', data: { guest: false, reason: 'host-qmp-system-reset' } }]);
  });

  it('quit reports SHUTDOWN at once and ends the VMM with status 0, even a machine attached later', () => {
    const control = new RunControl();
    const events = recorded(control);
    control.quit('host-qmp-quit');
    expect(events).toEqual([{ event: 'SHUTDOWN', data: { guest: false, reason: 'host-qmp-quit' } }]);
    const late = new FakeMachine();
    control.attach(late);
    expect(late.ended).toEqual([{ kind: 'poweroff', status: 0 }]);
    expect(control.afterRun({ kind: 'poweroff', status: 0 })).toEqual({ next: 'exit', status: 0 });
    control.quit('host-signal');
    expect(events).toHaveLength(1);
  });

  it('reports what the guest did: poweroff, reboot, and reboot under -no-reboot', () => {
    const control = new RunControl();
    const events = recorded(control);
    expect(control.afterRun({ kind: 'reset' })).toEqual({ next: 'reboot' });
    expect(control.afterRun({ kind: 'poweroff', status: 3 })).toEqual({ next: 'exit', status: 3 });
    const noReboot = new RunControl({ noReboot: true });
    const noRebootEvents = recorded(noReboot);
    expect(noReboot.afterRun({ kind: 'reset' })).toEqual({ next: 'exit', status: 0 });
    expect(events).toEqual([
      { event: 'RESET', data: { guest: true, reason: 'guest-reset' } },
      { event: 'SHUTDOWN', data: { guest: true, reason: 'guest-shutdown' } },
    ]);
    expect(noRebootEvents).toEqual([{ event: 'SHUTDOWN', data: { guest: true, reason: 'guest-reset' } }]);
  });

  it('system_powerdown only reports POWERDOWN (QEMU 7.2\'s riscv virt has no power button)', () => {
    const control = new RunControl();
    const machine = new FakeMachine();
    control.attach(machine);
    const events = recorded(control);
    control.systemPowerdown();
    expect(events).toEqual([{ event: 'POWERDOWN' }]);
    expect(machine.ended).toEqual([]);
    expect(control.status).toBe('running');
  });

  it('starts held in prelaunch with -S, and wakes whoever waits once continued', async () => {
    const control = new RunControl({ startPaused: true });
    expect(control.status).toBe('prelaunch');
    let woken = 0;
    control.onceRunning(() => woken++);
    const forgotten = control.onceRunning(() => woken += 100);
    forgotten();
    await control.cont();
    expect(woken).toBe(1);
  });
});
