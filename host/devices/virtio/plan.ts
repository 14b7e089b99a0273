// Planning, before anything is opened: which virtio devices the -drive/-device/-object/-chardev/-netdev/
// -nic/-fsdev options ask for, checked, in the order they take the virt board's virtio-mmio slots or PCI
// slots. Node-free, so what only reads a command line (the libvirt domain XML converter) can use it
// without the host file system; attach.ts builds and plugs the devices.
//
// `-drive`/`-device` become virtio-blk, virtio-rng and virtio-console models plugged into the virt machine's virtio-mmio transports (`virtio-*-device`) or onto
// its PCIe bus behind virtio-pci transports (`virtio-*-pci`). Like QEMU, mmio devices fill the slots from
// the highest address down (the first device sits at 0x10008000, slot 7), so Linux names disks in the same
// order under both, and PCI devices take addr= or else the first free slot from 00:01.0 in command-line
// order; `-drive ...,if=virtio` devices come after the explicit `-device`s.
//
// `-drive if=virtio`, a `-nic user` without model= and `-virtfs` stay on virtio-mmio. On riscv QEMU would
// make the drive a virtio-blk-pci (its "virtio-blk" alias) and -virtfs a virtio-9p-pci, and QEMU 7.2's
// virt creates no NIC for -nic at all (later QEMUs make it a virtio-net-pci); wkvm keeps them on mmio because the shared guest's kernel, and
// other small kernels built for virt, have no PCI, and these spellings worked with them before PCI existed.
import { BLK_MAX_QUEUE_SIZE, isBlkQueueSize } from './blk.js';
import { VirtioConfigError } from './errors.js';
import { NINE_P_MAX_TAG_LENGTH } from './p9.js';
import { DEFAULT_MAC, MacAddressError, parseMacAddress } from '../../net/mac.js';
import { BOOT_FILE_MAX } from '../../net/dhcp.js';
import { HostForwardError, parseHostForward, type HostForward } from '../../net/nat.js';
import { isSocketNetdevType, NetdevOptionError, parseSocketNetdev, type SocketNetdevSpec } from '../../net/socket_netdev.js';
import type { PersistentNetBackends } from '../../net/persistent.js';
import { parseQemuBool } from '../../qemu_bool.js';
import type { DiskImage } from '../../block/disk.js';

/** A -drive option as the CLI parsed it. */
export interface DriveSpec {
  readonly file: string;
  readonly format?: string;
  readonly if?: string;
  readonly id?: string;
  readonly cache?: string;
  readonly readonly?: boolean;
  readonly snapshot?: boolean;
  /** What GET_ID answers (QEMU's legacy -drive serial=; -device virtio-blk-device,serial= wins). */
  readonly serial?: string;
}

export interface VirtioOptions {
  readonly drives: readonly DriveSpec[];
  /** -device options: `driver` plus properties. */
  readonly devices: ReadonlyArray<Readonly<Record<string, string>>>;
  /** -snapshot: every drive in snapshot mode. */
  readonly snapshot?: boolean;
  /** -object options (`qom-type` plus properties): the entropy sources virtio-rng-device's rng= names. */
  readonly objects?: ReadonlyArray<Readonly<Record<string, string>>>;
  /** -chardev options (`backend` plus properties): where a virtconsole's chardev= sends its output. */
  readonly chardevs?: ReadonlyArray<Readonly<Record<string, string>>>;
  /** -netdev options (`type` plus properties), for virtio-net-device,netdev=ID. */
  readonly netdevs?: ReadonlyArray<Readonly<Record<string, string>>>;
  /** -nic options (`type` plus properties): a netdev with its virtio-net device; type none adds nothing. */
  readonly nics?: ReadonlyArray<Readonly<Record<string, string>>>;
  /** -fsdev options (`fsdriver` plus properties): host directories for virtio-9p-device,fsdev=ID. */
  readonly fsdevs?: ReadonlyArray<Readonly<Record<string, string>>>;
  /**
   * Not a command-line option: lets a caller put a layer between each opened drive and its virtio-blk
   * device (interop tests record the guest's writes with RecordingDiskImage). The returned image is
   * the one closed on detach, so it must close the one it was given.
   */
  readonly wrapDisk?: (disk: DiskImage, drive: DriveSpec) => DiskImage;
  /**
   * Not a command-line option: where socket network backends live across reboots (the CLI keeps one for
   * the whole run, as QEMU keeps its netdevs). Without it each attach opens its own and closes them.
   */
  readonly persistentNetworks?: PersistentNetBackends;
}

