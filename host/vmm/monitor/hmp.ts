// QEMU's human monitor (HMP): one command line in, its text out, with QEMU 7.2's output formats as the
// real qemu-system-riscv64 prints them (info status, info registers, x/xp, unknown command: 'foo', ...).
// Lines end in CRLF, as QEMU's monitor writes them on every chardev. A session keeps what QEMU's monitor
// keeps between commands: the current CPU (`cpu N`) and the last x/xp/print format, size and count.
// Pure: the transports (console mux, sockets, QMP's human-monitor-command) feed it. Node-free.
import type { MonitorCpu, MonitorTarget } from './target.js';
import { leadingQemuInteger } from '../../qemu_number.js';

/** A command's usage and one-line description, in QEMU's `help` format. */
interface HmpCommand {
  readonly names: readonly string[];
  readonly params: string;
  readonly help: string;
  run(session: HmpSession, args: string): Promise<string> | string;
}

interface InfoCommand {
  readonly name: string;
  readonly params: string;
  readonly help: string;
  run(session: HmpSession, args: string): string;
}

/** A command line the monitor cannot take, worded as QEMU words it. */
class HmpUsageError extends Error {
  constructor(message: string, readonly command: string) {
    super(message);
    this.name = 'HmpUsageError';
  }
}

/** x/xp/print's /FMT: how many units, how to print each, and how big each is. */
export interface DumpFormat {
  readonly count: number;
  readonly format: 'x' | 'd' | 'u' | 'o' | 'c';
  readonly size: 1 | 2 | 4 | 8;
}

const SIZE_LETTERS: Readonly<Record<string, DumpFormat['size']>> = { b: 1, h: 2, w: 4, g: 8 };
const FORMAT_LETTERS = new Set(['x', 'd', 'u', 'o', 'c']);

const CRLF = '\r\n';

/** The CSRs `info registers` lists for a hart without the H extension, in QEMU's order. */
const REGISTER_CSRS: ReadonlyArray<readonly [string, number]> = [
  ['mhartid', 0xf14], ['mstatus', 0x300], ['mip', 0x344], ['mie', 0x304], ['mideleg', 0x303], ['medeleg', 0x302],
  ['mtvec', 0x305], ['stvec', 0x105], ['mepc', 0x341], ['sepc', 0x141], ['mcause', 0x342], ['scause', 0x142],
  ['mtval', 0x343], ['stval', 0x143], ['mscratch', 0x340], ['sscratch', 0x140], ['satp', 0x180],
];
const X_NAMES = ['zero', 'ra', 'sp', 'gp', 'tp', 't0', 't1', 't2', 's0', 's1', 'a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7',
  's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10', 's11', 't3', 't4', 't5', 't6'];
const F_NAMES = ['ft0', 'ft1', 'ft2', 'ft3', 'ft4', 'ft5', 'ft6', 'ft7', 'fs0', 'fs1', 'fa0', 'fa1', 'fa2', 'fa3', 'fa4', 'fa5',
  'fa6', 'fa7', 'fs2', 'fs3', 'fs4', 'fs5', 'fs6', 'fs7', 'fs8', 'fs9', 'fs10', 'fs11', 'ft8', 'ft9', 'ft10', 'ft11'];

const INFO_COMMANDS: readonly InfoCommand[] = [
  { name: 'block', params: '', help: 'show info of one block device or all block devices', run: (s) => s.infoBlock() },
  { name: 'cpus', params: '', help: 'show infos for each CPU', run: (s) => s.infoCpus() },
  { name: 'mtree', params: '', help: 'show memory tree', run: (s) => s.infoMtree() },
  { name: 'name', params: '', help: 'show the current VM name', run: (s) => s.infoName() },
  { name: 'registers', params: '[-a]', help: 'show the cpu registers (-a: all - show register info for all cpus)', run: (s, args) => s.infoRegisters(args) },
  { name: 'status', params: '', help: 'show the current VM status (running|paused)', run: (s) => s.infoStatus() },
  { name: 'version', params: '', help: 'show the version of QEMU', run: (s) => s.infoVersion() },
];

