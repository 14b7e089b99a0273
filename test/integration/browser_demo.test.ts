// `npm run serve:browser`'s page, as a user meets it: scripts/serve-browser.mjs serves it, headless
// Chromium opens it, and keys typed into its terminal (DevTools protocol key events) reach the guest's
// shell in the worker; `exit` powers the guest off and the page says so.
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { REPO, SHARED_GUEST } from '../helpers/wkvm_cli.js';

const CHROMIUM = ['chromium', 'chromium-browser', 'google-chrome'].find((name) => spawnSync('sh', ['-c', `command -v ${name}`]).status === 0);

/** Starts the demo server on a free port (with `extra` arguments); resolves with its URL and a stop function. */
async function startServer(extra: string[] = []): Promise<{ url: string; stop: () => void }> {
  const server = spawn(process.execPath, [`${REPO}scripts/serve-browser.mjs`, '--port', '0', ...extra], {
    env: { ...process.env, WKVM_GUEST_DIR: SHARED_GUEST }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(output);
      if (match) resolve(match[1]!);
    };
    server.stdout.on('data', onData);
    server.stderr.on('data', onData);
    server.once('exit', (code) => reject(new Error(`serve-browser exited (${code}): ${output}`)));
  });
  return { url, stop: () => server.kill('SIGKILL') };
}

/** Opens `url` in headless Chromium and types `lines` at the guest's prompts; returns the page's terminal and status. */
function typeAtPrompts(url: string, lines: string[]): { terminal: string; status: string } {
  // Node 20 has its WebSocket client behind a flag; later versions have it on.
  const flags = typeof (globalThis as { WebSocket?: unknown }).WebSocket === 'function' ? [] : ['--experimental-websocket', '--no-warnings'];
  const driver = spawnSync(process.execPath, [...flags, `${REPO}test/helpers/cdp_type.mjs`, CHROMIUM!, url,
    'root@rvguest:/# ', 'powered off', ...lines], { encoding: 'utf8', timeout: 120_000 });
  expect(driver.stderr).toBe('');
  return JSON.parse(driver.stdout) as { terminal: string; status: string };
}

describe.skipIf(CHROMIUM === undefined || !existsSync(`${SHARED_GUEST}Image`))('npm run serve:browser', () => {
  it('boots the guest in the page\'s worker and takes typed commands at its shell', async () => {
    const { url, stop } = await startServer();
    try {
      const { terminal, status } = typeAtPrompts(url, ['echo WKVM-$((40+2))', 'exit']);
      expect(terminal).toContain('GUEST-READY');
      // The typed line came back as the terminal echoed it, and the shell ran it.
      expect(terminal).toContain('root@rvguest:/# echo WKVM-$((40+2))\nWKVM-42\n');
      expect(status).toMatch(/^powered off \(status 0\)/);
    } finally {
      stop();
    }
  }, 150_000);

  it('gives the guest the --drive image as /dev/vda, which it mounts and reads', async () => {
    const { url, stop } = await startServer(['--drive', `${SHARED_GUEST}rootfs.ext4`]);
    try {
      const { terminal, status } = typeAtPrompts(url, ['mount -o ro /dev/vda /mnt && cat /mnt/hello.txt && umount /mnt', 'exit']);
      expect(terminal).toContain('Hello from the rvguest ext4 disk image!');
      expect(status).toMatch(/^powered off \(status 0\)/);
    } finally {
      stop();
    }
  }, 150_000);
});
