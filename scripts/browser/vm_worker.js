// Boots the guest on wkvm's virt machine model in this worker (no disk; harts past the first run in
// Web Workers of their own) and relays the serial console: output to the page, the page's keys to the guest.
import { VirtMachine } from '/dist/host/vmm/virt_machine.js';

let machine = null;

async function fetchBytes(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function boot(append, smp) {
  postMessage({ type: 'status', text: 'fetching the kernel and initramfs…' });
  const [kernel, initrd] = await Promise.all([fetchBytes('/guest/Image'), fetchBytes('/guest/initramfs.cpio.gz')]);
  const decoder = new TextDecoder();
  machine = await VirtMachine.create({
    memoryBytes: 256 << 20,
    smp,
    bios: 'none',
    kernel: { name: 'Image', bytes: kernel },
    initrd: { name: 'initramfs.cpio.gz', bytes: initrd },
    append,
    console: { write: (bytes) => postMessage({ type: 'output', text: decoder.decode(bytes, { stream: true }) }) },
  });
  postMessage({ type: 'status', text: `running (-m 256M -smp ${smp}, ${append})` });
  const started = performance.now();
  const outcome = await machine.run();
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  postMessage({ type: 'status', text: outcome.kind === 'poweroff' ? `powered off (status ${outcome.status}) after ${seconds} s; reload to boot again` : `the guest asked for a reset after ${seconds} s; reload to boot again` });
}

onmessage = ({ data }) => {
  if (data.type === 'boot') {
    boot(data.append, data.smp).catch((error) => postMessage({ type: 'status', text: `error: ${error?.message ?? error}` }));
  } else if (data.type === 'input' && machine !== null) {
    machine.consoleInput(data.bytes);
  }
};
