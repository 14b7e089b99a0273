// The `wkvm` command: `wkvm run [QEMU options]` (or just the options) boots a virt machine with the
// serial console on stdio and exits with the guest's status; virsh's domxml-from-native, domxml-to-native
// and create convert command lines to libvirt domain XML and back, and boot a domain from its XML;
// `wkvm img ...` is the image tool (qemu-img's create, info, check, convert and resize; host/cli/img/).
import { closeSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { parseRunArgs, UsageError, type MonitorEndpoint, type RunOptions } from './args.js';
import { StdioConsole } from './console.js';
import { SerialSocket, SerialSocketError } from './serial_socket.js';
import { MonitorServer, MonitorServerError, describeEndpoint } from './monitor_server.js';
import { RunControl } from '../vmm/run_control.js';
import { MachineMonitorTarget, type MonitorBlockDevice } from '../vmm/monitor/target.js';
import { HmpTerminal } from '../vmm/monitor/hmp_terminal.js';
import { QmpSession } from '../vmm/monitor/qmp.js';
import { VirtMachine, MachineError, boardDeviceTree } from '../vmm/virt_machine.js';
import { GdbStub, GdbStubError, parseGdbDevice } from './gdbstub.js';
import { LoadError } from '../vmm/loader/errors.js';
import { KvmError } from '../kvm/errors.js';
import { attachVirtioDevices, planVirtioDevices, supportedDevices, VirtioConfigError } from '../devices/virtio/index.js';
import { PersistentNetBackends } from '../net/persistent.js';
import { DiskImageError } from '../block/index.js';
import { defaultFirmwareCandidates, findDefaultFirmware } from '../vmm/firmware.js';
import { DomainUnsupportedError, DomainXmlError } from '../mgmt/domain_xml.js';
import { createOptions, domxmlFromNative, domxmlToNative } from './domain_commands.js';
import { runImg } from './img/img.js';

const DEBUG_ITEMS = ['exits', 'jit', 'guest_errors'];

const USAGE = `usage: wkvm img create|info|check|convert|resize ...   (disk images, as qemu-img; wkvm img --help)
       wkvm run -M virt[,dumpdtb=FILE] -m SIZE [-smp N] [-bios none|default|FILE] -kernel FILE [-initrd FILE]
                [-append CMDLINE] [-dtb FILE] [-nographic] [-no-reboot] [-snapshot]
                [-drive file=F[,format=raw|qcow2][,if=virtio|none][,id=ID][,cache=MODE][,readonly=on][,snapshot=on]]
                [-device virtio-blk-device,drive=ID[,queue-size=N][,bus=virtio-mmio-bus.N] | virtio-rng-device[,rng=ID] | virtio-balloon-device
                         | virtio-serial-device | virtconsole[,chardev=ID] | virtio-console-device[,chardev=ID]]
                [-device virtio-blk-pci,drive=ID | virtio-net-pci,netdev=ID | virtio-rng-pci | virtio-balloon-pci
                         | virtio-9p-pci,fsdev=ID,mount_tag=TAG | virtio-serial-pci ...[,addr=SLOT][,bus=pcie.0]] [-device help]
                [-device loader,file=FILE[,addr=A][,cpu-num=N][,force-raw=on] | loader,addr=A,data=D,data-len=1|2|4|8[,data-be=on]
                         | loader,addr=A,cpu-num=N]
                [-global virtio-mmio.force-legacy=on|off]
                [-object rng-builtin,id=ID | rng-random,id=ID[,filename=/dev/urandom]]
                [-chardev null,id=ID | stdio,id=ID[,mux=on] | file,id=ID,path=FILE[,append=on]]
                [-netdev user,id=ID[,restrict=on][,hostfwd=tcp|udp:[ADDR]:PORT-[GADDR]:GPORT...][,tftp=DIR[,bootfile=FILE]] -device virtio-net-device,netdev=ID[,mac=MAC] | -nic user[,model=virtio-net-pci][,mac=MAC][,hostfwd=...] | -nic none]
                [-netdev stream,id=ID[,server=on|off],addr.type=inet,addr.host=HOST,addr.port=PORT | ...,addr.type=unix,addr.path=PATH]
                [-netdev dgram,id=ID,local.type=inet,local.host=HOST,local.port=PORT,remote.type=inet,remote.host=HOST,remote.port=PORT]
                [-netdev socket,id=ID,listen=[HOST]:PORT | connect=HOST:PORT | mcast=GROUP:PORT[,localaddr=ADDR] | udp=HOST:PORT,localaddr=HOST:PORT]
                [-fsdev local,id=ID,path=DIR,security_model=none|passthrough[,readonly=on] -device virtio-9p-device,fsdev=ID,mount_tag=TAG]
                [-virtfs local,path=DIR,mount_tag=TAG,security_model=none|passthrough[,readonly=on]]
                [-s | -gdb tcp:[HOST]:PORT] [-S] [-d exits,jit,guest_errors] [-D LOGFILE] [-accel tcg[,jit=on|off][,jit-threshold=N]]
                [-rtc base=utc|localtime|2006-06-17T16:01:21] [-serial stdio|mon:stdio|null|file:PATH|tcp:[HOST]:PORT,server=on[,wait=off]|unix:PATH,server=on[,wait=off]] [-name NAME]
                [-monitor none|stdio|tcp:[HOST]:PORT,server=on[,wait=off]|unix:PATH,server=on[,wait=off]]
                [-qmp stdio|tcp:[HOST]:PORT,server=on[,wait=off]|unix:PATH,server=on[,wait=off]]
Runs a RISC-V 64 virt machine with its serial console on stdio (Ctrl-A x quits, Ctrl-A c switches to
the monitor and back, Ctrl-A h helps).
cache=writeback|writethrough|none|unsafe; none behaves as writeback (Node has no O_DIRECT).

libvirt domain XML (virsh's command names):
       wkvm domxml-from-native [qemu-argv] ARGS... | - | FILE
                prints the domain XML of a wkvm run / qemu-system-riscv64 command line (ARGS, stdin, or a file holding it)
       wkvm domxml-to-native [qemu-argv] FILE.xml | -
                prints the qemu-system-riscv64 / wkvm run command line of a domain
       wkvm create FILE.xml [wkvm run options]
                boots a domain from its XML, as virsh create does (options after the file are added, e.g. -accel, -serial)`;

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '-h' || command === '--help' || command === '-help') {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? 1 : 0;
  }
  if (command === '--version' || command === '-version') {
    process.stdout.write('wkvm 0.1.0\n');
    return 0;
  }
  if (command === 'domxml-from-native' || command === 'domxml-to-native') {
    try {
      process.stdout.write(command === 'domxml-from-native' ? domxmlFromNative(rest) : domxmlToNative(rest));
      return 0;
    } catch (error) {
      return fail(error);
    }
  }
  if (command === 'img') return runImg(rest);
  const args = command === 'run' ? rest : argv;
  let options: RunOptions;
  try {
    options = command === 'create' ? createOptions(rest) : parseRunArgs(args);
  } catch (error) {
    return fail(error);
  }
  if (options.devices.some((device) => device.driver === 'help' || device.driver === '?')) {
    process.stdout.write(deviceHelp());
    return 0;
  }
  try {
    return await runMachine(options);
  } catch (error) {
    return fail(error);
  }
}

