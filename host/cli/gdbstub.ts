// QEMU's gdb stub for the boot hart: `-s` (tcp::1234) or `-gdb tcp:[HOST]:PORT`, and `-S` to wait for
// gdb's first continue. The GDB remote serial protocol over one TCP connection: registers x0..x31 and
// pc (target.xml describes them), memory by the hart's virtual addresses (walking satp's page table as
// the hart would, Sv39, Sv48 or Sv57; physical when paging is off), continue, step, Ctrl-C, and software
// breakpoints (Z0), which are EBREAKs written into guest memory: the VM runs with guest debugging on, so
// an EBREAK exits to here instead of trapping in the guest, and nothing is translated that could miss
// one. Hardware breakpoints (Z1: `hbreak`, which also works where nothing is mapped yet, as at a kernel's
// virtual addresses before it turns paging on) and watchpoints (Z2/Z3/Z4: `watch`, `rwatch`, `awatch`)
// are the core's (Vm.setGuestDebug), four of each. Node-only (node:net), like the rest of the CLI.
import { createServer, type Server, type Socket } from 'node:net';
import type { GuestDebugger, MachineOutcome, VirtMachine } from '../vmm/virt_machine.js';
import { guestRamViews } from '../vmm/guest_view.js';
import { DEBUG_MAX_BREAKPOINTS, DEBUG_MAX_WATCHPOINTS } from '../../assembly/abi/layout.js';
import type { DebugHit } from '../kvm/exits.js';

const TARGET_XML = `<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target><architecture>riscv:rv64</architecture>` +
  `<feature name="org.gnu.gdb.riscv.cpu">${
    ['zero', 'ra', 'sp', 'gp', 'tp', 't0', 't1', 't2', 'fp', 's1', 'a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7',
      's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10', 's11', 't3', 't4', 't5', 't6']
      .map((name, i) => `<reg name="${name}" bitsize="64" type="int" regnum="${i}"/>`).join('')
  }<reg name="pc" bitsize="64" type="code_ptr" regnum="32"/></feature></target>`;

const PC_REGISTER = 32;
/** c.ebreak and ebreak: what gdb's breakpoint kinds 2 and 4 ask to be written. */
const EBREAK_BYTES: Record<number, readonly number[]> = { 2: [0x02, 0x90], 4: [0x73, 0x00, 0x10, 0x00] };

/** gdb's signal numbers in stop replies. */
const SIGINT = 2;
const SIGTRAP = 5;

export class GdbStubError extends Error {
  override readonly name = 'GdbStubError';
}

/** -gdb's device: `tcp::1234`, `tcp:127.0.0.1:1234` (QEMU's -s is `tcp::1234`). */
export function parseGdbDevice(device: string): { host: string; port: number } {
  const match = /^tcp:([^:]*):(\d{1,5})$/.exec(device);
  const port = match === null ? NaN : Number(match[2]);
  if (match === null || !(port > 0 && port <= 0xffff)) throw new GdbStubError(`-gdb ${device}: expected tcp:[HOST]:PORT`);
  return { host: match[1] === '' ? '127.0.0.1' : match[1]!, port };
}

export class GdbStub implements GuestDebugger {
  private machine: VirtMachine | null = null;
  private socket: Socket | null = null;
  private input = '';
  /** Whether the hart may run, and if so whether for one instruction. */
  private state: 'stopped' | 'running' | 'stepping';
  private resume: (() => void) | null = null;
  private interrupt = false;
  private readonly breakpoints = new Map<bigint, Uint8Array>();
  /** Z1 addresses, and Z2/Z3/Z4 ranges, kept here and handed to the core as a whole on each change. */
  private readonly hardwareBreakpoints: bigint[] = [];
  private readonly watchpoints: Array<{ address: bigint; length: number; access: 'write' | 'read' | 'access' }> = [];

  private server: Server | null = null;

  /** With `waitForGdb` (-S) the hart does not run until gdb continues it. */
  constructor(waitForGdb: boolean) {
    this.state = waitForGdb ? 'stopped' : 'running';
  }

