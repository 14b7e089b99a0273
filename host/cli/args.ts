// QEMU-style command line: single-dash long options (`--x` means `-x`), `key=value,` sub-options with
// `,,` for a literal comma. Hand-written because generic parsers cannot read `-kernel FILE`.
import type { DriveSpec } from '../devices/virtio/plan.js';
import { GenericLoaderError, parseGenericLoader, type GenericLoader } from '../vmm/generic_loader.js';
import { CpuModelError, isaForCpu } from '../kvm/isa.js';
import { parseQemuBool } from '../qemu_bool.js';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A `-drive` option: the virtio layer's DriveSpec, as parsed here. */
export type DriveOption = DriveSpec;

export interface RunOptions {
  machine: string;
  /** -machine dumpdtb=FILE: write the generated device tree to FILE and exit, as QEMU does. */
  dumpDtb?: string;
  memoryBytes: number;
  smp: number;
  bios: 'none' | 'default' | string;
  kernel?: string;
  initrd?: string;
  append?: string;
  dtb?: string;
  nographic: boolean;
  noReboot: boolean;
  snapshot: boolean;
  drives: DriveOption[];
  devices: Array<Record<string, string>>;
  /** -device loader,...: QEMU's generic loader (files and values into memory, a hart's pc). */
  loaders: GenericLoader[];
  /** -object TYPE,id=ID,...: `qom-type` plus properties (the virtio layer checks them). */
  objects: Array<Record<string, string>>;
  /** -chardev BACKEND,id=ID,...: `backend` plus properties. */
  chardevs: Array<Record<string, string>>;
  /** -netdev TYPE,id=ID,...: `type` plus properties. */
  netdevs: Array<Record<string, string>>;
  /** -nic TYPE[,...]: a netdev and its NIC in one (`type` plus properties); -nic none / -net none: none. */
  nics: Array<Record<string, string>>;
  /** -fsdev local,id=ID,path=DIR,...: `fsdriver` plus properties. */
  fsdevs: Array<Record<string, string>>;
  debug: string[];
  debugLog?: string;
  /** -accel tcg,jit=on|off: translate hot guest code to WebAssembly (default on). */
  jit: boolean;
  /** -accel tcg,jit-threshold=N */
  jitThreshold?: number;
  /** -serial: where the UART (the machine console) goes: the terminal, nowhere, or a file. */
  serial: { readonly kind: 'stdio'; /** mon:stdio: the monitor shares it (Ctrl-A c) */ readonly withMonitor?: boolean } | { readonly kind: 'null' } | { readonly kind: 'file'; readonly path: string }
    | { readonly kind: 'socket'; readonly endpoint: Extract<MonitorEndpoint, { kind: 'tcp' | 'unix' }> };
  /** -gdb DEV (-s: tcp::1234): where the gdb stub listens. */
  gdb?: string;
  /** -S: do not start the hart until the debugger says so. */
  freeze?: boolean;
  /** -cpu: the ISA string the device tree advertises (default: the core's, CORE_ISA). */
  isa?: string;
  /** -monitor: where the human monitor is; absent: on the stdio console's mux (Ctrl-A c), unless -qmp is given. */
  monitor?: MonitorEndpoint | 'none';
  /** -qmp: where QMP listens (each option one more endpoint). */
  qmp: MonitorEndpoint[];
  /** -rtc base=: what the RTC reads at start: the host's UTC time, its local time, or a fixed moment (ms since the epoch). */
  rtcBase: 'utc' | 'localtime' | { readonly epochMs: number };
  /** -global virtio-mmio.force-legacy=true: the virtio-mmio transports' legacy (version 1) interface. */
  virtioMmioLegacy?: boolean;
  /** -name [guest=]NAME[,...]: the VM's name, which query-name and `info name` report and libvirt's domain XML keeps. */
  name?: string;
  /** -uuid: the VM's UUID, lower case (the domain XML keeps it; the virt board has no firmware table to show it). */
  uuid?: string;
}

const MiB = 1024 * 1024;