async function runMachine(options: RunOptions): Promise<number> {
  const bios = options.bios === 'default' ? findDefaultFirmware() : options.bios;
  if (bios === null) {
    throw new UsageError(`-bios default: no OpenSBI firmware found (tried ${defaultFirmwareCandidates().join(', ')}); ` +
      'give one with -bios FILE, set $WKVM_FIRMWARE, or use -bios none');
  }
  planVirtioDevices(options); // refuse bad -drive/-device combinations before loading anything
  const unknownDebug = options.debug.filter((item) => !DEBUG_ITEMS.includes(item));
  if (unknownDebug.length > 0) throw new UsageError(`-d ${unknownDebug.join(',')}: unknown log item (wkvm knows: ${DEBUG_ITEMS.join(', ')})`);
  const logFile = options.debugLog !== undefined ? openSync(options.debugLog, 'w') : null;
  const debugLog = (line: string) => {
    if (logFile !== null) writeSync(logFile, `${line}\n`);
    else process.stderr.write(`wkvm: ${line}\n`);
  };
  if (options.dumpDtb !== undefined) return dumpDeviceTree(options, bios, options.dumpDtb);
  // Fixed once, so the RTC runs on across the guest's reboots as QEMU's does.
  const rtcOffsetNs = rtcOffset(options.rtcBase);
  const explicitMonitor = (options.monitor !== undefined && options.monitor !== 'none') || options.qmp.length > 0;
  if (options.freeze && options.gdb === undefined && !explicitMonitor) {
    throw new UsageError('-S: nothing would start the hart without a debugger (add -s or -gdb tcp::PORT) or a monitor\'s cont (add -qmp or -monitor)');
  }
  const stdioUsers = [options.serial.kind === 'stdio' ? 'the serial console' : null, ...options.qmp.filter((e) => e.kind === 'stdio').map(() => '-qmp stdio')]
    .filter((user) => user !== null);
  if (stdioUsers.length > 1) throw new UsageError(`${stdioUsers.join(' and ')} cannot both use stdio (give -serial null or file:PATH, or a socket for QMP)`);
  // -serial file: opened (truncated) once, so the output of every boot after a reboot is kept.
  const serialFile = options.serial.kind === 'file' ? openSerialFile(options.serial.path) : null;
  // -serial tcp:/unix: listens once too: its client stays the terminal across the guest's reboots.
  const serialInput: { deliver: (bytes: Uint8Array) => void } = { deliver: () => {} };
  const serialSocket = options.serial.kind === 'socket'
    ? await SerialSocket.listen(options.serial.endpoint, (bytes) => serialInput.deliver(bytes)) : null;
  const gdbDevice = options.gdb === undefined ? null : parseGdbDevice(options.gdb);
  const gdb = gdbDevice === null ? null : new GdbStub(options.freeze ?? false);
  // -S with a debugger: the debugger holds the hart (gdb's continue starts it); without one, the VM waits in prelaunch for cont.
  const control = new RunControl({ startPaused: (options.freeze ?? false) && gdb === null, noReboot: options.noReboot });
  const monitors = new Monitors(control, options);
  try {
    await monitors.start();
    if (serialSocket !== null && options.serial.kind === 'socket' && options.serial.endpoint.wait) {
      process.stderr.write(`wkvm: -serial: waiting for connection on ${serialSocket.address},server=on\n`);
      await serialSocket.firstClient;
    }
    return await runBoots(options, bios, rtcOffsetNs, debugLog, serialFile, gdb === null ? null : { stub: gdb, ...gdbDevice! }, control, monitors,
      serialSocket === null ? null : { socket: serialSocket, input: serialInput });
  } finally {
    gdb?.close();
    await monitors.close();
    serialSocket?.close();
    if (serialFile !== null) closeSync(serialFile);
  }
}

