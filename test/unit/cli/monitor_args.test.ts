import { describe, it, expect } from 'vitest';
import { parseMonitorEndpoint, parseRunArgs, UsageError } from '../../../host/cli/args.js';

describe('-monitor and -qmp endpoints, in QEMU\'s spellings', () => {
  it('reads stdio, tcp: and unix: servers, with wait=off or the old nowait', () => {
    expect(parseMonitorEndpoint('qmp', 'stdio')).toEqual({ kind: 'stdio' });
    expect(parseMonitorEndpoint('qmp', 'tcp:127.0.0.1:4444,server=on,wait=off')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 4444, wait: false });
    expect(parseMonitorEndpoint('monitor', 'tcp::4444,server,nowait')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 4444, wait: false });
    expect(parseMonitorEndpoint('qmp', 'unix:/tmp/q.sock,server=on')).toEqual({ kind: 'unix', path: '/tmp/q.sock', wait: true });
    expect(parseMonitorEndpoint('qmp', 'unix:/tmp/q.sock,server,wait=no')).toEqual({ kind: 'unix', path: '/tmp/q.sock', wait: false });
  });

  it('refuses client mode, unknown backends and flags', () => {
    expect(() => parseMonitorEndpoint('qmp', 'tcp:localhost:4444')).toThrow(/does not connect out: add server=on/);
    expect(() => parseMonitorEndpoint('monitor', 'vc')).toThrow(UsageError);
    expect(() => parseMonitorEndpoint('qmp', 'unix:/x,server,telnet')).toThrow(/'telnet' is not supported/);
    expect(() => parseMonitorEndpoint('qmp', 'tcp::99999,server')).toThrow(/out of range/);
  });

  it('-monitor none, several -qmp, -name and -serial mon:stdio', () => {
    const options = parseRunArgs(['-monitor', 'none', '-qmp', 'unix:/a,server,nowait', '-qmp', 'tcp::1,server=on,wait=off', '-name', 'guest=vm1,debug-threads=on', '-serial', 'mon:stdio']);
    expect(options.monitor).toBe('none');
    expect(options.qmp).toHaveLength(2);
    expect(options.name).toBe('vm1');
    expect(options.serial).toEqual({ kind: 'stdio', withMonitor: true });
    expect(parseRunArgs(['-name', 'plain']).name).toBe('plain');
  });
});
