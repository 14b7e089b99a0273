#!/usr/bin/env node
// `npm start`: boots wkvm's default Linux guest to an interactive busybox shell.
//
// The guest (Image + initramfs.cpio.gz) is taken from the first of:
//   $WKVM_GUEST_DIR                      a folder you point at
//   guest-cache/                         built by `npm run guest:build` (scripts/guest/build.sh)
//   ../shared/guest/                     the prebuilt cache beside the checkout (CI, tests)
// Extra arguments go to `wkvm run` and replace the default of the same option, so
// `npm start -- -append "console=ttyS0 guest.mode=poweroff"` boots to power-off instead.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WKVM_BIN = path.join(REPO_ROOT, 'bin', 'wkvm.js');
const BUILD_OUTPUTS = ['dist/host/cli/main.js', 'build/core.wasm'];
const KERNEL_FILE = 'Image';
const INITRD_FILE = 'initramfs.cpio.gz';

class GuestNotFoundError extends Error {
  constructor(message, searched) {
    super(message);
    this.name = 'GuestNotFoundError';
    this.searched = searched;
  }
}

/** Where the guest may be, in order of preference. */
function guestCandidates(env) {
  const fromEnv = env.WKVM_GUEST_DIR;
  if (fromEnv) return [{ dir: path.resolve(fromEnv), origin: 'from WKVM_GUEST_DIR', required: true }];
  return [
    { dir: path.join(REPO_ROOT, 'guest-cache'), origin: 'built by npm run guest:build' },
    { dir: path.resolve(REPO_ROOT, '..', 'shared', 'guest'), origin: 'the prebuilt cache beside the checkout' },
  ];
}

function missingGuestFiles(dir) {
  return [KERNEL_FILE, INITRD_FILE].filter((name) => !existsSync(path.join(dir, name)));
}

function findGuest(env) {
  const candidates = guestCandidates(env);
  for (const candidate of candidates) {
    const missing = missingGuestFiles(candidate.dir);
    if (missing.length === 0) return candidate;
    if (candidate.required) {
      throw new GuestNotFoundError(
        `WKVM_GUEST_DIR=${candidate.dir} has no ${missing.join(' or ')} ` +
          `(a guest folder holds ${KERNEL_FILE} and ${INITRD_FILE}, as scripts/guest/build.sh writes them)`,
        [candidate.dir],
      );
    }
  }
  throw new GuestNotFoundError(
    'no Linux guest found to boot. Build it once with:\n' +
      '    sudo npm run guest:build\n' +
      '  It builds the kernel and busybox from Debian bookworm packages into guest-cache/\n' +
      '  (about 5 minutes on 2 cores the first time, plus the package download; root is needed\n' +
      '  for apt-get). Or point WKVM_GUEST_DIR at a folder holding Image and initramfs.cpio.gz.',
    candidates.map((c) => c.dir),
  );
}

function displayPath(dir) {
  const relative = path.relative(process.cwd(), dir);
  const shown = relative.length > 0 && relative.length < dir.length ? relative : dir;
  return shown.endsWith(path.sep) ? shown : shown + path.sep;
}

/** Option names as the CLI reads them: `--x` is `-x`, and `-machine` is `-M`. */
function optionName(arg) {
  const name = arg.replace(/^--?/, '');
  return name === 'machine' ? 'M' : name;
}

/** The default command line, minus every option the user gives again, then the user's own. */
function wkvmArguments(guestDir, extraArgs) {
  const defaults = [
    ['-M', 'virt'],
    ['-m', '256M'],
    ['-kernel', path.join(guestDir, KERNEL_FILE)],
    ['-initrd', path.join(guestDir, INITRD_FILE)],
    ['-append', 'console=ttyS0 guest.mode=shell'],
    ['-nographic'],
  ];
  const overridden = new Set(extraArgs.filter((arg) => arg.startsWith('-')).map(optionName));
  const kept = defaults.filter(([option]) => !overridden.has(optionName(option)));
  return ['run', ...kept.flat(), ...extraArgs];
}

/** Runs a child with the terminal handed over; resolves to its exit status (or signal). */
function runInherited(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: 'inherit' });
    // The child owns the terminal: a Ctrl-C that reaches both of us is the child's to act on.
    const ignore = () => {};
    process.on('SIGINT', ignore);
    process.on('SIGTERM', ignore);
    child.on('error', reject);
    child.on('exit', (status, signal) => {
      process.off('SIGINT', ignore);
      process.off('SIGTERM', ignore);
      resolve({ status, signal });
    });
  });
}

async function ensureBuilt() {
  const missing = BUILD_OUTPUTS.filter((file) => !existsSync(path.join(REPO_ROOT, file)));
  if (missing.length === 0) return true;
  process.stderr.write(`wkvm start: ${missing.join(' and ')} missing; running npm run build first\n`);
  // Under `npm start`, npm tells us how it was started; otherwise use npm from PATH.
  const npmCli = process.env.npm_execpath;
  const { status } = npmCli
    ? await runInherited(process.execPath, [npmCli, 'run', 'build', '--prefix', REPO_ROOT])
    : await runInherited('npm', ['run', 'build', '--prefix', REPO_ROOT]);
  if (status !== 0) {
    process.stderr.write('wkvm start: npm run build failed; fix the errors above, then run npm start again\n');
    return false;
  }
  return true;
}

async function main() {
  let guest;
  try {
    guest = findGuest(process.env);
  } catch (error) {
    if (!(error instanceof GuestNotFoundError)) throw error;
    process.stderr.write(`wkvm start: ${error.message}\n`);
    return 1;
  }
  if (!(await ensureBuilt())) return 1;

  const args = wkvmArguments(guest.dir, process.argv.slice(2));
  const quitHint = process.stdin.isTTY ? "Ctrl-A x quits, 'exit' powers the guest off" : "'exit' in the guest shell powers it off";
  process.stderr.write(`wkvm start: booting ${displayPath(guest.dir)} (${guest.origin}); ${quitHint}\n`);
  // Built by now: the options that leave this machine's cores to the VMM's threads (host/cli/node_flags.ts).
  const { vmmNodeOptions } = await import(pathToFileURL(path.join(REPO_ROOT, 'dist/host/cli/node_flags.js')).href);
  const { status, signal } = await runInherited(process.execPath, [...vmmNodeOptions(), WKVM_BIN, ...args]);
  if (signal) {
    // Die the same way the VMM did, so callers see the real cause.
    process.kill(process.pid, signal);
    return 128;
  }
  return status ?? 1;
}

main().then(
  (status) => {
    process.exitCode = status;
  },
  (error) => {
    process.stderr.write(`wkvm start: ${error?.stack ?? error}\n`);
    process.exitCode = 70;
  },
);
