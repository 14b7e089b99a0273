// libvirt domain XML ⇄ wkvm command lines: every document written passes libvirt's own schema
// (virt-xml-validate, Debian libvirt-clients), documents round-trip, and bad or foreign ones are refused
// with a typed error, never a crash.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRunArgs } from '../../../host/cli/args.js';
import { planVirtioDevices } from '../../../host/devices/virtio/plan.js';
import {
  domainFromRunOptions, domainXmlFromRunOptions, DomainUnsupportedError, DomainXmlError, parseDomainXml, qemuArgvFromDomain, runOptionsFromDomain,
} from '../../../host/mgmt/domain_xml.js';
import { parseXml, XmlSyntaxError } from '../../../host/mgmt/xml.js';
import { xorshift32 } from '../../helpers/xorshift.js';

const hasValidator = spawnSync('sh', ['-c', 'command -v virt-xml-validate && command -v xmllint']).status === 0;
const WORK = mkdtempSync(join(tmpdir(), 'wkvm-domxml-'));
const G = '/work/shared/guest/';
const UUID = '6f1a8d2e-3b4c-4d5e-8f90-123456789abc';

/** The shared guest README's QEMU lines (and virtio-pci ones), as argument lists. */
const BASE = ['-M', 'virt', '-m', '256M', '-smp', '1', '-nographic', '-no-reboot', '-uuid', UUID];
const FIRMWARE = ['-bios', `${G}opensbi/fw_jump.bin`, '-kernel', `${G}Image`, '-initrd', `${G}initramfs.cpio.gz`];
const LINES: Record<string, string[]> = {
  poweroff: [...BASE, ...FIRMWARE, '-append', 'console=ttyS0 earlycon=sbi guest.mode=poweroff'],
  'firmware-less': [...BASE, '-bios', 'none', '-kernel', `${G}Image`, '-initrd', `${G}initramfs.cpio.gz`, '-append', 'console=ttyS0 guest.mode=poweroff'],
  'default firmware, -smp 2': [...BASE.map((arg) => (arg === '1' ? '2' : arg)), '-bios', 'default', '-kernel', `${G}Image`, '-initrd', `${G}initramfs.cpio.gz`],
  'disk (raw)': [...BASE, ...FIRMWARE, '-drive', 'file=/tmp/disk.img,if=none,format=raw,id=d0', '-device', 'virtio-blk-device,drive=d0',
    '-append', 'console=ttyS0 earlycon=sbi guest.mode=disk'],
  'disk (qcow2)': [...BASE, ...FIRMWARE, '-drive', 'file=/tmp/disk.qcow2,if=none,format=qcow2,id=d0', '-device', 'virtio-blk-device,drive=d0',
    '-append', 'console=ttyS0 earlycon=sbi guest.mode=disk'],
  'root disk': [...BASE, '-bios', `${G}opensbi/fw_jump.bin`, '-kernel', `${G}Image`, '-drive', 'file=/tmp/disk.img,if=none,format=raw,id=d0',
    '-device', 'virtio-blk-device,drive=d0', '-append', 'root=/dev/vda rw rootfstype=ext4 init=/init console=ttyS0 earlycon=sbi guest.mode=poweroff'],
  'net (restrict=on)': [...BASE, ...FIRMWARE, '-netdev', 'user,id=n0,restrict=on', '-device', 'virtio-net-device,netdev=n0'],
  'net (NAT, hostfwd)': [...BASE, ...FIRMWARE, '-netdev', 'user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp::8080-:80', '-device', 'virtio-net-device,netdev=n0,mac=52:54:00:ab:cd:ef'],
  'extra virtio': [...BASE, ...FIRMWARE, '-object', 'rng-builtin,id=rng0', '-device', 'virtio-rng-device,rng=rng0',
    '-device', 'virtio-serial-device', '-chardev', 'null,id=vc0', '-device', 'virtconsole,chardev=vc0', '-device', 'virtio-balloon-device'],
  '9p': [...BASE, ...FIRMWARE, '-fsdev', 'local,id=fs0,path=/tmp,security_model=none', '-device', 'virtio-9p-device,fsdev=fs0,mount_tag=host0'],
  'virtfs read-only, passthrough': [...BASE, ...FIRMWARE, '-virtfs', 'local,path=/srv,mount_tag=share,security_model=passthrough,readonly=on'],
  'virtio-pci': [...BASE, ...FIRMWARE, '-drive', 'file=/tmp/disk.img,if=none,format=raw,id=d0,cache=unsafe', '-device', 'virtio-blk-pci,drive=d0',
    '-netdev', 'user,id=n0', '-device', 'virtio-net-pci,netdev=n0,addr=5', '-object', 'rng-random,id=r0,filename=/dev/urandom', '-device', 'virtio-rng-pci,rng=r0',
    '-device', 'virtio-balloon-pci', '-fsdev', 'local,id=fs0,path=/tmp,security_model=none', '-device', 'virtio-9p-pci,fsdev=fs0,mount_tag=host0',
    '-device', 'virtio-serial-pci', '-chardev', 'file,id=c0,path=/tmp/console.log', '-device', 'virtconsole,chardev=c0'],
  'xv6 (a named virtio-mmio transport)': ['-bios', 'none', '-kernel', '/tmp/kernel', '-m', '128M', '-smp', '3', '-uuid', UUID, '-global', 'virtio-mmio.force-legacy=false',
    '-drive', 'file=/tmp/fs.img,if=none,format=raw,id=x0', '-device', 'virtio-blk-device,drive=x0,bus=virtio-mmio-bus.0'],
  'if=virtio, -snapshot, serial, queue size, fixed RTC, name': [...BASE, '-name', 'guest=test-vm', '-snapshot', '-rtc', 'base=2006-06-17T16:01:21', '-kernel', `${G}Image`,
    '-drive', 'file=/tmp/a.img,if=virtio,readonly=on,serial=SER1', '-drive', 'file=/tmp/b.qcow2,if=none,id=b,cache=writethrough', '-device', 'virtio-blk-device,drive=b,queue-size=256'],
};

