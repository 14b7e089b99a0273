// Driving a guest shell over a piped console, against a stand-in guest: a Node child that prints the
// shared guest's markers and prompt, echoes each typed line as a terminal would, and runs it with /bin/sh.
import { describe, expect, it } from 'vitest';
import { ConsoleSession, GUEST_PROMPT, runTimedShellCommand, shellMarker } from '../lib/console_session.js';
import { BenchGuestError } from '../lib/errors.js';

const FAKE_GUEST = `
const { execSync } = require('node:child_process');
const prompt = ${JSON.stringify(GUEST_PROMPT)};
process.stdout.write('booting\\r\\nGUEST-READY\\r\\n' + prompt);
let pending = '';
process.stdin.on('data', (chunk) => {
  // Echo as typed, like a terminal; run on each newline.
  process.stdout.write(chunk.toString().replace(/\\n/g, '\\r\\n'));
  pending += chunk.toString();
  let newline;
  while ((newline = pending.indexOf('\\n')) >= 0) {
    const line = pending.slice(0, newline);
    pending = pending.slice(newline + 1);
    if (line === 'exit') { process.stdout.write('GUEST-POWEROFF\\r\\n'); process.exit(0); }
    if (line === 'crash') process.exit(3);
    let out = '';
    try { out = execSync(line, { shell: '/bin/sh', encoding: 'utf8' }); } catch (e) { out = String(e.stdout ?? ''); }
    process.stdout.write(out.replace(/\\n/g, '\\r\\n') + prompt);
  }
});
`;

function fakeGuest(timeoutMs = 20_000): ConsoleSession {
  return new ConsoleSession('fake guest', process.execPath, ['-e', FAKE_GUEST], timeoutMs);
}

describe('shellMarker', () => {
  it('prints a text the typed command does not contain', () => {
    const marker = shellMarker('seq-write');
    expect(marker.printed).toBe('WKVM-MARK-seq-write-42');
    expect(marker.command).not.toContain(marker.printed);
  });

  it('refuses names that the shell would interpret', () => {
    expect(() => shellMarker('a b')).toThrow(/letters, digits/);
    expect(() => shellMarker('$(x)')).toThrow(/letters, digits/);
  });
});

describe('ConsoleSession', () => {
  it('waits for the prompt, runs commands between markers, and sees the guest exit', async () => {
    const session = fakeGuest();
    try {
      await session.waitFor('GUEST-READY');
      await session.waitFor(GUEST_PROMPT);
      const first = await runTimedShellCommand(session, 'first', 'echo one; echo two');
      expect(first.output.replace(/\r/g, '').trim()).toBe('one\ntwo');
      expect(first.hostMs).toBeGreaterThanOrEqual(0);
      // A second command with the same output: the search resumes after the first one's markers.
      const second = await runTimedShellCommand(session, 'second', 'echo one');
      expect(second.output.replace(/\r/g, '').trim()).toBe('one');
      session.send('exit\n');
      const exit = await session.finished(10_000);
      expect(exit.exitCode).toBe(0);
      expect(session.text).toContain('GUEST-POWEROFF');
    } finally {
      await session.kill();
    }
  });

  it('does not take a marker echoed with the typed line for its output', async () => {
    const session = fakeGuest();
    try {
      await session.waitFor(GUEST_PROMPT);
      const marker = shellMarker('late');
      // Typed but not yet entered: the terminal has echoed the command, which must not count as its output.
      session.send(marker.command);
      let matched = false;
      const waiting = session.waitFor(marker.printed).then(() => { matched = true; });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(matched).toBe(false);
      expect(session.text).toContain('WKVM-MARK-late-$((40+2))');
      session.send('\n');
      await waiting;
      expect(matched).toBe(true);
    } finally {
      await session.kill();
    }
  });

  it('fails a wait when the guest exits first, with its output', async () => {
    const session = fakeGuest();
    await session.waitFor(GUEST_PROMPT);
    session.send('crash\n');
    await expect(session.waitFor('never printed')).rejects.toThrow(/fake guest: exited \(status 3\) before printing "never printed"[\s\S]*GUEST-READY/);
  });

  it('kills a guest that outlives its timeout and fails the wait', async () => {
    const session = fakeGuest(500);
    await expect(session.waitFor('never printed')).rejects.toThrow(BenchGuestError);
    const exit = await session.finished(5000);
    expect(exit.signal).toBe('SIGKILL');
  });

  it('reports a command that cannot start', async () => {
    const session = new ConsoleSession('missing vmm', '/nonexistent/qemu', [], 5000);
    await expect(session.waitFor(GUEST_PROMPT)).rejects.toThrow(/cannot start \/nonexistent\/qemu/);
  });
});