/**
 * Where the monitor and QMP are reached, as QEMU places them: the monitor on the stdio console's mux
 * (Ctrl-A c) when the serial console is on stdio and neither -monitor nor -qmp says otherwise (QEMU's
 * default monitor), or -serial mon:stdio, or -monitor stdio with the serial console there; -monitor
 * stdio alone on the terminal otherwise; sockets for tcp: and unix:. With a socket monitor or QMP,
 * SIGINT/SIGTERM/SIGHUP end the VM as QEMU ends it (a SHUTDOWN event, reason host-signal, status 0).
 */
class Monitors {
  readonly target: MachineMonitorTarget;
  /** The monitor on the serial console's mux, if it is there. */
  readonly consoleMonitor: HmpTerminal | null = null;
  private readonly servers: MonitorServer[] = [];
  /** A monitor or QMP alone on stdio (the serial console is elsewhere). */
  private stdioConsole: StdioConsole | null = null;
  private readonly onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`wkvm: terminating on signal ${SIGNAL_NUMBERS[signal] ?? signal}\n`);
    this.control.quit('host-signal');
  };
  private signalsHandled = false;

  constructor(private readonly control: RunControl, private readonly options: RunOptions) {
    this.target = new MachineMonitorTarget({
      control, name: options.name, package: `wkvm ${VERSION}`, blockDevices: blockDevicesOf(options), threadId: () => process.pid,
    });
    const serialOnStdio = options.serial.kind === 'stdio';
    const defaultMonitor = options.monitor === undefined && options.qmp.length === 0;
    const monitorOnMux = serialOnStdio &&
      (defaultMonitor || (options.serial.kind === 'stdio' && options.serial.withMonitor === true) || isStdio(options.monitor));
    if (monitorOnMux) this.consoleMonitor = new HmpTerminal(this.target, (text) => process.stdout.write(text));
  }

  async start(): Promise<void> {
    const endpoints: Array<{ endpoint: MonitorEndpoint; protocol: 'hmp' | 'qmp' }> = [
      ...(this.options.monitor !== undefined && this.options.monitor !== 'none' ? [{ endpoint: this.options.monitor, protocol: 'hmp' as const }] : []),
      ...this.options.qmp.map((endpoint) => ({ endpoint, protocol: 'qmp' as const })),
    ];
    for (const { endpoint, protocol } of endpoints) {
      if (endpoint.kind === 'stdio') {
        if (this.consoleMonitor === null) this.startStdio(protocol);
        continue;
      }
      const server = await MonitorServer.listen(endpoint, protocol, this.target);
      this.servers.push(server);
      if (endpoint.wait) {
        // QEMU's wait=on: the guest starts once a client is there.
        process.stderr.write(`wkvm: waiting for connection on: ${protocol === 'qmp' ? '-qmp' : '-monitor'} ${describeEndpoint(endpoint)}\n`);
        await server.firstClient;
      }
    }
    if (this.servers.length > 0 || this.stdioConsole !== null) {
      for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, this.onSignal);
      this.signalsHandled = true;
    }
  }

  /** The machine of this boot (the monitor follows reboots). */
  set machine(machine: VirtMachine | null) {
    this.target.machine = machine;
  }

  async close(): Promise<void> {
    if (this.signalsHandled) for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(signal, this.onSignal);
    this.stdioConsole?.stop();
    await Promise.all(this.servers.map((server) => server.close()));
  }

  private startStdio(protocol: 'hmp' | 'qmp'): void {
    const write = (text: string) => process.stdout.write(text);
    const quit = () => this.control.quit('host-qmp-quit');
    if (protocol === 'hmp') {
      const terminal = new HmpTerminal(this.target, write);
      this.stdioConsole = new StdioConsole({ input: (bytes) => void terminal.input(bytes), quit });
      terminal.focus();
    } else {
      const session = new QmpSession(this.target, { write });
      const decoder = new TextDecoder();
      this.stdioConsole = new StdioConsole({ input: (bytes) => void session.receive(decoder.decode(bytes, { stream: true })), quit });
      write(session.greeting());
    }
    this.stdioConsole.start();
  }
}