/** Where on the PCIe bus a `virtio-*-pci` device goes: its slot on bus 0 (addr=, or the first free one). */
export interface PciPlacement {
  readonly slot: number;
}

/**
 * A device model, and for a `virtio-*-pci` device its PCI slot (without `pci`: a virtio-mmio slot, the one
 * `bus=virtio-mmio-bus.N` asked for, else the next free one from the top).
 */
export type VirtioDevicePlan = VirtioModelPlan & { readonly pci?: PciPlacement; readonly bus?: number };

type VirtioModelPlan =
  | {
    readonly kind: 'blk'; readonly drive: DriveSpec; readonly name: string; readonly serial?: string; readonly snapshot: boolean;
    /** QEMU's queue-size; the device's default when absent. */
    readonly queueSize?: number;
  }
  /** `file`: an rng-random object's entropy file; absent for rng-builtin, or no rng= (QEMU's default is builtin). */
  | { readonly kind: 'rng'; readonly file?: string }
  /**
   * `connected`: the port is the machine's console (stdio: its output goes there, and console input
   * when the guest's console is hvc); else its output goes to `file`, or nowhere (chardev null).
   * `chardev`: the backend the port's chardev= named (absent when it named none); `portless`: a
   * virtio-serial device with no virtconsole on it.
   */
  | {
    readonly kind: 'console'; readonly connected: boolean; readonly file?: string; readonly append?: boolean;
    readonly chardev?: 'stdio' | 'null' | 'file'; readonly portless?: boolean;
  }
  | { readonly kind: 'balloon' }
  /** A virtio-net device and the network behind it. */
  | { readonly kind: 'net'; readonly netdev: string; readonly mac: Uint8Array; readonly network: NetworkPlan }
  /** A host directory shared over virtio-9p (9P2000.L), mounted in the guest by its tag. */
  | { readonly kind: '9p'; readonly id: string; readonly path: string; readonly readOnly: boolean; readonly mountTag: string; readonly securityModel: string };

const SLOTS = 8;
/** A -drive without if= that no -device takes would be no disk at all (QEMU drops it without a word). */
const NO_DEFAULT_INTERFACE = 'the virt machine has no default disk interface: add if=virtio, or id=ID with -device virtio-blk-device,drive=ID';
const DEVICE_PROPERTIES: Record<string, readonly string[]> = {
  'virtio-blk-device': ['drive', 'serial', 'id', 'bus', 'queue-size'],
  'virtio-rng-device': ['id', 'bus', 'rng'],
  'virtio-balloon-device': ['id', 'bus'],
  'virtio-net-device': ['id', 'bus', 'netdev', 'mac'],
  'virtio-9p-device': ['id', 'bus', 'fsdev', 'mount_tag'],
  'virtio-serial-device': ['id', 'bus', 'max_ports'],
  'virtio-console-device': ['id', 'bus', 'chardev'],
  virtconsole: ['id', 'bus', 'chardev', 'name', 'nr'],
};

/**
 * The virtio-pci devices and the virtio-mmio device each puts on the PCIe bus. wkvm's are modern-only
 * (QEMU's `-non-transitional` variants, or disable-legacy=on): on pcie.0 QEMU's plain names are
 * transitional, with a legacy I/O BAR and device ids 0x1000..0x103f, which no driver of virtio 1.0 or
 * later needs.
 */
const PCI_DEVICES: Record<string, string> = {
  'virtio-blk-pci': 'virtio-blk-device',
  'virtio-net-pci': 'virtio-net-device',
  'virtio-rng-pci': 'virtio-rng-device',
  'virtio-balloon-pci': 'virtio-balloon-device',
  'virtio-9p-pci': 'virtio-9p-device',
  'virtio-serial-pci': 'virtio-serial-device',
};
for (const [name, model] of Object.entries(PCI_DEVICES)) PCI_DEVICES[`${name}-non-transitional`] = model;
/** What a PCI device takes beyond its model's properties. */
const PCI_PROPERTIES = ['addr', 'disable-legacy'];
/** The one PCI bus of the virt board, as QEMU names it. */
const PCI_BUS = 'pcie.0';
/** Slots on bus 0; slot 0 is the host bridge's. */
const PCI_SLOT_COUNT = 32;

