// libvirt domain XML ⇄ wkvm: what `virsh domxml-from-native qemu-argv` and `domxml-to-native` do for
// QEMU, for the virt board wkvm emulates. A command line becomes a typed DomainDefinition and libvirt's
// XML for it (every document this writes passes libvirt's own schema, `virt-xml-validate FILE domain`);
// a domain document becomes the QEMU/wkvm argument list and the RunOptions `wkvm run` would parse from it.
//
// The mapping follows what libvirt's QEMU driver does with the same XML, so a definition means the same
// on a libvirt host with qemu-system-riscv64:
// - `<domain type='qemu'>` is TCG; type='kvm' asks for a riscv64 host with KVM, which wkvm is not.
// - No `<loader>` is QEMU's default firmware (its OpenSBI), wkvm's `-bios default`; `-bios FILE` is
//   `<loader type='rom'>`. libvirt has no element for "no firmware", so wkvm's firmware-less `-bios none`
//   is kept as libvirt keeps anything it has no element for: `<qemu:commandline>` arguments, which libvirt
//   appends to QEMU's command line (and so does the reverse conversion here).
// - Devices: `<address type='virtio-mmio'/>` is a `virtio-*-device`, a PCI address a `virtio-*-pci` on
//   pcie.0. A device without an address goes on PCI when the domain has a pcie-root controller, else on
//   virtio-mmio (what libvirt does for a virt board without one). A device libvirt cannot describe (one on a
//   named virtio-mmio transport, bus=virtio-mmio-bus.N; a user network with restrict=on, tftp= or
//   bootfile=) goes into `<qemu:commandline>` whole, as libvirt's own domxml-from-native does.
// - A domain without `<memballoon>` gets a virtio balloon, as libvirt adds one; `<memballoon model='none'/>`
//   says there is none.
// - Devices reach the command line in libvirt's order (virtio-serial controllers, disks, file systems,
//   interfaces, the balloon, entropy sources), then the `<qemu:commandline>` arguments; on virtio-mmio that
//   order decides the transports, from 0x10008000 down.
// Node-free: paths are taken as they are (the caller makes them absolute, as libvirt requires).
import { parseRunArgs, UsageError, type RunOptions } from '../cli/args.js';
import { planVirtioDevices, type VirtioDevicePlan } from '../devices/virtio/plan.js';
import { VirtioConfigError } from '../devices/virtio/errors.js';
import { formatMacAddress } from '../net/mac.js';
import { childElements, formatXml, parseXml, textOf, xmlElement, XmlSyntaxError, type XmlElement } from './xml.js';

/** A domain document that is not well-formed, or not a valid domain definition. */
export class DomainXmlError extends Error {
  constructor(readonly where: string, message: string, options?: { cause?: unknown }) {
    super(`${where}: ${message}`, options);
    this.name = 'DomainXmlError';
  }
}

/** A valid definition (or command line) that asks for something wkvm cannot run or libvirt cannot hold. */
export class DomainUnsupportedError extends Error {
  constructor(readonly where: string, message: string) {
    super(`${where}: ${message}`);
    this.name = 'DomainUnsupportedError';
  }
}

export const QEMU_NAMESPACE = 'http://libvirt.org/schemas/domain/qemu/1.0';
export const DEFAULT_EMULATOR = '/usr/bin/qemu-system-riscv64';
export const DEFAULT_DOMAIN_NAME = 'wkvm';

/** Where a device sits: a virtio-mmio transport (`bus`: a named one, which libvirt cannot say), or a PCI slot on pcie.0. */
export type DeviceAddress =
  | { readonly type: 'virtio-mmio'; readonly bus?: number }
  | { readonly type: 'pci'; readonly slot?: number };

/** A character device's host side, as libvirt names them: pty is the console (virsh console; wkvm's stdio). */
export type CharSource =
  | { readonly type: 'pty' }
  | { readonly type: 'null' }
  | { readonly type: 'file'; readonly path: string; readonly append: boolean };

export type CacheMode = 'writeback' | 'writethrough' | 'none' | 'unsafe';

export interface DiskDefinition {
  readonly source: string;
  /** Absent: the image's own magic decides (wkvm probes raw or qcow2). */
  readonly format?: 'raw' | 'qcow2';
  readonly cache?: CacheMode;
  /** The guest's name for it in libvirt (vda, vdb, ...). */
  readonly target: string;
  readonly readOnly: boolean;
  /** Writes are discarded at the end (libvirt's `<transient/>`, QEMU's snapshot=on). */
  readonly transient: boolean;
  readonly serial?: string;
  readonly queueSize?: number;
  readonly address: DeviceAddress;
}

export interface PortForward {
  /** '' for every host address. */
  readonly protocol: 'tcp' | 'udp';
  readonly hostAddress: string;
  readonly hostPort: number;
  readonly guestPort: number;
  /** The guest address as a 32-bit number, 0 for the guest's DHCP address (libvirt cannot name another). */
  readonly guestAddress: number;
}

/** A virtio-net NIC on the user network (QEMU's slirp addresses, 10.0.2.0/24). */
export interface InterfaceDefinition {
  /** Absent: wkvm gives QEMU's default, 52:54:00:12:34:56 counting up. */
  readonly mac?: string;
  readonly portForwards: readonly PortForward[];
  /** These three libvirt has no element for. */
  readonly restrict: boolean;
  readonly tftp?: string;
  readonly bootFile?: string;
  readonly address: DeviceAddress;
}

/** A host directory over virtio-9p. `squash` is QEMU's security_model=none, `passthrough` its passthrough. */
export interface FilesystemDefinition {
  readonly source: string;
  readonly mountTag: string;
  readonly accessMode: 'passthrough' | 'squash';
  readonly readOnly: boolean;
  readonly address: DeviceAddress;
}

export interface RngDefinition {
  /** An entropy file (libvirt's backend model='random'), or QEMU's builtin source. */
  readonly backend: { readonly model: 'random'; readonly file: string } | { readonly model: 'builtin' };
  readonly address: DeviceAddress;
}

/** A virtio-serial controller and, if any, its one console port (wkvm's virtio-serial has no MULTIPORT). */
export interface VirtioSerialDefinition {
  readonly port?: CharSource;
  readonly address: DeviceAddress;
}

export interface DomainDefinition {
  readonly type: 'qemu';
  readonly name: string;
  readonly uuid: string;
  readonly memoryKiB: number;
  readonly vcpus: number;
  readonly os: {
    readonly arch: 'riscv64';
    readonly machine: 'virt';
    /** -bios FILE; absent: QEMU's default firmware unless the QEMU arguments say -bios none. */
    readonly loader?: string;
    readonly kernel?: string;
    readonly initrd?: string;
    readonly cmdline?: string;
    readonly dtb?: string;
  };
  readonly clock: { readonly offset: 'utc' | 'localtime' } | { readonly offset: 'absolute'; readonly startSeconds: number };
  /** destroy: -no-reboot. */
  readonly onReboot: 'restart' | 'destroy';
  readonly emulator: string;
  /** The UART (the virt board has one). Absent: its output goes nowhere, as under libvirt. */
  readonly serial?: CharSource;
  readonly disks: readonly DiskDefinition[];
  readonly virtioSerials: readonly VirtioSerialDefinition[];
  readonly filesystems: readonly FilesystemDefinition[];
  readonly interfaces: readonly InterfaceDefinition[];
  /** null: `<memballoon model='none'/>`. */
  readonly memballoon: { readonly address: DeviceAddress } | null;
  readonly rngs: readonly RngDefinition[];
  /** `<qemu:commandline>` arguments, appended to the command line. */
  readonly qemuCommandline: readonly string[];
}

