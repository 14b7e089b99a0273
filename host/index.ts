// The package's public entry: the KVM-style API, the virt machine, and what an embedder plugs into it
// without a file system (virtio devices, disk images in memory). Nothing here imports Node's modules:
// the same entry serves a browser page (test/unit/vmm/node_free.test.ts checks it).
export * from './kvm/index.js';
export {
  VirtMachine, MachineError, type VirtMachineConfig, type MachineOutcome, type ConsoleBackend, type BootInput,
} from './vmm/virt_machine.js';
export type { MmioDevice, IrqLine, AccessSize } from './devices/device.js';
export { VirtioBlk, type VirtioBlkOptions } from './devices/virtio/blk.js';
export { VirtioRng } from './devices/virtio/rng.js';
export { VirtioConsole } from './devices/virtio/console.js';
export type { DiskImage } from './block/disk.js';
export { MemoryBlockFile } from './block/memory_file.js';
export { RawDiskImage } from './block/raw.js';
export { Qcow2DiskImage } from './block/qcow2/image.js';