function validate(xml: string, name: string): void {
  if (!hasValidator) return;
  const file = join(WORK, `${name.replace(/[^a-z0-9]+/gi, '_')}.xml`);
  writeFileSync(file, xml);
  const result = spawnSync('virt-xml-validate', [file, 'domain'], { encoding: 'utf8' });
  expect(result.status, `${result.stdout}${result.stderr}\n${xml}`).toBe(0);
}

describe('domain XML from a command line (domxml-from-native)', () => {
  for (const [name, args] of Object.entries(LINES)) {
    it(`${name}: libvirt's schema takes it, and it round-trips through wkvm's options`, () => {
      const options = parseRunArgs(args);
      const xml = domainXmlFromRunOptions(options);
      validate(xml, name);
      const back = runOptionsFromDomain(xml);
      // XML → options → XML is the same document; options → XML → options keeps every device.
      expect(domainXmlFromRunOptions(back.options)).toBe(xml);
      const kinds = (plan: ReturnType<typeof planVirtioDevices>) => plan.map((item) => `${item.kind}${item.pci === undefined ? '' : '@pci'}`).sort();
      expect(kinds(planVirtioDevices(back.options))).toEqual(kinds(planVirtioDevices(options)));
      for (const key of ['memoryBytes', 'smp', 'bios', 'kernel', 'initrd', 'append', 'noReboot', 'rtcBase', 'uuid'] as const) {
        expect(back.options[key], key).toEqual(options[key]);
      }
    });
  }

  it('writes the virt board as libvirt does: type qemu, riscv64 virt, the kernel, -bios FILE as a rom loader, a pty console', () => {
    const xml = domainXmlFromRunOptions(parseRunArgs(LINES.poweroff!));
    expect(xml).toContain("<domain type='qemu'>");
    expect(xml).toContain("<type arch='riscv64' machine='virt'>hvm</type>");
    expect(xml).toContain(`<loader readonly='yes' type='rom'>${G}opensbi/fw_jump.bin</loader>`);
    expect(xml).toContain(`<uuid>${UUID}</uuid>`);
    expect(xml).toContain("<memory unit='KiB'>262144</memory>");
    expect(xml).toContain("<on_reboot>destroy</on_reboot>");
    expect(xml).toContain("<serial type='pty'>");
    expect(xml).toContain("<memballoon model='none'/>");
    expect(xml).not.toContain('qemu:commandline');
  });

  it('says -bios none, which libvirt has no element for, in <qemu:commandline>, and -bios default by no loader', () => {
    const none = domainXmlFromRunOptions(parseRunArgs(LINES['firmware-less']!));
    expect(none).toContain("<qemu:arg value='-bios'/>\n    <qemu:arg value='none'/>");
    expect(none).not.toContain('<loader');
    const fallback = domainXmlFromRunOptions(parseRunArgs(LINES['default firmware, -smp 2']!));
    expect(fallback).not.toMatch(/<loader|qemu:commandline/);
    expect(runOptionsFromDomain(fallback).options.bios).toBe('default');
  });

  it('puts virtio-mmio devices at virtio-mmio addresses, -pci ones at their PCI slots behind a pcie-root', () => {
    const mmio = domainXmlFromRunOptions(parseRunArgs(LINES['disk (raw)']!));
    expect(mmio).toMatch(/<target dev='vda' bus='virtio'\/>\n\s*<address type='virtio-mmio'\/>/);
    expect(mmio).not.toContain('pcie-root');
    const pci = domainXmlFromRunOptions(parseRunArgs(LINES['virtio-pci']!));
    expect(pci).toContain("<controller type='pci' index='0' model='pcie-root'/>");
    expect(pci).toContain("<disk type='file' device='disk' model='virtio-non-transitional'>");
    expect(pci).toContain("<address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x0'/>");
    expect(pci).toContain("slot='0x05'"); // the NIC's addr=5
    expect(pci).toContain("<backend model='random'>/dev/urandom</backend>");
    expect(pci).toContain("<driver name='qemu' type='raw' cache='unsafe'/>");
  });

  it('keeps what libvirt cannot say (restrict=on, a named transport) as QEMU arguments, and forwards ports with portForward', () => {
    expect(domainXmlFromRunOptions(parseRunArgs(LINES['net (restrict=on)']!))).toContain("<qemu:arg value='user,id=cmdline-net0,restrict=on'/>");
    expect(domainXmlFromRunOptions(parseRunArgs(LINES['xv6 (a named virtio-mmio transport)']!)))
      .toContain("<qemu:arg value='virtio-blk-device,bus=virtio-mmio-bus.0,drive=cmdline-drive0'/>");
    const nat = domainXmlFromRunOptions(parseRunArgs(LINES['net (NAT, hostfwd)']!));
    expect(nat).toContain("<mac address='52:54:00:ab:cd:ef'/>");
    expect(nat).toContain("<portForward proto='tcp' address='127.0.0.1'>\n        <range start='2222' to='22'/>");
    expect(nat).toContain("<portForward proto='tcp'>\n        <range start='8080' to='80'/>");
  });

  it('makes relative paths absolute only when told how, as libvirt needs absolute ones', () => {
    const options = parseRunArgs(['-kernel', 'Image']);
    expect(() => domainFromRunOptions(options)).toThrow(DomainUnsupportedError);
    expect(domainFromRunOptions(options, { absolutePath: (path) => `/here/${path}` }).os.kernel).toBe('/here/Image');
  });

  it('refuses what it cannot carry: the generic loader, -cpu', () => {
    expect(() => domainFromRunOptions(parseRunArgs(['-device', 'loader,addr=0x80000000,cpu-num=0']))).toThrow(/generic loader/);
    expect(() => domainFromRunOptions(parseRunArgs(['-cpu', 'rv64']))).toThrow(DomainUnsupportedError);
  });
});