/** The properties `driver` takes, or undefined for a device wkvm does not have. */
function deviceProperties(driver: string): readonly string[] | undefined {
  const model = PCI_DEVICES[driver];
  return model === undefined ? DEVICE_PROPERTIES[driver] : [...DEVICE_PROPERTIES[model]!, ...PCI_PROPERTIES];
}

/** The devices -device takes, for errors and `-device help`. */
export function supportedDevices(): { mmio: string[]; pci: string[] } {
  return { mmio: Object.keys(DEVICE_PROPERTIES), pci: Object.keys(PCI_DEVICES).filter((name) => !name.endsWith('-non-transitional')) };
}

/** QEMU's PCI addr= syntax: SLOT[.FUNCTION] in hexadecimal. wkvm's devices are single-function. */
function parsePciAddr(where: string, text: string): number {
  const match = /^(?:0x)?([0-9a-f]{1,2})(?:\.([0-7]))?$/i.exec(text);
  const slot = match === null ? NaN : parseInt(match[1]!, 16);
  if (match === null || slot >= PCI_SLOT_COUNT) throw new VirtioConfigError(where, `addr=${text}: expected SLOT[.FN] in hex, slot 0..1f`);
  if (match[2] !== undefined && match[2] !== '0') throw new VirtioConfigError(where, `addr=${text}: only function 0 (wkvm's PCI devices are single-function)`);
  return slot;
}

/** Slots of bus 0 as QEMU fills them: slot 0 is the host bridge's, then addr= or the first free slot, in command-line order. */
class PciSlotPlanner {
  private readonly holders = new Map<number, string>([[0, 'gpex-root']]);

  place(where: string, driver: string, device: Readonly<Record<string, string>>): PciPlacement {
    if (device.bus !== undefined && device.bus !== PCI_BUS) throw new VirtioConfigError(where, `bus=${device.bus}: the virt machine's PCI bus is ${PCI_BUS}`);
    const legacy = device['disable-legacy'];
    if (legacy !== undefined && legacy !== 'auto' && parseQemuBool(legacy) !== true) {
      throw new VirtioConfigError(where, `disable-legacy=${legacy}: wkvm's virtio-pci devices are modern-only (no legacy interface)`);
    }
    const name = device.id === undefined ? driver : `${driver},id=${device.id}`;
    let slot: number;
    if (device.addr !== undefined) {
      slot = parsePciAddr(where, device.addr);
      const holder = this.holders.get(slot);
      if (holder !== undefined) throw new VirtioConfigError(where, `PCI: slot ${slot} function 0 not available for ${driver}, in use by ${holder}`);
    } else {
      slot = 1;
      while (this.holders.has(slot)) slot++;
      if (slot >= PCI_SLOT_COUNT) throw new VirtioConfigError(where, `no free PCI slot on ${PCI_BUS}`);
    }
    this.holders.set(slot, name);
    return { slot };
  }
}

/** -object types a virtio-rng-device's rng= may name, and the properties each takes. */
const RNG_OBJECTS: Record<string, readonly string[]> = {
  'rng-builtin': ['qom-type', 'id'],
  'rng-random': ['qom-type', 'id', 'filename'],
};
/** What rng-random may read: the host's cryptographic source, which wkvm reads through Web Crypto. */
const RNG_RANDOM_FILES = ['/dev/urandom', '/dev/random'];
/** -chardev backends, and the properties each takes. */
const CHARDEV_BACKENDS: Record<string, readonly string[]> = {
  null: ['backend', 'id'],
  stdio: ['backend', 'id', 'mux', 'signal'],
  file: ['backend', 'id', 'path', 'append'],
};

