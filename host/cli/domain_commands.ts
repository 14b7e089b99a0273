// virsh's commands for domain XML, for wkvm's command lines: `domxml-from-native` (a qemu-system-riscv64 or
// `wkvm run` argument list → libvirt domain XML), `domxml-to-native` (domain XML → the command line) and
// `create` (boot a domain from its XML, as `virsh create FILE` starts a transient domain).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseRunArgs, UsageError, type RunOptions } from './args.js';
import { domainXmlFromRunOptions, runOptionsFromDomain } from '../mgmt/domain_xml.js';

/** virsh's name for the only native format wkvm speaks. */
const NATIVE_FORMAT = 'qemu-argv';

/** Reads a file, or stdin for `-`, as a UsageError when it cannot. */
function readInput(path: string, what: string): string {
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (error) {
    throw new UsageError(`${what} ${path}: cannot read: ${(error as Error).message}`);
  }
}

/**
 * Splits a command line as a POSIX shell would for plain words: blanks separate, '...' and "..." quote,
 * a backslash escapes (and with a newline continues the line). No expansions: `$` is a character.
 */
export function splitShellWords(text: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '\\') {
      const next = text[++i];
      if (next === undefined) throw new UsageError('qemu-argv: the text ends in a backslash');
      if (next !== '\n') word = (word ?? '') + next;
      continue;
    }
    if (ch === "'" || ch === '"') {
      const end = text.indexOf(ch, i + 1);
      if (end < 0) throw new UsageError(`qemu-argv: unterminated ${ch} quote`);
      let quoted = text.slice(i + 1, end);
      if (ch === '"') quoted = quoted.replace(/\\([\\"$`\n])/g, (_all, escaped: string) => (escaped === '\n' ? '' : escaped));
      word = (word ?? '') + quoted;
      i = end;
      continue;
    }
    if (ch === '#' && word === null) {
      // A comment runs to the end of the line.
      const end = text.indexOf('\n', i);
      i = end < 0 ? text.length : end;
      continue;
    }
    if (' \t\n\r'.includes(ch)) {
      if (word !== null) words.push(word);
      word = null;
      continue;
    }
    word = (word ?? '') + ch;
  }
  if (word !== null) words.push(word);
  return words;
}

/** Quotes a word for a POSIX shell when it needs it. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}

/**
 * The `wkvm run` options of an argument list as a user may paste it: environment assignments first
 * (virsh's domxml-to-native prints LC_ALL=C ...), then qemu-system-riscv64 (any path), `wkvm run` or
 * `wkvm`, or the options alone.
 */
export function optionsOfNativeArgv(words: readonly string[]): string[] {
  let rest = [...words];
  while (rest.length > 0 && /^[A-Za-z_][A-Za-z0-9_]*=/.test(rest[0]!)) rest.shift();
  const program = rest[0]?.split('/').pop();
  if (program !== undefined && (/^qemu-system-/.test(program) || program === 'wkvm' || program === 'wkvm.js')) {
    if (program.startsWith('qemu-system-') && program !== 'qemu-system-riscv64') {
      throw new UsageError(`${rest[0]}: wkvm emulates qemu-system-riscv64`);
    }
    rest = rest.slice(1);
    if ((program === 'wkvm' || program === 'wkvm.js') && rest[0] === 'run') rest = rest.slice(1);
  }
  return rest;
}

/**
 * `wkvm domxml-from-native [qemu-argv] ARGS...`: ARGS is the argument list itself, `-` (read it from
 * stdin) or one file that holds it (virsh's form). Relative paths become absolute, from the current directory.
 */
export function domxmlFromNative(args: readonly string[]): string {
  const rest = args[0] === NATIVE_FORMAT ? args.slice(1) : [...args];
  if (rest.length === 0) throw new UsageError(`domxml-from-native: give the command line (${NATIVE_FORMAT} ARGS..., - for stdin, or a file)`);
  const first = rest[0]!;
  const fromText = rest.length === 1 && (first === '-' || (!first.startsWith('-') && !/qemu-system-|wkvm/.test(first.split('/').pop()!)));
  const words = fromText ? splitShellWords(readInput(first, 'domxml-from-native')) : rest;
  const options = parseRunArgs(optionsOfNativeArgv(words));
  return domainXmlFromRunOptions(options, { absolutePath: (path) => resolve(path) });
}

/** `wkvm domxml-to-native [qemu-argv] FILE.xml` (or - for stdin): the command line, one shell-quoted line. */
export function domxmlToNative(args: readonly string[]): string {
  const rest = args[0] === NATIVE_FORMAT ? args.slice(1) : [...args];
  if (rest.length !== 1) throw new UsageError(`domxml-to-native: give one domain XML file (or - for stdin)`);
  const { argv } = runOptionsFromDomain(readInput(rest[0]!, 'domxml-to-native'));
  return `${argv.map(shellQuote).join(' ')}\n`;
}

/**
 * `wkvm create FILE.xml [OPTIONS...]`: the options to boot a domain with. Options after the file are
 * `wkvm run` options added to the domain's (a later one wins where an option takes one value), for
 * what a definition does not hold: -accel, -d, -s, -serial.
 */
export function createOptions(args: readonly string[]): RunOptions {
  const [file, ...extra] = args;
  if (file === undefined || file.startsWith('-') && file !== '-') throw new UsageError('create: give a domain XML file (wkvm create FILE.xml [wkvm run options])');
  const { argv } = runOptionsFromDomain(readInput(file, 'create'));
  return parseRunArgs([...argv.slice(1), ...extra]);
}