/** A domain as virt-install or a person would write it for riscv64, with what wkvm may ignore. */
const HANDWRITTEN = `<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment -->
<domain type="qemu" xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0">
  <name>debian-riscv</name>
  <uuid>6F1A8D2E3B4C4D5E8F90123456789ABC</uuid>
  <title>Debian &amp; friends</title>
  <metadata><app:info xmlns:app="https://example.org/app"/></metadata>
  <memory unit="GiB">1</memory>
  <currentMemory unit="GiB">1</currentMemory>
  <vcpu>2</vcpu>
  <os>
    <type arch="riscv64" machine="virt">hvm</type>
    <kernel>/boot/Image</kernel>
    <cmdline><![CDATA[console=ttyS0 root=/dev/vda1 a<b]]></cmdline>
    <boot dev="hd"/>
  </os>
  <features><acpi/></features>
  <cpu mode="host-passthrough"/>
  <clock offset="localtime"/>
  <on_crash>restart</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-riscv64</emulator>
    <controller type="pci" index="0" model="pcie-root"/>
    <disk type="file" device="disk">
      <driver name="qemu" type="qcow2" cache="none" discard="unmap"/>
      <source file="/var/lib/libvirt/images/debian.qcow2"/>
      <target dev="vda" bus="virtio"/>
      <boot order="1"/>
    </disk>
    <interface type="user">
      <model type="virtio"/>
    </interface>
    <console type="pty"/>
    <rng model="virtio"><backend model="random">/dev/urandom</backend></rng>
  </devices>
</domain>`;