const COMMANDS: readonly HmpCommand[] = [
  { names: ['cont', 'c'], params: '', help: 'resume emulation', run: async (s, a) => { noArguments('cont|c', a); await s.target.control.cont(); return ''; } },
  { names: ['cpu'], params: 'index', help: 'set the default CPU', run: (s, a) => s.selectCpu(a) },
  { names: ['help', '?'], params: '[cmd]', help: 'show the help', run: (_s, a) => help(a) },
  { names: ['info'], params: '[subcommand]', help: 'show various information about the system state', run: (s, a) => s.info(a) },
  { names: ['print', 'p'], params: '/fmt expr', help: 'print expression value (use $reg for CPU register access)', run: (s, a) => s.print(a) },
  { names: ['quit', 'q'], params: '', help: 'quit the emulator', run: (s, a) => { noArguments('quit|q', a); s.target.control.quit('host-qmp-quit'); return ''; } },
  { names: ['stop', 's'], params: '', help: 'stop emulation', run: async (s, a) => { noArguments('stop|s', a); await s.target.control.stop(); return ''; } },
  { names: ['system_powerdown'], params: '', help: 'send system power down event', run: (s, a) => { noArguments('system_powerdown', a); s.target.control.systemPowerdown(); return ''; } },
  { names: ['system_reset'], params: '', help: 'reset the system', run: (s, a) => { noArguments('system_reset', a); s.target.control.systemReset(); return ''; } },
  { names: ['x'], params: '/fmt addr', help: 'virtual memory dump starting at \'addr\'', run: (s, a) => s.dump(a, 'x') },
  { names: ['xp'], params: '/fmt addr', help: 'physical memory dump starting at \'addr\'', run: (s, a) => s.dump(a, 'xp') },
];

/** The banner QEMU's monitor greets a new terminal with (then the prompt). */
export function hmpBanner(target: MonitorTarget): string {
  const { major, minor, micro } = target.version;
  return `QEMU ${major}.${minor}.${micro} monitor - type 'help' for more information${CRLF}`;
}

export const HMP_PROMPT = '(qemu) ';

export class HmpSession {
  private currentCpu = 0;
  private lastFormat: DumpFormat = { count: 1, format: 'x', size: 4 };

  constructor(readonly target: MonitorTarget) {}

  /** Runs one command line; resolves to its output (CRLF line ends; '' for none). */
  async execute(line: string): Promise<string> {
    const trimmed = line.trim();
    if (trimmed === '') return '';
    const match = /^(\S+?)(\/.*|\s.*)?$/.exec(trimmed)!;
    const name = match[1]!;
    const args = (match[2] ?? '').trim();
    const command = COMMANDS.find((c) => c.names.includes(name));
    if (command === undefined) return `unknown command: '${name}'${CRLF}`;
    try {
      return await command.run(this, args);
    } catch (error) {
      if (error instanceof HmpUsageError) return `${error.message}${CRLF}Try "help ${error.command}" for more information${CRLF}`;
      throw error;
    }
  }

  info(args: string): string {
    if (args === '') return INFO_COMMANDS.map(infoHelpLine).join('');
    const [name = '', ...rest] = args.split(/\s+/);
    const command = INFO_COMMANDS.find((c) => c.name === name);
    if (command === undefined) return `unknown command: 'info ${name}'${CRLF}`;
    return command.run(this, rest.join(' '));
  }

  infoStatus(): string {
    const status = this.target.control.status;
    return `VM status: ${status === 'running' ? 'running' : status === 'paused' ? 'paused' : `paused (${status})`}${CRLF}`;
  }

  infoVersion(): string {
    const { major, minor, micro, package: pkg } = this.target.version;
    return `${major}.${minor}.${micro}${pkg}${CRLF}`;
  }

  infoName(): string {
    return this.target.name === undefined ? '' : `${this.target.name}${CRLF}`;
  }