/** Options that take a value, and the handler that stores it. */
const VALUE_OPTIONS: Record<string, (o: RunOptions, v: string) => void> = {
  M: parseMachine,
  machine: parseMachine,
  m: (o, v) => (o.memoryBytes = parseMemory(v)),
  smp: (o, v) => (o.smp = parseSmp(v)),
  bios: (o, v) => (o.bios = v),
  kernel: (o, v) => (o.kernel = v),
  initrd: (o, v) => (o.initrd = v),
  append: (o, v) => (o.append = v),
  dtb: (o, v) => (o.dtb = v),
  drive: (o, v) => o.drives.push(parseDrive(v)),
  device: (o, v) => {
    const device = parseDevice(v);
    if (device.driver !== 'loader') o.devices.push(device);
    else {
      try {
        o.loaders.push(parseGenericLoader(device));
      } catch (error) {
        if (error instanceof GenericLoaderError) throw new UsageError(error.message);
        throw error;
      }
    }
  },
  object: (o, v) => o.objects.push(parseKeyValues(v, 'qom-type', 'object')),
  chardev: (o, v) => o.chardevs.push(parseKeyValues(v, 'backend', 'chardev')),
  netdev: (o, v) => o.netdevs.push(parseKeyValues(v, 'type', 'netdev')),
  nic: (o, v) => o.nics.push(parseKeyValues(v, 'type', 'nic')),
  fsdev: (o, v) => o.fsdevs.push(parseKeyValues(v, 'fsdriver', 'fsdev')),
  virtfs: parseVirtfs,
  // The legacy -net: only `none` (the virt board has no default NIC anyway); use -nic or -netdev.
  net: (_o, v) => acceptOnly('net', v, ['none']),
  d: (o, v) => o.debug.push(...v.split(',')),
  D: (o, v) => (o.debugLog = v),
  serial: (o, v) => (o.serial = parseSerial(v)),
  display: (_o, v) => acceptOnly('display', v, ['none']),
  monitor: (o, v) => (o.monitor = v === 'none' ? 'none' : parseMonitorEndpoint('monitor', v)),
  qmp: (o, v) => o.qmp.push(parseMonitorEndpoint('qmp', v)),
  accel: (o, v) => parseAccel(o, v),
  cpu: (o, v) => (o.isa = parseCpu(v)),
  rtc: (o, v) => (o.rtcBase = parseRtc(v)),
  // The VM's name: QMP's query-name and the monitor's `info name`, and the name a domain definition made
  // from the command line keeps (it also titles QEMU's windows, which wkvm has not).
  name: (o, v) => (o.name = parseName(v)),
  uuid: (o, v) => (o.uuid = parseUuid(v)),
  // The virt board has no VGA, parallel port or keyboard, and no boot order to choose.
  vga: (_o, v) => acceptOnly('vga', v, ['none']),
  parallel: (_o, v) => acceptOnly('parallel', v, ['none']),
  k: () => {},
  boot: () => {},
  gdb: (o, v) => (o.gdb = v),
  global: (o, v) => checkGlobal(o, v),
};

/**
 * -global DRIVER.PROPERTY=VALUE (or driver=,property=,value=): a default for every device of a kind. wkvm's
 * devices have one such setting: virtio-mmio.force-legacy, the transports' interface: false (xv6's line
 * gives it) is version 2, wkvm's default; true is the legacy version 1 (QEMU's default, which older guests
 * were written against).
 */
function checkGlobal(options: RunOptions, value: string): void {
  let driver: string | undefined;
  let property: string | undefined;
  let setting: string | undefined;
  const short = /^([^.=,]+)\.([^=]+)=(.*)$/.exec(value);
  if (short !== null) [, driver, property, setting] = short;
  else {
    const kv = parseKeyValues(value, 'driver', 'global');
    ({ driver, property, value: setting } = kv);
  }
  if (driver === undefined || property === undefined || setting === undefined) {
    throw new UsageError(`-global ${value}: expected DRIVER.PROPERTY=VALUE`);
  }
  if (driver === 'virtio-mmio' && property === 'force-legacy') {
    const legacy = parseQemuBool(setting);
    if (legacy === null) throw new UsageError(`-global virtio-mmio.force-legacy=${setting}: expected on or off`);
    options.virtioMmioLegacy = legacy;
    return;
  }
  throw new UsageError(`-global ${driver}.${property}: not a property wkvm has (it takes virtio-mmio.force-legacy=on|off)`);
}

