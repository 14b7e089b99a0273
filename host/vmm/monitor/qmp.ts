// QMP, QEMU's machine protocol, one session per client: the greeting, capabilities negotiation first,
// JSON objects in (split off the byte stream as QEMU's JSON streamer does: an object ends where its
// braces balance, whatever the line breaks), CRLF-terminated JSON out with `id` echoed, events with
// timestamps once negotiated, and QEMU 7.2's error classes and messages for bad input (checked against
// the real qemu-system-riscv64). A client can never make it throw. Output is written with QEMU's JSON
// spacing (`{"return": {}, "id": 1}`) and key order, so transcripts compare. Pure and node-free: the
// socket servers live in host/cli.
import type { VmEvent } from '../run_control.js';
import { HmpSession } from './hmp.js';
import type { MonitorTarget } from './target.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** QEMU's error classes (QapiErrorClass). */
type QmpErrorClass = 'GenericError' | 'CommandNotFound' | 'DeviceNotActive' | 'DeviceNotFound' | 'KVMMissingCap';

class QmpCommandError extends Error {
  constructor(readonly errorClass: QmpErrorClass, message: string) {
    super(message);
    this.name = 'QmpCommandError';
  }
}

/** The type each argument must have, per command. */
type ArgumentType = 'str' | 'int' | 'bool' | 'str-list';
interface QmpCommand {
  readonly args?: Readonly<Record<string, { readonly type: ArgumentType; readonly optional?: boolean }>>;
  run(session: QmpSession, args: JsonObject): Promise<Json> | Json;
}

const TYPE_NAMES: Record<ArgumentType, string> = { str: 'string', int: 'integer', bool: 'boolean', 'str-list': 'array' };

const COMMANDS: Readonly<Record<string, QmpCommand>> = {
  qmp_capabilities: { args: { enable: { type: 'str-list', optional: true } }, run: () => ({}) },
  'query-status': {
    run: (s) => {
      const status = s.target.control.status;
      return { status, singlestep: false, running: status === 'running' };
    },
  },
  stop: { run: async (s) => { await s.target.control.stop(); return {}; } },
  cont: { run: async (s) => { await s.target.control.cont(); return {}; } },
  system_reset: { run: (s) => { s.target.control.systemReset(); return {}; } },
  system_powerdown: { run: (s) => { s.target.control.systemPowerdown(); return {}; } },
  quit: { run: (s) => { s.target.control.quit('host-qmp-quit'); return {}; } },
  'query-version': {
    run: (s) => {
      const { major, minor, micro, package: pkg } = s.target.version;
      return { qemu: { micro, minor, major }, package: pkg };
    },
  },
  'query-name': { run: (s): JsonObject => (s.target.name === undefined ? {} : { name: s.target.name }) },
  'query-cpus-fast': {
    run: (s) => s.target.cpus().map((cpu) => ({
      'thread-id': cpu.threadId, props: { 'core-id': cpu.index }, 'qom-path': `/machine/soc0/harts[${cpu.index}]`, 'cpu-index': cpu.index, target: 'riscv64',
    })),
  },
  'query-block': {
    run: (s) => s.target.blockDevices().map((disk) => ({
      'io-status': 'ok',
      device: disk.device,
      locked: false,
      removable: false,
      inserted: {
        ro: disk.readOnly, drv: disk.format, file: disk.file, backing_file_depth: 0, encrypted: false,
        cache: { 'no-flush': disk.cache === 'unsafe', direct: disk.cache === 'none', writeback: disk.cache !== 'writethrough' },
        image: { filename: disk.file, format: disk.format },
      },
      qdev: disk.qdev,
      type: 'unknown',
    })),
  },
  'query-commands': { run: () => Object.keys(COMMANDS).map((name) => ({ name })) },
  'human-monitor-command': {
    args: { 'command-line': { type: 'str' }, 'cpu-index': { type: 'int', optional: true } },
    run: async (s, args) => {
      const hmp = s.humanMonitor;
      if (args['cpu-index'] !== undefined) {
        const switched = await hmp.execute(`cpu ${args['cpu-index'] as number}`);
        if (switched !== '') throw new QmpCommandError('GenericError', `CPU '${args['cpu-index'] as number}' not found`);
      }
      return hmp.execute(args['command-line'] as string);
    },
  },
};

