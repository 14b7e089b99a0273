// QEMU's socket network backends with the real QEMU 7.2 as the peer: the shared guest boots on wkvm and
// on qemu-system-riscv64, the two NICs joined by a stream (one VM listens, the other connects) or by UDP
// datagrams, each guest with a static address on 10.0.5.0/24, and each pings the other with busybox.
import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestConsole } from '../helpers/guest_console.js';
import { REPO, runWkvm, SHARED_GUEST, WKVM } from '../helpers/wkvm_cli.js';

const hasQemu = spawnSync('sh', ['-c', 'command -v qemu-system-riscv64']).status === 0;
const PROMPT = 'root@rvguest:/# ';
const QEMU_GUEST = { ip: '10.0.5.1', mac: '52:54:00:00:05:01' };
const WKVM_GUEST = { ip: '10.0.5.2', mac: '52:54:00:00:05:02' };

const append = (ip: string): string => `console=ttyS0 earlycon=sbi guest.mode=shell guest.ip=${ip}/24`;

function bootQemu(netdev: string): GuestConsole {
  return new GuestConsole('qemu', 'qemu-system-riscv64', [
    '-M', 'virt', '-m', '256M', '-smp', '1', '-nographic', '-no-reboot', '-bios', `${SHARED_GUEST}opensbi/fw_jump.bin`,
    '-kernel', `${SHARED_GUEST}Image`, '-initrd', `${SHARED_GUEST}initramfs.cpio.gz`, '-append', append(QEMU_GUEST.ip),
    '-netdev', netdev, '-device', `virtio-net-device,netdev=n0,mac=${QEMU_GUEST.mac}`,
  ]);
}

function bootWkvm(netdev: string): GuestConsole {
  return new GuestConsole('wkvm', process.execPath, [WKVM, 'run', '-M', 'virt', '-m', '256M', '-bios', 'none',
    '-kernel', `${SHARED_GUEST}Image`, '-initrd', `${SHARED_GUEST}initramfs.cpio.gz`, '-append', append(WKVM_GUEST.ip), '-nographic',
    '-netdev', netdev, '-device', `virtio-net-device,netdev=n0,mac=${WKVM_GUEST.mac}`], { cwd: REPO });
}

/** A TCP or UDP port free a moment ago on 127.0.0.1. */
async function freePort(kind: 'tcp' | 'udp'): Promise<number> {
  if (kind === 'tcp') {
    const server = createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    return port;
  }
  const socket = createSocket('udp4').bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

/** Two distinct free ports. */
async function freePorts(kind: 'tcp' | 'udp'): Promise<[number, number]> {
  const first = await freePort(kind);
  for (;;) {
    const second = await freePort(kind);
    if (second !== first) return [first, second];
  }
}

/** Pings `address` three times from `guest`'s shell; the reply count and the MAC the guest learned for it. */
async function ping(guest: GuestConsole, address: string, tag: string): Promise<{ received: number; neighbour: string }> {
  guest.type(`ping -c 3 ${address} | sed -n "s/.* \\([0-9]*\\) packets received.*/${tag}-RECEIVED=\\1/p"; ` +
    `ip neigh show ${address} | sed -n "s/.* lladdr \\([0-9a-f:]*\\).*/${tag}-NEIGH=\\1/p"; echo ${tag}-DONE$((1+1))\n`);
  await guest.waitFor(`${tag}-DONE2`);
  return {
    received: Number(new RegExp(`\\n${tag}-RECEIVED=(\\d+)`).exec(guest.stdout)?.[1] ?? -1),
    neighbour: new RegExp(`\\n${tag}-NEIGH=([0-9a-f:]+)`).exec(guest.stdout)?.[1] ?? 'none',
  };
}

async function pingEachOther(qemu: GuestConsole, wkvm: GuestConsole, round: string): Promise<void> {
  expect(await ping(wkvm, QEMU_GUEST.ip, `TO-QEMU${round}`)).toEqual({ received: 3, neighbour: QEMU_GUEST.mac });
  expect(await ping(qemu, WKVM_GUEST.ip, `TO-WKVM${round}`)).toEqual({ received: 3, neighbour: WKVM_GUEST.mac });
}

/**
 * Both guests at their shells with eth0 up, then a ping each way, then both powered off. With
 * `rebootWkvm` the wkvm guest reboots in between and they ping again: QEMU keeps a netdev's connection
 * across a reboot, and as a 7.2 client it would never connect again.
 */
async function pingBothWays(first: GuestConsole, startSecond: () => GuestConsole, options: { rebootWkvm?: boolean } = {}): Promise<GuestConsole[]> {
  running.push(first);
  await first.waitFor(PROMPT);
  const second = startSecond();
  running.push(second);
  await second.waitFor(PROMPT);
  const [qemu, wkvm] = first.name === 'qemu' ? [first, second] : [second, first];
  expect(qemu.stdout).toContain(`guest: eth0 up mac=${QEMU_GUEST.mac} ip=${QEMU_GUEST.ip}/24`);
  expect(wkvm.stdout).toContain(`guest: eth0 up mac=${WKVM_GUEST.mac} ip=${WKVM_GUEST.ip}/24`);
  await pingEachOther(qemu, wkvm, '1');
  if (options.rebootWkvm === true) {
    wkvm.type('reboot -f\n');
    await wkvm.waitFor('guest: starting shell', 45_000, 2);
    await pingEachOther(qemu, wkvm, '2');
  }
  for (const guest of [wkvm, qemu]) guest.type('exit\n');
  expect(await wkvm.exited, wkvm.stderr).toBe(0);
  expect(await qemu.exited, qemu.stderr).toBe(0);
  return [qemu, wkvm];
}

const running: GuestConsole[] = [];
afterEach(() => {
  for (const guest of running.splice(0)) guest.kill();
});

describe.skipIf(!hasQemu)('socket networking with QEMU 7.2 as the peer', () => {
  it('QEMU listens (-netdev stream,server=on over TCP), wkvm connects (legacy -netdev socket,connect=): ping both ways', async () => {
    const port = await freePort('tcp');
    const [, wkvm] = await pingBothWays(
      bootQemu(`stream,id=n0,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port=${port}`),
      () => bootWkvm(`socket,id=n0,connect=127.0.0.1:${port}`),
    );
    expect(wkvm!.stderr).toBe('');
  });

  it('wkvm listens (-netdev stream,server=on on a Unix socket), QEMU connects (-netdev stream,server=off): ping both ways, across a reboot of wkvm\'s guest', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'wkvm-netdev-')), 'vm.sock');
    const [, wkvm] = await pingBothWays(
      bootWkvm(`stream,id=n0,server=on,addr.type=unix,addr.path=${path}`),
      () => bootQemu(`stream,id=n0,server=off,addr.type=unix,addr.path=${path}`),
      { rebootWkvm: true },
    );
    expect(wkvm!.stderr).toBe('');
  });

  it('UDP, one frame per datagram: wkvm\'s -netdev dgram and QEMU\'s legacy -netdev socket,udp=: ping both ways', async () => {
    const [qemuPort, wkvmPort] = await freePorts('udp');
    const [, wkvm] = await pingBothWays(
      bootQemu(`socket,id=n0,udp=127.0.0.1:${wkvmPort},localaddr=127.0.0.1:${qemuPort}`),
      () => bootWkvm(`dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=${wkvmPort},remote.type=inet,remote.host=127.0.0.1,remote.port=${qemuPort}`),
    );
    expect(wkvm!.stderr).toBe('');
  });
});

