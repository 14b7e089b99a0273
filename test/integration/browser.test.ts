// The core and the KVM-style API run unchanged in a browser: headless Chromium loads test/browser/,
// which runs a bare-metal program through Hypervisor/Vm/Vcpu — interpreted, then with every block
// translated — and posts its console output back here.
// Skips where no Chromium is installed (CI installs Debian's, and tools.test.ts checks that it did).
import { describe, it, expect } from 'vitest';
import { createServer, type Server } from 'node:http';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { REPO } from '../helpers/wkvm_cli.js';

const CHROMIUM = ['chromium', 'chromium-browser', 'google-chrome'].find((name) => spawnSync('sh', ['-c', `command -v ${name}`]).status === 0);
/** What the page may load: the built host and core, the page itself, the guest program. */
const SERVED = ['dist/', 'build/', 'test/browser/', 'test/guest/hello/'];
const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.elf': 'application/octet-stream' };

interface PageResult {
  output?: string;
  status?: number | string;
  error?: string;
  crossOriginIsolated?: boolean;
  jit?: { blocks: number; failed: number; firstError: string | null };
  translated?: PageResult;
}

/** Serves the repository's allowed files with the headers that make the page cross-origin isolated. */
function serve(onResult: (result: PageResult) => void): Promise<{ server: Server; port: number }> {
  const server = createServer((request, response) => {
    const path = normalize(decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname)).replace(/^\/+/, '');
    if (request.method === 'POST' && path === 'result') {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        response.end('ok');
        onResult(JSON.parse(body) as PageResult);
      });
      return;
    }
    const file = join(REPO, path);
    if (!SERVED.some((prefix) => path.startsWith(prefix)) || !statSync(file, { throwIfNoEntry: false })?.isFile()) {
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

describe.skipIf(CHROMIUM === undefined)('in a browser (headless Chromium)', () => {
  it('runs a bare-metal program through the KVM-style API with the unchanged core', async () => {
    let deliver!: (result: PageResult) => void;
    const delivered = new Promise<PageResult>((resolve) => (deliver = resolve));
    const { server, port } = await serve((result) => deliver(result));
    const profile = mkdtempSync(join(tmpdir(), 'wkvm-chromium-'));
    const browser = spawn(CHROMIUM!, ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic',
      `--user-data-dir=${profile}`, `http://127.0.0.1:${port}/test/browser/index.html`], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    const exited = new Promise<void>((resolve) => browser.once('exit', () => resolve()));
    let stderr = '';
    browser.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no result from the page in 60 s; chromium said:\n${stderr.slice(-2000)}`)), 60_000));
      const result = await Promise.race([delivered, timeout]);
      expect(result.error).toBeUndefined();
      expect(result.crossOriginIsolated).toBe(true);
      expect(result.output).toContain('Hello from wkvm bare metal!');
      expect(result.output).toContain('hello: done');
      expect(result.status).toBe(0);
      // The same program with every block translated: the page compiled modules and ran them.
      expect(result.translated?.output).toBe(result.output);
      expect(result.translated?.status).toBe(0);
      expect(result.translated?.jit?.firstError).toBeNull();
      expect(result.translated?.jit?.failed).toBe(0);
      expect(result.translated?.jit?.blocks).toBeGreaterThan(0);
    } finally {
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
  }, 90_000);
});