  /** Listens for gdb; once a machine is attached, so that gdb never talks to a stub with nothing behind it. */
  async listen(host: string, port: number): Promise<void> {
    const server = createServer();
    server.on('connection', (socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) => reject(new GdbStubError(`-gdb tcp:${host}:${port}: ${error.message}`)));
      server.listen(port, host, () => resolve());
    });
    // The server keeps the process alive while the hart waits for gdb (-S); close() lets it go.
    this.server = server;
  }

  /** The machine being debugged (a new one after each guest reboot). */
  attach(machine: VirtMachine): void {
    this.machine = machine;
    this.breakpoints.clear();
    // A reboot's machine gets the debug points gdb believes inserted; its software ones went with the old memory.
    this.applyDebugPoints();
  }

  close(): void {
    this.socket?.destroy();
    this.server?.close();
  }

  // GuestDebugger: the run loop's side.

  get interruptRequested(): boolean {
    return this.interrupt;
  }

  nextRun(): Promise<'continue' | 'step'> {
    if (this.state !== 'stopped') return Promise.resolve(this.state === 'stepping' ? 'step' : 'continue');
    return new Promise((resolve) => {
      this.resume = () => resolve(this.state === 'stepping' ? 'step' : 'continue');
    });
  }

  stopped(reason: 'breakpoint' | 'step' | 'interrupt', hit?: DebugHit): void {
    this.interrupt = false;
    this.state = 'stopped';
    if (hit?.kind === 'watch-write' || hit?.kind === 'watch-read') {
      // gdb finds its watchpoint by the data address; an access watchpoint answers for either kind.
      const watch = this.watchpoints.find((w) => hit.address >= w.address && hit.address < w.address + BigInt(w.length));
      const stopKind = watch?.access === 'access' ? 'awatch' : hit.kind === 'watch-write' ? 'watch' : 'rwatch';
      this.send(`T${hex2(SIGTRAP)}${stopKind}:${hit.address.toString(16)};`);
    } else if (hit?.kind === 'hardware-breakpoint') {
      this.send(`T${hex2(SIGTRAP)}hwbreak:;`);
    } else {
      this.send(`S${hex2(reason === 'interrupt' ? SIGINT : SIGTRAP)}`);
    }
  }

  ended(outcome: MachineOutcome): void {
    if (outcome.kind === 'poweroff') this.send(`W${hex2(outcome.status & 0xff)}`);
  }

  // The protocol.

  private accept(socket: Socket): void {
    if (this.socket !== null) {
      socket.destroy(); // one debugger at a time
      return;
    }
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk.toString('latin1')));
    socket.on('close', () => {
      this.socket = null;
      this.input = '';
      this.detach();
    });
    socket.on('error', () => {});
  }

  private receive(text: string): void {
    this.input += text;
    for (;;) {
      this.input = this.input.replace(/^[+-]+/, '');
      if (this.input.startsWith('\x03')) {
        this.input = this.input.slice(1);
        if (this.state !== 'stopped') {
          this.interrupt = true;
          this.machine?.kick();
        }
        continue;
      }
      const start = this.input.indexOf('$');
      const end = this.input.indexOf('#', start);
      if (start < 0 || end < 0 || this.input.length < end + 3) return;
      const packet = this.input.slice(start + 1, end);
      this.input = this.input.slice(end + 3);
      this.socket?.write('+');
      const reply = this.handle(packet);
      if (reply !== null) this.send(reply);
    }
  }

  private send(payload: string): void {
    let sum = 0;
    for (let i = 0; i < payload.length; i++) sum = (sum + payload.charCodeAt(i)) & 0xff;
    this.socket?.write(`$${payload}#${hex2(sum)}`, 'latin1');
  }

  /** The reply to a packet, or null when the reply comes later (a stop after continue or step). */
  private handle(packet: string): string | null {
    const machine = this.machine;
    if (machine === null) return 'E01';
    const vcpu = machine.vcpu;
    const command = packet[0];
    if (packet.startsWith('qSupported')) return 'PacketSize=4000;qXfer:features:read+;hwbreak+';
    if (packet.startsWith('qXfer:features:read:target.xml:')) return xferChunk(TARGET_XML, packet.slice(31));
    if (packet === 'qAttached') return '1';
    if (packet === 'qC') return 'QC1';
    if (packet === 'qfThreadInfo') return 'm1';
    if (packet === 'qsThreadInfo') return 'l';
    if (packet.startsWith('H') || packet.startsWith('T')) return 'OK';
    if (command === '?') {
      if (this.state === 'stopped') return `S${hex2(SIGTRAP)}`;
      // gdb attaching to a running hart: stop it, as QEMU does, and answer with that stop.
      this.interrupt = true;
      machine.kick();
      return null;
    }
    if (command === 'g') {
      const regs = vcpu.getRegs();
      return [...regs.x, regs.pc].map(le64).join('');
    }
    if (command === 'G') {
      const values = chunks(packet.slice(1), 16).map(fromLe64);
      if (values.length < 33) return 'E01';
      vcpu.setRegs({ x: values.slice(0, 32), pc: values[PC_REGISTER]! });
      return 'OK';
    }
    if (command === 'p') {
      const n = parseInt(packet.slice(1), 16);
      const regs = vcpu.getRegs();
      if (n < 32) return le64(regs.x[n]!);
      return n === PC_REGISTER ? le64(regs.pc) : 'E01';
    }
    if (command === 'P') {
      const [register = '', value = ''] = packet.slice(1).split('=');
      const n = parseInt(register, 16);
      const regs = vcpu.getRegs();
      if (n === 0) return 'OK';
      if (n < 32) regs.x[n] = fromLe64(value);
      else if (n === PC_REGISTER) regs.pc = fromLe64(value);
      else return 'E01';
      vcpu.setRegs(regs);
      return 'OK';
    }
    if (command === 'm') {
      const [address = '', length = ''] = packet.slice(1).split(',');
      const bytes = this.readMemory(BigInt(`0x${address}`), parseInt(length, 16));
      return bytes === null ? 'E14' : [...bytes].map(hex2).join('');
    }
    if (command === 'M') {
      const [where = '', data = ''] = packet.slice(1).split(':');
      const [address = ''] = where.split(',');
      return this.writeMemory(BigInt(`0x${address}`), Uint8Array.from(chunks(data, 2), (b) => parseInt(b, 16))) ? 'OK' : 'E14';
    }
    if (packet.startsWith('Z0,') || packet.startsWith('z0,')) {
      const [, address = '', kind = ''] = packet.split(',');
      return this.breakpoint(packet[0] === 'Z', BigInt(`0x${address}`), parseInt(kind, 16)) ? 'OK' : 'E01';
    }
    if (/^[Zz][1-4],[0-9a-fA-F]+,[0-9a-fA-F]+$/.test(packet)) {
      const [type = '', address = '', length = ''] = packet.split(',');
      return this.debugPoint(packet[0] === 'Z', Number(type[1]), BigInt(`0x${address}`), parseInt(length, 16)) ? 'OK' : 'E01';
    }
    if (command === 'c' || command === 's') {
      if (packet.length > 1) vcpu.setRegs({ ...vcpu.getRegs(), pc: BigInt(`0x${packet.slice(1)}`) });
      this.go(command === 's' ? 'stepping' : 'running');
      return null;
    }
    if (command === 'D') {
      this.detach();
      return 'OK';
    }
    if (command === 'k') {
      machine.stop(0);
      this.detach();
      return null;
    }
    return ''; // not supported: gdb falls back or does without
  }

  private go(state: 'running' | 'stepping'): void {
    this.state = state;
    const resume = this.resume;
    this.resume = null;
    resume?.();
  }

  /** gdb went away: its breakpoints go with it, and the guest runs on. */
  private detach(): void {
    for (const address of [...this.breakpoints.keys()]) this.breakpoint(false, address, 0);
    this.hardwareBreakpoints.length = 0;
    this.watchpoints.length = 0;
    this.applyDebugPoints();
    if (this.state === 'stopped') this.go('running');
  }

  /** Z1..Z4 / z1..z4: a hardware breakpoint (type 1) or a write, read or access watchpoint (2, 3, 4) of `length` bytes. */
  private debugPoint(insert: boolean, type: number, address: bigint, length: number): boolean {
    if (type === 1) {
      const at = this.hardwareBreakpoints.indexOf(address);
      if (!insert) {
        if (at >= 0) this.hardwareBreakpoints.splice(at, 1);
      } else if (at < 0) {
        if (this.hardwareBreakpoints.length >= DEBUG_MAX_BREAKPOINTS) return false;
        this.hardwareBreakpoints.push(address);
      }
      return this.applyDebugPoints();
    }
    const access = type === 2 ? 'write' : type === 3 ? 'read' : 'access';
    if (!(length >= 1 && length <= 1 << 20)) return false;
    const at = this.watchpoints.findIndex((w) => w.address === address && w.length === length && w.access === access);
    if (!insert) {
      if (at >= 0) this.watchpoints.splice(at, 1);
    } else if (at < 0) {
      if (this.watchpoints.length >= DEBUG_MAX_WATCHPOINTS) return false;
      this.watchpoints.push({ address, length, access });
    }
    return this.applyDebugPoints();
  }

  /** Hands the hardware breakpoints and watchpoints to the machine's core; false if it refused them. */
  private applyDebugPoints(): boolean {
    try {
      this.machine?.vm.setGuestDebug({ hardwareBreakpoints: this.hardwareBreakpoints, watchpoints: this.watchpoints });
      return true;
    } catch {
      return false;
    }
  }

  private breakpoint(insert: boolean, address: bigint, kind: number): boolean {
    if (!insert) {
      const original = this.breakpoints.get(address);
      if (original === undefined) return true;
      this.breakpoints.delete(address);
      return this.writeMemory(address, original);
    }
    const ebreak = EBREAK_BYTES[kind];
    if (ebreak === undefined) return false;
    if (this.breakpoints.has(address)) return true;
    const original = this.readMemory(address, ebreak.length);
    if (original === null || !this.writeMemory(address, Uint8Array.from(ebreak))) return false;
    this.breakpoints.set(address, original);
    return true;
  }

  /** The bytes at virtual `address` the hart can reach, up to the first that is not RAM; null if none is. */
  private readMemory(address: bigint, length: number): Uint8Array | null {
    const out = new Uint8Array(length);
    let done = 0;
    for (const part of this.guestRam(address, length)) {
      out.set(part, done);
      done += part.length;
    }
    return done === 0 ? null : out.subarray(0, done);
  }

  /** Writes `bytes` at virtual `address`, as far as RAM goes; false if it ended before them. */
  private writeMemory(address: bigint, bytes: Uint8Array): boolean {
    let done = 0;
    for (const part of this.guestRam(address, bytes.length)) {
      part.set(bytes.subarray(done, done + part.length));
      done += part.length;
    }
    return done === bytes.length;
  }

  /** Views of guest RAM from virtual `address` (see guest_view.ts). */
  private guestRam(address: bigint, length: number): Uint8Array[] {
    return guestRamViews(this.machine!.vm, this.machine!.vcpu, address, length);
  }
}

function hex2(value: number): string {
  return value.toString(16).padStart(2, '0');
}

/** A 64-bit register as gdb sends it: little-endian bytes in hex. */
function le64(value: bigint): string {
  let out = '';
  for (let i = 0n; i < 64n; i += 8n) out += hex2(Number((value >> i) & 0xffn));
  return out;
}

function fromLe64(text: string): bigint {
  let value = 0n;
  for (let i = 0; i < 8; i++) value |= BigInt(parseInt(text.slice(i * 2, i * 2 + 2) || '0', 16)) << BigInt(i * 8);
  return value;
}

function chunks(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i + size <= text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

/** qXfer's reply for `offset,length` of `document`: 'm' and more to come, or 'l' for the last part. */
function xferChunk(document: string, range: string): string {
  const [offset = 0, length = 0] = range.split(',').map((n) => parseInt(n, 16));
  const part = document.slice(offset, offset + length);
  return (offset + length >= document.length ? 'l' : 'm') + part;
}