/** Whether this host delivers a multicast datagram back to its sender (a container without a route for the group does not). */
async function multicastLoops(port: number): Promise<boolean> {
  const socket = createSocket({ type: 'udp4', reuseAddr: true });
  try {
    socket.bind(port);
    await once(socket, 'listening');
    socket.addMembership('230.0.5.1');
    socket.setMulticastLoopback(true);
    const heard = once(socket, 'message').then(() => true);
    const failed = new Promise<boolean>((resolve) => socket.send('probe', port, '230.0.5.1', (error) => {
      if (error) resolve(false);
    }));
    const gaveUp = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2000).unref());
    return await Promise.race([heard, failed, gaveUp]);
  } catch {
    return false;
  } finally {
    socket.close();
  }
}

describe.skipIf(!hasQemu)('multicast with QEMU 7.2 as the peer', () => {
  it('QEMU\'s legacy -netdev socket,mcast= and wkvm\'s -netdev dgram with a multicast remote share a group: ping both ways', async (context) => {
    const port = await freePort('udp');
    if (!(await multicastLoops(port))) {
      context.skip('this host does not loop multicast back (no route for 230.0.5.1)');
      return;
    }
    const [, wkvm] = await pingBothWays(
      bootQemu(`socket,id=n0,mcast=230.0.5.1:${port}`),
      () => bootWkvm(`dgram,id=n0,remote.type=inet,remote.host=230.0.5.1,remote.port=${port}`),
    );
    expect(wkvm!.stderr).toBe('');
  });
});

describe('socket networks that are not there at start, as QEMU 7.2 takes them', () => {
  const poweroff = (netdev: string): string[] => ['run', '-M', 'virt', '-m', '256M', '-bios', 'none', '-kernel', `${SHARED_GUEST}Image`,
    '-initrd', `${SHARED_GUEST}initramfs.cpio.gz`, '-append', 'console=ttyS0 guest.mode=poweroff', '-nographic',
    '-netdev', netdev, '-device', 'virtio-net-device,netdev=n0'];

  it('a refused connection is reported and the guest runs on with its NIC unconnected (QEMU 7.2 neither exits nor retries)', async () => {
    const port = await freePort('tcp');
    const result = await runWkvm(poweroff(`stream,id=n0,addr.type=inet,addr.host=127.0.0.1,addr.port=${port}`));
    expect(result.stdout).toContain('guest: eth0 up');
    expect(result.stdout).toContain('GUEST-POWEROFF');
    expect(result.stderr).toBe(`wkvm: netdev n0: can't connect to 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}; the NIC stays unconnected\n`);
    expect(result.status).toBe(0);
  });

  it('the legacy listen= on a port in use stops wkvm before the guest starts, with status 1, as QEMU', async () => {
    const taken = createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    try {
      const { port } = taken.address() as AddressInfo;
      const result = await runWkvm(poweroff(`socket,id=n0,listen=127.0.0.1:${port}`));
      expect(result.stdout).not.toContain('GUEST-READY');
      expect(result.stderr).toMatch(new RegExp(`^wkvm: -netdev socket,id=n0: can't listen on 127\\.0\\.0\\.1:${port}: listen EADDRINUSE[^\\n]*\\n$`));
      expect(result.status).toBe(1);
    } finally {
      taken.close();
    }
  });
});