/** The user network's properties (ipv4/ipv6 only as what wkvm's user network is). */
const USER_NETDEV_PROPERTIES = ['type', 'id', 'restrict', 'ipv4', 'ipv6', 'hostfwd', 'tftp', 'bootfile'];
/** -netdev types: the user network and QEMU's socket backends (host/net/socket_netdev.ts). */
const NETDEV_TYPE_NAMES = ['user', 'stream', 'dgram', 'socket'];
/** -nic takes a netdev's properties plus the NIC's. */
const NIC_PROPERTIES = ['model', 'mac'];

/**
 * The network behind a NIC: QEMU's user network (10.0.2.0/24: ARP, ping and DHCP from 10.0.2.2; NAT through
 * host sockets unless restrict=on; hostfwd rules; a TFTP directory and boot file), or a socket to another VM.
 */
export type NetworkPlan =
  | {
    readonly type: 'user'; readonly restrict: boolean; readonly hostForwards: readonly HostForward[];
    readonly tftp?: string; readonly bootFile?: string;
  }
  | SocketNetdevSpec;

/**
 * A -netdev's (or -nic's, whose NIC properties `extra` names) properties, checked. QEMU 7.2's -nic takes
 * the legacy backends only: socket, not stream or dgram.
 */
function checkNetdev(where: string, netdev: Readonly<Record<string, string>>, extra: readonly string[]): NetworkPlan {
  const type = netdev.type ?? '';
  if (!NETDEV_TYPE_NAMES.includes(type)) throw new VirtioConfigError(where, `unsupported network backend '${type}' (wkvm has ${NETDEV_TYPE_NAMES.join(', ')})`);
  if (isSocketNetdevType(type)) {
    if (extra.length > 0 && type !== 'socket') throw new VirtioConfigError(where, `-nic takes no ${type} backend (QEMU 7.2 has it only as -netdev ${type} with -device virtio-net-device)`);
    const backendProperties = Object.fromEntries(Object.entries(netdev).filter(([key]) => !extra.includes(key)));
    try {
      return parseSocketNetdev(backendProperties);
    } catch (error) {
      if (error instanceof NetdevOptionError) throw new VirtioConfigError(where, error.message);
      throw error;
    }
  }
  return checkUserNetdev(where, netdev, extra);
}

/** A -netdev (or -nic) user's properties, checked. Several hostfwd= come joined by newlines (see the CLI). */
function checkUserNetdev(where: string, netdev: Readonly<Record<string, string>>, extra: readonly string[]): NetworkPlan {
  for (const key of Object.keys(netdev)) {
    if (USER_NETDEV_PROPERTIES.includes(key) || extra.includes(key)) continue;
    const why = key === 'guestfwd' ? ' (wkvm\'s user network forwards host ports to the guest: hostfwd)' : '';
    throw new VirtioConfigError(where, `property '${key}' is not supported${why}`);
  }
  if (netdev.ipv4 !== undefined && !['on', 'true'].includes(netdev.ipv4)) throw new VirtioConfigError(where, 'ipv4=off: wkvm\'s user network is IPv4');
  if (netdev.ipv6 !== undefined && !['off', 'false'].includes(netdev.ipv6)) throw new VirtioConfigError(where, 'ipv6: wkvm\'s user network has no IPv6 (give ipv6=off)');
  const hostForwards = (netdev.hostfwd ?? '').split('\n').filter((rule) => rule !== '').map((rule) => {
    try {
      return parseHostForward(rule);
    } catch (error) {
      if (error instanceof HostForwardError) throw new VirtioConfigError(where, error.message);
      throw error;
    }
  });
  if (netdev.tftp === '') throw new VirtioConfigError(where, 'tftp= needs a directory');
  if (netdev.bootfile !== undefined && new TextEncoder().encode(netdev.bootfile).length > BOOT_FILE_MAX) {
    throw new VirtioConfigError(where, `bootfile= is longer than DHCP's ${BOOT_FILE_MAX} bytes`);
  }
  return {
    type: 'user', restrict: parseQemuBool(netdev.restrict ?? 'off') === true, hostForwards,
    ...(netdev.tftp === undefined ? {} : { tftp: netdev.tftp }),
    ...(netdev.bootfile === undefined ? {} : { bootFile: netdev.bootfile }),
  };
}

/**
 * A NIC's MAC: mac= if given, else QEMU's default with the count of NICs that took the default before
 * added to its last byte (52:54:00:12:34:56, ...:57, ...).
 */