const FLAG_OPTIONS: Record<string, (o: RunOptions) => void> = {
  nographic: (o) => (o.nographic = true),
  'no-reboot': (o) => (o.noReboot = true),
  snapshot: (o) => (o.snapshot = true),
  // -accel kvm: wkvm's core is the accelerator (see parseAccel).
  'enable-kvm': () => {},
  // -S: the hart waits for the debugger's first continue, or the monitor's cont; -s: -gdb tcp::1234.
  S: (o) => (o.freeze = true),
  s: (o) => (o.gdb = 'tcp::1234'),
  // wkvm's board has only the devices the command line asks for (and the UART, RTC and test device).
  nodefaults: () => {},
};

export function parseRunArgs(argv: readonly string[]): RunOptions {
  const options: RunOptions = {
    machine: 'virt',
    memoryBytes: 128 * MiB,
    smp: 1,
    bios: 'none',
    nographic: false,
    noReboot: false,
    snapshot: false,
    drives: [],
    devices: [],
    loaders: [],
    objects: [],
    chardevs: [],
    netdevs: [],
    nics: [],
    fsdevs: [],
    debug: [],
    jit: true,
    rtcBase: 'utc',
    serial: { kind: 'stdio' },
    qmp: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-') || arg === '-' || arg === '--') throw new UsageError(`${arg}: unexpected argument (options start with -)`);
    const name = arg.replace(/^--?/, '');
    const flag = FLAG_OPTIONS[name];
    if (flag) {
      flag(options);
      continue;
    }
    const handler = VALUE_OPTIONS[name];
    if (!handler) throw new UsageError(`-${name}: invalid option`);
    const value = argv[i + 1];
    if (value === undefined) throw new UsageError(`-${name}: requires an argument`);
    handler(options, value);
    i++;
  }
  return options;
}

/** Splits `a=b,c=d` with QEMU's `,,` escape. The first element may be a bare value (implied key). */
export function splitSubOptions(text: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === ',') {
      if (text[i + 1] === ',') {
        current += ',';
        i++;
        continue;
      }
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts;
}

/** Suboptions that may be given more than once (-netdev user,hostfwd=...,hostfwd=...). */
const REPEATABLE_KEYS: ReadonlySet<string> = new Set(['hostfwd']);

export function parseKeyValues(text: string, impliedKey: string | null, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  splitSubOptions(text).forEach((part, index) => {
    if (part === '') return;
    const eq = part.indexOf('=');
    if (eq < 0) {
      if (index === 0 && impliedKey !== null) out[impliedKey] = part;
      else throw new UsageError(`-${what}: '${part}' is not of the form key=value`);
    } else {
      const key = part.slice(0, eq);
      const value = part.slice(eq + 1);
      // A key QEMU takes several times keeps every value, joined by newlines (which no value holds).
      out[key] = REPEATABLE_KEYS.has(key) && out[key] !== undefined ? `${out[key]}\n${value}` : value;
    }
  });
  return out;
}

/**
 * QEMU's `virt` properties that wkvm takes as they are: the ones that describe the board it emulates
 * (no ACLINT, no AIA, no ACPI, no USB or graphics) or that only concern QEMU's own process.
 */
const MACHINE_PROPERTY_VALUES: Readonly<Record<string, readonly string[] | null>> = {
  aclint: ['off', 'false', 'no'],
  aia: ['none'],
  acpi: ['off', 'false', 'no'],
  usb: ['off', 'false', 'no'],
  graphics: null,
  'dump-guest-core': null,
  'mem-merge': null,
  'suppress-vmdesc': null,
  accel: ['tcg', 'kvm'],
};

/**
 * -virtfs local,path=DIR,mount_tag=TAG,security_model=M[,id=ID][,readonly=on]: QEMU's shorthand for an
 * -fsdev and the virtio-9p-device that exports it.
 */
function parseVirtfs(options: RunOptions, value: string): void {
  const { mount_tag: mountTag, ...fsdev } = parseKeyValues(value, 'fsdriver', 'virtfs');
  if (mountTag === undefined) throw new UsageError('-virtfs: mount_tag=TAG is required');
  const id = fsdev.id ?? `virtfs${options.fsdevs.length}`;
  options.fsdevs.push({ ...fsdev, id });
  options.devices.push({ driver: 'virtio-9p-device', fsdev: id, mount_tag: mountTag });
}

