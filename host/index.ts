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
export { VirtioBalloon, type VirtioBalloonOptions } from './devices/virtio/balloon.js';
export { VirtioNet, type VirtioNetOptions, type NetBackend } from './devices/virtio/net.js';
export { UserNetBackend, type UserNetOptions } from './net/user.js';
export { Virtio9p, type Virtio9pOptions } from './devices/virtio/p9.js';
export type { NinePBackend, NinePFile } from './devices/virtio/p9_backend.js';
export type { DiskImage } from './block/disk.js';
export { MemoryBlockFile } from './block/memory_file.js';
export { RawDiskImage } from './block/raw.js';
export { Qcow2DiskImage } from './block/qcow2/image.js';
