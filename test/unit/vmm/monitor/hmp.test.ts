// The human monitor's commands and output formats, over a fake VM. Expected texts are what
// qemu-system-riscv64 7.2 printed for the same commands (formats, not values).
import { describe, it, expect } from 'vitest';
import { HmpSession } from '../../../../host/vmm/monitor/hmp.js';
import { HmpTerminal } from '../../../../host/vmm/monitor/hmp_terminal.js';
import { RunControl } from '../../../../host/vmm/run_control.js';
import { FakeMachine, fakeTarget } from './fake_vm.js';

function session(options: Parameters<typeof fakeTarget>[0] = {}) {
  const target = fakeTarget(options);
  return { target, hmp: new HmpSession(target) };
}

describe('HMP commands', () => {
  it('info status follows stop and cont; unknown commands are named as QEMU names them', async () => {
    const control = new RunControl();
    control.attach(new FakeMachine());
    const { hmp } = session({ control });
    expect(await hmp.execute('info status')).toBe('VM status: running\r\n');
    expect(await hmp.execute('stop')).toBe('');
    expect(await hmp.execute('info status')).toBe('VM status: paused\r\n');
    expect(await hmp.execute('c')).toBe('');
    expect(await hmp.execute('info status')).toBe('VM status: running\r\n');
    expect(await hmp.execute('foo')).toBe("unknown command: 'foo'\r\n");
    expect(await hmp.execute('info foo')).toBe("unknown command: 'info foo'\r\n");
    expect(await hmp.execute('stop extra')).toBe('stop|s: extraneous characters at the end of line\r\nTry "help stop" for more information\r\n');
    expect(await hmp.execute('')).toBe('');
  });

  it('-S: prelaunch until cont', async () => {
    const { hmp } = session({ control: new RunControl({ startPaused: true }) });
    expect(await hmp.execute('info status')).toBe('VM status: paused (prelaunch)\r\n');
  });

  it('info registers: pc, the CSRs one a line, x and f registers four a line, as QEMU\'s riscv dump', async () => {
    const { hmp } = session();
    const text = await hmp.execute('info registers');
    const lines = text.split('\r\n');
    expect(lines[0]).toBe('');
    expect(lines[1]).toBe('CPU#0');
    expect(lines[2]).toBe(' pc       ffffffff80002ef0');
    expect(lines).toContain(' mhartid  0000000000000000');
    expect(lines).toContain(' satp     90000000000809db');
    expect(lines).toContain(' x0/zero  0000000000000000 x1/ra    0000000000001111 x2/sp    0000000000002222 x3/gp    0000000000003333');
    expect(lines).toContain(' x28/t3   000000000001dddc x29/t4   000000000001eeed x30/t5   000000000001fffe x31/t6   000000000002110f');
    expect(lines).toContain(' f0/ft0   0000000000000000 f1/ft1   0000000000000000 f2/ft2   0000000000000000 f3/ft3   0000000000000000');
    expect(text.endsWith('\r\n')).toBe(true);
  });

  it('cpu N picks the hart info registers and x show; info cpus marks it', async () => {
    const { hmp } = session({ harts: 2 });
    expect(await hmp.execute('info cpus')).toBe('* CPU #0: thread_id=4242\r\n  CPU #1: thread_id=4242\r\n');
    expect(await hmp.execute('cpu 1')).toBe('');
    expect(await hmp.execute('info cpus')).toBe('  CPU #0: thread_id=4242\r\n* CPU #1: thread_id=4242\r\n');
    expect(await hmp.execute('info registers')).toContain('CPU#1\r\n pc       ffffffff80002ef1');
    expect((await hmp.execute('info registers -a')).match(/CPU#\d/g)).toEqual(['CPU#0', 'CPU#1']);
    expect(await hmp.execute('cpu 7')).toBe('invalid CPU index\r\nTry "help cpu" for more information\r\n');
  });

  it('xp and x dump memory in QEMU\'s columns, 16 bytes a line (8 for bytes), physical and virtual', async () => {
    const { hmp } = session();
    expect(await hmp.execute('xp /5xw 0x80000000')).toBe(
      '0000000080000000: 0x09060300 0x15120f0c 0x211e1b18 0x2d2a2724\r\n0000000080000010: 0x39363330\r\n');
    expect(await hmp.execute('xp /10xb 0x80000000')).toBe(
      '0000000080000000: 0x00 0x03 0x06 0x09 0x0c 0x0f 0x12 0x15\r\n0000000080000008: 0x18 0x1b\r\n');
    expect(await hmp.execute('x /2xg 0xffffffff80000000')).toBe('ffffffff80000000: 0x15120f0c09060300 0x2d2a2724211e1b18\r\n');
    expect(await hmp.execute('xp /6ub 0x80000000')).toBe('0000000080000000:   0   3   6   9  12  15\r\n');
    expect(await hmp.execute('xp /3dh 0x80000000')).toBe('0000000080000000:   768  2310  3852\r\n');
    expect(await hmp.execute('xp /2og 0x80000000')).toBe('0000000080000000: 0124220360601101401400 0264521162204107415430\r\n');
    expect(await hmp.execute('xp /2oh 0x80000000')).toBe('0000000080000000:  01400  04406\r\n');
  });

  it('what x/xp leave out comes from the last use; unreadable memory and bad input say so', async () => {
    const { hmp } = session();
    await hmp.execute('xp /2xh 0x80000000');
    expect(await hmp.execute('xp 0x80000004')).toBe('0000000080000004: 0x0f0c\r\n'); // count 1, size h kept
    expect(await hmp.execute('xp /2xw 0x7000000000')).toBe('0000007000000000: Cannot access memory\r\n');
    expect(await hmp.execute('xp /20xw 0x80000000')).toMatch(/0000000080000040: Cannot access memory\r\n$/);
    expect(await hmp.execute('xp')).toBe('unexpected end of expression\r\nTry "help xp" for more information\r\n');
    expect(await hmp.execute('xp /2qw 0x80000000')).toBe('invalid char in format: \'q\'\r\nTry "help xp" for more information\r\n');
    expect(await hmp.execute('xp /2xw zz')).toBe('invalid char \'z\' in expression\r\nTry "help xp" for more information\r\n');
    expect(await hmp.execute('x /3i $pc')).toMatch(/^format 'i' \(disassembly\) is not supported/);
  });

  it('print evaluates expressions in the last format', async () => {
    const { hmp } = session();
    expect(await hmp.execute('p/x 255')).toBe('0xff\r\n');
    expect(await hmp.execute('p 0x10 * 2')).toBe('0x20\r\n');
    expect(await hmp.execute('print /d (1 + 2) * -3')).toBe('-9\r\n');
    expect(await hmp.execute('p $pc')).toBe('unknown register\r\nTry "help print" for more information\r\n');
  });

  it('help, info version, info name, info block, info mtree', async () => {
    const { hmp } = session({ name: 'vm1' });
    expect(await hmp.execute('help stop')).toBe('stop|s  -- stop emulation\r\n');
    expect(await hmp.execute('help')).toContain('xp /fmt addr -- physical memory dump starting at \'addr\'\r\n');
    expect(await hmp.execute('info')).toContain('info status  -- show the current VM status (running|paused)\r\n');
    expect(await hmp.execute('info version')).toBe('7.2.0wkvm 0.1.0\r\n');
    expect(await hmp.execute('info name')).toBe('vm1\r\n');
    expect(await hmp.execute('info block')).toBe('hd0: /images/disk.qcow2 (qcow2)\r\n    Attached to:      /machine/peripheral-anon/device[0]\r\n    Cache mode:       writeback\r\n');
    const mtree = await hmp.execute('info mtree');
    expect(mtree).toContain('address-space: memory\r\n  0000000000000000-ffffffffffffffff (prio 0, i/o): system\r\n');
    expect(mtree).toContain('    0000000010000000-00000000100000ff (prio 0, i/o): serial\r\n');
    expect(mtree).toContain('    0000000080000000-0000000087ffffff (prio 0, ram): riscv_virt_board.ram\r\n');
  });

  it('stop, system_reset, system_powerdown and quit reach the run state', async () => {
    const control = new RunControl();
    const machine = new FakeMachine();
    control.attach(machine);
    const events: string[] = [];
    control.subscribe((event) => events.push(event.event));
    const { hmp } = session({ control });
    await hmp.execute('system_powerdown');
    await hmp.execute('system_reset');
    await hmp.execute('q');
    expect(events).toEqual(['POWERDOWN', 'RESET', 'SHUTDOWN']);
    expect(machine.ended).toEqual([{ kind: 'reset' }, { kind: 'poweroff', status: 0 }]);
  });
});

describe('the monitor\'s terminal', () => {
  it('greets once, echoes, edits, runs each line and prompts again', async () => {
    let screen = '';
    const terminal = new HmpTerminal(fakeTarget(), (text) => (screen += text));
    terminal.focus();
    await terminal.input(new TextEncoder().encode('info statux\x7fs\r\n'));
    terminal.focus();
    await terminal.input(new TextEncoder().encode('\x1b[Ainfo name\n'));
    expect(screen).toBe("QEMU 7.2.0 monitor - type 'help' for more information\r\n(qemu) info statux\b \bs\r\nVM status: running\r\n(qemu) (qemu) info name\r\n(qemu) ");
  });
});