function nicMac(where: string, text: string | undefined, defaults: { count: number }): Uint8Array {
  if (text === undefined) {
    const mac = Uint8Array.from(DEFAULT_MAC);
    mac[5] = (mac[5]! + defaults.count++) & 0xff;
    return mac;
  }
  try {
    return parseMacAddress(text);
  } catch (error) {
    if (error instanceof MacAddressError) throw new VirtioConfigError(where, `mac=${text}: ${error.message}`);
    throw error;
  }
}

/**
 * -fsdev local's properties. The security models only say how the guest's owners and modes are kept:
 * `none` and `passthrough` as the host has them, which is what wkvm does (it never changes a file's
 * owner); `mapped` keeps them in extended attributes, which Node cannot write, so it is refused.
 */
const FSDEV_PROPERTIES = ['fsdriver', 'id', 'path', 'security_model', 'readonly', 'writeout', 'fmode', 'dmode'];
const SECURITY_MODELS = ['none', 'passthrough'];

/** The -fsdev options by id, checked. */
function planFsdevs(fsdevs: VirtioOptions['fsdevs']): Map<string, { path: string; readOnly: boolean; securityModel: string; used: boolean }> {
  const byId = new Map<string, { path: string; readOnly: boolean; securityModel: string; used: boolean }>();
  for (const fsdev of fsdevs ?? []) {
    const where = `-fsdev ${fsdev.fsdriver ?? ''}`;
    if (fsdev.fsdriver !== 'local') throw new VirtioConfigError(where, 'unsupported fsdev driver (wkvm has local)');
    for (const key of Object.keys(fsdev)) if (!FSDEV_PROPERTIES.includes(key)) throw new VirtioConfigError(where, `property '${key}' is not supported`);
    const id = fsdev.id;
    if (id === undefined || id === '') throw new VirtioConfigError(where, 'id=ID is required');
    if (byId.has(id)) throw new VirtioConfigError(where, `duplicate fsdev id '${id}'`);
    if ((fsdev.path ?? '') === '') throw new VirtioConfigError(where, 'path=DIR is required');
    const model = fsdev.security_model;
    if (model === undefined) throw new VirtioConfigError(where, `security_model= is required (wkvm has ${SECURITY_MODELS.join(', ')})`);
    if (!SECURITY_MODELS.includes(model)) {
      throw new VirtioConfigError(where, `security_model=${model}: not supported (wkvm has ${SECURITY_MODELS.join(', ')}: mapped needs extended attributes Node cannot write)`);
    }
    byId.set(id, { path: fsdev.path!, readOnly: parseQemuBool(fsdev.readonly ?? 'off') === true, securityModel: model, used: false });
  }
  return byId;
}

/** The -netdev or -fsdev a device's `key=ID` names, marked used: each backs one device. */
function claimBackend<T extends { used: boolean }>(where: string, key: string, id: string | undefined, byId: Map<string, T>): T {
  if (id === undefined) throw new VirtioConfigError(where, `${key}=ID is required`);
  const backend = byId.get(id);
  if (backend === undefined) throw new VirtioConfigError(where, `no -${key} with id=${id}`);
  if (backend.used) throw new VirtioConfigError(where, `${key} '${id}' is already in use by another device`);
  backend.used = true;
  return backend;
}

/** The -object entropy sources by id, checked. */
function planRngObjects(objects: VirtioOptions['objects']): Map<string, { file?: string }> {
  const ids = new Map<string, { file?: string }>();
  for (const object of objects ?? []) {
    const type = object['qom-type'] ?? '';
    const where = `-object ${type}`;
    const allowed = RNG_OBJECTS[type];
    if (allowed === undefined) throw new VirtioConfigError(where, `unsupported object type (wkvm has ${Object.keys(RNG_OBJECTS).join(', ')})`);
    for (const key of Object.keys(object)) if (!allowed.includes(key)) throw new VirtioConfigError(where, `property '${key}' is not supported`);
    const id = object.id;
    if (id === undefined || id === '') throw new VirtioConfigError(where, 'id=ID is required');
    if (ids.has(id)) throw new VirtioConfigError(where, `duplicate object id '${id}'`);
    const file = object.filename;
    if (file !== undefined && !RNG_RANDOM_FILES.includes(file)) {
      throw new VirtioConfigError(where, `filename=${file}: wkvm's entropy is the host's cryptographic source; give ${RNG_RANDOM_FILES.join(' or ')}`);
    }
    // rng-random reads /dev/urandom unless told otherwise, as QEMU's does.
    ids.set(id, type === 'rng-random' ? { file: file ?? '/dev/urandom' } : {});
  }
  return ids;
}

