// Boots the shared Linux 6.1 guest (../shared/guest) in both boot paths and drives its modes.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import { createConnection, createServer as createNetServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { runWkvm, SHARED_GUEST } from '../helpers/wkvm_cli.js';

const KERNEL = `${SHARED_GUEST}Image`;
const INITRD = `${SHARED_GUEST}initramfs.cpio.gz`;
const hasQemu = spawnSync('sh', ['-c', 'command -v qemu-system-riscv64']).status === 0;
const ZERO_SHA256 = '83ee47245398adee79bd9c0a8bc57b821e92aba10f5f9ade8a5d1fae4d8c4302';

function bootArgs(bios: string, mode: string): string[] {
  return ['run', '-M', 'virt', '-m', '256M', '-bios', bios, '-kernel', KERNEL, '-initrd', INITRD,
    '-append', `console=ttyS0 earlycon=sbi guest.mode=${mode}`, '-nographic'];
}

const FIRMWARES: Array<[string, string]> = [
  ['firmware-less (SBI in the core)', 'none'],
  ['OpenSBI fw_jump', `${SHARED_GUEST}opensbi/fw_jump.bin`],
  ['OpenSBI fw_dynamic', `${SHARED_GUEST}opensbi/fw_dynamic.bin`],
];

describe('Linux guest boot', () => {
  it('finds the shared guest', () => {
    expect(existsSync(KERNEL), `${KERNEL} is missing`).toBe(true);
  });

  for (const [name, bios] of FIRMWARES) {
    it(`powers off cleanly: ${name}`, async () => {
      const result = await runWkvm(bootArgs(bios, 'poweroff'));
      expect(result.stdout).toContain('GUEST-READY');
      expect(result.stdout).toContain('GUEST-POWEROFF');
      expect(result.stdout).toMatch(/guest: kernel=6\.1\.\d+ arch=riscv64 cpus=1 mode=poweroff/);
      expect(result.status, result.stderr).toBe(0);
    });
  }

  for (const [name, bios] of FIRMWARES.slice(0, 2)) {
    it(`runs a shell on the SBI console (console=hvc0): ${name}`, async () => {
      const args = bootArgs(bios, 'shell').map((arg) => (arg.startsWith('console=ttyS0') ? 'console=hvc0 guest.mode=shell' : arg));
      const result = await runWkvm(args, {
        input: [
          { after: 'root@rvguest:/# ', send: 'echo HVC-$((6*7)) $(cat /proc/consoles | cut -c1-4)\n' },
          { after: 'HVC-42', send: 'exit\n' },
        ],
      });
      expect(result.stdout).toContain('starting shell on hvc0');
      expect(result.stdout).toContain('HVC-42 hvc0');
      expect(result.status, result.stderr).toBe(0);
    });
  }

  it('boots the system OpenSBI with -bios default ($WKVM_FIRMWARE first), as QEMU does', async () => {
    const args = bootArgs('default', 'poweroff');
    const result = await runWkvm(args, { env: { WKVM_FIRMWARE: `${SHARED_GUEST}opensbi/fw_dynamic.bin` } });
    expect(result.stdout).toContain('OpenSBI v');
    expect(result.stdout).toContain('GUEST-POWEROFF');
    expect(result.status, result.stderr).toBe(0);
  });

  it.skipIf(!hasQemu)('boots with the device tree QEMU dumps for the same command line (-dtb), and warns of its H extension', async () => {
    const dtb = join(mkdtempSync(join(tmpdir(), 'wkvm-qemu-dtb-')), 'qemu-virt.dtb');
    // With firmware both put the kernel at 0x80200000 and the initrd where the tree says (QEMU's -bios none
    // starts the kernel itself in M-mode, at the start of RAM, which is another boot).
    const args = bootArgs(FIRMWARES[1]![1], 'poweroff');
    const dump = spawnSync('qemu-system-riscv64', args.slice(1).map((arg) => (arg === 'virt' ? `virt,dumpdtb=${dtb}` : arg)), { encoding: 'utf8' });
    expect(dump.status, dump.stderr).toBe(0);
    const result = await runWkvm([...args, '-dtb', dtb]);
    expect(result.stdout).toContain('GUEST-POWEROFF');
    expect(result.stderr).toMatch(/warning: .*qemu-virt\.dtb: the device tree's harts have h, which this CPU does not implement/);
    expect(result.status, result.stderr).toBe(0);
  });

  it('puts -append and the initrd\'s place into a -dtb\'s /chosen, as QEMU does', async () => {
    const dtb = join(mkdtempSync(join(tmpdir(), 'wkvm-dtb-')), 'shell.dtb');
    // A tree dumped for another command line (shell mode) and without an initrd.
    const dump = await runWkvm(['run', '-M', `virt,dumpdtb=${dtb}`, '-m', '256M', '-append', 'console=ttyS0 guest.mode=shell']);
    expect(dump.status).toBe(0);
    const result = await runWkvm([...bootArgs('none', 'poweroff'), '-dtb', dtb]);
    expect(result.stdout).toMatch(/Kernel command line: console=ttyS0 earlycon=sbi guest\.mode=poweroff/);
    expect(result.stdout).toContain('GUEST-POWEROFF');
    expect(result.status, result.stderr).toBe(0);
  });

  it('takes the shared guest README\'s optional virtio devices in QEMU\'s spelling, and the guest binds each', async () => {
    const result = await runWkvm([...bootArgs(FIRMWARES[1]![1], 'shell'),
      '-object', 'rng-builtin,id=rng0', '-device', 'virtio-rng-device,rng=rng0',
      '-device', 'virtio-serial-device', '-chardev', 'null,id=vc0', '-device', 'virtconsole,chardev=vc0',
      '-device', 'virtio-balloon-device'], {
      input: [
        { after: 'root@rvguest:/# ', send: 'echo BOUND $(ls /sys/bus/virtio/drivers/virtio_rng /sys/bus/virtio/drivers/virtio_console /sys/bus/virtio/drivers/virtio_balloon | grep -c "^virtio[0-9]") RNG=$(cat /sys/class/misc/hw_random/rng_current) $(head -c 64 /dev/hwrng | wc -c)-BYTES\n' },
        { after: '-BYTES', send: 'exit\n' },
      ],
    });
    expect(result.stdout).toMatch(/BOUND 3 RNG=virtio_rng\.0 64-BYTES/);
    expect(result.stdout).toContain('GUEST-POWEROFF');
    expect(result.status, result.stderr).toBe(0);
  });

  it('runs the same devices over the legacy virtio-mmio interface with -global virtio-mmio.force-legacy=true (QEMU\'s default)', async () => {
    const result = await runWkvm([...bootArgs(FIRMWARES[1]![1], 'shell'), '-global', 'virtio-mmio.force-legacy=true',
      '-device', 'virtio-rng-device', '-device', 'virtio-balloon-device'], {
      input: [
        { after: 'root@rvguest:/# ', send: 'echo VERSIONS $(grep -c . /sys/bus/virtio/devices/*/features) RNG=$(cat /sys/class/misc/hw_random/rng_current) $(head -c 64 /dev/hwrng | wc -c)-BYTES V1=$(cut -c33 /sys/bus/virtio/devices/virtio0/features)\n' },
        { after: '-BYTES', send: 'exit\n' },
      ],
    });
    // Both bound; bit 32 (VIRTIO_F_VERSION_1) was not negotiated: the legacy driver path.
    expect(result.stdout).toMatch(/RNG=virtio_rng\.0 64-BYTES V1=0/);
    expect(result.stdout).toContain('GUEST-POWEROFF');
    expect(result.status, result.stderr).toBe(0);
  });

  it('gives the guest a virtio-net NIC on the user network: eth0 up, the gateway answers ping, DHCP leases 10.0.2.15', async () => {
    const result = await runWkvm([...bootArgs('none', 'shell').map((arg) => (arg.startsWith('console=') ? `${arg} guest.ip=10.0.2.15/24` : arg)),
      '-netdev', 'user,id=n0,restrict=on', '-device', 'virtio-net-device,netdev=n0', '-nic', 'user,mac=52:54:00:00:00:02'], {
      input: [
        { after: 'root@rvguest:/# ', send: 'ping -c 2 10.0.2.2 | grep -c "bytes from" | sed "s/^/PONGS-/"\n' },
        { after: '\nPONGS-', send: 'ip link set eth1 up; udhcpc -i eth1 -n -q -t 5 -s /bin/true 2>&1 | grep -o "lease of [0-9.]* obtained" | sed "s/$/-DONE/"\n' },
        { after: 'obtained-DONE', send: 'exit\n' },
      ],
    });
    expect(result.stdout).toContain('guest: eth0 up mac=52:54:00:12:34:56 ip=10.0.2.15/24');
    expect(result.stdout).toMatch(/\nPONGS-2/);
    expect(result.stdout).toContain('lease of 10.0.2.15 obtained-DONE');
    expect(result.stderr).not.toMatch(/user network .* nothing beyond it/);
    expect(result.status, result.stderr).toBe(0);
  });

  it('NATs the guest on -nic user: busybox wget fetches a page from the host\'s 127.0.0.1 via 10.0.2.2, nslookup asks 10.0.2.3', async () => {
    const server = createServer((request, response) => response.end(`PAGE-FROM-HOST ${request.url ?? ''} ${'x'.repeat(5000)} PAGE-END\n`));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    try {
      const result = await runWkvm([...bootArgs('none', 'shell').map((arg) => (arg.startsWith('console=') ? `${arg} guest.ip=10.0.2.15/24 guest.gw=10.0.2.2` : arg)),
        '-nic', 'user'], {
        input: [
          { after: 'root@rvguest:/# ', send: `wget -q -O - http://10.0.2.2:${port}/nat | tr -d x; echo WGET-$((40+2))\n` },
          { after: 'WGET-42', send: 'nslookup localhost 10.0.2.3 | grep -A1 "^Name:" | tr -s " \\t\\n" " "; echo; echo DNS-$((40+2))\n' },
          { after: 'DNS-42', send: 'exit\n' },
        ],
      });
      expect(result.stdout).toContain('PAGE-FROM-HOST /nat  PAGE-END');
      expect(result.stdout).toMatch(/Name: localhost Address: 127\.0\.0\.1/);
      expect(result.status, result.stderr).toBe(0);
    } finally {
      server.close();
    }
  });

  it('forwards a host port to the guest (-netdev user,hostfwd=...): a host client and busybox nc -l in the guest talk both ways', async () => {
    const probe = createNetServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const hostPort = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    let fromGuest = '';
    let running = true;
    // The guest listens only once its shell runs: until then connections are refused or reset, so retry.
    const client = (async (): Promise<void> => {
      while (running && !fromGuest.includes('FROM-GUEST')) {
        await new Promise((resolve) => setTimeout(resolve, 300));
        // Writes, reads, and ends once the guest has (node ends a client socket when its peer does).
        const socket = createConnection({ host: '127.0.0.1', port: hostPort });
        socket.on('connect', () => socket.write('HELLO-GUEST\n'));
        socket.on('data', (chunk: Buffer) => {
          fromGuest += chunk.toString();
        });
        socket.on('error', () => {});
        // 'close' comes after an 'error' too (a refused try); events.once would reject on the error instead.
        await new Promise((resolve) => socket.once('close', resolve));
      }
    })();
    try {
      const result = await runWkvm([...bootArgs('none', 'shell').map((arg) => (arg.startsWith('console=') ? `${arg} guest.ip=10.0.2.15/24` : arg)),
        '-netdev', `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${hostPort}-:8080`, '-device', 'virtio-net-device,netdev=n0'], {
        input: [
          { after: 'root@rvguest:/# ', send: 'echo FROM-GUEST | nc -l -p 8080 > /tmp/got; sed "s/^/GOT-/" /tmp/got; echo NC-$((40+2))\n' },
          { after: 'NC-42', send: 'exit\n' },
        ],
      });
      running = false;
      await client;
      expect(result.stdout).toContain('GOT-HELLO-GUEST');
      expect(fromGuest).toBe('FROM-GUEST\n');
      expect(result.status, result.stderr).toBe(0);
    } finally {
      running = false;
      await client;
    }
  });

  it('shares a host directory over virtio-9p: the guest mounts it by tag, reads a host file and writes one back', async () => {
    const share = mkdtempSync(join(tmpdir(), 'wkvm-9p-'));
    writeFileSync(join(share, 'host.txt'), 'from the host\n');
    const result = await runWkvm([...bootArgs('none', 'shell'),
      '-fsdev', `local,id=fs0,path=${share},security_model=none`, '-device', 'virtio-9p-device,fsdev=fs0,mount_tag=host0'], {
      input: [
        { after: 'root@rvguest:/# ', send: 'mkdir /mnt/h && mount -t 9p -o trans=virtio host0 /mnt/h && sed "s/^/READ-/" /mnt/h/host.txt\n' },
        { after: '\nREAD-', send: 'mkdir /mnt/h/sub && echo from the guest > /mnt/h/sub/guest.txt && mv /mnt/h/sub/guest.txt /mnt/h/g.txt && echo W$((1+1))RITTEN\n' },
        { after: 'W2RITTEN', send: 'exit\n' },
      ],
    });
    expect(result.stdout).toContain('READ-from the host');
    expect(readFileSync(join(share, 'g.txt'), 'utf8')).toBe('from the guest\n');
    expect(existsSync(join(share, 'sub'))).toBe(true);
    expect(result.status, result.stderr).toBe(0);
  });

  it('answers an interactive shell through piped stdin', async () => {
    const prompt = 'root@rvguest:/# ';
    const before = Math.floor(Date.now() / 1000);
    const result = await runWkvm(bootArgs('none', 'shell'), {
      input: [
        // Each marker is output the terminal's echo of the command cannot contain.
        { after: prompt, send: 'uname -a\n' },
        { after: 'GNU/Linux', send: 'cat /proc/cpuinfo\n' },
        { after: 'mmu\t', send: 'echo DATE=$(date +%s) STEP-$((1+1))\n' },
        { after: 'STEP-2', send: 'echo SHELL-TEST-$((6*7))\n' },
        { after: 'SHELL-TEST-42', send: 'exit\n' },
      ],
    });
    const after = Math.ceil(Date.now() / 1000);
    expect(result.stdout).toMatch(/Linux rvguest 6\.1\.\d+ .* riscv64 GNU\/Linux/);
    expect(result.stdout).toMatch(/isa\s*: rv64imafdc/);
    expect(result.stdout).toMatch(/mmu\s*: sv57/); // Linux 6.1 takes the widest mode the hart has, as on QEMU 7.2
    // The goldfish RTC gives the guest the host's date.
    const date = Number(/DATE=(\d+)/.exec(result.stdout)?.[1]);
    expect(date).toBeGreaterThanOrEqual(before - 2);
    expect(date).toBeLessThanOrEqual(after + 2);
    expect(result.stdout).toContain('SHELL-TEST-42');
    expect(result.stdout).toContain('GUEST-POWEROFF');
    expect(result.status).toBe(0);
  });

  it('-rtc base=DATE sets the date the guest reads, and the RTC runs on across a reboot', async () => {
    const prompt = 'root@rvguest:/# ';
    const result = await runWkvm(['run', '-M', 'virt', '-m', '256M', '-rtc', 'base=2001-02-03T04:05:06,clock=host', '-kernel', KERNEL,
      '-initrd', INITRD, '-append', 'console=ttyS0 guest.mode=shell', '-nographic'], {
      input: [{ after: prompt, send: 'sleep 2; reboot -f\n' }, { after: prompt, occurrence: 2, send: 'exit\n' }],
    });
    const set = [...result.stdout.matchAll(/setting system clock to 2001-02-03T04:05:(\d\d) UTC/g)].map((m) => Number(m[1]));
    expect(set).toHaveLength(2);
    expect(set[0]).toBeLessThanOrEqual(8);
    // The second boot's clock continues from the first (the 2 s sleep and the boot), not from the base.
    expect(set[1]! - set[0]!).toBeGreaterThanOrEqual(2);
    expect(result.status).toBe(0);
    // base=localtime: the host's local time read as UTC (QEMU's choice for guests that keep local time).
    const local = await runWkvm(['run', '-M', 'virt', '-m', '256M', '-rtc', 'base=localtime', '-kernel', KERNEL, '-initrd', INITRD,
      '-append', 'console=ttyS0 guest.mode=poweroff', '-nographic'], { env: { TZ: 'Asia/Tokyo' } });
    const guestSeconds = Number(/setting system clock to \S+ UTC \((\d+)\)/.exec(local.stdout)?.[1]);
    expect(Math.abs(guestSeconds - (Date.now() / 1000 + 9 * 3600))).toBeLessThan(30);
  });

  it('restarts the guest when it reboots, and exits instead with -no-reboot', async () => {
    const prompt = 'root@rvguest:/# ';
    const rebooted = await runWkvm(bootArgs('none', 'shell'), {
      input: [{ after: prompt, send: 'reboot -f\n' }, { after: prompt, occurrence: 2, send: 'exit\n' }],
    });
    expect(rebooted.stdout).toContain('reboot: Restarting system');
    expect(rebooted.stdout.split('GUEST-READY').length - 1).toBe(2);
    expect(rebooted.stdout).toContain('GUEST-POWEROFF');
    expect(rebooted.status).toBe(0);
    const once = await runWkvm(['run', '-M', 'virt', '-m', '256M', '-no-reboot', '-kernel', KERNEL, '-initrd', INITRD,
      '-append', 'console=ttyS0 guest.mode=shell', '-nographic'], { input: [{ after: prompt, send: 'reboot -f\n' }] });
    expect(once.stdout.split('GUEST-READY').length - 1).toBe(1);
    expect(once.stdout).toContain('reboot: Restarting system');
    expect(once.status).toBe(0);
  });

  it('translates hot kernel code, and says so per hart with -d jit', async () => {
    const result = await runWkvm([...bootArgs('none', 'poweroff'), '-smp', '2', '-d', 'jit'], { timeoutMs: 60_000 });
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('GUEST-POWEROFF');
    const lines = result.stderr.split('\n').filter((line) => line.includes('jit: hart'));
    expect(lines).toHaveLength(2);
    const pattern = /jit: hart \d: (\d+) blocks compiled in (\d+) modules, 0 failed to compile, (\d+) adopted from other harts, (\d+) FENCE.I/;
    const [hart0, hart1] = lines.map((line) => pattern.exec(line));
    expect(hart0, lines[0]).not.toBeNull();
    expect(hart1, lines[1]).not.toBeNull();
    expect(Number(hart0![1])).toBeGreaterThan(Number(hart0![2]));
    expect(Number(hart0![2])).toBeGreaterThan(0);
    expect(Number(hart0![4])).toBeGreaterThan(0); // Linux patches its code while booting
    // Hart 1 starts late in the boot, into kernel code hart 0 has translated: it takes those translations.
    expect(Number(hart1![3])).toBeGreaterThan(0);
  });

  it('runs the bench workload with the known results', async () => {
    const result = await runWkvm(bootArgs('none', 'bench'), { timeoutMs: 240_000 });
    expect(result.stdout).toContain(`GUEST-BENCH zero-sha256 result=[${ZERO_SHA256}]`);
    expect(result.stdout).toContain('result=[bytes=168894 gz=62543 md5=5c22e3e4c02d57e3ba80daa3772219f2]');
    expect(result.stdout).toContain('result=[0682c0cc4861f22634f26bef4dd9dd3a]');
    expect(result.stdout).toContain('result=[n=50000 s=505398]');
    expect(result.stdout).toContain('GUEST-BENCH-DONE');
    expect(result.status).toBe(0);
  }, 300_000);
});
