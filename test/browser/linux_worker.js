// The shared guest's kernel and initramfs boot on the `virt` machine model (host/vmm/virt_machine.ts)
// in a worker, with no Node API: the files are fetched bytes, the disk is its image in memory (a
// compressed qcow2 image in a MemoryBlockFile) on virtio-blk, and virtio-rng draws on Web Crypto. In
// guest.mode=disk the guest mounts the ext4 image, writes a file, syncs, remounts, reads it back and
// powers off; the worker then looks for the written text in the image bytes and sends the image back
// for qemu-img check. A second boot, with two
// harts (each a nested Web Worker) in guest.mode=shell, types a command at the prompt (console input
// through consoleInput, as a terminal widget would) and `exit`.
import { VirtMachine } from '/dist/host/vmm/virt_machine.js';
import { VirtioBlk } from '/dist/host/devices/virtio/blk.js';
import { VirtioRng } from '/dist/host/devices/virtio/rng.js';
import { Qcow2DiskImage } from '/dist/host/block/qcow2/image.js';
import { MemoryBlockFile } from '/dist/host/block/memory_file.js';

const DISK_TEXT = 'rvguest disk write test 0123456789abcdef';
const PROMPT = 'root@rvguest:/# ';
const encoder = new TextEncoder();

async function fetchBytes(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function bootWithDisk(kernel, initrd, rootfs) {
  const decoder = new TextDecoder();
  let output = '';
  const started = performance.now();
  const machine = await VirtMachine.create({
    memoryBytes: 256 << 20,
    bios: 'none',
    kernel: { name: 'Image', bytes: kernel },
    initrd: { name: 'initramfs.cpio.gz', bytes: initrd },
    append: 'console=ttyS0 guest.mode=disk',
    console: { write: (bytes) => { output += decoder.decode(bytes, { stream: true }); } },
  });
  const image = new MemoryBlockFile(rootfs);
  const disk = await Qcow2DiskImage.open(image, 'rootfs.qcow2', {
    readOnly: false,
    cache: 'writeback',
    openBacking: (name) => Promise.reject(new Error(`no backing file here (${name})`)),
  });
  // Slot 7 (0x10008000) first, as QEMU fills them: the guest's /dev/vda.
  machine.virtioSlots[7].plug(new VirtioBlk({ disk, id: 'vda' }));
  machine.virtioSlots[6].plug(new VirtioRng());
  const outcome = await machine.run();
  await disk.close();
  // Back to the test, which has qemu-img check the image.
  await fetch('/upload/disk', { method: 'POST', body: image.contents() });
  const imageText = new TextDecoder('latin1').decode(image.contents());
  return {
    output,
    outcome,
    seconds: (performance.now() - started) / 1000,
    diskTextInImage: imageText.includes(DISK_TEXT),
    diskGrewBy: image.contents().length - rootfs.length,
    jit: machine.vcpu.jitStatistics,
    jitCompileError: machine.vm.jitCompileError,
  };
}

/**
 * Boots to the shell prompt and types a line at each prompt, as a person would: a command (the shell
 * prints WKVM-42, the echoed line does not), then `exit`. (Typed on one line, `exit` can hang up the
 * terminal before the tty has sent the command's output, which the kernel then drops.)
 */
async function bootToShell(kernel, initrd) {
  const decoder = new TextDecoder();
  const lines = ['echo WKVM-$((40+2)) $(cat /proc/cpuinfo | grep -c ^processor)', 'exit'];
  let output = '';
  let typed = 0;
  let machine = null;
  const terminal = {
    write: (bytes) => {
      output += decoder.decode(bytes, { stream: true });
      if (typed < lines.length && machine !== null && output.endsWith(PROMPT)) {
        machine.consoleInput(encoder.encode(`${lines[typed++]}\n`));
      }
    },
  };
  machine = await VirtMachine.create({
    memoryBytes: 128 << 20,
    smp: 2,
    bios: 'none',
    kernel: { name: 'Image', bytes: kernel },
    initrd: { name: 'initramfs.cpio.gz', bytes: initrd },
    append: 'console=ttyS0 guest.mode=shell',
    console: terminal,
  });
  const outcome = await machine.run();
  return { output, outcome, typed: typed === lines.length };
}

try {
  const [kernel, initrd, rootfs] = await Promise.all(['/guest/Image', '/guest/initramfs.cpio.gz', '/guest/rootfs.qcow2'].map(fetchBytes));
  const disk = await bootWithDisk(kernel, initrd, rootfs);
  postMessage({ ...disk, shell: await bootToShell(kernel, initrd) });
} catch (error) {
  postMessage({ error: String(error?.stack ?? error) });
}
