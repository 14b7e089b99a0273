// qemu-img's command line is GNU getopt's: short options (`-f qcow2`, `-fqcow2`, flags bundled as
// `-qc`), long options (`--output=json`, `--output json`), options and operands in any order, and `--`
// ending the options. So `-1` is an unknown option, not a size, as in qemu-img.

import { ImgError } from './errors.js';

export interface OptionSpec {
  /** Short option letters: true when the option takes a value. */
  short: Record<string, boolean>;
  /** Long option names: true when the option takes a value. */
  long: Record<string, boolean>;
}

export interface ParsedOptions {
  /** Each option as given, in order (repeated options stay repeated, e.g. several -o). */
  options: Array<{ name: string; value: string | undefined }>;
  operands: string[];
}

export function getopt(argv: readonly string[], spec: OptionSpec): ParsedOptions {
  const options: ParsedOptions['options'] = [];
  const operands: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      operands.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const equals = arg.indexOf('=');
      const name = arg.slice(2, equals < 0 ? undefined : equals);
      const takesValue = spec.long[name];
      if (takesValue === undefined) throw new ImgError(`unrecognized option '${arg}'`);
      if (!takesValue) {
        if (equals >= 0) throw new ImgError(`option '--${name}' doesn't allow an argument`);
        options.push({ name, value: undefined });
        continue;
      }
      if (equals >= 0) {
        options.push({ name, value: arg.slice(equals + 1) });
      } else {
        if (i + 1 >= argv.length) throw new ImgError(`option '--${name}' requires an argument`);
        options.push({ name, value: argv[++i]! });
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      for (let at = 1; at < arg.length; at++) {
        const letter = arg[at]!;
        const takesValue = spec.short[letter];
        if (takesValue === undefined) throw new ImgError(`unrecognized option '-${letter}'`);
        if (!takesValue) {
          options.push({ name: letter, value: undefined });
          continue;
        }
        if (at + 1 < arg.length) {
          options.push({ name: letter, value: arg.slice(at + 1) });
        } else {
          if (i + 1 >= argv.length) throw new ImgError(`option requires an argument -- '${letter}'`);
          options.push({ name: letter, value: argv[++i]! });
        }
        break;
      }
      continue;
    }
    operands.push(arg);
  }
  return { options, operands };
}

/** The last value given for an option (qemu-img lets a later -f override an earlier one). */
export function lastValue(parsed: ParsedOptions, name: string): string | undefined {
  let value: string | undefined;
  for (const option of parsed.options) if (option.name === name) value = option.value;
  return value;
}

export function hasFlag(parsed: ParsedOptions, name: string): boolean {
  return parsed.options.some((option) => option.name === name);
}