/** -name [guest=]NAME[,process=P][,debug-threads=on|off]: the guest's name (QEMU's process name aside). */
function parseName(value: string): string {
  const kv = parseKeyValues(value, 'guest', 'name');
  for (const key of Object.keys(kv)) {
    if (key !== 'guest' && key !== 'process' && key !== 'debug-threads') throw new UsageError(`-name: invalid parameter '${key}'`);
  }
  if ((kv.guest ?? '') === '') throw new UsageError(`-name ${value}: needs a name`);
  return kv.guest!;
}

const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function parseUuid(value: string): string {
  if (!UUID_TEXT.test(value)) throw new UsageError(`-uuid ${value}: expected a UUID as xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`);
  return value.toLowerCase();
}

function parseSerial(value: string): RunOptions['serial'] {
  if (value === 'stdio') return { kind: 'stdio' };
  if (value === 'mon:stdio') return { kind: 'stdio', withMonitor: true };
  if (value === 'null' || value === 'none') return { kind: 'null' };
  if (value.startsWith('file:') && value.length > 5) return { kind: 'file', path: value.slice(5) };
  if (value.startsWith('tcp:') || value.startsWith('unix:')) {
    const endpoint = parseMonitorEndpoint('serial', value);
    if (endpoint.kind !== 'stdio') return { kind: 'socket', endpoint };
  }
  throw new UsageError(`-serial ${value}: not supported (wkvm takes stdio, mon:stdio, null, none, file:PATH, tcp:[HOST]:PORT,server=on[,wait=off], unix:PATH,server=on[,wait=off])`);
}

/** Where a monitor (-monitor) or QMP (-qmp) is reached: the terminal, or a socket wkvm listens on. */
export type MonitorEndpoint =
  | { readonly kind: 'stdio' }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly wait: boolean }
  | { readonly kind: 'unix'; readonly path: string; readonly wait: boolean };

/**
 * QEMU's chardev spellings for a monitor: stdio, tcp:[HOST]:PORT,server=on[,wait=off] and
 * unix:PATH,server=on[,wait=off], with the older `server,nowait`. As in QEMU, a server waits for its
 * first client before the guest starts unless wait=off. wkvm only listens (no server=on: QEMU would
 * connect out, which wkvm does not do). An empty HOST is 127.0.0.1, as for -gdb.
 */
export function parseMonitorEndpoint(option: string, value: string): MonitorEndpoint {
  if (value === 'stdio') return { kind: 'stdio' };
  const [address = '', ...flags] = splitSubOptions(value);
  let server = false;
  let wait: boolean | undefined;
  for (const flag of flags) {
    const [key = '', setting] = flag.split('=', 2) as [string, string | undefined];
    const on = setting === undefined ? true : parseQemuBool(setting);
    if (on === null) throw new UsageError(`-${option} ${value}: ${key}=${setting}: expected on or off`);
    if (key === 'server') server = on;
    else if (key === 'wait') wait = on;
    else if (key === 'nowait' && setting === undefined) wait = false;
    else throw new UsageError(`-${option} ${value}: '${flag}' is not supported (wkvm takes server=on and wait=on|off)`);
  }
  const tcp = /^tcp:([^:]*):(\d{1,5})$/.exec(address);
  const unixPath = address.startsWith('unix:') ? address.slice(5) : null;
  if (tcp === null && (unixPath === null || unixPath === '')) {
    throw new UsageError(`-${option} ${value}: not supported (wkvm takes stdio, tcp:[HOST]:PORT,server=on[,wait=off] and unix:PATH,server=on[,wait=off])`);
  }
  if (!server) throw new UsageError(`-${option} ${value}: wkvm listens for clients and does not connect out: add server=on`);
  if (tcp !== null) {
    const port = Number(tcp[2]);
    if (port > 0xffff) throw new UsageError(`-${option} ${value}: port ${port} is out of range`);
    return { kind: 'tcp', host: tcp[1] === '' ? '127.0.0.1' : tcp[1]!, port, wait: wait ?? true };
  }
  return { kind: 'unix', path: unixPath!, wait: wait ?? true };
}

function parseCpu(value: string): string {
  try {
    return isaForCpu(value);
  } catch (error) {
    if (error instanceof CpuModelError) throw new UsageError(error.message);
    throw error;
  }
}

