// virsh's domain XML commands on the real CLI: domxml-from-native on the shared guest's QEMU line (the
// XML passes libvirt's schema), domxml-to-native back, QEMU itself running that line, and `wkvm create`
// booting the guest from its domain XML to power-off.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runWkvm, SHARED_GUEST } from '../helpers/wkvm_cli.js';
import { splitShellWords } from '../../host/cli/domain_commands.js';

const hasValidator = spawnSync('sh', ['-c', 'command -v virt-xml-validate && command -v xmllint']).status === 0;
const hasQemu = spawnSync('sh', ['-c', 'command -v qemu-system-riscv64']).status === 0;
const WORK = mkdtempSync(join(tmpdir(), 'wkvm-domxml-cli-'));

/** The shared guest README's first line, as QEMU takes it (argv0 included), firmware-less or under fw_jump. */
function guestLine(bios: string, extra: string[] = []): string[] {
  return ['qemu-system-riscv64', '-M', 'virt', '-m', '256M', '-smp', '1', '-nographic', '-no-reboot', '-bios', bios,
    '-kernel', `${SHARED_GUEST}Image`, '-initrd', `${SHARED_GUEST}initramfs.cpio.gz`, ...extra, '-append', 'console=ttyS0 earlycon=sbi guest.mode=poweroff'];
}

async function fromNative(args: string[], name: string): Promise<string> {
  const result = await runWkvm(['domxml-from-native', 'qemu-argv', ...args]);
  expect(result.status, result.stderr).toBe(0);
  const file = join(WORK, name);
  writeFileSync(file, result.stdout);
  if (hasValidator) {
    const check = spawnSync('virt-xml-validate', [file, 'domain'], { encoding: 'utf8' });
    expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
  }
  return file;
}

describe('libvirt domain XML on the command line', () => {
  it('boots the shared guest from the domain XML of its QEMU line (wkvm create), to power-off', async () => {
    const file = await fromNative([...guestLine('none'), '-name', 'rvguest'], 'firmware-less.xml');
    const result = await runWkvm(['create', file]);
    expect(result.stdout).toContain('GUEST-POWEROFF');
    expect(result.stdout).toMatch(/guest: kernel=6\.1\.\d+ arch=riscv64 cpus=1 mode=poweroff/);
    expect(result.status, result.stderr).toBe(0);
  });

  it('boots it under OpenSBI from a <loader>, with the README\'s extra virtio devices, all bound', async () => {
    const file = await fromNative(guestLine(`${SHARED_GUEST}opensbi/fw_jump.bin`, [
      '-object', 'rng-builtin,id=rng0', '-device', 'virtio-rng-device,rng=rng0', '-device', 'virtio-serial-device',
      '-chardev', 'null,id=vc0', '-device', 'virtconsole,chardev=vc0', '-device', 'virtio-balloon-device',
    ]), 'extra-virtio.xml');
    // Options after the file are wkvm run's, added to the domain's: here the guest's shell mode instead.
    const result = await runWkvm(['create', file, '-append', 'console=ttyS0 guest.mode=shell'], {
      input: [
        { after: 'root@rvguest:/# ', send: 'echo BOUND $(ls /sys/bus/virtio/drivers/virtio_rng /sys/bus/virtio/drivers/virtio_console /sys/bus/virtio/drivers/virtio_balloon | grep -c "^virtio[0-9]")-DEVICES\n' },
        { after: '-DEVICES', send: 'exit\n' },
      ],
    });
    expect(result.stdout).toContain('OpenSBI v');
    expect(result.stdout).toContain('BOUND 3-DEVICES');
    expect(result.status, result.stderr).toBe(0);
  });

  it('prints the command line of a domain (domxml-to-native), which wkvm and QEMU both run', async () => {
    const file = await fromNative(guestLine(`${SHARED_GUEST}opensbi/fw_jump.bin`), 'fw_jump.xml');
    const result = await runWkvm(['domxml-to-native', 'qemu-argv', file]);
    expect(result.status, result.stderr).toBe(0);
    const argv = splitShellWords(result.stdout);
    expect(argv[0]).toBe('/usr/bin/qemu-system-riscv64');
    expect(argv).toEqual(expect.arrayContaining(['-bios', `${SHARED_GUEST}opensbi/fw_jump.bin`, '-append', 'console=ttyS0 earlycon=sbi guest.mode=poweroff', '-no-reboot']));
    if (hasQemu) {
      const qemu = spawnSync('qemu-system-riscv64', argv.slice(1), { encoding: 'utf8', timeout: 60_000, input: '' });
      expect(qemu.stdout).toContain('GUEST-POWEROFF');
      expect(qemu.status, qemu.stderr).toBe(0);
    }
  });

  it('reads the command line from stdin or a file too, makes relative paths absolute, and says what it refuses', async () => {
    const lineFile = join(WORK, 'line.sh');
    writeFileSync(lineFile, 'qemu-system-riscv64 -M virt -m 128M \\\n  -kernel Image -append "console=ttyS0 a=\'b c\'"\n');
    const fromFile = await runWkvm(['domxml-from-native', 'qemu-argv', lineFile]);
    expect(fromFile.status, fromFile.stderr).toBe(0);
    expect(fromFile.stdout).toMatch(/<kernel>\/.+\/Image<\/kernel>/);
    expect(fromFile.stdout).toContain("<cmdline>console=ttyS0 a='b c'</cmdline>");
    const refused = await runWkvm(['domxml-from-native', 'qemu-system-x86_64', '-m', '128M']);
    expect(refused.stderr).toContain('qemu-system-x86_64: wkvm emulates qemu-system-riscv64');
    expect(refused.status).toBe(1);
    const kvm = join(WORK, 'kvm.xml');
    writeFileSync(kvm, "<domain type='kvm'><name>x</name></domain>");
    const notRun = await runWkvm(['create', kvm]);
    expect(notRun.stderr).toMatch(/^wkvm: <domain type='kvm'>: .*use type='qemu'\n$/);
    expect(notRun.status).toBe(1);
    const help = await runWkvm(['--help']);
    expect(help.stdout).toMatch(/domxml-from-native[\s\S]*domxml-to-native[\s\S]*wkvm create FILE\.xml/);
  });
});