  infoCpus(): string {
    return this.target.cpus().map((cpu) => `${cpu.index === this.currentCpu ? '*' : ' '} CPU #${cpu.index}: thread_id=${cpu.threadId}${CRLF}`).join('');
  }

  infoRegisters(args: string): string {
    if (args !== '' && args !== '-a') throw new HmpUsageError('info registers: extraneous characters at the end of line', 'info');
    const cpus = args === '-a' ? this.target.cpus() : [this.cpu()];
    return cpus.map((cpu) => formatRegisters(cpu)).join('');
  }

  infoBlock(): string {
    return this.target.blockDevices().map((disk) =>
      `${disk.device}: ${disk.file} (${disk.format}${disk.readOnly ? ', read-only' : ''})${CRLF}` +
      `    Attached to:      ${disk.qdev}${CRLF}` +
      `    Cache mode:       ${disk.cache}${CRLF}`).join(CRLF);
  }

  infoMtree(): string {
    const spaces = this.target.cpus().map((cpu) => `address-space: cpu-memory-${cpu.index}${CRLF}`).join('');
    const regions = this.target.memoryRegions().map((region) =>
      `    ${hex16(region.start)}-${hex16(region.last)} (prio 0, ${region.kind}): ${region.name}${CRLF}`).join('');
    return `${spaces}address-space: memory${CRLF}  0000000000000000-ffffffffffffffff (prio 0, i/o): system${CRLF}${regions}${CRLF}`;
  }

  selectCpu(args: string): string {
    const index = /^\d+$/.test(args) ? Number(args) : NaN;
    if (!this.target.cpus().some((cpu) => cpu.index === index)) throw new HmpUsageError('invalid CPU index', 'cpu');
    this.currentCpu = index;
    return '';
  }

  /** x (virtual, through the current CPU's page table) and xp (physical): QEMU's memory dump. */
  dump(args: string, command: 'x' | 'xp'): string {
    const { format, rest } = this.parseFormat(args, command);
    const address = BigInt.asUintN(64, evaluate(rest, command));
    const cpu = command === 'x' ? this.cpu() : null;
    const total = format.count * format.size;
    const bytes = cpu === null ? this.target.readPhysical(address, total) : cpu.readVirtual(address, total);
    return formatDump(address, bytes, format);
  }

  /** print|p /fmt expr */
  print(args: string): string {
    const { format, rest } = this.parseFormat(args, 'print');
    return `${formatValue(evaluate(rest, 'print'), format.format, 8, false)}${CRLF}`;
  }

  private cpu(): MonitorCpu {
    const cpus = this.target.cpus();
    const cpu = cpus.find((c) => c.index === this.currentCpu) ?? cpus[0];
    if (cpu === undefined) throw new HmpUsageError('No CPU available', 'info');
    return cpu;
  }

  /** A leading /FMT ([count][format][size], letters in any order); what it leaves out is the last one's. */
  private parseFormat(args: string, command: string): { format: DumpFormat; rest: string } {
    if (!args.startsWith('/')) return { format: { ...this.lastFormat, count: 1 }, rest: args };
    const match = /^\/(\S*)\s*(.*)$/.exec(args)!;
    const spec = match[1]!;
    let { count, format, size } = this.lastFormat;
    const digits = /^\d+/.exec(spec)?.[0];
    count = digits === undefined ? 1 : Number(digits);
    let sizeGiven = false;
    for (const letter of spec.slice(digits?.length ?? 0)) {
      if (FORMAT_LETTERS.has(letter)) format = letter as DumpFormat['format'];
      else if (SIZE_LETTERS[letter] !== undefined) {
        size = SIZE_LETTERS[letter]!;
        sizeGiven = true;
      } else if (letter === 'i') throw new HmpUsageError("format 'i' (disassembly) is not supported by wkvm's monitor", command);
      else throw new HmpUsageError(`invalid char in format: '${letter}'`, command);
    }
    if (format === 'c' && !sizeGiven) size = 1;
    this.lastFormat = { count, format, size };
    return { format: this.lastFormat, rest: match[2]! };
  }
}

