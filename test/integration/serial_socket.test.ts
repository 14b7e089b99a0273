// -serial on a socket (QEMU's tcp:/unix: ...,server=on): the shared guest's console reached through a
// client of the socket, which types into its shell and sees the output; with wait (the default) the guest
// starts only once the client is there.
import { describe, it, expect } from 'vitest';
import { existsSync, mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runWkvm, SHARED_GUEST } from '../helpers/wkvm_cli.js';

const haveGuest = existsSync(`${SHARED_GUEST}Image`);

/** Connects to `path` (retrying until the VMM listens), types `command` at the shell, then powers the guest off. */
function shellOverSocket(path: string, command: string, answer: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 60_000;
    const attempt = () => {
      const socket = connect(path);
      let output = '';
      let typed = false;
      let off = false;
      socket.on('error', () => {
        if (output === '' && Date.now() < deadline) setTimeout(attempt, 100);
        else if (output === '') reject(new Error(`no connection to ${path}`));
      });
      socket.on('data', (bytes) => {
        output += bytes.toString('latin1');
        if (!typed && output.includes('# ')) {
          typed = true;
          socket.write(`${command}\n`);
        }
        if (typed && !off && answer.test(output)) {
          off = true;
          socket.write('poweroff -f\n');
        }
      });
      socket.on('close', () => {
        if (output !== '') resolve(output);
      });
    };
    attempt();
  });
}

describe.skipIf(!haveGuest)('-serial unix:PATH,server=on', () => {
  it('is the guest console for one client: it waits for it, takes its typing and shows it the output', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'wkvm-serial-')), 'console.sock');
    const vmm = runWkvm(['run', '-m', '256M', '-kernel', `${SHARED_GUEST}Image`, '-initrd', `${SHARED_GUEST}initramfs.cpio.gz`,
      '-append', 'console=ttyS0 guest.mode=shell', '-serial', `unix:${path},server=on`], { timeoutMs: 90_000 });
    const console = await shellOverSocket(path, 'echo $((6 * 7))-FROM-SOCKET', /42-FROM-SOCKET\r?\n/);
    const result = await vmm;
    expect(result.stderr).toContain(`waiting for connection on unix:${path},server=on`);
    expect(console).toContain('GUEST-READY'); // nothing was lost before the client came: the guest waited
    expect(console).toMatch(/42-FROM-SOCKET\r?\n/);
    expect(result.stdout).toBe(''); // the console is the socket's, not stdio's
    expect(result.status, result.stderr).toBe(0);
  }, 120_000);

  it('refuses a socket it would have to connect out to, and options it does not have', async () => {
    for (const [value, message] of [['tcp:127.0.0.1:4444', /does not connect out: add server=on/], ['tcp::4444,server=on,telnet=on', /'telnet=on' is not supported/]] as const) {
      const result = await runWkvm(['run', '-kernel', 'test/guest/hello/hello.elf', '-serial', value]);
      expect(result.status).not.toBe(0);
      expect(result.stderr).toMatch(message);
    }
  });
});