const VERSION = '0.1.0';
const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

function isStdio(monitor: RunOptions['monitor']): boolean {
  return monitor !== undefined && monitor !== 'none' && monitor.kind === 'stdio';
}

/** The -drive disks as the monitor lists them (query-block, info block), in the order the guest sees them. */
function blockDevicesOf(options: RunOptions): MonitorBlockDevice[] {
  return planVirtioDevices(options).flatMap((item, index) => item.kind !== 'blk' ? [] : [{
    device: item.name,
    file: item.drive.file,
    format: item.drive.format ?? probeFormat(item.drive.file),
    readOnly: item.drive.readonly ?? false,
    cache: item.drive.cache ?? 'writeback',
    qdev: `/machine/peripheral-anon/device[${index}]`,
  }]);
}

/** What wkvm's block layer will take the image for: qcow2 by its magic, else raw. */
function probeFormat(file: string): string {
  try {
    const fd = openSync(file, 'r');
    try {
      const magic = new Uint8Array(4);
      readSync(fd, magic, 0, 4, 0);
      return magic[0] === 0x51 && magic[1] === 0x46 && magic[2] === 0x49 && magic[3] === 0xfb ? 'qcow2' : 'raw';
    } finally {
      closeSync(fd);
    }
  } catch {
    return 'raw';
  }
}

