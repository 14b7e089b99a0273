#!/usr/bin/env node
// `npm run serve:browser`: serves a page that boots the default Linux guest in your browser — the same
// core and machine model as `npm start`, in a Web Worker — with a terminal you can type into.
//
//   npm run build && npm run serve:browser [-- --port 8080]      then open http://127.0.0.1:8080/
//
// The guest files come from $WKVM_GUEST_DIR, guest-cache/ or ../shared/guest/ (as for `npm start`).
// Pages get the COOP/COEP headers that make them cross-origin isolated: the core's memory is shared.
import { createServer } from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const GUEST_FILES = ['Image', 'initramfs.cpio.gz'];
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };

function guestDir() {
  const candidates = process.env.WKVM_GUEST_DIR
    ? [path.resolve(process.env.WKVM_GUEST_DIR)]
    : [path.join(REPO_ROOT, 'guest-cache'), path.resolve(REPO_ROOT, '..', 'shared', 'guest')];
  const found = candidates.find((dir) => GUEST_FILES.every((name) => existsSync(path.join(dir, name))));
  if (found === undefined) throw new Error(`no guest (${GUEST_FILES.join(', ')}) in ${candidates.join(' or ')}; build one with npm run guest:build`);
  return found;
}

function parsePort(argv) {
  const at = argv.indexOf('--port');
  if (at < 0) return 8080;
  const port = Number(argv[at + 1]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port ${argv[at + 1] ?? ''}: expected a port number`);
  return port;
}

/** The file a request path names, or null: the built host and core, this page, the guest's two files. */
function resolveFile(urlPath, guest) {
  const clean = path.posix.normalize(decodeURIComponent(urlPath)).replace(/^\/+/, '');
  if (clean === '' || clean === 'index.html') return path.join(REPO_ROOT, 'scripts', 'browser', 'index.html');
  if (clean.startsWith('guest/') && GUEST_FILES.includes(clean.slice(6))) return path.join(guest, clean.slice(6));
  if (['dist/', 'build/', 'scripts/browser/'].some((prefix) => clean.startsWith(prefix)) && !clean.includes('..')) return path.join(REPO_ROOT, clean);
  return null;
}

function main() {
  for (const built of ['dist/host/vmm/virt_machine.js', 'build/core.wasm']) {
    if (!existsSync(path.join(REPO_ROOT, built))) throw new Error(`${built} is missing: run npm run build first`);
  }
  const guest = guestDir();
  const port = parsePort(process.argv.slice(2));
  const server = createServer((request, response) => {
    const file = resolveFile(new URL(request.url ?? '/', 'http://localhost').pathname, guest);
    if (file === null || !statSync(file, { throwIfNoEntry: false })?.isFile()) {
      response.writeHead(404).end('not found');
      return;
    }
    response.writeHead(200, {
      'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
    });
    response.end(readFileSync(file));
  });
  server.listen(port, '127.0.0.1', () => {
    console.log(`wkvm: serving Linux in the browser at http://127.0.0.1:${server.address().port}/ (guest from ${guest}); Ctrl-C stops`);
  });
}

try {
  main();
} catch (error) {
  console.error(`serve-browser: ${error.message}`);
  process.exit(1);
}
