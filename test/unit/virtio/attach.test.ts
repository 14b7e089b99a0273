// From -drive/-device options to devices in slots: QEMU's spellings, its slot order, and clear errors.
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NullIrqLine } from '../../../host/devices/device.js';
import {
  attachVirtioDevices, planVirtioDevices, virtioSlots, guestConsoleIsHvc, VirtioConfigError, VirtioMmioTransport,
  VirtioBlk, VirtioConsole, VirtioRng, VirtioBalloon, type VirtioMachine, type VirtioOptions,
} from '../../../host/devices/virtio/index.js';
import { DiskImageError } from '../../../host/block/index.js';
import { createTestVm, RAM } from './helpers.js';
import { MockSplitQueue } from '../../mocks/split_queue.js';
import { MockVirtioDriver } from '../../mocks/virtio_driver.js';

const opts = (o: Partial<VirtioOptions>): VirtioOptions => ({ drives: [], devices: [], ...o });
let dir: string | null = null;

afterEach(async () => {
  if (dir !== null) await rm(dir, { recursive: true, force: true });
  dir = null;
});

describe('planning devices from options', () => {
  it('pairs if=none drives with -device virtio-blk-device, and appends if=virtio drives', () => {
    const plan = planVirtioDevices(opts({
      drives: [{ file: 'a.img', if: 'virtio' }, { file: 'b.qcow2', if: 'none', id: 'd1', format: 'qcow2' }],
      devices: [{ driver: 'virtio-rng-device' }, { driver: 'virtio-blk-device', drive: 'd1', serial: 'S1' }],
    }));
    expect(plan.map((p) => p.kind)).toEqual(['rng', 'blk', 'blk']);
    expect(plan[1]).toMatchObject({ kind: 'blk', name: 'd1', serial: 'S1', snapshot: false });
    expect(plan[2]).toMatchObject({ kind: 'blk', name: 'virtio0' });
  });

  it('takes queue-size as QEMU does: a power of two from 4 to 1024', () => {
    const drives = [{ file: 'a', if: 'none', id: 'x' }];
    expect(planVirtioDevices(opts({ drives, devices: [{ driver: 'virtio-blk-device', drive: 'x', 'queue-size': '256' }] }))[0])
      .toMatchObject({ kind: 'blk', queueSize: 256 });
    expect(planVirtioDevices(opts({ drives, devices: [{ driver: 'virtio-blk-device', drive: 'x' }] }))[0]).not.toHaveProperty('queueSize');
    for (const bad of ['2', '100', '2048', '0x100', '']) {
      expect(() => planVirtioDevices(opts({ drives, devices: [{ driver: 'virtio-blk-device', drive: 'x', 'queue-size': bad }] })))
        .toThrow(`queue-size=${bad}: expected a power of two from 4 to 1024`);
    }
  });

  it('sends a console port where its -chardev says: stdio is the machine console, null nowhere, file a file', () => {
    const chardevs = [{ backend: 'null', id: 'n' }, { backend: 'stdio', id: 's', mux: 'on' }, { backend: 'file', id: 'f', path: '/tmp/x.log' },
      { backend: 'file', id: 'fa', path: '/tmp/y.log', append: 'on' }];
    const port = (chardev: string) => planVirtioDevices(opts({ chardevs, devices: [{ driver: 'virtio-serial-device' }, { driver: 'virtconsole', chardev }] }))[0];
    expect(port('n')).toEqual({ kind: 'console', connected: false, portless: false, chardev: 'null' });
    expect(port('s')).toEqual({ kind: 'console', connected: true, portless: false, chardev: 'stdio' });
    expect(port('f')).toEqual({ kind: 'console', connected: false, file: '/tmp/x.log', append: false, portless: false, chardev: 'file' });
    expect(port('fa')).toEqual({ kind: 'console', connected: false, file: '/tmp/y.log', append: true, portless: false, chardev: 'file' });
    expect(planVirtioDevices(opts({ chardevs, devices: [{ driver: 'virtio-console-device', chardev: 'n' }] }))).toEqual([{ kind: 'console', connected: false, chardev: 'null' }]);
  });

  it('takes QEMU\'s entropy objects for virtio-rng-device,rng=ID, and plans a balloon', () => {
    const objects = [{ 'qom-type': 'rng-builtin', id: 'r0' }, { 'qom-type': 'rng-random', id: 'r1', filename: '/dev/urandom' }];
    expect(planVirtioDevices(opts({
      objects, devices: [{ driver: 'virtio-rng-device', rng: 'r0' }, { driver: 'virtio-rng-device', rng: 'r1' }, { driver: 'virtio-balloon-device' }],
    }))).toEqual([{ kind: 'rng' }, { kind: 'rng', file: '/dev/urandom' }, { kind: 'balloon' }]);
  });

  it('makes NICs from -netdev user + virtio-net-device and from -nic user, with QEMU\'s MACs; -nic none adds nothing', () => {
    const plan = planVirtioDevices(opts({
      netdevs: [{ type: 'user', id: 'n0', restrict: 'on' }],
      devices: [{ driver: 'virtio-net-device', netdev: 'n0' }],
      nics: [{ type: 'none' }, { type: 'user', mac: '02:00:00:00:00:07', model: 'virtio-net-device' }, { type: 'user' }],
    }));
    expect(plan.map((p) => p.kind)).toEqual(['net', 'net', 'net']);
    expect(plan.map((p) => (p.kind === 'net' ? [...p.mac].map((b) => b.toString(16)).join(':') : ''))).toEqual([
      '52:54:0:12:34:56', '2:0:0:0:0:7', '52:54:0:12:34:57',
    ]);
    expect(plan.map((p) => p.kind === 'net' && p.network.type === 'user' && p.network.restrict)).toEqual([true, false, false]);
  });

  it('takes QEMU\'s hostfwd rules, several per user network, the guest address defaulting to 10.0.2.15\'s 0', () => {
    const plan = planVirtioDevices(opts({
      netdevs: [{ type: 'user', id: 'n0', hostfwd: 'tcp:127.0.0.1:2222-10.0.2.16:22\n::8080-:80' }],
      devices: [{ driver: 'virtio-net-device', netdev: 'n0' }],
      nics: [{ type: 'user', restrict: 'on', hostfwd: 'tcp::5555-:5' }],
    }));
    expect(plan.map((p) => (p.kind === 'net' && p.network.type === 'user' ? p.network.hostForwards : null))).toEqual([
      [
        { protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 2222, guestAddress: 0x0a000210, guestPort: 22 },
        { protocol: 'tcp', hostAddress: '', hostPort: 8080, guestAddress: 0, guestPort: 80 },
      ],
      [{ protocol: 'tcp', hostAddress: '', hostPort: 5555, guestAddress: 0, guestPort: 5 }],
    ]);
    expect(plan.map((p) => p.kind === 'net' && p.network.type === 'user' && p.network.restrict)).toEqual([false, true]);
  });

  it('takes QEMU 7.2\'s socket backends: -netdev stream and dgram in their QAPI spelling, the legacy socket in -netdev and -nic', () => {
    const plan = planVirtioDevices(opts({
      netdevs: [
        { type: 'stream', id: 's0', server: 'on', 'addr.type': 'inet', 'addr.host': '127.0.0.1', 'addr.port': '5000' },
        { type: 'stream', id: 's1', 'addr.type': 'unix', 'addr.path': '/tmp/vm.sock' },
        { type: 'dgram', id: 'd0', 'local.type': 'inet', 'local.host': '127.0.0.1', 'local.port': '5001', 'remote.type': 'inet', 'remote.host': '127.0.0.1', 'remote.port': '5002' },
        { type: 'dgram', id: 'd1', 'remote.type': 'inet', 'remote.host': '230.0.0.1', 'remote.port': '1234' },
      ],
      devices: ['s0', 's1', 'd0', 'd1'].map((netdev) => ({ driver: 'virtio-net-device', netdev })),
      nics: [{ type: 'socket', listen: ':5003', mac: '52:54:00:00:00:09' }, { type: 'socket', mcast: '230.0.0.1:1234', localaddr: '127.0.0.1' }],
    }));
    expect(plan.map((p) => (p.kind === 'net' ? p.network : null))).toEqual([
      { type: 'stream', server: true, address: { type: 'inet', host: '127.0.0.1', port: 5000 }, spelling: 'stream' },
      { type: 'stream', server: false, address: { type: 'unix', path: '/tmp/vm.sock' }, spelling: 'stream' },
      { type: 'dgram', multicast: false, local: { type: 'inet', host: '127.0.0.1', port: 5001 }, remote: { type: 'inet', host: '127.0.0.1', port: 5002 }, spelling: 'dgram' },
      { type: 'dgram', multicast: true, local: null, remote: { type: 'inet', host: '230.0.0.1', port: 1234 }, spelling: 'dgram' },
      { type: 'stream', server: true, address: { type: 'inet', host: '', port: 5003 }, spelling: 'socket' },
      { type: 'dgram', multicast: true, local: { type: 'inet', host: '127.0.0.1', port: 0 }, remote: { type: 'inet', host: '230.0.0.1', port: 1234 }, spelling: 'socket' },
    ]);
  });

  it('shares a host directory over virtio-9p by its mount tag, read-only when the -fsdev says so', () => {
    expect(planVirtioDevices(opts({
      fsdevs: [{ fsdriver: 'local', id: 'fs0', path: '/srv/share', security_model: 'none', readonly: 'on' }],
      devices: [{ driver: 'virtio-9p-device', fsdev: 'fs0', mount_tag: 'host0' }],
    }))).toEqual([{ kind: '9p', id: 'fs0', path: '/srv/share', readOnly: true, mountTag: 'host0', securityModel: 'none' }]);
  });

  it('gives the user network its TFTP directory and boot file (-netdev user,tftp=,bootfile=)', () => {
    const plan = planVirtioDevices(opts({
      netdevs: [{ type: 'user', id: 'n', tftp: '/srv/tftp', bootfile: 'pxelinux.0' }], devices: [{ driver: 'virtio-net-device', netdev: 'n' }],
    }));
    expect(plan[0]).toMatchObject({ kind: 'net', netdev: 'n', network: { type: 'user', tftp: '/srv/tftp', bootFile: 'pxelinux.0', restrict: false } });
    expect(planVirtioDevices(opts({ nics: [{ type: 'user', tftp: '/srv' }] }))[0]).toMatchObject({ kind: 'net', network: { type: 'user', tftp: '/srv' } });
  });

  it('lets a -device use a drive without if= (QEMU\'s if=ide, with no controller on virt), as Debian\'s wiki line does', () => {
    const plan = planVirtioDevices(opts({ drives: [{ file: 'debian.qcow2', format: 'qcow2', id: 'hd0' }], devices: [{ driver: 'virtio-blk-device', drive: 'hd0' }] }));
    expect(plan).toEqual([expect.objectContaining({ kind: 'blk', name: 'hd0' })]);
  });

  it('applies -snapshot to every drive', () => {
    const plan = planVirtioDevices(opts({ drives: [{ file: 'a.img', if: 'virtio' }], snapshot: true }));
    expect(plan[0]).toMatchObject({ snapshot: true });
  });

  it('joins virtconsole to the virtio-serial-device before it; virtio-console-device is both at once', () => {
    expect(planVirtioDevices(opts({ devices: [{ driver: 'virtio-serial-device' }, { driver: 'virtconsole' }] })))
      .toEqual([{ kind: 'console', connected: true, portless: false }]);
    expect(planVirtioDevices(opts({ devices: [{ driver: 'virtio-serial-device' }] }))).toEqual([{ kind: 'console', connected: false, portless: true }]);
    expect(planVirtioDevices(opts({ devices: [{ driver: 'virtio-console-device' }] }))).toEqual([{ kind: 'console', connected: true }]);
  });

  it.each([
    ['a drive without if= that no device uses', opts({ drives: [{ file: 'a.img' }] }), /no default disk interface/],
    ['a drive without if= or id=', opts({ drives: [{ file: 'a.img' }], devices: [] }), /no default disk interface/],
    ['if=ide', opts({ drives: [{ file: 'a.img', if: 'ide' }] }), /if=ide is not supported/],
    ['an unknown format', opts({ drives: [{ file: 'a.img', if: 'virtio', format: 'vmdk' }] }), /format=vmdk/],
    ['if=none without id', opts({ drives: [{ file: 'a.img', if: 'none' }] }), /needs id=ID/],
    ['duplicate drive ids', opts({ drives: [{ file: 'a', if: 'none', id: 'x' }, { file: 'b', if: 'none', id: 'x' }] }), /duplicate drive id 'x'/],
    ['a device for a missing drive', opts({ devices: [{ driver: 'virtio-blk-device', drive: 'nope' }] }), /no -drive with id=nope/],
    ['a device without drive=', opts({ devices: [{ driver: 'virtio-blk-device' }] }), /drive=ID is required/],
    ['a drive used twice', opts({
      drives: [{ file: 'a', if: 'none', id: 'x' }],
      devices: [{ driver: 'virtio-blk-device', drive: 'x' }, { driver: 'virtio-blk-device', drive: 'x' }],
    }), /already in use/],
    ['a device for an if=virtio drive', opts({ drives: [{ file: 'a', if: 'virtio', id: 'x' }], devices: [{ driver: 'virtio-blk-device', drive: 'x' }] }), /use if=none/],
    ['an unknown device', opts({ devices: [{ driver: 'virtio-gpu-device' }] }), /unknown or unsupported device/],
    ['a 9p device without fsdev=', opts({ devices: [{ driver: 'virtio-9p-device', mount_tag: 't' }] }), /fsdev=ID is required/],
    ['a 9p device without mount_tag=', opts({ fsdevs: [{ fsdriver: 'local', id: 'f', path: '/tmp', security_model: 'none' }], devices: [{ driver: 'virtio-9p-device', fsdev: 'f' }] }), /mount_tag=TAG is required/],
    ['a 9p device for a missing fsdev', opts({ devices: [{ driver: 'virtio-9p-device', fsdev: 'f', mount_tag: 't' }] }), /no -fsdev with id=f/],
    ['security_model=mapped', opts({ fsdevs: [{ fsdriver: 'local', id: 'f', path: '/tmp', security_model: 'mapped' }] }), /security_model=mapped: not supported/],
    ['an fsdev without path', opts({ fsdevs: [{ fsdriver: 'local', id: 'f', security_model: 'none' }] }), /path=DIR is required/],
    ['an fsdev driver wkvm has not', opts({ fsdevs: [{ fsdriver: 'proxy', id: 'f', sock_fd: '3' }] }), /unsupported fsdev driver/],
    ['a NIC without netdev=', opts({ devices: [{ driver: 'virtio-net-device' }] }), /netdev=ID is required/],
    ['a NIC for a missing netdev', opts({ devices: [{ driver: 'virtio-net-device', netdev: 'n9' }] }), /no -netdev with id=n9/],
    ['a netdev used twice', opts({ netdevs: [{ type: 'user', id: 'n' }], devices: [{ driver: 'virtio-net-device', netdev: 'n' }, { driver: 'virtio-net-device', netdev: 'n' }] }), /already in use/],
    ['a network backend wkvm has not', opts({ netdevs: [{ type: 'tap', id: 'n', ifname: 'tap0' }] }), /unsupported network backend 'tap'/],
    ['a stream without addr', opts({ netdevs: [{ type: 'stream', id: 'n' }] }), /-netdev stream: Parameter 'addr' is missing/],
    ['a stream without addr.host', opts({ netdevs: [{ type: 'stream', id: 'n', 'addr.type': 'inet', 'addr.port': '1' }] }), /Parameter 'addr.host' is missing/],
    ['a stream property QEMU has not', opts({ netdevs: [{ type: 'stream', id: 'n', bogus: '1' }] }), /Parameter 'bogus' is unexpected/],
    ['server=maybe', opts({ netdevs: [{ type: 'stream', id: 'n', server: 'maybe', 'addr.type': 'unix', 'addr.path': '/tmp/s' }] }), /Parameter 'server' expects 'on' or 'off'/],
    ['a stream over a file descriptor', opts({ netdevs: [{ type: 'stream', id: 'n', 'addr.type': 'fd' }] }), /addr.type=fd is not supported/],
    ['a dgram without local', opts({ netdevs: [{ type: 'dgram', id: 'n', 'remote.type': 'inet', 'remote.host': '127.0.0.1', 'remote.port': '1' }] }), /dgram requires local= parameter/],
    ['a unicast dgram without remote', opts({ netdevs: [{ type: 'dgram', id: 'n', 'local.type': 'inet', 'local.host': '127.0.0.1', 'local.port': '1' }] }), /requires remote parameter/],
    ['a dgram over Unix sockets', opts({ netdevs: [{ type: 'dgram', id: 'n', 'local.type': 'unix', 'local.path': '/tmp/a', 'remote.type': 'unix', 'remote.path': '/tmp/b' }] }), /Node has no Unix datagram sockets/],
    ['a legacy socket with two modes', opts({ netdevs: [{ type: 'socket', id: 'n', listen: ':1', connect: '127.0.0.1:1' }] }), /exactly one of listen=, connect=, mcast= or udp= is required/],
    ['connect= without a port', opts({ netdevs: [{ type: 'socket', id: 'n', connect: '127.0.0.1' }] }), /doesn't contain ':' separating host from port/],
    ['udp= without localaddr=', opts({ netdevs: [{ type: 'socket', id: 'n', udp: '127.0.0.1:1' }] }), /localaddr= is mandatory with udp=/],
    ['mcast= of a unicast address', opts({ netdevs: [{ type: 'socket', id: 'n', mcast: '127.0.0.1:1' }] }), /does not contain a multicast address/],
    ['a bad legacy port', opts({ nics: [{ type: 'socket', listen: ':abc' }] }), /port number 'abc' is invalid/],
    ['-nic stream', opts({ nics: [{ type: 'stream', 'addr.type': 'unix', 'addr.path': '/tmp/s' }] }), /-nic takes no stream backend/],
    ['a hostfwd protocol that is neither tcp nor udp', opts({ nics: [{ type: 'user', hostfwd: 'sctp::5353-:53' }] }), /hostfwd=sctp::5353-:53: the protocol is tcp or udp/],
    ['a bad hostfwd guest port', opts({ netdevs: [{ type: 'user', id: 'n', hostfwd: 'tcp::2222-:0' }] }), /bad guest port '0'/],
    ['a malformed hostfwd', opts({ nics: [{ type: 'user', hostfwd: '2222:22' }] }), /expected tcp:\[HOSTADDR\]:HOSTPORT/],
    ['guestfwd', opts({ nics: [{ type: 'user', guestfwd: 'tcp:10.0.2.100:80-cmd:x' }] }), /property 'guestfwd' is not supported/],
    ['an empty tftp=', opts({ nics: [{ type: 'user', tftp: '' }] }), /tftp= needs a directory/],
    ['a bootfile= DHCP cannot carry', opts({ nics: [{ type: 'user', tftp: '/srv', bootfile: 'x'.repeat(128) }] }), /bootfile= is longer than DHCP's 127 bytes/],
    ['a bad MAC', opts({ netdevs: [{ type: 'user', id: 'n' }], devices: [{ driver: 'virtio-net-device', netdev: 'n', mac: '52:54:00:12:34' }] }), /mac=52:54:00:12:34/],
    ['another NIC model', opts({ nics: [{ type: 'user', model: 'e1000' }] }), /model=e1000: the virt machine's NICs are virtio-net-device and virtio-net-pci/],
    ['an unknown property', opts({ devices: [{ driver: 'virtio-rng-device', 'queue-size': '8' }] }), /property 'queue-size'/],
    ['virtconsole alone', opts({ devices: [{ driver: 'virtconsole' }] }), /needs a virtio-serial-device/],
    ['two virtconsoles on one serial device', opts({ devices: [{ driver: 'virtio-serial-device' }, { driver: 'virtconsole' }, { driver: 'virtconsole' }] }), /one virtconsole/],
    ['rng= naming no object', opts({ devices: [{ driver: 'virtio-rng-device', rng: 'r9' }] }), /no -object rng-builtin or rng-random with id=r9/],
    ['an object wkvm has not', opts({ objects: [{ 'qom-type': 'memory-backend-ram', id: 'm' }] }), /-object memory-backend-ram: unsupported object type/],
    ['an object without id', opts({ objects: [{ 'qom-type': 'rng-builtin' }] }), /id=ID is required/],
    ['rng-random from another file', opts({ objects: [{ 'qom-type': 'rng-random', id: 'r', filename: '/etc/passwd' }] }), /filename=\/etc\/passwd/],
    ['chardev= naming no chardev', opts({ devices: [{ driver: 'virtio-serial-device' }, { driver: 'virtconsole', chardev: 'c9' }] }), /no -chardev with id=c9/],
    ['a chardev backend wkvm has not', opts({ chardevs: [{ backend: 'socket', id: 's', path: '/tmp/s' }] }), /-chardev socket: unsupported backend/],
    ['a file chardev without path', opts({ chardevs: [{ backend: 'file', id: 'f' }] }), /path=FILE is required/],
    ['duplicate chardev ids', opts({ chardevs: [{ backend: 'null', id: 'c' }, { backend: 'null', id: 'c' }] }), /duplicate chardev id 'c'/],
    ['nine devices', opts({ devices: Array.from({ length: 9 }, () => ({ driver: 'virtio-rng-device' })) }), /8 virtio-mmio slots/],
    ['a PCI device wkvm has not', opts({ devices: [{ driver: 'e1000' }] }), /-device e1000: unknown or unsupported device .*on the PCIe bus virtio-blk-pci, virtio-net-pci, virtio-rng-pci/],
    ['nvme', opts({ devices: [{ driver: 'nvme', drive: 'x', serial: 's' }] }), /-device nvme: unknown or unsupported device/],
    ['a PCI slot taken by an earlier device', opts({ devices: [{ driver: 'virtio-rng-pci' }, { driver: 'virtio-balloon-pci', addr: '1' }] }),
      /PCI: slot 1 function 0 not available for virtio-balloon-pci, in use by virtio-rng-pci/],
    ['the host bridge\'s slot', opts({ devices: [{ driver: 'virtio-rng-pci', addr: '0' }] }), /slot 0 function 0 not available for virtio-rng-pci, in use by gpex-root/],
    ['a slot past 0x1f', opts({ devices: [{ driver: 'virtio-rng-pci', addr: '20' }] }), /addr=20: expected SLOT\[\.FN\] in hex/],
    ['a function other than 0', opts({ devices: [{ driver: 'virtio-rng-pci', addr: '3.1' }] }), /only function 0/],
    ['another bus', opts({ devices: [{ driver: 'virtio-rng-pci', bus: 'pci.1' }] }), /bus=pci\.1: the virt machine's PCI bus is pcie\.0/],
    ['a transitional device', opts({ devices: [{ driver: 'virtio-rng-pci', 'disable-legacy': 'off' }] }), /modern-only/],
    ['addr= on an mmio device', opts({ devices: [{ driver: 'virtio-rng-device', addr: '3' }] }), /property 'addr' is not supported/],
    ['33 PCI devices', opts({ devices: Array.from({ length: 32 }, () => ({ driver: 'virtio-rng-pci' })) }), /no free PCI slot on pcie\.0/],
  ] as const)('refuses %s', (_name, options, message) => {
    expect(() => planVirtioDevices(options)).toThrow(VirtioConfigError);
    expect(() => planVirtioDevices(options)).toThrow(message);
  });
});

describe('planning virtio-pci devices', () => {
  const slots = (plan: ReturnType<typeof planVirtioDevices>) => plan.map((item) => item.pci?.slot ?? null);

  it('gives each -device its model with a PCI slot: addr= in hex, else the first free slot from 00:01.0 in command-line order', () => {
    const plan = planVirtioDevices(opts({
      drives: [{ file: 'a.img', if: 'none', id: 'hd0' }, { file: 'b.img', if: 'virtio' }],
      netdevs: [{ type: 'user', id: 'n0' }],
      devices: [
        { driver: 'virtio-rng-pci', addr: '0x2' },
        { driver: 'virtio-blk-pci', drive: 'hd0', serial: 'S1', 'queue-size': '128', bus: 'pcie.0' },
        { driver: 'virtio-net-pci', netdev: 'n0', mac: '52:54:00:00:00:01', addr: '10.0' },
        { driver: 'virtio-rng-device' },
        { driver: 'virtio-balloon-pci-non-transitional', 'disable-legacy': 'on' },
      ],
    }));
    expect(plan.map((item) => item.kind)).toEqual(['rng', 'blk', 'net', 'rng', 'balloon', 'blk']);
    // The if=virtio drive and the mmio rng stay on virtio-mmio.
    expect(slots(plan)).toEqual([2, 1, 16, null, 3, null]);
    expect(plan[1]).toMatchObject({ kind: 'blk', serial: 'S1', queueSize: 128, pci: { slot: 1 } });
  });

  it('counts only mmio devices against the eight virtio-mmio slots', () => {
    const plan = planVirtioDevices(opts({
      devices: [...Array.from({ length: 8 }, () => ({ driver: 'virtio-rng-device' })), ...Array.from({ length: 8 }, () => ({ driver: 'virtio-rng-pci' }))],
    }));
    expect(slots(plan)).toEqual([null, null, null, null, null, null, null, null, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('puts a virtconsole on its virtio-serial-pci, and -nic model=virtio-net-pci on the bus', () => {
    const plan = planVirtioDevices(opts({
      devices: [{ driver: 'virtio-serial-pci' }, { driver: 'virtconsole' }],
      nics: [{ type: 'user', model: 'virtio-net-pci' }, { type: 'user' }],
    }));
    expect(plan.map((item) => [item.kind, item.pci?.slot ?? null])).toEqual([['console', 1], ['net', 2], ['net', null]]);
    expect(plan[0]).toMatchObject({ kind: 'console', connected: true });
  });
});

describe('slots and the guest console', () => {
  it('fills slots from the top, as QEMU', () => {
    expect(virtioSlots(planVirtioDevices(opts({ devices: Array.from({ length: 8 }, () => ({ driver: 'virtio-rng-device' })) })))).toEqual([7, 6, 5, 4, 3, 2, 1, 0]);
  });

  it('puts a device with bus=virtio-mmio-bus.N on transport N (0x10001000 + N * 0x1000), the others from the top around it', () => {
    const plan = planVirtioDevices(opts({
      drives: [{ file: 'a', if: 'none', id: 'x0' }, { file: 'b', if: 'virtio' }],
      devices: [{ driver: 'virtio-rng-device', bus: 'virtio-mmio-bus.7' }, { driver: 'virtio-blk-device', drive: 'x0', bus: 'virtio-mmio-bus.0' },
        { driver: 'virtio-balloon-device' }],
    }));
    expect(plan.map((item) => item.kind)).toEqual(['rng', 'blk', 'balloon', 'blk']);
    expect(virtioSlots(plan)).toEqual([7, 0, 6, 5]);
    expect(() => planVirtioDevices(opts({ devices: [{ driver: 'virtio-rng-device', bus: 'virtio-mmio-bus.3' }, { driver: 'virtio-balloon-device', bus: 'virtio-mmio-bus.3' }] })))
      .toThrow(/Bus 'virtio-mmio-bus.3' is full/);
    expect(() => planVirtioDevices(opts({ devices: [{ driver: 'virtio-rng-device', bus: 'virtio-mmio-bus.8' }] }))).toThrow(/Bus 'virtio-mmio-bus.8' not found/);
    expect(() => planVirtioDevices(opts({ devices: [{ driver: 'virtio-rng-device', bus: 'pcie.0' }] }))).toThrow(/Bus 'pcie.0' not found/);
  });

  it('takes the last console= as the guest console', () => {
    expect(guestConsoleIsHvc('console=ttyS0 console=hvc1')).toBe(true);
    expect(guestConsoleIsHvc('console=hvc1 console=ttyS0')).toBe(false);
    expect(guestConsoleIsHvc('root=/dev/vda')).toBe(false);
    expect(guestConsoleIsHvc(undefined)).toBe(false);
  });
});

describe('attaching to a machine', () => {
  async function fakeMachine(append?: string) {
    const t = await createTestVm();
    const written: number[] = [];
    let route: ((bytes: Uint8Array) => void) | null = null;
    const machine: VirtioMachine = {
      virtioSlots: Array.from({ length: 8 }, (_, slot) => new VirtioMmioTransport({ slot, memory: t.vmem, irq: new NullIrqLine() })),
      config: { append, console: { write: (bytes) => written.push(...bytes) } },
      routeConsoleInput: (handler) => (route = handler),
    };
    return { machine, written, route: () => route, vm: t.vm };
  }

  it('plugs devices into slots 7, 6, 5 and routes console input to an hvc guest console', async () => {
    dir = await mkdtemp(join(tmpdir(), 'wkvm-attach-'));
    const image = join(dir, 'a.img');
    await writeFile(image, new Uint8Array(4096));
    const { machine, route } = await fakeMachine('console=hvc1');
    const attached = await attachVirtioDevices(machine, opts({
      drives: [{ file: image, if: 'none', id: 'd0', format: 'raw', readonly: true }],
      devices: [{ driver: 'virtio-blk-device', drive: 'd0' }, { driver: 'virtio-rng-device' }, { driver: 'virtio-console-device' }],
    }));
    expect(machine.virtioSlots[7]!.plugged).toBeInstanceOf(VirtioBlk);
    expect(machine.virtioSlots[6]!.plugged).toBeInstanceOf(VirtioRng);
    expect(machine.virtioSlots[5]!.plugged).toBeInstanceOf(VirtioConsole);
    expect(machine.virtioSlots[4]!.plugged).toBeNull();
    expect(machine.virtioSlots[7]!.read(0x100, 4)).toBe(8); // 4096 bytes = 8 sectors
    expect(route()).not.toBeNull();
    await attached.close();
  });

  it('leaves console input on the UART when the guest console is not hvc', async () => {
    const { machine, route } = await fakeMachine('console=ttyS0');
    const attached = await attachVirtioDevices(machine, opts({ devices: [{ driver: 'virtio-console-device' }] }));
    expect(route()).toBeNull();
    await attached.close();
  });

  it('writes a file chardev\'s port output to its file, and plugs a balloon', async () => {
    dir = await mkdtemp(join(tmpdir(), 'wkvm-attach-'));
    const log = join(dir, 'port.log');
    const { machine, written, vm } = await fakeMachine('console=ttyS0');
    const attached = await attachVirtioDevices(machine, opts({
      chardevs: [{ backend: 'file', id: 'f', path: log }],
      devices: [{ driver: 'virtio-serial-device' }, { driver: 'virtconsole', chardev: 'f' }, { driver: 'virtio-balloon-device' }],
    }));
    expect(machine.virtioSlots[7]!.plugged).toBeInstanceOf(VirtioConsole);
    expect(machine.virtioSlots[6]!.plugged).toBeInstanceOf(VirtioBalloon);
    // The guest transmits on the port's queue 1.
    const driver = new MockVirtioDriver(machine.virtioSlots[7]!);
    const rx = MockSplitQueue.at(vm, RAM, 8);
    const tx = MockSplitQueue.at(vm, RAM + 0x1000, 8);
    driver.bringUp([rx, tx]);
    vm.guestMemory(RAM + 0x10000, 11).set(new TextEncoder().encode('to the file'));
    tx.addChain([{ addr: RAM + 0x10000, len: 11 }]);
    driver.notify(1);
    await attached.close();
    expect(await readFile(log, 'utf8')).toBe('to the file');
    expect(written).toEqual([]);
  });

  it('plugs -pci devices through the machine\'s PCI bus in their planned slots', async () => {
    const { machine } = await fakeMachine();
    const plugged: Array<[string, number]> = [];
    const withPci: VirtioMachine = { ...machine, plugVirtioPci: (device, { slot }) => (plugged.push([device.name, slot]), slot) };
    const attached = await attachVirtioDevices(withPci, opts({
      devices: [{ driver: 'virtio-rng-pci', addr: '5' }, { driver: 'virtio-rng-device' }, { driver: 'virtio-balloon-pci' }],
    }));
    expect(plugged).toEqual([['virtio-rng', 5], ['virtio-balloon', 1]]);
    expect(machine.virtioSlots[7]!.plugged).toBeInstanceOf(VirtioRng);
    expect(machine.virtioSlots[6]!.plugged).toBeNull();
    await attached.close();
    await expect(attachVirtioDevices(machine, opts({ devices: [{ driver: 'virtio-rng-pci' }] }))).rejects.toThrow(/has no PCI bus/);
  });

  it('reports a missing image as a DiskImageError', async () => {
    const { machine } = await fakeMachine();
    await expect(attachVirtioDevices(machine, opts({ drives: [{ file: '/nonexistent/x.img', if: 'virtio' }] }))).rejects.toThrow(DiskImageError);
  });
});