/** The members a QMP input object may have. */
const INPUT_MEMBERS = new Set(['execute', 'arguments', 'id']);
/** Input that never balances is refused past this, as QEMU's streamer caps its token buffer. */
const MAX_INPUT_BYTES = 1 << 20;

export interface QmpSessionOptions {
  /** Sends text to the client. */
  write(text: string): void;
  /** The time events are stamped with, in µs since the epoch (default: the host's clock). */
  now?: () => number;
}

export class QmpSession {
  private negotiated = false;
  /** The JSON value being read: its text so far and how deep its braces and brackets go. */
  private pending = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** Commands run one at a time in arrival order, as QEMU's monitor runs them. */
  private queue: Promise<void> = Promise.resolve();
  private readonly unsubscribe: () => void;
  private hmp: HmpSession | null = null;

  constructor(readonly target: MonitorTarget, private readonly options: QmpSessionOptions) {
    this.unsubscribe = target.control.subscribe((event) => this.sendEvent(event));
  }

  /** The first thing a client reads. */
  greeting(): string {
    const { major, minor, micro, package: pkg } = this.target.version;
    return encodeLine({ QMP: { version: { qemu: { micro, minor, major }, package: pkg }, capabilities: ['oob'] } });
  }

  /** The HMP session human-monitor-command runs in (kept, as QEMU keeps its format memory). */
  get humanMonitor(): HmpSession {
    this.hmp ??= new HmpSession(this.target);
    return this.hmp;
  }

  /** Bytes from the client; resolves once the commands they complete have been answered. */
  receive(text: string): Promise<void> {
    for (const ch of text) {
      this.pending += ch;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (ch === '\\') this.escaped = true;
        else if (ch === '"') this.inString = false;
        continue;
      }
      if (ch === '"') {
        this.inString = true;
      } else if (ch === '{' || ch === '[') {
        this.depth++;
      } else if (ch === '}' || ch === ']') {
        this.depth--;
        if (this.depth <= 0) this.complete();
      } else if (this.depth === 0 && /\s/.test(ch)) {
        // A value outside any object (a string, a number, a word) ends at white space.
        if (this.pending.trim() !== '') this.complete();
        else this.pending = '';
      }
      if (this.pending.length > MAX_INPUT_BYTES) {
        this.reset();
        this.reply(undefined, { error: errorBody('GenericError', 'JSON parse error, input too large') });
      }
    }
    return this.queue;
  }

  /** The client went: no more events for it. */
  close(): void {
    this.unsubscribe();
  }

  private complete(): void {
    const text = this.pending;
    this.reset();
    this.queue = this.queue.then(() => this.handle(text));
  }

  private reset(): void {
    this.pending = '';
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
  }

  private async handle(text: string): Promise<void> {
    let input: Json;
    try {
      input = JSON.parse(text) as Json;
    } catch {
      this.reply(undefined, { error: errorBody('GenericError', `JSON parse error, ${describeParseError(text)}`) });
      return;
    }
    if (input === null || typeof input !== 'object' || Array.isArray(input)) {
      this.reply(undefined, { error: errorBody('GenericError', 'QMP input must be a JSON object') });
      return;
    }
    const id = Object.hasOwn(input, 'id') ? input.id! : undefined;
    const fail = (errorClass: QmpErrorClass, message: string) => this.reply(id, { error: errorBody(errorClass, message) }, true);
    const execute = input.execute;
    if (execute === undefined) return fail('GenericError', "QMP input lacks member 'execute'");
    if (typeof execute !== 'string') return fail('GenericError', "QMP input member 'execute' must be a string");
    const unexpected = Object.keys(input).find((key) => !INPUT_MEMBERS.has(key));
    if (unexpected !== undefined) return fail('GenericError', `QMP input member '${unexpected}' is unexpected`);
    const args = input.arguments ?? {};
    if (args === null || typeof args !== 'object' || Array.isArray(args)) return fail('GenericError', "QMP input member 'arguments' must be an object");
    if (!this.negotiated && execute !== 'qmp_capabilities') return fail('CommandNotFound', "Expecting capabilities negotiation with 'qmp_capabilities'");
    if (this.negotiated && execute === 'qmp_capabilities') return fail('CommandNotFound', 'Capabilities negotiation is already complete, command ignored');
    const command = Object.hasOwn(COMMANDS, execute) ? COMMANDS[execute]! : undefined;
    if (command === undefined) return fail('CommandNotFound', `The command ${execute} has not been found`);
    try {
      checkArguments(command, args);
      const result = await command.run(this, args);
      if (execute === 'qmp_capabilities') this.negotiated = true;
      this.reply(id, { return: result });
    } catch (error) {
      if (error instanceof QmpCommandError) return fail(error.errorClass, error.message);
      return fail('GenericError', error instanceof Error ? error.message : String(error));
    }
  }

  /** A reply: QEMU puts `id` after `return` but before `error`. */
  private reply(id: Json | undefined, body: JsonObject, idFirst = false): void {
    const message: JsonObject = idFirst && id !== undefined ? { id, ...body } : { ...body };
    if (!idFirst && id !== undefined) message.id = id;
    this.options.write(encodeLine(message));
  }

  private sendEvent(event: VmEvent): void {
    if (!this.negotiated) return; // QEMU sends no events before capabilities negotiation
    const micros = Math.floor(this.options.now?.() ?? (performance.timeOrigin + performance.now()) * 1000);
    const message: JsonObject = {
      timestamp: { seconds: Math.floor(micros / 1e6), microseconds: micros % 1e6 },
      event: event.event,
    };
    if ('data' in event) message.data = { ...event.data };
    this.options.write(encodeLine(message));
  }
}