function parseMachine(options: RunOptions, value: string): void {
  const kv = parseKeyValues(value, 'type', 'machine');
  const type = kv.type ?? 'virt';
  if (type !== 'virt') throw new UsageError(`-machine ${type}: unsupported machine type (wkvm emulates 'virt')`);
  for (const [key, setting] of Object.entries(kv)) {
    if (key === 'type') continue;
    if (key === 'dumpdtb') {
      if (setting === '') throw new UsageError('-machine dumpdtb: needs a file name');
      options.dumpDtb = setting;
      continue;
    }
    if (!Object.hasOwn(MACHINE_PROPERTY_VALUES, key)) {
      throw new UsageError(`-machine ${key}=${setting}: unsupported property of the virt machine (wkvm knows: dumpdtb, ${Object.keys(MACHINE_PROPERTY_VALUES).join(', ')})`);
    }
    const allowed = MACHINE_PROPERTY_VALUES[key];
    if (allowed !== null && allowed !== undefined && !allowed.includes(setting)) {
      throw new UsageError(`-machine ${key}=${setting}: not supported (wkvm's virt machine has ${key}=${allowed[0]})`);
    }
  }
  options.machine = type;
}

/** QEMU rounds -m up to a multiple of this. */
const RAM_ALIGNMENT = 8192;

export function parseMemory(value: string): number {
  const kv = parseKeyValues(value, 'size', 'm');
  const size = kv.size ?? '';
  const match = /^(\d+(?:\.\d+)?)([kKmMgGtT]?)[bB]?$/.exec(size);
  if (!match) throw new UsageError(`-m ${value}: not a memory size (e.g. 256M, 1G)`);
  const unit = (match[2] || 'M').toUpperCase();
  const factor = unit === 'K' ? 1024 : unit === 'M' ? MiB : unit === 'G' ? 1024 * MiB : 1024 * 1024 * MiB;
  // As QEMU: fractions are allowed (Debian's wiki gives -m 1.9G) and the size is rounded up to 8 KiB.
  const bytes = Math.ceil(Math.round(Number(match[1]) * factor) / RAM_ALIGNMENT) * RAM_ALIGNMENT;
  if (bytes === 0) throw new UsageError(`-m ${value}: not a memory size (e.g. 256M, 1G)`);
  return bytes;
}

/**
 * -smp [cpus=]N[,sockets=S][,dies=D][,clusters=C][,cores=K][,threads=T][,maxcpus=M]: the harts, N, or as
 * QEMU counts them without N, the product of the topology (which the virt board's harts do not show).
 */
function parseSmp(value: string): number {
  const kv = parseKeyValues(value, 'cpus', 'smp');
  const count = (key: string): number => {
    const text = kv[key];
    if (text === undefined) return 1;
    const n = /^[0-9]+$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`-smp ${key}=${text}: expected a positive integer`);
    return n;
  };
  for (const key of Object.keys(kv)) {
    if (!['cpus', 'sockets', 'dies', 'clusters', 'cores', 'threads', 'maxcpus'].includes(key)) throw new UsageError(`-smp: invalid parameter '${key}'`);
  }
  const topology = count('sockets') * count('dies') * count('clusters') * count('cores') * count('threads');
  const cpus = kv.cpus !== undefined ? count('cpus') : topology;
  if (kv.maxcpus !== undefined && count('maxcpus') < cpus) throw new UsageError(`-smp ${value}: maxcpus is below the CPU count ${cpus}`);
  return cpus;
}

const DRIVE_KEYS = new Set(['file', 'format', 'if', 'id', 'cache', 'readonly', 'snapshot', 'media', 'index', 'serial']);
/**
 * -drive parameters about how the host does the I/O, which the guest cannot tell apart, with the
 * values wkvm takes: its own I/O thread serves every aio=, a discard always frees what the image can
 * (what a guest reads there afterwards is undefined either way), and errors go to the guest (report).
 */
const DRIVE_HOST_KEYS: Record<string, readonly string[]> = {
  aio: ['threads', 'native', 'io_uring'],
  discard: ['ignore', 'off', 'unmap', 'on'],
  'detect-zeroes': ['off', 'on', 'unmap'],
  werror: ['report'],
  rerror: ['report'],
};

function parseOnOff(key: string, value: string): boolean {
  const on = parseQemuBool(value);
  if (on === null) throw new UsageError(`-drive ${key}=${value}: expected on or off`);
  return on;
}