export interface FromNativeSettings {
  /** Makes a path absolute (libvirt requires absolute paths); by default a relative path is refused. */
  readonly absolutePath?: (path: string) => string;
  /** What `<emulator>` names (libvirt runs it; default /usr/bin/qemu-system-riscv64). */
  readonly emulator?: string;
  /** Used when the command line has no -uuid (default: crypto.randomUUID). */
  readonly randomUuid?: () => string;
}

// ---------------------------------------------------------------------------------------------------
// Command line → definition

/** The domain definition of a `wkvm run` (or qemu-system-riscv64) command line. */
export function domainFromRunOptions(options: RunOptions, settings: FromNativeSettings = {}): DomainDefinition {
  const absolute = (what: string, path: string): string => {
    const made = settings.absolutePath?.(path) ?? path;
    if (!made.startsWith('/')) throw new DomainUnsupportedError(what, `${path}: libvirt needs an absolute path`);
    return made;
  };
  if (options.serial.kind === 'socket') throw new DomainUnsupportedError('-serial', 'a serial console on a socket is not carried into domain XML yet (wkvm writes pty, null and file)');
  if (options.loaders.length > 0) throw new DomainUnsupportedError('-device loader', 'QEMU\'s generic loader has no libvirt element, and wkvm does not carry it in <qemu:commandline>');
  if (options.isa !== undefined) throw new DomainUnsupportedError('-cpu', 'the CPU model is not carried into domain XML yet (wkvm gives the core\'s rv64 CPU)');
  if (options.memoryBytes % 1024 !== 0) throw new DomainUnsupportedError('-m', 'not a whole number of KiB');
  let plan: VirtioDevicePlan[];
  try {
    plan = planVirtioDevices(options);
  } catch (error) {
    if (error instanceof VirtioConfigError) throw new DomainUnsupportedError('devices', error.message);
    throw error;
  }
  const disks: DiskDefinition[] = [];
  const virtioSerials: VirtioSerialDefinition[] = [];
  const filesystems: FilesystemDefinition[] = [];
  const interfaces: InterfaceDefinition[] = [];
  const rngs: RngDefinition[] = [];
  let memballoon: DomainDefinition['memballoon'] = null;
  // Devices libvirt has no element for, as QEMU arguments (ids of their own, apart from the ones the
  // typed devices get on the way back).
  const passthrough = new ArgvWriter('cmdline-');
  for (const item of plan) {
    const address: DeviceAddress = item.pci !== undefined ? { type: 'pci', slot: item.pci.slot }
      : { type: 'virtio-mmio', ...(item.bus === undefined ? {} : { bus: item.bus }) };
    const inexpressible = address.type === 'virtio-mmio' && address.bus !== undefined;
    switch (item.kind) {
      case 'blk': {
        const format = item.drive.format as DiskDefinition['format'];
        const disk: DiskDefinition = {
          source: absolute(`-drive file=${item.drive.file}`, item.drive.file),
          ...(format === undefined ? {} : { format }),
          ...(item.drive.cache === undefined ? {} : { cache: checkCache(`-drive file=${item.drive.file}`, item.drive.cache) }),
          target: diskTarget(disks.length), readOnly: item.drive.readonly ?? false, transient: item.snapshot,
          ...(item.serial === undefined ? {} : { serial: item.serial }),
          ...(item.queueSize === undefined ? {} : { queueSize: item.queueSize }),
          address,
        };
        if (inexpressible) passthrough.disk(disk);
        else disks.push(disk);
        break;
      }
      case 'net': {
        const network = item.network;
        if (network.type !== 'user') {
          throw new DomainUnsupportedError(`-netdev ${network.spelling},id=${item.netdev}`, 'socket network backends are not carried into domain XML yet (wkvm writes the user network)');
        }
        const nic: InterfaceDefinition = {
          mac: formatMacAddress(item.mac),
          portForwards: network.hostForwards.map((rule) => ({
            protocol: rule.protocol, hostAddress: rule.hostAddress, hostPort: rule.hostPort, guestPort: rule.guestPort, guestAddress: rule.guestAddress,
          })),
          restrict: network.restrict,
          ...(network.tftp === undefined ? {} : { tftp: absolute(`-netdev ${item.netdev},tftp=`, network.tftp) }),
          ...(network.bootFile === undefined ? {} : { bootFile: network.bootFile }),
          address,
        };
        if (inexpressible || !interfaceFitsLibvirt(nic)) passthrough.nic(nic);
        else interfaces.push(nic);
        break;
      }
      case '9p': {
        const share: FilesystemDefinition = {
          source: absolute(`-fsdev ${item.id}`, item.path), mountTag: item.mountTag,
          accessMode: item.securityModel === 'passthrough' ? 'passthrough' : 'squash', readOnly: item.readOnly, address,
        };
        if (inexpressible) passthrough.filesystem(share);
        else filesystems.push(share);
        break;
      }
      case 'rng': {
        const rng: RngDefinition = { backend: item.file === undefined ? { model: 'builtin' } : { model: 'random', file: item.file }, address };
        if (inexpressible) passthrough.rng(rng);
        else rngs.push(rng);
        break;
      }
      case 'balloon':
        if (inexpressible || memballoon !== null) passthrough.balloon({ address });
        else memballoon = { address };
        break;
      case 'console': {
        const port: CharSource | undefined = item.portless ? undefined
          : item.chardev === 'null' ? { type: 'null' }
            : item.chardev === 'file' ? { type: 'file', path: absolute('-chardev file', item.file!), append: item.append ?? false }
              : { type: 'pty' };
        const serial: VirtioSerialDefinition = { ...(port === undefined ? {} : { port }), address };
        if (inexpressible) passthrough.virtioSerial(serial);
        else virtioSerials.push(serial);
        break;
      }
    }
  }
  // libvirt has no way to say "no firmware"; QEMU's own argument says it.
  const bios = options.bios === 'none' ? ['-bios', 'none'] : [];
  return {
    type: 'qemu',
    name: options.name ?? DEFAULT_DOMAIN_NAME,
    uuid: options.uuid ?? (settings.randomUuid ?? (() => globalThis.crypto.randomUUID()))(),
    memoryKiB: options.memoryBytes / 1024,
    vcpus: options.smp,
    os: {
      arch: 'riscv64', machine: 'virt',
      ...(options.bios === 'none' || options.bios === 'default' ? {} : { loader: absolute('-bios', options.bios) }),
      ...(options.kernel === undefined ? {} : { kernel: absolute('-kernel', options.kernel) }),
      ...(options.initrd === undefined ? {} : { initrd: absolute('-initrd', options.initrd) }),
      ...(options.append === undefined ? {} : { cmdline: options.append }),
      ...(options.dtb === undefined ? {} : { dtb: absolute('-dtb', options.dtb) }),
    },
    clock: typeof options.rtcBase === 'string' ? { offset: options.rtcBase }
      : { offset: 'absolute', startSeconds: Math.floor(options.rtcBase.epochMs / 1000) },
    onReboot: options.noReboot ? 'destroy' : 'restart',
    emulator: settings.emulator ?? DEFAULT_EMULATOR,
    serial: options.serial.kind === 'stdio' ? { type: 'pty' } : options.serial.kind === 'file'
      ? { type: 'file', path: absolute('-serial file:', options.serial.path), append: false } : { type: 'null' },
    disks, virtioSerials, filesystems, interfaces, memballoon, rngs,
    // libvirt has no element for the virtio-mmio interface version: QEMU takes it as a -global.
    qemuCommandline: [...bios, ...(options.virtioMmioLegacy === undefined ? [] : ['-global', `virtio-mmio.force-legacy=${options.virtioMmioLegacy ? 'on' : 'off'}`]), ...passthrough.args],
  };
}