/** The -chardev options by id, checked. */
function planChardevs(chardevs: VirtioOptions['chardevs']): Map<string, Readonly<Record<string, string>>> {
  const byId = new Map<string, Readonly<Record<string, string>>>();
  for (const chardev of chardevs ?? []) {
    const backend = chardev.backend ?? '';
    const where = `-chardev ${backend}`;
    const allowed = CHARDEV_BACKENDS[backend];
    if (allowed === undefined) throw new VirtioConfigError(where, `unsupported backend (wkvm has ${Object.keys(CHARDEV_BACKENDS).join(', ')})`);
    for (const key of Object.keys(chardev)) if (!allowed.includes(key)) throw new VirtioConfigError(where, `property '${key}' is not supported`);
    const id = chardev.id;
    if (id === undefined || id === '') throw new VirtioConfigError(where, 'id=ID is required');
    if (byId.has(id)) throw new VirtioConfigError(where, `duplicate chardev id '${id}'`);
    if (backend === 'file' && (chardev.path ?? '') === '') throw new VirtioConfigError(where, 'path=FILE is required');
    byId.set(id, chardev);
  }
  return byId;
}

/** Where a console port's chardev= sends it: the machine's console (no chardev, or stdio), a file, or nowhere. */
function consoleTarget(where: string, id: string | undefined, chardevs: Map<string, Readonly<Record<string, string>>>):
  { connected: boolean; file?: string; append?: boolean; chardev?: 'stdio' | 'null' | 'file' } {
  if (id === undefined) return { connected: true };
  const chardev = chardevs.get(id);
  if (chardev === undefined) throw new VirtioConfigError(where, `no -chardev with id=${id}`);
  if (chardev.backend === 'stdio') return { connected: true, chardev: 'stdio' };
  if (chardev.backend === 'file') return { connected: false, file: chardev.path!, append: chardev.append === 'on', chardev: 'file' };
  return { connected: false, chardev: 'null' };
}

/** queue-size=N in decimal, by QEMU's rule (isBlkQueueSize; seg_max is two less). */
function parseQueueSize(where: string, text: string): number {
  const size = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!isBlkQueueSize(size)) {
    throw new VirtioConfigError(where, `queue-size=${text}: expected a power of two from 4 to ${BLK_MAX_QUEUE_SIZE}`);
  }
  return size;
}