/** Output without a terminal: -serial null drops it, -serial file:PATH appends it to the file. */
class SerialSink {
  constructor(private readonly fd: number | null) {}
  start(): void {}
  stop(): void {}
  write(bytes: Uint8Array): void {
    if (this.fd !== null) writeSync(this.fd, bytes);
  }
}

function openSerialFile(path: string): number {
  try {
    return openSync(path, 'w');
  } catch (error) {
    throw new UsageError(`-serial file:${path}: cannot open: ${(error as Error).message}`);
  }
}

async function runBoots(
  options: RunOptions, bios: string, rtcOffsetNs: bigint, debugLog: (line: string) => void, serialFile: number | null,
  gdbStub: { stub: GdbStub; host: string; port: number } | null, control: RunControl, monitors: Monitors,
  serialSocket: { socket: SerialSocket; input: { deliver: (bytes: Uint8Array) => void } } | null = null,
): Promise<number> {
  const gdb = gdbStub?.stub ?? null;
  let listening = false;
  // Socket netdevs keep their peers across the guest's reboots, as QEMU's do.
  const persistentNetworks = new PersistentNetBackends();
  // One console for every boot: the mux's focus (guest or monitor) stays across a reset, and what is
  // typed while the next machine is being built waits for it.
  let machine: VirtMachine | null = null;
  const typedBetweenBoots: Uint8Array[] = [];
  const toGuest = (bytes: Uint8Array) => (machine !== null ? machine.consoleInput(bytes) : typedBetweenBoots.push(bytes.slice()));
  if (serialSocket !== null) serialSocket.input.deliver = toGuest;
  const console = serialSocket !== null ? serialSocket.socket : options.serial.kind === 'stdio'
    ? new StdioConsole({
      input: toGuest,
      // QEMU reports Ctrl-A x as a quit (SHUTDOWN, host-qmp-quit).
      quit: () => control.quit('host-qmp-quit'),
      ...(monitors.consoleMonitor === null ? {} : { monitor: monitors.consoleMonitor }),
    })
    : new SerialSink(serialFile);
  let consoleStarted = false;
  try {
    return await bootUntilExit();
  } finally {
    if (consoleStarted) console.stop();
    persistentNetworks.closeAll();
  }

  async function bootUntilExit(): Promise<number> {
    for (;;) {
      if (control.quitting) return 0;
      machine = await VirtMachine.create({
        memoryBytes: options.memoryBytes,
        smp: options.smp,
        bios,
        kernel: options.kernel,
        initrd: options.initrd,
        append: options.append,
        dtb: options.dtb,
        debug: options.debug,
        log: debugLog,
        console,
        jit: options.jit,
        jitThreshold: options.jitThreshold,
        rtcOffsetNs,
        isa: options.isa,
        loaders: options.loaders,
        virtioMmioLegacy: options.virtioMmioLegacy ?? false,
        runControl: control,
        ...(gdb === null ? {} : { debugger: gdb }),
      });
      monitors.machine = machine;
      if (gdbStub !== null) {
        gdbStub.stub.attach(machine);
        if (!listening) await gdbStub.stub.listen(gdbStub.host, gdbStub.port);
        listening = true;
      }
      const virtio = await attachVirtioDevices(machine, { ...options, persistentNetworks }, (message) => process.stderr.write(`wkvm: ${message}\n`));
      for (const bytes of typedBetweenBoots.splice(0)) machine.consoleInput(bytes);
      if (!consoleStarted) console.start();
      consoleStarted = true;
      try {
        const after = control.afterRun(await machine.run());
        if (after.next === 'exit') return after.status;
      } finally {
        machine = null;
        monitors.machine = null;
        await virtio.close();
      }
    }
  }
}