function parseDrive(value: string): DriveOption {
  const kv = parseKeyValues(value, null, 'drive');
  for (const [key, setting] of Object.entries(kv)) {
    const values = DRIVE_HOST_KEYS[key];
    if (values !== undefined) {
      if (!values.includes(setting)) throw new UsageError(`-drive ${key}=${setting}: not supported (wkvm takes ${values.join(', ')})`);
    } else if (!DRIVE_KEYS.has(key)) {
      throw new UsageError(`-drive: invalid parameter '${key}'`);
    }
  }
  if (!kv.file) throw new UsageError('-drive: file=FILE is required');
  return {
    file: kv.file,
    format: kv.format,
    if: kv.if,
    id: kv.id,
    cache: kv.cache,
    readonly: kv.readonly !== undefined ? parseOnOff('readonly', kv.readonly) : undefined,
    snapshot: kv.snapshot !== undefined ? parseOnOff('snapshot', kv.snapshot) : undefined,
    serial: kv.serial,
  };
}

function parseDevice(value: string): Record<string, string> {
  return parseKeyValues(value, 'driver', 'device');
}

/**
 * -accel NAME[,jit=on|off][,jit-threshold=N]. Every name means wkvm's own accelerator; the JIT options
 * are wkvm's (QEMU's TCG always translates).
 */
function parseAccel(o: RunOptions, value: string): void {
  const kv = parseKeyValues(value, 'accel', 'accel');
  acceptOnly('accel', kv.accel ?? '', ['kvm', 'tcg', 'wkvm']);
  for (const [key, text] of Object.entries(kv)) {
    if (key === 'accel' || key === 'thread' || key === 'tb-size') continue;
    if (key === 'jit') {
      if (text !== 'on' && text !== 'off') throw new UsageError(`-accel jit=${text}: expected on or off`);
      o.jit = text === 'on';
    } else if (key === 'jit-threshold') {
      const n = Number(text);
      if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`-accel jit-threshold=${text}: expected a whole number from 1 to 65535`);
      o.jitThreshold = n;
    } else {
      throw new UsageError(`-accel: invalid parameter '${key}' (wkvm knows jit=on|off and jit-threshold=N)`);
    }
  }
}

/**
 * -rtc [base=utc|localtime|DATE][,clock=host|rt|vm][,driftfix=none|slew], DATE as 2006-06-17 or
 * 2006-06-17T16:01:21 (UTC). The RTC always follows real time, even while the monitor has the VM
 * stopped (QEMU's default clock=host; clock=vm is taken but not honoured), and driftfix concerns x86's RTC
 * interrupts.
 */
function parseRtc(value: string): RunOptions['rtcBase'] {
  const kv = parseKeyValues(value, null, 'rtc');
  let base: RunOptions['rtcBase'] = 'utc';
  for (const [key, text] of Object.entries(kv)) {
    if (key === 'base') {
      base = text === 'utc' || text === 'localtime' ? text : { epochMs: parseRtcDate(text) };
    } else if (key === 'clock' || key === 'driftfix') {
      const allowed = key === 'clock' ? ['host', 'rt', 'vm'] : ['none', 'slew'];
      if (!allowed.includes(text)) throw new UsageError(`-rtc ${key}=${text}: not supported (wkvm accepts ${allowed.join(', ')})`);
    } else {
      throw new UsageError(`-rtc: invalid parameter '${key}' (wkvm knows base, clock and driftfix)`);
    }
  }
  return base;
}

function parseRtcDate(text: string): number {
  const match = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2}))?$/.exec(text);
  const fields = match?.slice(1).map((field) => Number(field ?? 0));
  const ms = fields === undefined ? NaN : Date.UTC(fields[0]!, fields[1]! - 1, fields[2]!, fields[3]!, fields[4]!, fields[5]!);
  // Date.UTC rolls 2006-02-30 over into March: a date must come back as it was written.
  const roundTrip = Number.isNaN(ms) ? '' : new Date(ms).toISOString().slice(0, match![4] === undefined ? 10 : 19);
  if (roundTrip !== text || fields![0]! < 1970) {
    throw new UsageError(`-rtc base=${text}: expected utc, localtime or a date from 1970 on as 2006-06-17 or 2006-06-17T16:01:21`);
  }
  return ms;
}

function acceptOnly(option: string, value: string, allowed: string[]): void {
  if (!allowed.includes(value)) throw new UsageError(`-${option} ${value}: not supported (wkvm accepts ${allowed.join(', ')})`);
}