describe('command line from domain XML (domxml-to-native)', () => {
  it('reads a hand-written riscv64 domain: PCI when it has a pcie-root, a balloon libvirt would add, QEMU\'s default firmware', () => {
    const { domain, argv, options } = runOptionsFromDomain(HANDWRITTEN);
    expect(domain.name).toBe('debian-riscv');
    expect(domain.uuid).toBe('6f1a8d2e-3b4c-4d5e-8f90-123456789abc');
    expect(domain.os.cmdline).toBe('console=ttyS0 root=/dev/vda1 a<b');
    expect(argv[0]).toBe('/usr/bin/qemu-system-riscv64');
    expect(argv).toContain('virtio-blk-pci,bus=pcie.0,drive=drive0');
    expect(argv).toContain('virtio-net-pci,bus=pcie.0,netdev=net0');
    expect(argv).toContain('virtio-balloon-pci,bus=pcie.0');
    expect(options.memoryBytes).toBe(1024 << 20);
    expect(options.smp).toBe(2);
    expect(options.bios).toBe('default');
    expect(options.rtcBase).toBe('localtime');
    expect(options.serial).toEqual({ kind: 'stdio' });
    expect(options.drives[0]).toMatchObject({ file: '/var/lib/libvirt/images/debian.qcow2', format: 'qcow2', cache: 'none' });
    expect(planVirtioDevices(options).map((item) => item.kind)).toEqual(['blk', 'net', 'balloon', 'rng']);
    validate(domainXmlFromRunOptions(options), 'handwritten-back');
  });

  const refusals: Array<[string, (xml: string) => string, RegExp]> = [
    ['type kvm', (xml) => xml.replace('type="qemu"', 'type="kvm"'), /riscv64 host with \/dev\/kvm/],
    ['another arch', (xml) => xml.replace('arch="riscv64"', 'arch="x86_64"'), /'x86_64': wkvm emulates riscv64/],
    ['another machine', (xml) => xml.replace('machine="virt"', 'machine="sifive_u"'), /'sifive_u': wkvm emulates the virt board/],
    ['graphics', (xml) => xml.replace('</devices>', '<graphics type="vnc"/></devices>'), /<graphics>.*no such device/],
    ['a cdrom', (xml) => xml.replace('device="disk"', 'device="cdrom"'), /device 'cdrom'/],
    ['a bridge', (xml) => xml.replace('<interface type="user">', '<interface type="bridge">'), /interface type 'bridge'/],
    ['a SATA disk', (xml) => xml.replace('bus="virtio"', 'bus="sata"'), /bus 'sata'/],
    ['pflash', (xml) => xml.replace('<kernel>', '<loader type="pflash">/x.fd</loader><kernel>'), /no pflash/],
    ['an e1000', (xml) => xml.replace('<model type="virtio"/>', '<model type="e1000"/>'), /model 'e1000'/],
    ['transitional virtio', (xml) => xml.replace('<rng model="virtio">', '<rng model="virtio-transitional">'), /model 'virtio-transitional'/],
    ['a QEMU argument wkvm lacks', (xml) => xml.replace('</domain>', '<qemu:commandline><qemu:arg value="-vnc"/><qemu:arg value=":0"/></qemu:commandline></domain>'), /-vnc: invalid option/],
    ['a relative path', (xml) => xml.replace('/boot/Image', 'Image'), /not an absolute path/],
    ['RAM in pieces of MiB', (xml) => xml.replace('<memory unit="GiB">1</memory>', '<memory unit="KiB">1000</memory>'), /whole, non-zero number of MiB/],
  ];
  for (const [name, edit, message] of refusals) {
    it(`refuses ${name} with a typed error that says why`, () => {
      let thrown: unknown;
      try {
        runOptionsFromDomain(edit(HANDWRITTEN));
      } catch (error) {
        thrown = error;
      }
      expect(thrown instanceof DomainUnsupportedError || thrown instanceof DomainXmlError, String(thrown)).toBe(true);
      expect(String((thrown as Error).message)).toMatch(message);
    });
  }

  it('refuses documents that are not domains or not well-formed', () => {
    expect(() => parseDomainXml('<network/>')).toThrow(/not a libvirt domain/);
    expect(() => parseDomainXml('<domain type="qemu"><name>x</name>')).toThrow(DomainXmlError);
    expect(() => parseDomainXml('<!DOCTYPE d [<!ENTITY a "aaaa">]><domain/>')).toThrow(/DOCTYPE/);
    expect(() => parseDomainXml('<domain type="qemu"><name>&bogus;</name></domain>')).toThrow(/unknown entity/);
    expect(() => parseDomainXml('<domain type="qemu"></domian>')).toThrow(/closes <domain>/);
    expect(() => parseDomainXml('<domain type="qemu"/>')).toThrow(/<name> is required/);
  });
});