function noArguments(command: string, args: string): void {
  if (args !== '') throw new HmpUsageError(`${command}: extraneous characters at the end of line`, command.split('|')[0]!);
}

function help(args: string): string {
  if (args === 'info') return INFO_COMMANDS.map(infoHelpLine).join('');
  const commands = args === '' ? COMMANDS : COMMANDS.filter((c) => c.names.includes(args));
  if (commands.length === 0) return `unknown command: '${args}'${CRLF}`;
  return commands.map((c) => `${c.names.join('|')} ${c.params} -- ${c.help}${CRLF}`).join('');
}

function infoHelpLine(command: InfoCommand): string {
  return `info ${command.name} ${command.params} -- ${command.help}${CRLF}`;
}

function hex16(value: bigint): string {
  return BigInt.asUintN(64, value).toString(16).padStart(16, '0');
}

/** QEMU's riscv register dump (hart without H): pc and the trap CSRs one a line, then x and f four a line. */
export function formatRegisters(cpu: MonitorCpu): string {
  const field = (name: string, value: bigint) => ` ${name.padEnd(8)} ${hex16(value)}`;
  const lines = [`${CRLF}CPU#${cpu.index}`, field('pc', cpu.pc)];
  for (const [name, number] of REGISTER_CSRS) {
    const value = cpu.csr(number);
    if (value !== null) lines.push(field(name, value));
  }
  const bank = (values: readonly bigint[], prefix: string, names: readonly string[]) => {
    for (let i = 0; i < 32; i += 4) {
      lines.push([0, 1, 2, 3].map((j) => field(`${prefix}${i + j}/${names[i + j]}`, values[i + j] ?? 0n)).join(''));
    }
  };
  bank(cpu.x, 'x', X_NAMES);
  bank(cpu.f, 'f', F_NAMES);
  return lines.join(CRLF) + CRLF;
}

/** The width a value of `size` bytes takes in each format, so columns line up as QEMU's do. */
function columnWidth(format: DumpFormat['format'], size: number): number {
  if (format === 'o') return Math.ceil((size * 8) / 3);
  if (format === 'd' || format === 'u') return String(2n ** BigInt(size * 8) - 1n).length;
  return 0;
}

/** One value as x/xp (padded columns) or print (`bare`: no padding) shows it. */
function formatValue(raw: bigint, format: DumpFormat['format'], size: number, padded: boolean): string {
  const bits = BigInt(size * 8);
  const unsigned = BigInt.asUintN(Number(bits), raw);
  let text: string;
  switch (format) {
    case 'x':
      text = `0x${unsigned.toString(16).padStart(padded ? size * 2 : 0, '0')}`;
      break;
    case 'o':
      text = unsigned === 0n ? '0' : `0${unsigned.toString(8)}`;
      break;
    case 'u':
      text = unsigned.toString();
      break;
    case 'd':
      text = BigInt.asIntN(Number(bits), raw).toString();
      break;
    case 'c':
      text = formatChar(Number(unsigned & 0xffn));
      break;
  }
  return padded ? text.padStart(columnWidth(format, size)) : text;
}

function formatChar(code: number): string {
  if (code >= 0x20 && code < 0x7f && code !== 0x27 && code !== 0x5c) return `'${String.fromCharCode(code)}'`;
  const escapes: Record<number, string> = { 0x0a: '\\n', 0x0d: '\\r', 0x09: '\\t', 0x27: "\\'", 0x5c: '\\\\' };
  return `'${escapes[code] ?? `\\x${code.toString(16).padStart(2, '0')}`}'`;
}

/**
 * x/xp output: the address, then the values, 16 bytes a line (8 for bytes), and "Cannot access memory"
 * where the readable bytes end.
 */
