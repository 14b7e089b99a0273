// virtio: the virtio-mmio and virtio-pci transports over their shared control plane, the host side of the
// in-core virtqueue data plane, and the devices.
export { VirtioMmioTransport, type VirtioMmioTransportOptions } from './transport.js';
export { VirtioPciTransport, type VirtioPciTransportOptions } from './pci.js';
export { VirtioControl, type VirtioInterruptSink } from './control.js';
export { Virtqueue, virtioMemoryOf, VirtqueueCoreMissingError, type VirtioMemory, type VirtqueueCore } from './queue.js';
export { DescriptorChain, type Segment } from './chain.js';
export type { VirtioDevice, VirtioDeviceContext } from './device.js';
export { VirtioBlk, type VirtioBlkOptions } from './blk.js';
export { VirtioRng } from './rng.js';
export { VirtioBalloon, BALLOON_PAGE_SIZE, type VirtioBalloonOptions } from './balloon.js';
export { VirtioNet, type VirtioNetOptions, type NetBackend } from './net.js';
export { Virtio9p, type Virtio9pOptions } from './p9.js';
export type { NinePBackend } from './p9_backend.js';
export { VirtioConsole, guestConsoleIsHvc } from './console.js';
export { VirtqueueError, VirtioRequestError, VirtioConfigError } from './errors.js';
export {
  attachVirtioDevices, planVirtioDevices, virtioSlots, supportedDevices, type VirtioAttachment, type VirtioMachine,
  type VirtioOptions, type DriveSpec, type VirtioDevicePlan, type PciPlacement,
} from './attach.js';