describe('the XML reader', () => {
  it('resolves references, CDATA and namespace prefixes', () => {
    const root = parseXml('<?xml version="1.0"?><a xmlns:q="urn:q" x="1&#10;2 &lt;&#x41;&apos;"><q:b/><![CDATA[<&>]]>&amp;</a>');
    expect(root.attributes.get('x')).toBe("1\n2 <A'");
    expect(root.children[0]).toMatchObject({ localName: 'b', namespace: 'urn:q' });
    expect(root.children[1]).toEqual({ kind: 'text', text: '<&>&' });
    expect(() => parseXml('<a><u:b/></a>')).toThrow(/prefix 'u' is not declared/);
    expect(() => parseXml('<a x="1" x="2"/>')).toThrow(/given twice/);
    expect(() => parseXml(`${'<a>'.repeat(300)}${'</a>'.repeat(300)}`)).toThrow(/nested deeper/);
  });

  it('survives random damage to domain documents: every failure is a typed error (seeded fuzz)', () => {
    const seeds = [domainXmlFromRunOptions(parseRunArgs(LINES['virtio-pci']!)), domainXmlFromRunOptions(parseRunArgs(LINES['net (restrict=on)']!)), HANDWRITTEN];
    const next = xorshift32(0x5eed);
    const pieces = ['<', '>', '/>', '</devices>', '&', '&#0;', "'", '"', ' ', '<disk>', '<address type="pci" slot="0xffffffffffff"/>', 'unit="EiB"',
      '<qemu:arg value="-m"/>', '\u0000', ']]>', '<!--', 'xmlns:qemu="x"', '<vcpu>0</vcpu>', '<memory>99999999999999999999</memory>'];
    let typed = 0;
    for (let round = 0; round < 3000; round++) {
      let text = seeds[next() % seeds.length]!;
      for (let edits = 1 + (next() % 4); edits > 0; edits--) {
        const at = next() % (text.length + 1);
        const op = next() % 4;
        if (op === 0) text = text.slice(0, at) + text.slice(at + 1 + (next() % 40));
        else if (op === 1) text = text.slice(0, at) + pieces[next() % pieces.length]! + text.slice(at);
        else if (op === 2) text = text.slice(0, at);
        else {
          const from = next() % text.length;
          text = text.slice(0, at) + text.slice(from, from + (next() % 200)) + text.slice(at);
        }
      }
      try {
        const { argv } = runOptionsFromDomain(text);
        expect(argv.length).toBeGreaterThan(0);
      } catch (error) {
        if (!(error instanceof DomainXmlError || error instanceof DomainUnsupportedError)) throw new Error(`round ${round}: ${String(error)}\n${text}`);
        typed++;
      }
    }
    expect(typed).toBeGreaterThan(1000);
  });

  it('never lets a syntax error out untyped', () => {
    expect(() => parseXml('<a')).toThrow(XmlSyntaxError);
  });
});

describe('the command line of a definition', () => {
  it('is what qemu-system-riscv64 takes, emulator first, and wkvm parses it back to the same options', () => {
    const domain = domainFromRunOptions(parseRunArgs(LINES['disk (raw)']!));
    const argv = qemuArgvFromDomain(domain);
    expect(argv.slice(0, 3)).toEqual(['/usr/bin/qemu-system-riscv64', '-name', 'guest=wkvm']);
    expect(argv).toEqual(expect.arrayContaining(['-drive', 'file=/tmp/disk.img,format=raw,if=none,id=drive0', '-device', 'virtio-blk-device,drive=drive0']));
    expect(parseRunArgs(argv.slice(1)).drives).toHaveLength(1);
  });
});
