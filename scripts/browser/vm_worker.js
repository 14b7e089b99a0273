// Boots the guest on wkvm's virt machine model in this worker (harts past the first run in Web Workers
// of their own; the server's --drive image, if any, as /dev/vda) and relays the serial console: output
// to the page, the page's keys to the guest.
import { VirtMachine } from '/dist/host/vmm/virt_machine.js';
import { VirtioBlk } from '/dist/host/devices/virtio/blk.js';
import { MemoryBlockFile } from '/dist/host/block/memory_file.js';
import { RawDiskImage } from '/dist/host/block/raw.js';
import { Qcow2DiskImage } from '/dist/host/block/qcow2/image.js';
import { probeFormat } from '/dist/host/block/probe.js';

/** The served disk image in memory, its format probed as the CLI probes it; what the guest writes stays here. */
async function openDisk(name, bytes) {
  const file = new MemoryBlockFile(bytes);
  const options = { readOnly: false, cache: 'writeback' };
  const probed = await probeFormat(file);
  if ('unsupported' in probed) throw new Error(`${name}: image format '${probed.unsupported}' is not supported (only raw and qcow2)`);
  if (probed.format === 'qcow2') {
    return Qcow2DiskImage.open(file, name, { ...options, openBacking: (backing) => Promise.reject(new Error(`${name}: backing file ${backing} cannot be opened in a browser`)) });
  }
  return RawDiskImage.open(file, name, options);
}

let machine = null;

async function fetchBytes(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function boot(append, smp) {
  postMessage({ type: 'status', text: 'fetching the kernel and initramfs…' });
  const config = await (await fetch('/config.json')).json();
  const [kernel, initrd, diskBytes] = await Promise.all([
    fetchBytes('/guest/Image'), fetchBytes('/guest/initramfs.cpio.gz'), config.disk === null ? null : fetchBytes('/disk'),
  ]);
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
  if (diskBytes !== null) machine.virtioSlots[7].plug(new VirtioBlk({ disk: await openDisk(config.disk, diskBytes), id: 'vda' }));
  const disk = config.disk === null ? '' : `, ${config.disk} as /dev/vda`;
  postMessage({ type: 'status', text: `running (-m 256M -smp ${smp}${disk}, ${append})` });
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