export function formatDump(address: bigint, bytes: Uint8Array, format: DumpFormat): string {
  const perLine = format.size === 1 ? 8 : 16 / format.size;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let out = '';
  for (let item = 0; item < format.count; item += perLine) {
    const lineAddress = BigInt.asUintN(64, address + BigInt(item * format.size));
    out += `${hex16(lineAddress)}:`;
    for (let i = item; i < Math.min(item + perLine, format.count); i++) {
      const offset = i * format.size;
      if (offset + format.size > bytes.length) return `${out} Cannot access memory${CRLF}`;
      out += ` ${formatValue(readUnit(view, offset, format.size), format.format, format.size, true)}`;
    }
    out += CRLF;
  }
  return out;
}

function readUnit(view: DataView, offset: number, size: number): bigint {
  switch (size) {
    case 1: return BigInt(view.getUint8(offset));
    case 2: return BigInt(view.getUint16(offset, true));
    case 4: return BigInt(view.getUint32(offset, true));
    default: return view.getBigUint64(offset, true);
  }
}

/**
 * The monitor's expressions: numbers (0x hex, 0 octal, decimal), + - * / % & | ^ << >>, unary - and ~,
 * parentheses, 64-bit wrap-around. `$reg` is refused as QEMU 7.2's riscv monitor refuses it.
 */
export function evaluate(text: string, command: string): bigint {
  const parser = new ExpressionParser(text, command);
  const value = parser.parse();
  return BigInt.asUintN(64, value);
}

class ExpressionParser {
  private position = 0;

  constructor(private readonly text: string, private readonly command: string) {}

  parse(): bigint {
    this.skipSpaces();
    if (this.position >= this.text.length) this.fail('unexpected end of expression');
    const value = this.binary(0);
    this.skipSpaces();
    if (this.position < this.text.length) this.fail('extraneous characters at the end of line');
    return value;
  }

  private static readonly LEVELS: ReadonlyArray<readonly string[]> = [['|'], ['^'], ['&'], ['<<', '>>'], ['+', '-'], ['*', '/', '%']];

  private binary(level: number): bigint {
    if (level === ExpressionParser.LEVELS.length) return this.unary();
    let value = this.binary(level + 1);
    for (;;) {
      this.skipSpaces();
      const operator = ExpressionParser.LEVELS[level]!.find((op) => this.text.startsWith(op, this.position));
      if (operator === undefined) return value;
      this.position += operator.length;
      const right = this.binary(level + 1);
      value = BigInt.asUintN(64, this.apply(operator, value, right));
    }
  }

  private apply(operator: string, left: bigint, right: bigint): bigint {
    switch (operator) {
      case '|': return left | right;
      case '^': return left ^ right;
      case '&': return left & right;
      case '<<': return left << (right & 63n);
      case '>>': return left >> (right & 63n);
      case '+': return left + right;
      case '-': return left - right;
      case '*': return left * right;
      default:
        if (right === 0n) this.fail('division by zero');
        return operator === '/' ? left / right : left % right;
    }
  }

  private unary(): bigint {
    this.skipSpaces();
    const ch = this.text[this.position];
    if (ch === undefined) this.fail('unexpected end of expression');
    if (ch === '-' || ch === '~' || ch === '+') {
      this.position++;
      const operand = this.unary();
      return ch === '-' ? BigInt.asUintN(64, -operand) : ch === '~' ? BigInt.asUintN(64, ~operand) : operand;
    }
    if (ch === '(') {
      this.position++;
      const value = this.binary(0);
      this.skipSpaces();
      if (this.text[this.position] !== ')') this.fail("')' expected");
      this.position++;
      return value;
    }
    if (ch === '$') this.fail('unknown register');
    const number = leadingQemuInteger(this.text.slice(this.position));
    if (number === null) this.fail(`invalid char '${ch}' in expression`);
    this.position += number.literal.length;
    return BigInt.asUintN(64, number.value);
  }

  private skipSpaces(): void {
    while (this.text[this.position] === ' ' || this.text[this.position] === '\t') this.position++;
  }

  private fail(message: string): never {
    throw new HmpUsageError(message, this.command);
  }
}
