// A minimal terminal for the guest's serial console: shows what the guest writes (CR/LF, backspace, ANSI
// sequences dropped) and sends keys to the worker as the bytes a terminal would. ?append=... replaces
// the kernel command line, ?smp=N gives the guest N harts (a Web Worker each).
const terminal = document.getElementById('terminal');
const status = document.getElementById('status');
const query = new URLSearchParams(location.search);
const append = query.get('append') ?? 'console=ttyS0';
const smp = Number(query.get('smp') ?? 1);
const worker = new Worker(new URL('./vm_worker.js', import.meta.url), { type: 'module' });
const encoder = new TextEncoder();
let screen = '';
let pendingEscape = '';

function show(text) {
  text = pendingEscape + text;
  pendingEscape = '';
  // Keep an escape sequence cut at the end for the next chunk.
  const cut = text.search(/\x1b(\[[0-9;?]*)?$/);
  if (cut >= 0) {
    pendingEscape = text.slice(cut);
    text = text.slice(0, cut);
  }
  text = text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r\n/g, '\n').replace(/\r/g, '');
  for (const ch of text) {
    if (ch === '\b') screen = screen.slice(0, -1);
    else if (ch === '\x07') continue;
    else screen += ch;
  }
  if (screen.length > 200_000) screen = screen.slice(-100_000);
  terminal.textContent = screen;
  window.scrollTo(0, document.body.scrollHeight);
}

const KEYS = { Enter: '\r', Backspace: '\x7f', Tab: '\t', Escape: '\x1b', ArrowUp: '\x1b[A', ArrowDown: '\x1b[B', ArrowRight: '\x1b[C', ArrowLeft: '\x1b[D' };
terminal.addEventListener('keydown', (event) => {
  let text = KEYS[event.key];
  if (text === undefined && event.key.length === 1) {
    text = event.ctrlKey && /^[a-z@\[\]\\^_]$/i.test(event.key) ? String.fromCharCode(event.key.toUpperCase().charCodeAt(0) & 0x1f) : event.key;
  }
  if (text === undefined) return;
  event.preventDefault();
  worker.postMessage({ type: 'input', bytes: encoder.encode(text) });
});
terminal.addEventListener('paste', (event) => {
  event.preventDefault();
  worker.postMessage({ type: 'input', bytes: encoder.encode(event.clipboardData.getData('text').replace(/\n/g, '\r')) });
});

worker.onmessage = ({ data }) => {
  if (data.type === 'output') show(data.text);
  else if (data.type === 'status') status.textContent = data.text;
};
worker.onerror = (event) => (status.textContent = `worker error: ${event.message}`);
worker.postMessage({ type: 'boot', append, smp });
terminal.focus();