/** libvirt's user interface has MAC, model and port forwards; isolation and TFTP it cannot say. */
function interfaceFitsLibvirt(nic: InterfaceDefinition): boolean {
  return !nic.restrict && nic.tftp === undefined && nic.bootFile === undefined && nic.portForwards.every((rule) => rule.guestAddress === 0);
}

function diskTarget(index: number): string {
  // vda..vdz, then vdaa.., as libvirt names virtio disks.
  let name = '';
  let n = index;
  do {
    name = String.fromCharCode(97 + (n % 26)) + name;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return `vd${name}`;
}

const CACHE_MODES: readonly CacheMode[] = ['writeback', 'writethrough', 'none', 'unsafe'];

function checkCache(where: string, cache: string): CacheMode {
  if (!(CACHE_MODES as readonly string[]).includes(cache)) throw new DomainUnsupportedError(where, `cache=${cache}: wkvm has ${CACHE_MODES.join(', ')}`);
  return cache as CacheMode;
}

// ---------------------------------------------------------------------------------------------------
// Definition → XML

/** libvirt's domain XML for a definition. */
export function formatDomainXml(domain: DomainDefinition): string {
  const hasPci = [...domain.disks, ...domain.virtioSerials, ...domain.filesystems, ...domain.interfaces, ...domain.rngs,
    ...(domain.memballoon === null ? [] : [domain.memballoon])].some((device) => device.address.type === 'pci');
  const devices: XmlElement[] = [xmlElement('emulator', {}, [domain.emulator])];
  for (const disk of domain.disks) {
    devices.push(xmlElement('disk', { type: 'file', device: 'disk', model: virtioModel(disk.address) }, [
      xmlElement('driver', { name: 'qemu', type: disk.format, cache: disk.cache, queue_size: disk.queueSize }),
      xmlElement('source', { file: disk.source }),
      xmlElement('target', { dev: disk.target, bus: 'virtio' }),
      disk.readOnly ? xmlElement('readonly') : null,
      disk.transient ? xmlElement('transient') : null,
      disk.serial === undefined ? null : xmlElement('serial', {}, [disk.serial]),
      addressElement(disk.address),
    ]));
  }
  if (hasPci) devices.push(xmlElement('controller', { type: 'pci', index: 0, model: 'pcie-root' }));
  domain.virtioSerials.forEach((serial, index) => {
    devices.push(xmlElement('controller', { type: 'virtio-serial', index, model: virtioModel(serial.address) }, [addressElement(serial.address)]));
  });
  for (const share of domain.filesystems) {
    devices.push(xmlElement('filesystem', { type: 'mount', accessmode: share.accessMode, model: virtioModel(share.address) }, [
      xmlElement('driver', { type: 'path' }),
      xmlElement('source', { dir: share.source }),
      xmlElement('target', { dir: share.mountTag }),
      share.readOnly ? xmlElement('readonly') : null,
      addressElement(share.address),
    ]));
  }
  for (const nic of domain.interfaces) {
    devices.push(xmlElement('interface', { type: 'user' }, [
      nic.mac === undefined ? null : xmlElement('mac', { address: nic.mac }),
      xmlElement('model', { type: virtioModel(nic.address) ?? 'virtio' }),
      // libvirt forwards ports only with its passt backend; wkvm runs the interface on its own user network either way.
      nic.portForwards.length === 0 ? null : xmlElement('backend', { type: 'passt' }),
      ...nic.portForwards.map((rule) => xmlElement('portForward', { proto: rule.protocol, address: rule.hostAddress === '' ? undefined : rule.hostAddress }, [
        xmlElement('range', { start: rule.hostPort, to: rule.guestPort }),
      ])),
      addressElement(nic.address),
    ]));
  }
  if (domain.serial !== undefined) {
    devices.push(charElement('serial', domain.serial, [xmlElement('target', { type: 'system-serial', port: 0 }, [xmlElement('model', { name: '16550a' })])]));
    devices.push(charElement('console', domain.serial, [xmlElement('target', { type: 'serial', port: 0 })]));
  }
  domain.virtioSerials.forEach((serial, index) => {
    if (serial.port === undefined) return;
    devices.push(charElement('console', serial.port, [
      xmlElement('target', { type: 'virtio', port: 0 }),
      xmlElement('address', { type: 'virtio-serial', controller: index, bus: 0, port: 0 }),
    ]));
  });
  devices.push(domain.memballoon === null ? xmlElement('memballoon', { model: 'none' })
    : xmlElement('memballoon', { model: virtioModel(domain.memballoon.address) ?? 'virtio' }, [addressElement(domain.memballoon.address)]));
  for (const rng of domain.rngs) {
    devices.push(xmlElement('rng', { model: virtioModel(rng.address) ?? 'virtio' }, [
      rng.backend.model === 'random' ? xmlElement('backend', { model: 'random' }, [rng.backend.file]) : xmlElement('backend', { model: 'builtin' }),
      addressElement(rng.address),
    ]));
  }
  const os = domain.os;
  const clock = domain.clock.offset === 'absolute' ? { offset: 'absolute', start: domain.clock.startSeconds } : { offset: domain.clock.offset };
  const root = xmlElement('domain', { type: domain.type, 'xmlns:qemu': domain.qemuCommandline.length > 0 ? QEMU_NAMESPACE : undefined }, [
    xmlElement('name', {}, [domain.name]),
    xmlElement('uuid', {}, [domain.uuid]),
    xmlElement('memory', { unit: 'KiB' }, [String(domain.memoryKiB)]),
    xmlElement('vcpu', { placement: 'static' }, [String(domain.vcpus)]),
    xmlElement('os', {}, [
      xmlElement('type', { arch: os.arch, machine: os.machine }, ['hvm']),
      os.loader === undefined ? null : xmlElement('loader', { readonly: 'yes', type: 'rom' }, [os.loader]),
      os.kernel === undefined ? null : xmlElement('kernel', {}, [os.kernel]),
      os.initrd === undefined ? null : xmlElement('initrd', {}, [os.initrd]),
      os.cmdline === undefined ? null : xmlElement('cmdline', {}, [os.cmdline]),
      os.dtb === undefined ? null : xmlElement('dtb', {}, [os.dtb]),
    ]),
    xmlElement('clock', clock),
    xmlElement('on_poweroff', {}, ['destroy']),
    xmlElement('on_reboot', {}, [domain.onReboot]),
    xmlElement('on_crash', {}, ['destroy']),
    xmlElement('devices', {}, devices),
    domain.qemuCommandline.length === 0 ? null
      : xmlElement('qemu:commandline', {}, domain.qemuCommandline.map((value) => xmlElement('qemu:arg', { value }))),
  ]);
  return formatXml(root);
}

/** wkvm's PCI devices are modern-only, libvirt's virtio-non-transitional; on virtio-mmio libvirt's model is plain virtio. */
function virtioModel(address: DeviceAddress): string | undefined {
  return address.type === 'pci' ? 'virtio-non-transitional' : undefined;
}

function addressElement(address: DeviceAddress): XmlElement {
  if (address.type === 'virtio-mmio') return xmlElement('address', { type: 'virtio-mmio' });
  return xmlElement('address', { type: 'pci', domain: '0x0000', bus: '0x00', slot: address.slot === undefined ? undefined : hex2(address.slot), function: '0x0' });
}

function hex2(value: number): string {
  return `0x${value.toString(16).padStart(2, '0')}`;
}

function charElement(name: string, source: CharSource, targets: XmlElement[]): XmlElement {
  const sourceElement = source.type === 'file' ? xmlElement('source', { path: source.path, append: source.append ? 'on' : undefined }) : null;
  return xmlElement(name, { type: source.type }, [sourceElement, ...targets]);
}

/** The domain XML of a command line, in one step. */
export function domainXmlFromRunOptions(options: RunOptions, settings: FromNativeSettings = {}): string {
  return formatDomainXml(domainFromRunOptions(options, settings));
}

// ---------------------------------------------------------------------------------------------------
// Definition → command line

/** QEMU's `,` inside a sub-option value is written `,,`. */
function subOption(value: string): string {
  return value.replace(/,/g, ',,');
}

/** Writes devices as QEMU arguments, naming their backends with a prefix of its own. */
class ArgvWriter {
  readonly args: string[] = [];
  private readonly counts = new Map<string, number>();

  constructor(private readonly idPrefix: string) {}

  private id(kind: string): string {
    const n = this.counts.get(kind) ?? 0;
    this.counts.set(kind, n + 1);
    return `${this.idPrefix}${kind}${n}`;
  }

  /** `virtio-X-device[,bus=virtio-mmio-bus.N]` or `virtio-X-pci,bus=pcie.0[,addr=0xN]`, then the properties. */
  private device(model: string, address: DeviceAddress, properties: string[]): void {
    const placement = address.type === 'pci'
      ? [`${model}-pci`, 'bus=pcie.0', ...(address.slot === undefined ? [] : [`addr=${hex2(address.slot)}`])]
      : [`${model}-device`, ...(address.bus === undefined ? [] : [`bus=virtio-mmio-bus.${address.bus}`])];
    this.args.push('-device', [...placement, ...properties].join(','));
  }

  disk(disk: DiskDefinition): void {
    const id = this.id('drive');
    this.args.push('-drive', [`file=${subOption(disk.source)}`, ...(disk.format === undefined ? [] : [`format=${disk.format}`]), 'if=none', `id=${id}`,
      ...(disk.cache === undefined ? [] : [`cache=${disk.cache}`]), ...(disk.readOnly ? ['readonly=on'] : []),
      ...(disk.transient ? ['snapshot=on'] : [])].join(','));
    this.device('virtio-blk', disk.address, [`drive=${id}`, ...(disk.serial === undefined ? [] : [`serial=${subOption(disk.serial)}`]),
      ...(disk.queueSize === undefined ? [] : [`queue-size=${disk.queueSize}`])]);
  }

  filesystem(share: FilesystemDefinition): void {
    const id = this.id('fsdev');
    this.args.push('-fsdev', [`local,id=${id},path=${subOption(share.source)}`, `security_model=${share.accessMode === 'squash' ? 'none' : 'passthrough'}`,
      ...(share.readOnly ? ['readonly=on'] : [])].join(','));
    this.device('virtio-9p', share.address, [`fsdev=${id}`, `mount_tag=${subOption(share.mountTag)}`]);
  }

  nic(nic: InterfaceDefinition): void {
    const id = this.id('net');
    const forwards = nic.portForwards.map((rule) => {
      const guest = rule.guestAddress === 0 ? '' : [24, 16, 8, 0].map((shift) => (rule.guestAddress >>> shift) & 0xff).join('.');
      return `hostfwd=${rule.protocol}:${rule.hostAddress}:${rule.hostPort}-${guest}:${rule.guestPort}`;
    });
    this.args.push('-netdev', [`user,id=${id}`, ...(nic.restrict ? ['restrict=on'] : []), ...forwards,
      ...(nic.tftp === undefined ? [] : [`tftp=${subOption(nic.tftp)}`]), ...(nic.bootFile === undefined ? [] : [`bootfile=${subOption(nic.bootFile)}`])].join(','));
    this.device('virtio-net', nic.address, [`netdev=${id}`, ...(nic.mac === undefined ? [] : [`mac=${nic.mac}`])]);
  }

  rng(rng: RngDefinition): void {
    const id = this.id('rng');
    this.args.push('-object', rng.backend.model === 'random' ? `rng-random,id=${id},filename=${subOption(rng.backend.file)}` : `rng-builtin,id=${id}`);
    this.device('virtio-rng', rng.address, [`rng=${id}`]);
  }

  balloon(balloon: { readonly address: DeviceAddress }): void {
    this.device('virtio-balloon', balloon.address, []);
  }

  virtioSerial(serial: VirtioSerialDefinition): void {
    this.device('virtio-serial', serial.address, []);
    if (serial.port === undefined) return;
    const id = this.id('charconsole');
    const port = serial.port;
    // pty is the console a user attaches to; wkvm's console is its stdio.
    this.args.push('-chardev', port.type === 'pty' ? `stdio,id=${id}` : port.type === 'null' ? `null,id=${id}`
      : `file,id=${id},path=${subOption(port.path)}${port.append ? ',append=on' : ''}`);
    this.args.push('-device', `virtconsole,chardev=${id}`);
  }
}

/** The UART's -serial for a libvirt serial source (pty: the console, wkvm's stdio). */
function serialArgument(source: CharSource | undefined): string {
  if (source === undefined || source.type === 'null') return 'null';
  if (source.type === 'pty') return 'stdio';
  return `file:${source.path}`;
}

function formatRtcBase(seconds: number): string {
  return new Date(seconds * 1000).toISOString().slice(0, 19);
}

/** The QEMU/wkvm arguments for a definition, the emulator first (libvirt's order; see the top of this file). */
export function qemuArgvFromDomain(domain: DomainDefinition): string[] {
  const os = domain.os;
  const memoryMiB = domain.memoryKiB / 1024;
  if (!Number.isInteger(memoryMiB)) throw new DomainUnsupportedError('memory', `${domain.memoryKiB} KiB: wkvm's RAM is a whole number of MiB`);
  const argv = [
    domain.emulator, '-name', `guest=${subOption(domain.name)}`, '-uuid', domain.uuid, '-machine', 'virt', '-accel', 'tcg',
    '-m', `${memoryMiB}M`, '-smp', String(domain.vcpus),
    // No loader is QEMU's own firmware; wkvm's default is none, so it is said.
    '-bios', os.loader ?? 'default',
    ...(os.kernel === undefined ? [] : ['-kernel', os.kernel]),
    ...(os.initrd === undefined ? [] : ['-initrd', os.initrd]),
    ...(os.cmdline === undefined ? [] : ['-append', os.cmdline]),
    ...(os.dtb === undefined ? [] : ['-dtb', os.dtb]),
    // libvirt's way to a headless QEMU whose UART goes only where -serial says (QEMU's -nographic would put
    // its monitor on stdio too); wkvm takes both spellings.
    '-nodefaults', '-display', 'none', ...(domain.onReboot === 'destroy' ? ['-no-reboot'] : []),
    '-rtc', `base=${domain.clock.offset === 'absolute' ? formatRtcBase(domain.clock.startSeconds) : domain.clock.offset}`,
    '-serial', serialArgument(domain.serial),
  ];
  const writer = new ArgvWriter('');
  domain.virtioSerials.forEach((serial) => writer.virtioSerial(serial));
  domain.disks.forEach((disk) => writer.disk(disk));
  domain.filesystems.forEach((share) => writer.filesystem(share));
  domain.interfaces.forEach((nic) => writer.nic(nic));
  if (domain.memballoon !== null) writer.balloon(domain.memballoon);
  domain.rngs.forEach((rng) => writer.rng(rng));
  return [...argv, ...writer.args, ...domain.qemuCommandline];
}

/**
 * A domain document as wkvm runs it: the definition, the command line (emulator first) and the options
 * `wkvm run` parses from it. Throws DomainXmlError or DomainUnsupportedError, never anything else for
 * bad input.
 */
export function runOptionsFromDomain(xml: string): { domain: DomainDefinition; argv: string[]; options: RunOptions } {
  const domain = parseDomainXml(xml);
  const argv = qemuArgvFromDomain(domain);
  let options: RunOptions;
  try {
    options = parseRunArgs(argv.slice(1));
    planVirtioDevices(options);
  } catch (error) {
    // The typed devices always make valid arguments; what fails here is <qemu:commandline> or a value in the document.
    if (error instanceof UsageError || error instanceof VirtioConfigError) {
      throw new DomainUnsupportedError(domain.qemuCommandline.length > 0 ? 'domain (with its <qemu:commandline>)' : 'domain', error.message);
    }
    throw error;
  }
  return { domain, argv, options };
}

// ---------------------------------------------------------------------------------------------------
// XML → definition

/** Top-level elements that describe the host's side (tuning, security, descriptions) and change nothing wkvm runs. */
const IGNORED_DOMAIN_ELEMENTS = new Set(['title', 'description', 'metadata', 'currentMemory', 'features', 'cpu', 'on_crash', 'pm', 'seclabel',
  'resource', 'sysinfo', 'iothreads', 'cputune', 'memtune', 'blkiotune', 'numatune', 'memoryBacking', 'genid']);
const DOMAIN_ELEMENTS = new Set(['name', 'uuid', 'memory', 'vcpu', 'os', 'clock', 'on_poweroff', 'on_reboot', 'devices']);

const MEMORY_UNITS: Readonly<Record<string, number>> = {
  b: 1, bytes: 1, KB: 1e3, k: 1024, KiB: 1024, MB: 1e6, M: 1024 ** 2, MiB: 1024 ** 2, GB: 1e9, G: 1024 ** 3, GiB: 1024 ** 3,
  TB: 1e12, T: 1024 ** 4, TiB: 1024 ** 4,
};

/** Reads a domain document into a definition. Throws DomainXmlError or DomainUnsupportedError. */
export function parseDomainXml(xml: string): DomainDefinition {
  let root: XmlElement;
  try {
    root = parseXml(xml);
  } catch (error) {
    if (error instanceof XmlSyntaxError) throw new DomainXmlError('domain XML', error.message, { cause: error });
    throw error;
  }
  return new DomainReader().read(root);
}

class DomainReader {
  private hasPcieRoot = false;

  read(root: XmlElement): DomainDefinition {
    if (root.localName !== 'domain' || root.namespace !== '') throw new DomainXmlError(`<${root.name}>`, 'not a libvirt domain (the root element must be <domain>)');
    const type = root.attributes.get('type');
    if (type === undefined) throw new DomainXmlError('<domain>', 'the type attribute is required');
    if (type !== 'qemu') {
      throw new DomainUnsupportedError(`<domain type='${type}'>`, type === 'kvm'
        ? "a riscv64 guest under KVM needs a riscv64 host with /dev/kvm; wkvm emulates, as QEMU's TCG: use type='qemu'"
        : "wkvm runs type='qemu' domains");
    }
    for (const child of childElements(root)) {
      if (child.namespace === QEMU_NAMESPACE) {
        if (child.localName !== 'commandline') throw new DomainUnsupportedError(`<${child.name}>`, 'wkvm takes <qemu:commandline> arguments only');
        continue;
      }
      if (child.namespace !== '') continue; // another application's extension, which libvirt too leaves alone
      if (!DOMAIN_ELEMENTS.has(child.localName) && !IGNORED_DOMAIN_ELEMENTS.has(child.localName)) {
        throw new DomainUnsupportedError(`<${child.name}>`, 'not an element wkvm can honour');
      }
    }
    const name = this.text(this.one(root, 'name', true)!, '<name>');
    if (name === '' || name.includes('/')) throw new DomainXmlError('<name>', `'${name}' is not a domain name`);
    const uuidElement = this.one(root, 'uuid', false);
    const uuid = uuidElement === undefined ? globalThis.crypto.randomUUID() : this.uuid(uuidElement);
    const memoryKiB = this.memoryKiB(this.one(root, 'memory', true)!);
    const vcpus = this.vcpus(this.one(root, 'vcpu', true)!);
    const os = this.os(this.one(root, 'os', true)!);
    const onPoweroff = this.one(root, 'on_poweroff', false);
    if (onPoweroff !== undefined && this.text(onPoweroff, '<on_poweroff>') !== 'destroy') {
      throw new DomainUnsupportedError('<on_poweroff>', `${this.text(onPoweroff, '<on_poweroff>')}: wkvm ends when the guest powers off (destroy)`);
    }
    const onRebootElement = this.one(root, 'on_reboot', false);
    const onReboot = onRebootElement === undefined ? 'restart' : this.text(onRebootElement, '<on_reboot>');
    if (onReboot !== 'restart' && onReboot !== 'destroy') throw new DomainUnsupportedError('<on_reboot>', `${onReboot}: wkvm restarts or ends (restart, destroy)`);
    const clock = this.clock(this.one(root, 'clock', false));
    const devicesElement = this.one(root, 'devices', false);
    const devices = devicesElement === undefined ? null : devicesElement;
    const qemuCommandline: string[] = [];
    for (const commandline of childElements(root, 'commandline', QEMU_NAMESPACE)) {
      for (const child of childElements(commandline)) {
        if (child.localName !== 'arg' || child.namespace !== QEMU_NAMESPACE) throw new DomainUnsupportedError(`<qemu:commandline><${child.name}>`, 'wkvm takes <qemu:arg value=.../> only');
        const value = child.attributes.get('value');
        if (value === undefined) throw new DomainXmlError('<qemu:arg>', 'the value attribute is required');
        qemuCommandline.push(value);
      }
    }
    return { type: 'qemu', name, uuid, memoryKiB, vcpus, os, clock, onReboot, ...this.devices(devices), qemuCommandline };
  }

  private devices(element: XmlElement | null): Pick<DomainDefinition, 'emulator' | 'serial' | 'disks' | 'virtioSerials' | 'filesystems' | 'interfaces' | 'memballoon' | 'rngs'> {
    const children = element === null ? [] : childElements(element);
    this.hasPcieRoot = children.some((child) => child.localName === 'controller' && child.attributes.get('type') === 'pci' && child.attributes.get('model') === 'pcie-root');
    let emulator = DEFAULT_EMULATOR;
    let serial: CharSource | undefined;
    let consoleSerial: CharSource | undefined;
    const disks: DiskDefinition[] = [];
    const filesystems: FilesystemDefinition[] = [];
    const interfaces: InterfaceDefinition[] = [];
    const rngs: RngDefinition[] = [];
    const serialControllers = new Map<number, { address: DeviceAddress; port?: CharSource }>();
    const portlessConsoles: CharSource[] = [];
    let memballoon: DomainDefinition['memballoon'] | undefined;
    let index = 0;
    const where = (child: XmlElement) => `<devices><${child.name}> #${index}`;
    for (const child of children) {
      index++;
      if (child.namespace !== '') throw new DomainUnsupportedError(where(child), 'not a device wkvm has');
      switch (child.localName) {
        case 'emulator':
          emulator = this.absolutePath(child, where(child));
          break;
        case 'disk':
          disks.push(this.disk(child, where(child)));
          break;
        case 'controller': {
          const controller = this.controller(child, where(child));
          if (controller !== null) {
            if (serialControllers.has(controller.index)) throw new DomainXmlError(where(child), `a second virtio-serial controller with index ${controller.index}`);
            serialControllers.set(controller.index, { address: controller.address });
          }
          break;
        }
        case 'filesystem':
          filesystems.push(this.filesystem(child, where(child)));
          break;
        case 'interface':
          interfaces.push(this.networkInterface(child, where(child)));
          break;
        case 'serial':
          if (serial !== undefined) throw new DomainUnsupportedError(where(child), 'the virt board has one UART');
          this.serialTarget(child, where(child));
          serial = this.charSource(child, where(child));
          break;
        case 'console': {
          const target = this.one(child, 'target', false);
          const targetType = target?.attributes.get('type') ?? 'serial';
          const source = this.charSource(child, where(child));
          if (targetType === 'serial') {
            // libvirt's first console is the serial port again; with no <serial>, it makes one.
            consoleSerial ??= source;
          } else if (targetType === 'virtio') {
            const address = this.one(child, 'address', false);
            if (address === undefined) {
              portlessConsoles.push(source);
            } else {
              if (address.attributes.get('type') !== 'virtio-serial') throw new DomainXmlError(where(child), 'a virtio console\'s address is a virtio-serial one');
              const controller = this.integer(address.attributes.get('controller') ?? '0', where(child), 'controller');
              const entry = serialControllers.get(controller) ?? { address: this.defaultAddress() };
              if (entry.port !== undefined) throw new DomainUnsupportedError(where(child), `virtio-serial controller ${controller} already has a console: wkvm's has one port (no MULTIPORT)`);
              serialControllers.set(controller, { ...entry, port: source });
            }
          } else {
            throw new DomainUnsupportedError(where(child), `console target type '${targetType}': wkvm has serial and virtio consoles`);
          }
          break;
        }
        case 'memballoon':
          if (memballoon !== undefined) throw new DomainXmlError(where(child), 'a second <memballoon>');
          memballoon = this.memballoon(child, where(child));
          break;
        case 'rng':
          rngs.push(this.rng(child, where(child)));
          break;
        default:
          throw new DomainUnsupportedError(where(child), `the virt board in wkvm has no such device (it has disk, filesystem, interface, serial, console, memballoon, rng, and pcie-root and virtio-serial controllers)`);
      }
    }
    // Consoles without an address take controllers without a console, then controllers of their own.
    const virtioSerials: VirtioSerialDefinition[] = [...serialControllers.entries()].sort(([a], [b]) => a - b).map(([, entry]) => entry);
    for (const port of portlessConsoles) {
      const free = virtioSerials.findIndex((entry) => entry.port === undefined);
      if (free >= 0) virtioSerials[free] = { ...virtioSerials[free]!, port };
      else virtioSerials.push({ address: this.defaultAddress(), port });
    }
    serial ??= consoleSerial;
    // libvirt adds a virtio balloon to a domain that does not say <memballoon model='none'/>.
    return {
      emulator, ...(serial === undefined ? {} : { serial }), disks, virtioSerials, filesystems, interfaces, rngs,
      memballoon: memballoon === undefined ? { address: this.defaultAddress() } : memballoon,
    };
  }

  private disk(element: XmlElement, where: string): DiskDefinition {
    this.onlyChildren(element, where, ['driver', 'source', 'target', 'readonly', 'transient', 'serial', 'address', 'alias', 'boot']);
    const type = element.attributes.get('type') ?? 'file';
    if (type !== 'file') throw new DomainUnsupportedError(where, `disk type '${type}': wkvm opens image files (type='file')`);
    const device = element.attributes.get('device') ?? 'disk';
    if (device !== 'disk') throw new DomainUnsupportedError(where, `device '${device}': wkvm's virt board has virtio disks only`);
    this.checkModel(element.attributes.get('model'), where);
    const driver = this.one(element, 'driver', false);
    const driverName = driver?.attributes.get('name') ?? 'qemu';
    if (driverName !== 'qemu') throw new DomainUnsupportedError(where, `driver name '${driverName}': the QEMU driver's is 'qemu'`);
    const format = driver?.attributes.get('type');
    if (format !== undefined && format !== 'raw' && format !== 'qcow2') throw new DomainUnsupportedError(where, `image format '${format}': wkvm reads raw and qcow2`);
    const cache = driver?.attributes.get('cache');
    const queueSize = driver?.attributes.get('queue_size');
    for (const key of driver?.attributes.keys() ?? []) {
      if (!['name', 'type', 'cache', 'queue_size', 'io', 'discard', 'detect_zeroes'].includes(key)) throw new DomainUnsupportedError(where, `<driver ${key}=...> is not something wkvm has`);
    }
    const source = this.one(element, 'source', true, where)!;
    const file = source.attributes.get('file');
    if (file === undefined) throw new DomainXmlError(where, '<source file=...> is required (wkvm has no empty drives)');
    const target = this.one(element, 'target', true, where)!;
    const dev = target.attributes.get('dev');
    if (dev === undefined || dev === '') throw new DomainXmlError(where, '<target dev=...> is required');
    const bus = target.attributes.get('bus') ?? (dev.startsWith('vd') ? 'virtio' : undefined);
    if (bus !== 'virtio') throw new DomainUnsupportedError(where, `bus '${bus ?? '(from ' + dev + ')'}': wkvm's disks are virtio`);
    const serial = this.one(element, 'serial', false);
    return {
      source: this.checkAbsolute(file, where), ...(format === undefined ? {} : { format }),
      ...(cache === undefined || cache === 'default' ? {} : { cache: checkCache(where, cache) }),
      target: dev, readOnly: this.one(element, 'readonly', false) !== undefined, transient: this.one(element, 'transient', false) !== undefined,
      ...(serial === undefined ? {} : { serial: textOf(serial) }),
      ...(queueSize === undefined ? {} : { queueSize: this.integer(queueSize, where, 'queue_size') }),
      address: this.address(element, where),
    };
  }

  /** The virtio-serial controller's index and address; null for the controllers that need nothing (pcie-root, a USB controller of model none). */
  private controller(element: XmlElement, where: string): { index: number; address: DeviceAddress } | null {
    const type = element.attributes.get('type');
    const model = element.attributes.get('model');
    const index = this.integer(element.attributes.get('index') ?? '0', where, 'index');
    if (type === 'pci' && model === 'pcie-root') {
      if (index !== 0) throw new DomainUnsupportedError(where, 'the virt board has one PCIe root, index 0');
      return null;
    }
    if (type === 'usb' && model === 'none') return null;
    if (type === 'virtio-serial') {
      this.onlyChildren(element, where, ['address', 'alias']);
      this.checkModel(model, where);
      return { index, address: this.address(element, where) };
    }
    throw new DomainUnsupportedError(where, `controller type '${type ?? ''}'${model === undefined ? '' : ` model '${model}'`}: wkvm has pcie-root (pcie.0) and virtio-serial`);
  }

  private filesystem(element: XmlElement, where: string): FilesystemDefinition {
    this.onlyChildren(element, where, ['driver', 'source', 'target', 'readonly', 'address', 'alias']);
    const type = element.attributes.get('type') ?? 'mount';
    if (type !== 'mount') throw new DomainUnsupportedError(where, `filesystem type '${type}': wkvm shares host directories (type='mount')`);
    const accessMode = element.attributes.get('accessmode') ?? 'passthrough';
    if (accessMode !== 'passthrough' && accessMode !== 'squash') {
      throw new DomainUnsupportedError(where, `accessmode '${accessMode}': wkvm has passthrough and squash (mapped needs extended attributes Node cannot write)`);
    }
    this.checkModel(element.attributes.get('model'), where);
    const driverType = this.one(element, 'driver', false)?.attributes.get('type') ?? 'path';
    if (driverType !== 'path') throw new DomainUnsupportedError(where, `driver type '${driverType}': wkvm serves 9p from a path (virtiofs it has not)`);
    const dir = this.one(element, 'source', true, where)!.attributes.get('dir');
    if (dir === undefined) throw new DomainXmlError(where, '<source dir=...> is required');
    const tag = this.one(element, 'target', true, where)!.attributes.get('dir');
    if (tag === undefined || tag === '') throw new DomainXmlError(where, '<target dir=...> (the mount tag) is required');
    return { source: this.checkAbsolute(dir, where), mountTag: tag, accessMode, readOnly: this.one(element, 'readonly', false) !== undefined, address: this.address(element, where) };
  }

  private networkInterface(element: XmlElement, where: string): InterfaceDefinition {
    this.onlyChildren(element, where, ['mac', 'model', 'backend', 'portForward', 'address', 'alias', 'link', 'boot']);
    const type = element.attributes.get('type');
    if (type !== 'user') throw new DomainUnsupportedError(where, `interface type '${type ?? ''}': wkvm has the user network (type='user')`);
    const model = this.one(element, 'model', false)?.attributes.get('type') ?? 'virtio';
    this.checkModel(model, where);
    const backend = this.one(element, 'backend', false);
    const backendType = backend?.attributes.get('type');
    if (backendType !== undefined && backendType !== 'passt') throw new DomainUnsupportedError(where, `backend type '${backendType}'`);
    const mac = this.one(element, 'mac', false)?.attributes.get('address');
    if (mac !== undefined && !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) throw new DomainXmlError(where, `mac address '${mac}'`);
    const portForwards: PortForward[] = [];
    for (const forward of childElements(element, 'portForward')) {
      const proto = forward.attributes.get('proto');
      if (proto !== 'tcp' && proto !== 'udp') throw new DomainUnsupportedError(where, `portForward proto '${proto ?? ''}': wkvm forwards tcp and udp`);
      if (forward.attributes.has('dev')) throw new DomainUnsupportedError(where, 'portForward dev=: wkvm binds to an address, not a device');
      const hostAddress = forward.attributes.get('address') ?? '';
      for (const range of childElements(forward)) {
        if (range.localName !== 'range') throw new DomainXmlError(where, `<portForward><${range.name}>`);
        const start = this.port(range.attributes.get('start'), where);
        const end = range.attributes.get('end') === undefined ? start : this.port(range.attributes.get('end'), where);
        if (range.attributes.get('exclude') === 'yes') throw new DomainUnsupportedError(where, 'portForward ranges with exclude=yes');
        const to = range.attributes.get('to') === undefined ? start : this.port(range.attributes.get('to'), where);
        if (end < start || end - start > 1024) throw new DomainXmlError(where, `port range ${start}-${end}`);
        for (let port = start; port <= end; port++) portForwards.push({ protocol: proto, hostAddress, hostPort: port, guestPort: to + port - start, guestAddress: 0 });
      }
    }
    return { ...(mac === undefined ? {} : { mac: mac.toLowerCase() }), portForwards, restrict: false, address: this.address(element, where) };
  }

  private rng(element: XmlElement, where: string): RngDefinition {
    this.onlyChildren(element, where, ['backend', 'address', 'alias']);
    this.checkModel(element.attributes.get('model'), where);
    const backend = this.one(element, 'backend', true, where)!;
    const model = backend.attributes.get('model');
    const address = this.address(element, where);
    if (model === 'builtin') return { backend: { model: 'builtin' }, address };
    if (model !== 'random') throw new DomainUnsupportedError(where, `rng backend '${model ?? ''}': wkvm has random and builtin`);
    const file = textOf(backend).trim() || '/dev/urandom';
    return { backend: { model: 'random', file: this.checkAbsolute(file, where) }, address };
  }

  private memballoon(element: XmlElement, where: string): DomainDefinition['memballoon'] {
    this.onlyChildren(element, where, ['address', 'alias', 'stats']);
    const model = element.attributes.get('model');
    if (model === 'none') return null;
    this.checkModel(model, where);
    return { address: this.address(element, where) };
  }

  private serialTarget(element: XmlElement, where: string): void {
    const target = this.one(element, 'target', false);
    const type = target?.attributes.get('type') ?? 'system-serial';
    const model = target === undefined ? undefined : this.one(target, 'model', false)?.attributes.get('name');
    if (type !== 'system-serial' || (model !== undefined && model !== '16550a')) {
      throw new DomainUnsupportedError(where, `serial target '${type}'${model === undefined ? '' : ` model '${model}'`}: the virt board's UART is a system-serial 16550a`);
    }
  }

  private charSource(element: XmlElement, where: string): CharSource {
    const type = element.attributes.get('type') ?? 'pty';
    if (type === 'pty' || type === 'stdio') return { type: 'pty' };
    if (type === 'null') return { type: 'null' };
    if (type === 'file') {
      const source = this.one(element, 'source', true, where)!;
      const path = source.attributes.get('path');
      if (path === undefined) throw new DomainXmlError(where, '<source path=...> is required');
      return { type: 'file', path: this.checkAbsolute(path, where), append: source.attributes.get('append') === 'on' };
    }
    throw new DomainUnsupportedError(where, `character device type '${type}': wkvm has pty (its console), null and file`);
  }

  /** virtio-mmio, or pcie.0 slot N function 0; none: PCI with a pcie-root, else virtio-mmio. */
  private address(element: XmlElement, where: string): DeviceAddress {
    const address = this.one(element, 'address', false);
    if (address === undefined) return this.defaultAddress();
    const type = address.attributes.get('type');
    if (type === 'virtio-mmio') return { type: 'virtio-mmio' };
    if (type !== 'pci') throw new DomainUnsupportedError(where, `address type '${type ?? ''}': wkvm has virtio-mmio and pci`);
    const number = (key: string, fallback: string) => this.integer(address.attributes.get(key) ?? fallback, where, `address ${key}`);
    if (number('domain', '0') !== 0 || number('bus', '0') !== 0) throw new DomainUnsupportedError(where, 'the virt board has one PCI bus, 0000:00');
    if (number('function', '0') !== 0 || address.attributes.get('multifunction') === 'on') throw new DomainUnsupportedError(where, 'wkvm\'s PCI devices are single-function (function 0)');
    if (!address.attributes.has('slot')) return { type: 'pci' };
    const slot = number('slot', '0');
    if (slot < 1 || slot > 31) throw new DomainXmlError(where, `PCI slot ${slot}: slots 1 to 31 (0 is the host bridge)`);
    return { type: 'pci', slot };
  }

  private defaultAddress(): DeviceAddress {
    return this.hasPcieRoot ? { type: 'pci' } : { type: 'virtio-mmio' };
  }

  /** virtio, or libvirt's modern-only name; transitional virtio has a legacy interface wkvm lacks. */
  private checkModel(model: string | undefined, where: string): void {
    if (model === undefined || model === 'virtio' || model === 'virtio-non-transitional') return;
    throw new DomainUnsupportedError(where, `model '${model}': wkvm's devices are virtio (modern: virtio or virtio-non-transitional)`);
  }

  private os(element: XmlElement): DomainDefinition['os'] {
    if (element.attributes.has('firmware')) throw new DomainUnsupportedError('<os firmware=...>', 'automatic firmware selection (EFI) is not something wkvm has: give <loader> or <kernel>');
    this.onlyChildren(element, '<os>', ['type', 'loader', 'kernel', 'initrd', 'cmdline', 'dtb', 'boot', 'bootmenu']);
    const type = this.one(element, 'type', true, '<os>')!;
    if (this.text(type, '<os><type>') !== 'hvm') throw new DomainUnsupportedError('<os><type>', `'${textOf(type).trim()}': wkvm runs hvm guests`);
    const arch = type.attributes.get('arch');
    if (arch !== 'riscv64') {
      throw new DomainUnsupportedError('<os><type arch>', arch === undefined ? 'missing: libvirt would take the host\'s architecture; wkvm is riscv64' : `'${arch}': wkvm emulates riscv64`);
    }
    const machine = type.attributes.get('machine') ?? 'virt';
    if (machine !== 'virt') throw new DomainUnsupportedError('<os><type machine>', `'${machine}': wkvm emulates the virt board`);
    const loader = this.one(element, 'loader', false);
    if (loader !== undefined && (loader.attributes.get('type') ?? 'rom') !== 'rom') {
      throw new DomainUnsupportedError('<os><loader>', `type '${loader.attributes.get('type')}': wkvm loads firmware as -bios does (type='rom'); it has no pflash`);
    }
    const path = (name: string) => {
      const found = this.one(element, name, false);
      return found === undefined ? undefined : this.checkAbsolute(this.text(found, `<os><${name}>`), `<os><${name}>`);
    };
    const loaderPath = loader === undefined ? undefined : path('loader');
    const kernel = path('kernel');
    const initrd = path('initrd');
    const dtb = path('dtb');
    const cmdline = this.one(element, 'cmdline', false);
    return {
      arch: 'riscv64', machine: 'virt',
      ...(loaderPath === undefined ? {} : { loader: loaderPath }),
      ...(kernel === undefined ? {} : { kernel }), ...(initrd === undefined ? {} : { initrd }),
      ...(cmdline === undefined ? {} : { cmdline: textOf(cmdline) }), ...(dtb === undefined ? {} : { dtb }),
    };
  }

  private clock(element: XmlElement | undefined): DomainDefinition['clock'] {
    const offset = element?.attributes.get('offset') ?? 'utc';
    if (offset === 'utc' || offset === 'localtime') {
      if (element?.attributes.has('adjustment')) throw new DomainUnsupportedError('<clock>', 'adjustment= is not something wkvm has');
      return { offset };
    }
    if (offset === 'absolute') {
      const start = this.integer(element?.attributes.get('start') ?? '', '<clock>', 'start');
      return { offset: 'absolute', startSeconds: start };
    }
    throw new DomainUnsupportedError('<clock>', `offset '${offset}': wkvm has utc, localtime and absolute`);
  }

  private memoryKiB(element: XmlElement): number {
    const unit = element.attributes.get('unit') ?? 'KiB';
    const factor = MEMORY_UNITS[unit];
    if (factor === undefined) throw new DomainXmlError('<memory>', `unit '${unit}'`);
    const bytes = this.integer(this.text(element, '<memory>'), '<memory>', 'size') * factor;
    if (!Number.isSafeInteger(bytes) || bytes % (1024 * 1024) !== 0 || bytes === 0) {
      throw new DomainUnsupportedError('<memory>', `${this.text(element, '<memory>')} ${unit}: wkvm's RAM is a whole, non-zero number of MiB`);
    }
    return bytes / 1024;
  }

  private vcpus(element: XmlElement): number {
    const count = this.integer(this.text(element, '<vcpu>'), '<vcpu>', 'count');
    if (count < 1 || count > 512) throw new DomainXmlError('<vcpu>', `${count} vCPUs`);
    const current = element.attributes.get('current');
    if (current !== undefined && this.integer(current, '<vcpu>', 'current') !== count) throw new DomainUnsupportedError('<vcpu current=...>', 'wkvm starts every vCPU (no hot-plug)');
    return count;
  }

  private uuid(element: XmlElement): string {
    const text = this.text(element, '<uuid>');
    // libvirt also takes the 32 digits without dashes.
    const digits = text.replace(/-/g, '');
    if (!/^[0-9a-fA-F]{32}$/.test(digits)) throw new DomainXmlError('<uuid>', `'${text}' is not a UUID`);
    const lower = digits.toLowerCase();
    return `${lower.slice(0, 8)}-${lower.slice(8, 12)}-${lower.slice(12, 16)}-${lower.slice(16, 20)}-${lower.slice(20)}`;
  }

  private port(text: string | undefined, where: string): number {
    const port = this.integer(text ?? '', where, 'port');
    if (port < 1 || port > 65535) throw new DomainXmlError(where, `port ${port}`);
    return port;
  }

  /** A decimal or 0x-hexadecimal integer, as libvirt writes them. */
  private integer(text: string, where: string, what: string): number {
    const trimmed = text.trim();
    const value = /^0x[0-9a-f]+$/i.test(trimmed) ? parseInt(trimmed, 16) : /^[0-9]+$/.test(trimmed) ? Number(trimmed) : NaN;
    if (!Number.isSafeInteger(value)) throw new DomainXmlError(where, `${what} '${text}' is not a whole number`);
    return value;
  }

  private absolutePath(element: XmlElement, where: string): string {
    return this.checkAbsolute(this.text(element, where), where);
  }

  private checkAbsolute(path: string, where: string): string {
    if (!path.startsWith('/')) throw new DomainXmlError(where, `'${path}' is not an absolute path (libvirt requires them)`);
    return path;
  }

  private text(element: XmlElement, where: string): string {
    if (childElements(element).length > 0) throw new DomainXmlError(where, 'expected text, found elements');
    return textOf(element).trim();
  }

  /** The one child element of that name; undefined when optional and missing. */
  private one(element: XmlElement, name: string, required: boolean, where = `<${element.name}>`): XmlElement | undefined {
    const found = childElements(element, name);
    if (found.length > 1) throw new DomainXmlError(where, `more than one <${name}>`);
    if (found.length === 0 && required) throw new DomainXmlError(where, `<${name}> is required`);
    return found[0];
  }

  private onlyChildren(element: XmlElement, where: string, allowed: readonly string[]): void {
    for (const child of childElements(element)) {
      if (child.namespace !== '' || !allowed.includes(child.localName)) throw new DomainUnsupportedError(where, `<${child.name}> is not something wkvm has here`);
    }
  }
}
