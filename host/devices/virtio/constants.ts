// Numbers from the virtio 1.2 specification: the virtio-mmio register map (§4.2.2), device status bits
// (§2.1), feature bits (§6) and device ids (§5).
import * as layout from '../../../assembly/abi/layout.js';

/** "virt" in little-endian ASCII. */
export const VIRTIO_MMIO_MAGIC = 0x74726976;
/** The modern (non-legacy) virtio-mmio interface. */
export const VIRTIO_MMIO_VERSION = 2;
/** The legacy interface's Version (QEMU's force-legacy=true). */
export const VIRTIO_MMIO_LEGACY_VERSION = 1;
/** "QEMU": the vendor id QEMU's transports report. */
export const VIRTIO_MMIO_VENDOR = 0x554d4551;
/** Each transport's window. */
export const VIRTIO_MMIO_SIZE = 0x1000;

export const MmioReg = {
  magic: 0x000,
  version: 0x004,
  deviceId: 0x008,
  vendorId: 0x00c,
  deviceFeatures: 0x010,
  deviceFeaturesSel: 0x014,
  driverFeatures: 0x020,
  driverFeaturesSel: 0x024,
  queueSel: 0x030,
  queueNumMax: 0x034,
  queueNum: 0x038,
  queueReady: 0x044,
  queueNotify: 0x050,
  interruptStatus: 0x060,
  interruptAck: 0x064,
  status: 0x070,
  queueDescLow: 0x080,
  queueDescHigh: 0x084,
  queueDriverLow: 0x090,
  queueDriverHigh: 0x094,
  queueDeviceLow: 0x0a0,
  queueDeviceHigh: 0x0a4,
  shmSel: 0x0ac,
  shmLenLow: 0x0b0,
  shmLenHigh: 0x0b4,
  shmBaseLow: 0x0b8,
  shmBaseHigh: 0x0bc,
  configGeneration: 0x0fc,
  config: 0x100,
} as const;

/** The legacy (version 1) interface's own registers (virtio 1.2 §4.2.4), which version 2 replaced. */
export const LegacyMmioReg = {
  guestPageSize: 0x028,
  queueAlign: 0x03c,
  queuePfn: 0x040,
} as const;

export const Status = {
  acknowledge: 1,
  driver: 2,
  driverOk: 4,
  featuresOk: 8,
  deviceNeedsReset: 64,
  failed: 128,
} as const;

/** InterruptStatus bits. */
export const Interrupt = {
  usedBuffer: 1,
  configChange: 2,
} as const;

/** Transport and ring feature bits, as bigint masks (the feature space is 64 bits wide). */
export const Feature = {
  ringIndirectDesc: 1n << 28n,
  ringEventIdx: 1n << 29n,
  version1: 1n << 32n,
} as const;

/** Features every wkvm device offers on top of its own. */
export const TRANSPORT_FEATURES = Feature.version1 | Feature.ringEventIdx | Feature.ringIndirectDesc;

export const DeviceId = {
  network: 1,
  block: 2,
  console: 3,
  entropy: 4,
  balloon: 5,
  ninePTransport: 9,
} as const;

/** Queues per transport: the core allots each transport 8 queue records (layout.VIRTQ_QUEUES_PER_TRANSPORT). */
export const MAX_QUEUES_PER_DEVICE = layout.VIRTQ_QUEUES_PER_TRANSPORT;
