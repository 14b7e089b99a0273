// The `wkvm` command: `wkvm run [QEMU options]` (or just the options) boots a virt machine with the
// serial console on stdio and exits with the guest's status; virsh's domxml-from-native, domxml-to-native
// and create convert command lines to libvirt domain XML and back, and boot a domain from its XML.
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { parseRunArgs, UsageError, type RunOptions } from './args.js';
import { StdioConsole } from './console.js';
import { VirtMachine, MachineError, boardDeviceTree } from '../vmm/virt_machine.js';
import { GdbStub, GdbStubError, parseGdbDevice } from './gdbstub.js';
import { LoadError } from '../vmm/loader/errors.js';
import { KvmError } from '../kvm/errors.js';
import { attachVirtioDevices, planVirtioDevices, supportedDevices, VirtioConfigError } from '../devices/virtio/index.js';
import { DiskImageError } from '../block/index.js';
import { defaultFirmwareCandidates, findDefaultFirmware } from '../vmm/firmware.js';
import { DomainUnsupportedError, DomainXmlError } from '../mgmt/domain_xml.js';
import { createOptions, domxmlFromNative, domxmlToNative } from './domain_commands.js';

const DEBUG_ITEMS = ['exits', 'jit', 'guest_errors'];

const USAGE = `usage: wkvm run -M virt[,dumpdtb=FILE] -m SIZE [-smp N] [-bios none|default|FILE] -kernel FILE [-initrd FILE]
                [-append CMDLINE] [-dtb FILE] [-nographic] [-no-reboot] [-snapshot]
                [-drive file=F[,format=raw|qcow2][,if=virtio|none][,id=ID][,cache=MODE][,readonly=on][,snapshot=on]]
                [-device virtio-blk-device,drive=ID[,queue-size=N][,bus=virtio-mmio-bus.N] | virtio-rng-device[,rng=ID] | virtio-balloon-device
                         | virtio-serial-device | virtconsole[,chardev=ID] | virtio-console-device[,chardev=ID]]
                [-device virtio-blk-pci,drive=ID | virtio-net-pci,netdev=ID | virtio-rng-pci | virtio-balloon-pci
                         | virtio-9p-pci,fsdev=ID,mount_tag=TAG | virtio-serial-pci ...[,addr=SLOT][,bus=pcie.0]] [-device help]
                [-device loader,file=FILE[,addr=A][,cpu-num=N][,force-raw=on] | loader,addr=A,data=D,data-len=1|2|4|8[,data-be=on]
                         | loader,addr=A,cpu-num=N]
                [-global virtio-mmio.force-legacy=false]
                [-object rng-builtin,id=ID | rng-random,id=ID[,filename=/dev/urandom]]
                [-chardev null,id=ID | stdio,id=ID[,mux=on] | file,id=ID,path=FILE[,append=on]]
                [-netdev user,id=ID[,restrict=on][,hostfwd=tcp:[ADDR]:PORT-[GADDR]:GPORT...][,tftp=DIR[,bootfile=FILE]] -device virtio-net-device,netdev=ID[,mac=MAC] | -nic user[,model=virtio-net-pci][,mac=MAC][,hostfwd=...] | -nic none]
                [-fsdev local,id=ID,path=DIR,security_model=none|passthrough[,readonly=on] -device virtio-9p-device,fsdev=ID,mount_tag=TAG]
                [-virtfs local,path=DIR,mount_tag=TAG,security_model=none|passthrough[,readonly=on]]
                [-s | -gdb tcp:[HOST]:PORT] [-S] [-d exits,jit,guest_errors] [-D LOGFILE] [-accel tcg[,jit=on|off][,jit-threshold=N]]
                [-rtc base=utc|localtime|2006-06-17T16:01:21] [-serial stdio|null|file:PATH]
Runs a RISC-V 64 virt machine with its serial console on stdio (Ctrl-A x quits, Ctrl-A h helps).
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
  if (options.freeze && options.gdb === undefined) throw new UsageError('-S: nothing would start the hart without a debugger (add -s or -gdb tcp::PORT)');
  // -serial file: opened (truncated) once, so the output of every boot after a reboot is kept.
  const serialFile = options.serial.kind === 'file' ? openSerialFile(options.serial.path) : null;
  const gdbDevice = options.gdb === undefined ? null : parseGdbDevice(options.gdb);
  const gdb = gdbDevice === null ? null : new GdbStub(options.freeze ?? false);
  try {
    return await runBoots(options, bios, rtcOffsetNs, debugLog, serialFile, gdb === null ? null : { stub: gdb, ...gdbDevice! });
  } finally {
    gdb?.close();
    if (serialFile !== null) closeSync(serialFile);
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
  gdbStub: { stub: GdbStub; host: string; port: number } | null,
): Promise<number> {
  const gdb = gdbStub?.stub ?? null;
  let listening = false;
  for (;;) {
    let machine: VirtMachine | null = null;
    const console = options.serial.kind === 'stdio'
      ? new StdioConsole({ input: (bytes) => machine?.consoleInput(bytes), quit: () => machine?.stop(0) })
      : new SerialSink(serialFile);
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
      ...(gdb === null ? {} : { debugger: gdb }),
    });
    if (gdbStub !== null) {
      gdbStub.stub.attach(machine);
      if (!listening) await gdbStub.stub.listen(gdbStub.host, gdbStub.port);
      listening = true;
    }
    const virtio = await attachVirtioDevices(machine, options, (message) => process.stderr.write(`wkvm: ${message}\n`));
    console.start();
    try {
      const outcome = await machine.run();
      if (outcome.kind === 'poweroff') return outcome.status;
      if (options.noReboot) return 0;
    } finally {
      console.stop();
      await virtio.close();
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
  if (error instanceof UsageError || error instanceof GdbStubError || error instanceof LoadError || error instanceof MachineError || error instanceof KvmError ||
      error instanceof VirtioConfigError || error instanceof DiskImageError || error instanceof DomainXmlError || error instanceof DomainUnsupportedError) {
    const pc = error instanceof MachineError && error.pc !== undefined ? ` (pc 0x${error.pc.toString(16)})` : '';
    process.stderr.write(`wkvm: ${error.message}${pc}\n`);
    return 1;
  }
  throw error;
}
