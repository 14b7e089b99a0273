#!/usr/bin/env node
// `npm run serve:browser`: serves a page that boots the default Linux guest in your browser — the same
// core and machine model as `npm start`, in a Web Worker — with a terminal you can type into.
//
//   npm run build && npm run serve:browser [-- --port 8080] [-- --drive disk.img]   then open http://127.0.0.1:8080/
//
// The guest files come from $WKVM_GUEST_DIR, guest-cache/ or ../shared/guest/ (as for `npm start`).
// --drive gives the guest a virtio disk (/dev/vda), raw or qcow2: the page fetches the image and keeps
// it in memory, so what the guest writes stays in the tab — the file is only read.
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

function parseArgs(argv) {
  const options = { port: 8080, drive: null };
  for (let i = 0; i < argv.length; i += 2) {
    const value = argv[i + 1];
    if (argv[i] === '--port') {
      options.port = Number(value);
      if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) throw new Error(`--port ${value ?? ''}: expected a port number`);
    } else if (argv[i] === '--drive') {
      if (value === undefined || !statSync(value, { throwIfNoEntry: false })?.isFile()) throw new Error(`--drive ${value ?? ''}: not a file`);
      options.drive = path.resolve(value);
    } else {
      throw new Error(`${argv[i]}: unknown option (serve-browser knows --port N and --drive FILE)`);
    }
  }
  return options;
}

/** The file a request path names, or null: the built host and core, this page, the guest's files, the disk. */
function resolveFile(urlPath, guest, drive) {
  const clean = path.posix.normalize(decodeURIComponent(urlPath)).replace(/^\/+/, '');
  if (clean === '' || clean === 'index.html') return path.join(REPO_ROOT, 'scripts', 'browser', 'index.html');
  if (clean === 'disk') return drive;
  if (clean.startsWith('guest/') && GUEST_FILES.includes(clean.slice(6))) return path.join(guest, clean.slice(6));
  if (['dist/', 'build/', 'scripts/browser/'].some((prefix) => clean.startsWith(prefix)) && !clean.includes('..')) return path.join(REPO_ROOT, clean);
  return null;
}

function main() {
  for (const built of ['dist/host/vmm/virt_machine.js', 'build/core.wasm']) {
    if (!existsSync(path.join(REPO_ROOT, built))) throw new Error(`${built} is missing: run npm run build first`);
  }
  const guest = guestDir();
  const { port, drive } = parseArgs(process.argv.slice(2));
  const server = createServer((request, response) => {
    const urlPath = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (urlPath === '/config.json') {
      response.writeHead(200, { 'Content-Type': 'application/json', 'Cross-Origin-Resource-Policy': 'same-origin' });
      response.end(JSON.stringify({ disk: drive === null ? null : path.basename(drive) }));
      return;
    }
    const file = resolveFile(urlPath, guest, drive);
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
    const disk = drive === null ? '' : `, disk ${drive} as /dev/vda`;
    console.log(`wkvm: serving Linux in the browser at http://127.0.0.1:${server.address().port}/ (guest from ${guest}${disk}); Ctrl-C stops`);
  });
}

try {
  main();
} catch (error) {
  console.error(`serve-browser: ${error.message}`);
  process.exit(1);
}
