// The core, the KVM-style API and the machine model run unchanged in a browser: headless Chromium loads
// test/browser/index.html, which runs a bare-metal program through Hypervisor/Vm/Vcpu — interpreted,
// then with every block translated — and test/browser/linux.html, which boots the shared Linux guest on
// VirtMachine in a Web Worker with its disk image in memory; each page posts its results back here.
// Skips where no Chromium is installed (CI installs Debian's, and tools.test.ts checks that it did).
import { afterAll, describe, it, expect } from 'vitest';
import { createServer, type Server } from 'node:http';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { REPO, SHARED_GUEST } from '../helpers/wkvm_cli.js';
import { qemuImg, qemuImgStatus } from '../unit/block/helpers.js';

const CHROMIUM = ['chromium', 'chromium-browser', 'google-chrome'].find((name) => spawnSync('sh', ['-c', `command -v ${name}`]).status === 0);
/** What the page may load: the built host and core, the page itself, the guest program. */
const SERVED = ['dist/', 'build/', 'test/browser/', 'test/guest/hello/'];
/** The shared Linux guest's files, served as /guest/NAME. */
const GUEST_FILES = ['Image', 'initramfs.cpio.gz'];
/** The guest's disk as a compressed qcow2 image, made for the run by qemu-img and served as /guest/rootfs.qcow2. */
const scratch = mkdtempSync(join(tmpdir(), 'wkvm-browser-'));
const ROOTFS_QCOW2 = join(scratch, 'rootfs.qcow2');
/** Where the page sends the image back after the guest wrote to it (POST /upload/disk). */
const UPLOADED_QCOW2 = join(scratch, 'uploaded.qcow2');
const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.elf': 'application/octet-stream' };

interface PageResult {
  output?: string;
  status?: number | string;
  error?: string;
  crossOriginIsolated?: boolean;
  jit?: { blocks: number; failed: number; firstError: string | null };
  translated?: PageResult;
  // linux.html
  outcome?: { kind: string; status?: number };
  diskTextInImage?: boolean;
  diskGrewBy?: number;
  jitCompileError?: string | null;
  seconds?: number;
  shell?: { output: string; outcome: { kind: string; status?: number }; typed: boolean };
}

/** Serves the repository's allowed files with the headers that make the page cross-origin isolated. */
function serve(onResult: (result: PageResult) => void): Promise<{ server: Server; port: number }> {
  const server = createServer((request, response) => {
    const path = normalize(decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname)).replace(/^\/+/, '');
    if (request.method === 'POST' && path === 'upload/disk') {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        writeFileSync(UPLOADED_QCOW2, Buffer.concat(chunks));
        response.end('ok');
      });
      return;
    }
    if (request.method === 'POST' && path === 'result') {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        response.end('ok');
        onResult(JSON.parse(body) as PageResult);
      });
      return;
    }
    const guestName = path.startsWith('guest/') ? path.slice('guest/'.length) : null;
    const guestFile = guestName !== null && (GUEST_FILES.includes(guestName) || guestName === 'rootfs.qcow2');
    const file = guestName === 'rootfs.qcow2' ? ROOTFS_QCOW2 : guestFile ? join(SHARED_GUEST, guestName!) : join(REPO, path);
    if (!(guestFile || SERVED.some((prefix) => path.startsWith(prefix))) || !statSync(file, { throwIfNoEntry: false })?.isFile()) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, {
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      // SharedArrayBuffer (the core's shared memory) needs a cross-origin isolated page.
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
    });
    response.end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port })));
}

/**
 * Opens `page` in headless Chromium and returns what it posts to /result (rejects after `timeoutMs`),
 * once it has checked that the page was cross-origin isolated and reported no error.
 */
async function runPage(page: string, timeoutMs: number): Promise<PageResult> {
  let deliver!: (result: PageResult) => void;
  const delivered = new Promise<PageResult>((resolve) => (deliver = resolve));
  const { server, port } = await serve((result) => deliver(result));
  const profile = mkdtempSync(join(tmpdir(), 'wkvm-chromium-'));
  const browser = spawn(CHROMIUM!, ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic',
    `--user-data-dir=${profile}`, `http://127.0.0.1:${port}/${page}`], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  const exited = new Promise<void>((resolve) => browser.once('exit', () => resolve()));
  let stderr = '';
  browser.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no result from ${page} in ${timeoutMs / 1000} s; chromium said:\n${stderr.slice(-2000)}`)), timeoutMs);
    });
    const result = await Promise.race([delivered, timeout]);
    expect(result.error).toBeUndefined();
    expect(result.crossOriginIsolated).toBe(true);
    return result;
  } finally {
    clearTimeout(timer);
    // Chromium's helper processes share its process group and keep writing the profile until they die:
    // kill the whole group and wait for the browser to go before removing the profile.
    try {
      process.kill(-browser.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
    server.close();
    rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  }
}

describe.skipIf(CHROMIUM === undefined)('in a browser (headless Chromium)', () => {
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('runs a bare-metal program through the KVM-style API with the unchanged core', async () => {
    const result = await runPage('test/browser/index.html', 60_000);
    expect(result.output).toContain('Hello from wkvm bare metal!');
    expect(result.output).toContain('hello: done');
    expect(result.status).toBe(0);
    // The same program with every block translated: the page compiled modules and ran them.
    expect(result.translated?.output).toBe(result.output);
    expect(result.translated?.status).toBe(0);
    expect(result.translated?.jit?.firstError).toBeNull();
    expect(result.translated?.jit?.failed).toBe(0);
    expect(result.translated?.jit?.blocks).toBeGreaterThan(0);
  }, 90_000);

  it('boots the shared Linux guest on the virt machine model in a worker, with a qcow2 disk held in memory, console input and -smp 2', async () => {
    // Compressed: the page reads those clusters with the plain-TypeScript inflater (no node:zlib there).
    qemuImg('convert', '-c', '-f', 'raw', '-O', 'qcow2', join(SHARED_GUEST, 'rootfs.ext4'), ROOTFS_QCOW2);
    const result = await runPage('test/browser/linux.html', 150_000);
    expect(result.output).toContain('GUEST-READY');
    // guest.mode=disk: mounted the ext4 image on virtio-blk, wrote, synced, remounted and read back.
    expect(result.output).toContain('guest: hello.txt: Hello from the rvguest ext4 disk image!');
    expect(result.output).toContain('GUEST-DISK-OK');
    expect(result.outcome).toEqual({ kind: 'poweroff', status: 0 });
    // The written file reached the image bytes in the page's memory (a cluster qcow2 allocated for it).
    expect(result.diskTextInImage).toBe(true);
    expect(result.diskGrewBy).toBeGreaterThan(0);
    // The image the page wrote is one QEMU's tool finds consistent (refcounts, L1/L2, no leaks).
    const check = qemuImgStatus('check', UPLOADED_QCOW2);
    expect(check.output).toMatch(/No errors were found/);
    expect(check.status).toBe(0);
    // The block translator compiled and ran modules in the worker.
    expect(result.jitCompileError).toBeNull();
    expect(result.jit?.failed).toBe(0);
    expect(result.jit?.blocks).toBeGreaterThan(100);
    // A second boot, -smp 2 (a Web Worker per hart), to the shell prompt took typed input and ran it:
    // the guest counts two CPUs; exit powered off.
    expect(result.shell?.output).toContain('cpus=2');
    expect(result.shell?.typed).toBe(true);
    expect(result.shell?.output).toMatch(/WKVM-42 2\r?\n/);
    expect(result.shell?.outcome).toEqual({ kind: 'poweroff', status: 0 });
  }, 180_000);
});