/** Checks the options and decides which devices to build, in slot order. Throws VirtioConfigError. */
export function planVirtioDevices(options: VirtioOptions): VirtioDevicePlan[] {
  const plan: VirtioDevicePlan[] = [];
  const drivesById = new Map<string, DriveSpec>();
  const used = new Set<string>();
  const snapshotAll = options.snapshot ?? false;
  options.drives.forEach((drive, index) => {
    const where = `-drive file=${drive.file}`;
    // Without if= a drive is QEMU's if=ide, which the virt board has no controller for: only a -device may use it.
    if (drive.if !== undefined && drive.if !== 'virtio' && drive.if !== 'none') throw new VirtioConfigError(where, `if=${drive.if} is not supported (use if=virtio or if=none)`);
    if (drive.format !== undefined && drive.format !== 'raw' && drive.format !== 'qcow2') throw new VirtioConfigError(where, `format=${drive.format} is not supported (raw or qcow2)`);
    const id = drive.id ?? (drive.if === 'virtio' ? `virtio${index}` : undefined);
    if (id === undefined && drive.if === undefined) throw new VirtioConfigError(where, NO_DEFAULT_INTERFACE);
    if (id === undefined) throw new VirtioConfigError(where, 'if=none needs id=ID for -device virtio-blk-device,drive=ID to refer to');
    if (drivesById.has(id)) throw new VirtioConfigError(where, `duplicate drive id '${id}'`);
    drivesById.set(id, drive);
  });
  const rngObjects = planRngObjects(options.objects);
  const chardevs = planChardevs(options.chardevs);
  const netdevs = new Map<string, { network: NetworkPlan; used: boolean }>();
  for (const netdev of options.netdevs ?? []) {
    const where = `-netdev ${netdev.type ?? ''}`;
    const network = checkNetdev(where, netdev, []);
    const id = netdev.id;
    if (id === undefined || id === '') throw new VirtioConfigError(where, 'id=ID is required');
    if (netdevs.has(id)) throw new VirtioConfigError(where, `duplicate netdev id '${id}'`);
    netdevs.set(id, { network, used: false });
  }
  const defaultMacs = { count: 0 };
  const fsdevs = planFsdevs(options.fsdevs);
  let lastSerial: { connected: boolean; index: number } | null = null;
  const pciSlots = new PciSlotPlanner();
  for (const device of options.devices) {
    const named = device.driver ?? '';
    const where = `-device ${named}`;
    const allowed = deviceProperties(named);
    if (allowed === undefined) {
      const { mmio, pci } = supportedDevices();
      throw new VirtioConfigError(where, `unknown or unsupported device (wkvm has ${mmio.join(', ')}; on the PCIe bus ${pci.join(', ')})`);
    }
    for (const key of Object.keys(device)) {
      if (key !== 'driver' && !allowed.includes(key)) throw new VirtioConfigError(where, `property '${key}' is not supported`);
    }
    // A -pci device is its model's -device on a PCI slot: plan the model, then give it the slot.
    const driver = PCI_DEVICES[named] ?? named;
    const pci = driver === named ? undefined : pciSlots.place(where, named, device);
    // A virtio-mmio device may name its transport; a virtconsole's bus is its virtio-serial device's, where it goes anyway.
    const bus = pci !== undefined || device.bus === undefined || driver === 'virtconsole' ? undefined : mmioBus(where, device.bus);
    const planned = plan.length;
    switch (driver) {
      case 'virtio-blk-device': {
        const id = device.drive;
        if (id === undefined) throw new VirtioConfigError(where, 'drive=ID is required');
        const drive = drivesById.get(id);
        if (drive === undefined) throw new VirtioConfigError(where, `no -drive with id=${id}`);
        if (drive.if === 'virtio') throw new VirtioConfigError(where, `drive '${id}' is if=${drive.if}, which already creates its own device (use if=none)`);
        if (used.has(id)) throw new VirtioConfigError(where, `drive '${id}' is already in use by another device`);
        used.add(id);
        const queueSize = device['queue-size'] === undefined ? undefined : parseQueueSize(where, device['queue-size']);
        plan.push({
          kind: 'blk', drive, name: id, serial: device.serial ?? drive.serial, snapshot: snapshotAll || drive.snapshot === true,
          ...(queueSize === undefined ? {} : { queueSize }),
        });
        break;
      }
      case 'virtio-rng-device':
        if (device.rng !== undefined && !rngObjects.has(device.rng)) throw new VirtioConfigError(where, `no -object rng-builtin or rng-random with id=${device.rng}`);
        plan.push({ kind: 'rng', ...(device.rng === undefined ? {} : rngObjects.get(device.rng)) });
        break;
      case 'virtio-balloon-device':
        plan.push({ kind: 'balloon' });
        break;
      case 'virtio-9p-device': {
        const mountTag = device.mount_tag;
        if (mountTag === undefined || mountTag === '') throw new VirtioConfigError(where, 'mount_tag=TAG is required');
        if (new TextEncoder().encode(mountTag).length > NINE_P_MAX_TAG_LENGTH) throw new VirtioConfigError(where, `mount_tag: at most ${NINE_P_MAX_TAG_LENGTH} bytes`);
        const fsdev = claimBackend(where, 'fsdev', device.fsdev, fsdevs);
        plan.push({ kind: '9p', id: device.fsdev!, path: fsdev.path, readOnly: fsdev.readOnly, mountTag, securityModel: fsdev.securityModel });
        break;
      }
      case 'virtio-net-device': {
        const netdev = claimBackend(where, 'netdev', device.netdev, netdevs);
        plan.push({ kind: 'net', netdev: device.netdev!, mac: nicMac(where, device.mac, defaultMacs), network: netdev.network });
        break;
      }
      case 'virtio-serial-device':
        lastSerial = { connected: false, index: plan.length };
        plan.push({ kind: 'console', connected: false, portless: true });
        break;
      case 'virtio-console-device':
        plan.push({ kind: 'console', ...consoleTarget(where, device.chardev, chardevs) });
        break;
      case 'virtconsole': {
        if (lastSerial === null) throw new VirtioConfigError(where, 'needs a virtio-serial-device or virtio-serial-pci before it');
        if (lastSerial.connected) throw new VirtioConfigError(where, 'this virtio-serial device has no MULTIPORT: one virtconsole per device');
        lastSerial.connected = true;
        plan[lastSerial.index] = { ...plan[lastSerial.index]!, kind: 'console', portless: false, ...consoleTarget(where, device.chardev, chardevs) };
        break;
      }
    }
    if (pci !== undefined && plan.length > planned) plan[planned] = { ...plan[planned]!, pci };
    if (bus !== undefined && plan.length > planned) plan[planned] = { ...plan[planned]!, bus };
  }
  for (const [id, drive] of drivesById) {
    if (drive.if === undefined && !used.has(id)) throw new VirtioConfigError(`-drive file=${drive.file}`, NO_DEFAULT_INTERFACE);
    if (drive.if === 'virtio') plan.push({ kind: 'blk', drive, name: id, serial: drive.serial, snapshot: snapshotAll || drive.snapshot === true });
  }
  (options.nics ?? []).forEach((nic, index) => {
    const where = `-nic ${nic.type ?? ''}`;
    if (nic.type === 'none') return;
    const network = checkNetdev(where, nic, NIC_PROPERTIES);
    const onPci = nic.model === 'virtio-net-pci' || nic.model === 'virtio-net-pci-non-transitional';
    if (nic.model !== undefined && nic.model !== 'virtio-net-device' && nic.model !== 'virtio' && !onPci) {
      throw new VirtioConfigError(where, `model=${nic.model}: the virt machine's NICs are virtio-net-device and virtio-net-pci`);
    }
    const pci = onPci ? pciSlots.place(where, nic.model!, {}) : undefined;
    plan.push({ kind: 'net', netdev: nic.id ?? `nic${index}`, mac: nicMac(where, nic.mac, defaultMacs), network, ...(pci === undefined ? {} : { pci }) });
  });
  const onMmio = plan.filter((item) => item.pci === undefined).length;
  if (onMmio > SLOTS) throw new VirtioConfigError('-device', `${onMmio} virtio-mmio devices, but the virt machine has ${SLOTS} virtio-mmio slots`);
  virtioSlots(plan);
  return plan;
}

