// `wkvm img`: the project's qemu-img, for raw and qcow2 images. Subcommands, options, output and exit
// statuses follow qemu-img 7.2's; every failure is one line on stderr, never a stack trace.

import { DiskImageError, DiskIoError } from '../../block/errors.js';
import { runCheck } from './check.js';
import { runConvert, runResize } from './copy.js';
import { runCreate } from './create.js';
import { ImgError } from './errors.js';
import { runInfo } from './info.js';

export const IMG_USAGE = `usage: wkvm img COMMAND [OPTIONS] ...   (qemu-img's commands and options, for raw and qcow2 images)
  create [-q] [-f raw|qcow2] [-b BACKING -F raw|qcow2] [-u] [-o OPTIONS] FILE [SIZE]
         OPTIONS: cluster_size=N, compat=0.10|1.1, backing_file=F, backing_fmt=FMT, lazy_refcounts=on|off, refcount_bits=N
  info [-f FMT] [--output=human|json] [--backing-chain] FILE
  check [-q] [-f FMT] [--output=human|json] FILE     (exit 0 clean, 1 check failed, 2 corruptions, 3 leaks only)
  convert [-f FMT] [-O raw|qcow2] [-c] [-o OPTIONS] INPUT OUTPUT
  resize [-q] [-f FMT] [--shrink] FILE [+|-]SIZE       (qcow2 grows only)
SIZE: bytes, or with a suffix k, M, G, T, P, E (powers of 1024): 512, 10M, 1.5G.`;

const COMMANDS: Record<string, (argv: readonly string[]) => Promise<number>> = {
  create: runCreate,
  info: runInfo,
  check: runCheck,
  convert: runConvert,
  resize: runResize,
};

export async function runImg(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === 'help' || command === '-h' || command === '--help') {
      process.stdout.write(`${IMG_USAGE}\n`);
      return 0;
    }
    if (command === undefined) throw new ImgError('Not enough arguments (try wkvm img --help)');
    const run = COMMANDS[command];
    if (run === undefined) throw new ImgError(`Command not found: ${command} (try wkvm img --help)`);
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(`${IMG_USAGE}\n`);
      return 0;
    }
    return await run(rest);
  } catch (error) {
    if (error instanceof ImgError) {
      process.stderr.write(`wkvm img: ${error.message}\n`);
      return error.status;
    }
    if (error instanceof DiskImageError || error instanceof DiskIoError) {
      process.stderr.write(`wkvm img: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}