/**
 * -machine dumpdtb=FILE: writes the device tree the guest would be given and exits, as QEMU does. With a
 * kernel the machine is built as for a boot (the tree then has the initrd's place); without one the
 * tree is the board's alone.
 */
async function dumpDeviceTree(options: RunOptions, bios: string, file: string): Promise<number> {
  let tree: Uint8Array;
  if (options.kernel !== undefined || bios !== 'none') {
    const machine = await VirtMachine.create({
      memoryBytes: options.memoryBytes, smp: options.smp, bios, kernel: options.kernel, initrd: options.initrd,
      append: options.append, dtb: options.dtb, isa: options.isa, console: { write: () => undefined },
    });
    tree = machine.deviceTree;
  } else {
    if (options.initrd !== undefined) throw new UsageError('-initrd needs -kernel');
    tree = options.dtb !== undefined ? readFileOr(options.dtb, '-dtb')
      : boardDeviceTree({ smp: options.smp, memoryBytes: options.memoryBytes, append: options.append, isa: options.isa });
  }
  try {
    writeFileSync(file, tree);
  } catch (error) {
    throw new UsageError(`-machine dumpdtb=${file}: cannot write: ${(error as Error).message}`);
  }
  return 0;
}

function readFileOr(path: string, option: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new UsageError(`${option} ${path}: cannot read: ${(error as Error).message}`);
  }
}

/** What -rtc base= adds to the host's UTC time: local time read as UTC (QEMU's localtime), or the way to a fixed date. */
function rtcOffset(base: RunOptions['rtcBase']): bigint {
  if (base === 'utc') return 0n;
  if (base === 'localtime') return BigInt(-new Date().getTimezoneOffset()) * 60_000_000_000n;
  return BigInt(base.epochMs - Date.now()) * 1_000_000n;
}

/** `-device help`: the devices wkvm has, by bus, in QEMU's format. */
function deviceHelp(): string {
  const { mmio, pci } = supportedDevices();
  const line = (name: string, bus: string) => `name "${name}", bus ${bus}\n`;
  return 'virtio-mmio devices (on the virt board\'s eight transports):\n' +
    mmio.map((name) => line(name, name === 'virtconsole' ? 'virtio-serial-bus' : 'virtio-bus')).join('') +
    '\nPCI devices (on pcie.0; modern virtio-pci, INTx):\n' + pci.map((name) => line(name, 'PCI')).join('');
}

function fail(error: unknown): number {
  if (error instanceof UsageError || error instanceof GdbStubError || error instanceof MonitorServerError || error instanceof SerialSocketError || error instanceof LoadError || error instanceof MachineError || error instanceof KvmError ||
      error instanceof VirtioConfigError || error instanceof DiskImageError || error instanceof DomainXmlError || error instanceof DomainUnsupportedError) {
    const pc = error instanceof MachineError && error.pc !== undefined ? ` (pc 0x${error.pc.toString(16)})` : '';
    process.stderr.write(`wkvm: ${error.message}${pc}\n`);
    return 1;
  }
  throw error;
}