/**
 * QEMU's names for the virt board's virtio-mmio transports: virtio-mmio-bus.0 is the one at 0x10001000
 * (IRQ 1), .7 the one at 0x10008000. A guest that looks for its disk at one address (xv6 at 0x10001000)
 * is given it there with bus=.
 */
function mmioBus(where: string, name: string): number {
  const match = /^virtio-mmio-bus\.([0-7])$/.exec(name);
  if (match === null) throw new VirtioConfigError(where, `Bus '${name}' not found (the virt machine has virtio-mmio-bus.0 to virtio-mmio-bus.${SLOTS - 1})`);
  return Number(match[1]);
}

/**
 * The virtio-mmio slot (0..7) of each planned device (-1 for one on the PCIe bus): its bus= if it named
 * one, else the highest slot still free, as QEMU fills the transports from the top. One device per transport.
 */
export function virtioSlots(plan: readonly VirtioDevicePlan[]): number[] {
  const taken = new Set<number>();
  for (const item of plan) {
    if (item.bus === undefined || item.pci !== undefined) continue;
    if (taken.has(item.bus)) throw new VirtioConfigError('-device', `Bus 'virtio-mmio-bus.${item.bus}' is full (one device per virtio-mmio transport)`);
    taken.add(item.bus);
  }
  let next = SLOTS - 1;
  return plan.map((item) => {
    if (item.pci !== undefined) return -1; // on the PCIe bus
    if (item.bus !== undefined) return item.bus;
    while (taken.has(next)) next--;
    taken.add(next);
    return next;
  });
}
