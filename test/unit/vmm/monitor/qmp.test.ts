// QMP sessions over a fake VM: the exchanges are the ones qemu-system-riscv64 7.2 gave for the same
// input (JSON spacing and key order included), but for wkvm's version.
import { describe, it, expect } from 'vitest';
import { QmpSession } from '../../../../host/vmm/monitor/qmp.js';
import { RunControl } from '../../../../host/vmm/run_control.js';
import { FakeMachine, fakeTarget } from './fake_vm.js';

function client(options: Parameters<typeof fakeTarget>[0] = {}) {
  const out: string[] = [];
  const target = fakeTarget(options);
  // A fixed clock: 1796689700.458136 s.
  const session = new QmpSession(target, { write: (text) => out.push(text), now: () => 1796689700458136 });
  const send = async (text: string) => {
    out.length = 0;
    await session.receive(text);
    return out.join('');
  };
  return { session, send, out };
}

describe('QMP', () => {
  it('greets with the version and the oob capability, and refuses commands before qmp_capabilities', async () => {
    const { session, send } = client();
    expect(session.greeting()).toBe('{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "wkvm 0.1.0"}, "capabilities": ["oob"]}}\r\n');
    expect(await send('{"execute":"query-status","id":1}\n')).toBe(
      '{"id": 1, "error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with \'qmp_capabilities\'"}}\r\n');
    expect(await send('{"execute":"qmp_capabilities","id":"c"}\r\n')).toBe('{"return": {}, "id": "c"}\r\n');
    expect(await send('{"execute":"qmp_capabilities"}\n')).toBe(
      '{"error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}}\r\n');
  });

  it('runs stop, query-status and cont with their events, echoing any id', async () => {
    const control = new RunControl();
    control.attach(new FakeMachine());
    const { send } = client({ control });
    await send('{"execute":"qmp_capabilities"}');
    expect(await send('{"execute":"query-status","id":{"x":[1,2]}}')).toBe(
      '{"return": {"status": "running", "singlestep": false, "running": true}, "id": {"x": [1, 2]}}\r\n');
    expect(await send('{"execute":"stop","id":2}')).toBe(
      '{"timestamp": {"seconds": 1796689700, "microseconds": 458136}, "event": "STOP"}\r\n{"return": {}, "id": 2}\r\n');
    expect(await send('{"execute":"query-status"}')).toBe('{"return": {"status": "paused", "singlestep": false, "running": false}}\r\n');
    expect(await send('{"execute":"stop"}')).toBe('{"return": {}}\r\n');
    expect(await send('{"execute":"cont"}')).toBe(
      '{"timestamp": {"seconds": 1796689700, "microseconds": 458136}, "event": "RESUME"}\r\n{"return": {}}\r\n');
    expect(await send('{"execute":"system_reset"}')).toBe(
      '{"timestamp": {"seconds": 1796689700, "microseconds": 458136}, "event": "RESET", "data": {"guest": false, "reason": "host-qmp-system-reset"}}\r\n{"return": {}}\r\n');
    expect(await send('{"execute":"quit","id":"q"}')).toBe(
      '{"timestamp": {"seconds": 1796689700, "microseconds": 458136}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}\r\n{"return": {}, "id": "q"}\r\n');
  });

  it('sends no events before negotiation, and none after the client closed', async () => {
    const control = new RunControl();
    const { session, out } = client({ control });
    control.systemPowerdown();
    expect(out).toEqual([]);
    await session.receive('{"execute":"qmp_capabilities"}');
    session.close();
    out.length = 0;
    control.systemPowerdown();
    expect(out).toEqual([]);
  });

  it('answers the queries', async () => {
    const { send } = client({ name: 'vm1', harts: 2 });
    await send('{"execute":"qmp_capabilities"}');
    expect(await send('{"execute":"query-version"}')).toBe('{"return": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "wkvm 0.1.0"}}\r\n');
    expect(await send('{"execute":"query-name"}')).toBe('{"return": {"name": "vm1"}}\r\n');
    expect(await send('{"execute":"query-cpus-fast"}')).toBe('{"return": [' +
      '{"thread-id": 4242, "props": {"core-id": 0}, "qom-path": "/machine/soc0/harts[0]", "cpu-index": 0, "target": "riscv64"}, ' +
      '{"thread-id": 4242, "props": {"core-id": 1}, "qom-path": "/machine/soc0/harts[1]", "cpu-index": 1, "target": "riscv64"}]}\r\n');
    const block = JSON.parse(await send('{"execute":"query-block"}')) as { return: Array<{ device: string; inserted: { file: string; drv: string; ro: boolean } }> };
    expect(block.return.map((d) => [d.device, d.inserted.file, d.inserted.drv, d.inserted.ro])).toEqual([['hd0', '/images/disk.qcow2', 'qcow2', false]]);
    const commands = JSON.parse(await send('{"execute":"query-commands"}')) as { return: Array<{ name: string }> };
    expect(commands.return.map((c) => c.name)).toEqual(expect.arrayContaining(['qmp_capabilities', 'query-status', 'stop', 'cont', 'quit', 'human-monitor-command']));
    expect(await send('{"execute":"query-name"}')).toContain('vm1');
    const unnamed = client();
    await unnamed.send('{"execute":"qmp_capabilities"}');
    expect(await unnamed.send('{"execute":"query-name"}')).toBe('{"return": {}}\r\n');
  });

  it('runs HMP commands for human-monitor-command, keeping the format memory between them', async () => {
    const { send } = client();
    await send('{"execute":"qmp_capabilities"}');
    expect(await send('{"execute":"human-monitor-command","arguments":{"command-line":"info status"}}')).toBe('{"return": "VM status: running\\r\\n"}\r\n');
    expect(await send('{"execute":"human-monitor-command","arguments":{"command-line":"foo"}}')).toBe('{"return": "unknown command: \'foo\'\\r\\n"}\r\n');
    await send('{"execute":"human-monitor-command","arguments":{"command-line":"p/x 255"}}');
    expect(await send('{"execute":"human-monitor-command","arguments":{"command-line":"p 0x10 * 2"}}')).toBe('{"return": "0x20\\r\\n"}\r\n');
    const registers = JSON.parse(await send('{"execute":"human-monitor-command","arguments":{"command-line":"info registers"},"id":9}')) as { return: string; id: number };
    expect(registers.id).toBe(9);
    expect(registers.return).toMatch(/^\r\nCPU#0\r\n pc       ffffffff80002ef0\r\n/);
  });

  it('gives QEMU\'s error classes and messages for bad input, and goes on', async () => {
    const { send } = client();
    await send('{"execute":"qmp_capabilities"}');
    const errors: Array<[string, string]> = [
      ['[1,2]\n', '{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}\r\n'],
      ['"str"\n', '{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}\r\n'],
      ['{"id":3}', '{"id": 3, "error": {"class": "GenericError", "desc": "QMP input lacks member \'execute\'"}}\r\n'],
      ['{"execute":5}', '{"error": {"class": "GenericError", "desc": "QMP input member \'execute\' must be a string"}}\r\n'],
      ['{"execute":"stop","extra":1}', '{"error": {"class": "GenericError", "desc": "QMP input member \'extra\' is unexpected"}}\r\n'],
      ['{"execute":"stop","id":7,"arguments":[]}', '{"id": 7, "error": {"class": "GenericError", "desc": "QMP input member \'arguments\' must be an object"}}\r\n'],
      ['{"execute":"nope","id":5}', '{"id": 5, "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}\r\n'],
      ['{"execute":"query-status","arguments":{"x":1}}', '{"error": {"class": "GenericError", "desc": "Parameter \'x\' is unexpected"}}\r\n'],
      ['{"execute":"human-monitor-command"}', '{"error": {"class": "GenericError", "desc": "Parameter \'command-line\' is missing"}}\r\n'],
      ['{"execute":"human-monitor-command","arguments":{"command-line":5}}', '{"error": {"class": "GenericError", "desc": "Invalid parameter type for \'command-line\', expected: string"}}\r\n'],
      ['{bad}\n', '{"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword \'bad\'"}}\r\n'],
      ['}\n', '{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}\r\n'],
      ['{"execute":"constructor"}', '{"error": {"class": "CommandNotFound", "desc": "The command constructor has not been found"}}\r\n'],
    ];
    for (const [input, reply] of errors) expect(await send(input), input).toBe(reply);
    expect(await send('{"execute":"query-status","id":12}')).toContain('"id": 12');
  });

  it('reads objects however the stream splits them, several in one chunk or one over several', async () => {
    const { send, session, out } = client();
    expect(await send('{"execute":"qmp_capabilities"}{"execute":"query-name","id":1}')).toBe('{"return": {}}\r\n{"return": {}, "id": 1}\r\n');
    out.length = 0;
    await session.receive('{"execute":"query-name",');
    await session.receive('"id":"a}{"}');
    expect(out.join('')).toBe('{"return": {}, "id": "a}{"}\r\n');
    expect(await send('{bad json\n')).toBe('');
    expect(await send('\n}\n')).toBe('{"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword \'bad\'"}}\r\n');
  });
});