function errorBody(errorClass: QmpErrorClass, desc: string): JsonObject {
  return { class: errorClass, desc };
}

function checkArguments(command: QmpCommand, args: JsonObject): void {
  const spec = command.args ?? {};
  for (const key of Object.keys(args)) {
    if (!Object.hasOwn(spec, key)) throw new QmpCommandError('GenericError', `Parameter '${key}' is unexpected`);
  }
  for (const [key, { type, optional }] of Object.entries(spec)) {
    const value = args[key];
    if (value === undefined) {
      if (!optional) throw new QmpCommandError('GenericError', `Parameter '${key}' is missing`);
      continue;
    }
    const ok = type === 'str' ? typeof value === 'string'
      : type === 'int' ? typeof value === 'number' && Number.isInteger(value)
        : type === 'bool' ? typeof value === 'boolean'
          : Array.isArray(value) && value.every((item) => typeof item === 'string');
    if (!ok) throw new QmpCommandError('GenericError', `Invalid parameter type for '${key}', expected: ${TYPE_NAMES[type]}`);
  }
}

/** QEMU's wording for the two mistakes people make: a bare word, or a value missing. */
function describeParseError(text: string): string {
  const outsideStrings = text.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const word = /[A-Za-z_][A-Za-z0-9_]*/.exec(outsideStrings)?.[0];
  if (word !== undefined && !['true', 'false', 'null'].includes(word)) return `invalid keyword '${word}'`;
  return 'expecting value';
}

/** JSON as QEMU writes it: `": "` and `", "` between members and items, then CRLF. */
export function encodeLine(value: Json): string {
  return `${encode(value)}\r\n`;
}

function encode(value: Json): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(encode).join(', ')}]`;
  return `{${Object.entries(value).map(([key, item]) => `${JSON.stringify(key)}: ${encode(item)}`).join(', ')}}`;
}
