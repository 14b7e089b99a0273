// Drives a page in headless Chromium over the DevTools protocol, as a user at a terminal page would:
// waits until the page's #terminal text ends with PROMPT, types each LINE (keyDown events, Enter at the
// end), waits for the next prompt (the last line: for the #status text to contain DONE), and prints a
// JSON report { terminal, status } on stdout. Needs Node's WebSocket client:
//   node --experimental-websocket cdp_type.mjs CHROMIUM URL PROMPT DONE LINE...
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [chromium, url, prompt, done, ...lines] = process.argv.slice(2);
const profile = mkdtempSync(join(tmpdir(), 'wkvm-cdp-'));
const browser = spawn(chromium, ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
  '--remote-debugging-port=0', `--user-data-dir=${profile}`, 'about:blank'], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function debuggerUrl() {
  let stderr = '';
  for await (const chunk of browser.stderr) {
    stderr += chunk.toString();
    const match = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
    if (match) return match[1];
  }
  throw new Error(`chromium exited without a DevTools address:\n${stderr.slice(-1000)}`);
}

async function main() {
  const browserWs = await debuggerUrl();
  const port = new URL(browserWs).port;
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const ws = new WebSocket(targets.find((target) => target.type === 'page').webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.addEventListener('open', resolve);
    ws.addEventListener('error', reject);
  });
  let nextId = 0;
  const pending = new Map();
  ws.addEventListener('message', (event) => {
    const message = JSON.parse(event.data);
    pending.get(message.id)?.(message);
    pending.delete(message.id);
  });
  const send = (method, params = {}) => new Promise((resolve) => {
    const id = ++nextId;
    pending.set(id, resolve);
    ws.send(JSON.stringify({ id, method, params }));
  });
  const read = async () => (await send('Runtime.evaluate', {
    // Until the page has loaded, both read as empty.
    expression: "({ terminal: document.getElementById('terminal')?.textContent ?? '', status: document.getElementById('status')?.textContent ?? '' })",
    returnByValue: true,
  })).result.result.value;
  const waitFor = async (test, what) => {
    for (let i = 0; i < 600; i++) {
      const state = await read();
      if (test(state)) return state;
      await sleep(100);
    }
    throw new Error(`timed out waiting for ${what}; terminal ends: ${JSON.stringify((await read()).terminal.slice(-400))}`);
  };

  await send('Page.navigate', { url });
  let prompts = (await waitFor((s) => s.terminal.endsWith(prompt), 'the prompt')).terminal.split(prompt).length;
  await send('Runtime.evaluate', { expression: "document.getElementById('terminal').focus()" });
  for (const [n, line] of lines.entries()) {
    for (const ch of line) await send('Input.dispatchKeyEvent', { type: 'keyDown', key: ch, text: ch });
    await send('Input.dispatchKeyEvent', { type: 'keyDown', key: 'Enter', code: 'Enter', windowsVirtualKeyCode: 13 });
    if (n < lines.length - 1) {
      prompts = (await waitFor((s) => s.terminal.endsWith(prompt) && s.terminal.split(prompt).length > prompts, 'the next prompt')).terminal.split(prompt).length;
    }
  }
  console.log(JSON.stringify(await waitFor((s) => s.status.includes(done), `status "${done}"`)));
}

try {
  await main();
} finally {
  try {
    process.kill(-browser.pid, 'SIGKILL');
  } catch {
    // already gone
  }
  await sleep(300);
  rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
}
