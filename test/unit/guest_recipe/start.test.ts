// `npm start` (scripts/start.mjs): which guest it picks, that it boots it to a shell, and that
// extra arguments override its defaults. The guest itself is the prebuilt ../shared/guest.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runScript } from './run_script.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const START = path.join(REPO, 'scripts', 'start.mjs');
const SHARED_GUEST = path.resolve(REPO, '..', 'shared', 'guest');
const POWEROFF = ['-append', 'console=ttyS0 guest.mode=poweroff'];
const PROMPT = 'root@rvguest:/# ';

function startScript(args: string[], cwd: string, env: Record<string, string | undefined> = {}, script = START) {
  return runScript(process.execPath, [script, ...args], { cwd, env: { WKVM_GUEST_DIR: undefined, ...env } });
}

describe('npm start in this checkout', () => {
  it('has a guest to boot (guest-cache/ or ../shared/guest/)', () => {
    const guestCache = path.join(REPO, 'guest-cache', 'Image');
    expect(existsSync(guestCache) || existsSync(path.join(SHARED_GUEST, 'Image'))).toBe(true);
  });

  it('boots the default guest to a shell that answers through piped stdin', async () => {
    const result = await runScript(process.execPath, [START], {
      cwd: REPO,
      env: { WKVM_GUEST_DIR: undefined },
      input: [
        { after: PROMPT, send: 'uname -a\n' },
        { after: 'GNU/Linux', send: 'echo START-$((6*7))\n' },
        { after: 'START-42', send: 'exit\n' },
      ],
    });
    expect(result.stderr).toMatch(/^wkvm start: booting \S+ \(/);
    expect(result.stdout).toContain('guest.mode=shell');
    expect(result.stdout).toMatch(/Linux rvguest 6\.1\.\d+ .* riscv64 GNU\/Linux/);
    expect(result.stdout).toContain('START-42');
    expect(result.stdout).toContain('GUEST-POWEROFF');
    expect(result.status, result.stderr).toBe(0);
  });

  it('lets extra arguments replace the default -append', async () => {
    const result = await startScript(POWEROFF, REPO);
    expect(result.stdout).toContain('Kernel command line: console=ttyS0 guest.mode=poweroff');
    expect(result.stdout).not.toContain('guest.mode=shell');
    expect(result.stdout).toContain('GUEST-POWEROFF');
    expect(result.status, result.stderr).toBe(0);
  });

  it('passes wkvm errors through with its status', async () => {
    const result = await startScript(['-m', 'lots'], REPO);
    expect(result.stderr).toMatch(/-m lots/);
    expect(result.status).not.toBe(0);
    expect(result.stdout).not.toContain('GUEST-READY');
  });
});

describe('npm start guest lookup (a copy of start.mjs in a scratch checkout)', () => {
  // scratch/checkout/{scripts/start.mjs, bin, dist, build} and, per test, guest-cache/ and
  // scratch/shared/guest/. bin/wkvm.js resolves to the real checkout through its symlink.
  let scratch: string;
  let checkout: string;
  let script: string;

  const linkGuest = (dir: string) => {
    mkdirSync(dir, { recursive: true });
    for (const file of ['Image', 'initramfs.cpio.gz']) symlinkSync(path.join(SHARED_GUEST, file), path.join(dir, file));
  };
  // A guest wkvm refuses at once, naming the file: its initramfs is a folder.
  const brokenGuest = (dir: string) => {
    mkdirSync(path.join(dir, 'initramfs.cpio.gz'), { recursive: true });
    symlinkSync(path.join(SHARED_GUEST, 'Image'), path.join(dir, 'Image'));
  };

  beforeEach(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'wkvm-start-'));
    checkout = path.join(scratch, 'checkout');
    mkdirSync(path.join(checkout, 'scripts'), { recursive: true });
    script = path.join(checkout, 'scripts', 'start.mjs');
    copyFileSync(START, script);
    for (const dir of ['bin', 'dist', 'build']) symlinkSync(path.join(REPO, dir), path.join(checkout, dir));
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  it('without any guest, says how to build one and exits non-zero', async () => {
    const result = await startScript([], checkout, {}, script);
    expect(result.stderr).toContain('no Linux guest found');
    expect(result.stderr).toContain('sudo npm run guest:build');
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
  });

  it('prefers guest-cache/ over ../shared/guest/', async () => {
    brokenGuest(path.join(checkout, 'guest-cache'));
    linkGuest(path.join(scratch, 'shared', 'guest'));
    const result = await startScript(POWEROFF, checkout, {}, script);
    expect(result.stderr).toContain('booting guest-cache/');
    expect(result.stderr).toContain(path.join(checkout, 'guest-cache', 'initramfs.cpio.gz'));
    expect(result.status).not.toBe(0);
    expect(result.stdout).not.toContain('GUEST-READY');
  });

  it('falls back to ../shared/guest/ and boots it', async () => {
    linkGuest(path.join(scratch, 'shared', 'guest'));
    const result = await startScript(POWEROFF, checkout, {}, script);
    expect(result.stderr).toContain(`booting ${path.join('..', 'shared', 'guest')}${path.sep}`);
    expect(result.stdout).toContain('GUEST-POWEROFF');
    expect(result.status, result.stderr).toBe(0);
  });

  it('prefers WKVM_GUEST_DIR over both caches', async () => {
    brokenGuest(path.join(checkout, 'guest-cache'));
    brokenGuest(path.join(scratch, 'shared', 'guest'));
    const chosen = path.join(scratch, 'chosen');
    linkGuest(chosen);
    const result = await startScript(POWEROFF, checkout, { WKVM_GUEST_DIR: chosen }, script);
    expect(result.stdout).toContain('GUEST-POWEROFF');
    expect(result.status, result.stderr).toBe(0);
  });

  it('rejects a WKVM_GUEST_DIR without a guest instead of falling back', async () => {
    linkGuest(path.join(checkout, 'guest-cache'));
    const empty = path.join(scratch, 'empty');
    mkdirSync(empty);
    const result = await startScript(POWEROFF, checkout, { WKVM_GUEST_DIR: empty }, script);
    expect(result.stderr).toContain(`WKVM_GUEST_DIR=${empty} has no Image or initramfs.cpio.gz`);
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
  });
});
