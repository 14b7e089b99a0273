// From QEMU-style options to devices on the board: `-drive`/`-device` become virtio-blk, virtio-rng and
// virtio-console models plugged into the virt machine's virtio-mmio transports. Like QEMU, devices fill
// the slots from the highest address down (the first device sits at 0x10008000, slot 7), so Linux names
// disks in the same order under both; `-drive ...,if=virtio` devices come after the explicit `-device`s.
import { openDiskImage, type CacheMode, type DiskFormat, type DiskImage } from '../../block/index.js';
import { BLK_MAX_QUEUE_SIZE, isBlkQueueSize, VirtioBlk } from './blk.js';
import { guestConsoleIsHvc, VirtioConsole } from './console.js';
import type { VirtioDevice } from './device.js';
import { VirtioConfigError } from './errors.js';
import { VirtioRng } from './rng.js';
import type { VirtioMmioTransport } from './transport.js';

/** A -drive option as the CLI parsed it. */
export interface DriveSpec {
  readonly file: string;
  readonly format?: string;
  readonly if?: string;
  readonly id?: string;
  readonly cache?: string;
  readonly readonly?: boolean;
  readonly snapshot?: boolean;
}

export interface VirtioOptions {
  readonly drives: readonly DriveSpec[];
  /** -device options: `driver` plus properties. */
  readonly devices: ReadonlyArray<Readonly<Record<string, string>>>;
  /** -snapshot: every drive in snapshot mode. */
  readonly snapshot?: boolean;
  /**
   * Not a command-line option: lets a caller put a layer between each opened drive and its virtio-blk
   * device (interop tests record the guest's writes with RecordingDiskImage). The returned image is
   * the one closed on detach, so it must close the one it was given.
   */
  readonly wrapDisk?: (disk: DiskImage, drive: DriveSpec) => DiskImage;
}

export type VirtioDevicePlan =
  | {
    readonly kind: 'blk'; readonly drive: DriveSpec; readonly name: string; readonly serial?: string; readonly snapshot: boolean;
    /** QEMU's queue-size; the device's default when absent. */
    readonly queueSize?: number;
  }
  | { readonly kind: 'rng' }
  | { readonly kind: 'console'; readonly connected: boolean };

const SLOTS = 8;
const DEVICE_PROPERTIES: Record<string, readonly string[]> = {
  'virtio-blk-device': ['drive', 'serial', 'id', 'bus', 'queue-size'],
  'virtio-rng-device': ['id', 'bus', 'rng'],
  'virtio-serial-device': ['id', 'bus', 'max_ports'],
  'virtio-console-device': ['id', 'bus', 'chardev'],
  virtconsole: ['id', 'bus', 'chardev', 'name', 'nr'],
};

/** queue-size=N in decimal, by QEMU's rule (isBlkQueueSize; seg_max is two less). */
function parseQueueSize(where: string, text: string): number {
  const size = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!isBlkQueueSize(size)) {
    throw new VirtioConfigError(where, `queue-size=${text}: expected a power of two from 4 to ${BLK_MAX_QUEUE_SIZE}`);
  }
  return size;
}

/** Checks the options and decides which devices to build, in slot order. Throws VirtioConfigError. */
export function planVirtioDevices(options: VirtioOptions): VirtioDevicePlan[] {
  const plan: VirtioDevicePlan[] = [];
  const drivesById = new Map<string, DriveSpec>();
  const used = new Set<string>();
  const snapshotAll = options.snapshot ?? false;
  options.drives.forEach((drive, index) => {
    const where = `-drive file=${drive.file}`;
    if (drive.if === undefined) throw new VirtioConfigError(where, "the virt machine has no default disk interface: add if=virtio, or if=none,id=ID with -device virtio-blk-device,drive=ID");
    if (drive.if !== 'virtio' && drive.if !== 'none') throw new VirtioConfigError(where, `if=${drive.if} is not supported (use if=virtio or if=none)`);
    if (drive.format !== undefined && drive.format !== 'raw' && drive.format !== 'qcow2') throw new VirtioConfigError(where, `format=${drive.format} is not supported (raw or qcow2)`);
    const id = drive.id ?? (drive.if === 'virtio' ? `virtio${index}` : undefined);
    if (id === undefined) throw new VirtioConfigError(where, 'if=none needs id=ID for -device virtio-blk-device,drive=ID to refer to');
    if (drivesById.has(id)) throw new VirtioConfigError(where, `duplicate drive id '${id}'`);
    drivesById.set(id, drive);
  });
  let lastSerial: { connected: boolean; index: number } | null = null;
  for (const device of options.devices) {
    const driver = device.driver ?? '';
    const where = `-device ${driver}`;
    const allowed = DEVICE_PROPERTIES[driver];
    if (allowed === undefined) {
      throw new VirtioConfigError(where, `unknown or unsupported device (wkvm has ${Object.keys(DEVICE_PROPERTIES).join(', ')})`);
    }
    for (const key of Object.keys(device)) {
      if (key !== 'driver' && !allowed.includes(key)) throw new VirtioConfigError(where, `property '${key}' is not supported`);
    }
    switch (driver) {
      case 'virtio-blk-device': {
        const id = device.drive;
        if (id === undefined) throw new VirtioConfigError(where, 'drive=ID is required');
        const drive = drivesById.get(id);
        if (drive === undefined) throw new VirtioConfigError(where, `no -drive with id=${id}`);
        if (drive.if !== 'none') throw new VirtioConfigError(where, `drive '${id}' is if=${drive.if}, which already creates its own device (use if=none)`);
        if (used.has(id)) throw new VirtioConfigError(where, `drive '${id}' is already in use by another device`);
        used.add(id);
        const queueSize = device['queue-size'] === undefined ? undefined : parseQueueSize(where, device['queue-size']);
        plan.push({
          kind: 'blk', drive, name: id, serial: device.serial, snapshot: snapshotAll || drive.snapshot === true,
          ...(queueSize === undefined ? {} : { queueSize }),
        });
        break;
      }
      case 'virtio-rng-device':
        plan.push({ kind: 'rng' });
        break;
      case 'virtio-serial-device':
        lastSerial = { connected: false, index: plan.length };
        plan.push({ kind: 'console', connected: false });
        break;
      case 'virtio-console-device':
        plan.push({ kind: 'console', connected: true });
        break;
      case 'virtconsole':
        if (lastSerial === null) throw new VirtioConfigError(where, 'needs a virtio-serial-device before it');
        if (lastSerial.connected) throw new VirtioConfigError(where, 'this virtio-serial-device has no MULTIPORT: one virtconsole per device');
        lastSerial.connected = true;
        plan[lastSerial.index] = { kind: 'console', connected: true };
        break;
    }
  }
  for (const [id, drive] of drivesById) {
    if (drive.if === 'virtio') plan.push({ kind: 'blk', drive, name: id, snapshot: snapshotAll || drive.snapshot === true });
  }
  if (plan.length > SLOTS) throw new VirtioConfigError('-device', `${plan.length} virtio devices, but the virt machine has ${SLOTS} virtio-mmio slots`);
  return plan;
}

/** The slot (0..7) the n-th virtio device goes to: QEMU fills them from the top. */
export function slotForDevice(n: number): number {
  return SLOTS - 1 - n;
}

/** What attaching needs from the machine. */
export interface VirtioMachine {
  readonly virtioSlots: readonly VirtioMmioTransport[];
  readonly config: { readonly append?: string; readonly console: { write(bytes: Uint8Array): void } };
  /** Sends console input to `handler` instead of the UART (null: back to the UART). */
  routeConsoleInput(handler: ((bytes: Uint8Array) => void) | null): void;
}

export interface VirtioAttachment {
  readonly devices: readonly VirtioDevice[];
  /** The console port connected to the machine's console, if any. */
  readonly console: VirtioConsole | null;
  /** Waits for in-flight I/O and closes the disk images. */
  close(): Promise<void>;
}

export async function attachVirtioDevices(machine: VirtioMachine, options: VirtioOptions, log?: (message: string) => void): Promise<VirtioAttachment> {
  const plan = planVirtioDevices(options);
  const devices: VirtioDevice[] = [];
  const close = async () => {
    await Promise.allSettled(devices.map((d) => d.close?.()));
  };
  let console: VirtioConsole | null = null;
  try {
    for (const [n, item] of plan.entries()) {
      let device: VirtioDevice;
      switch (item.kind) {
        case 'blk': {
          const disk = await openDrive(item);
          device = new VirtioBlk({
            disk: options.wrapDisk?.(disk, item.drive) ?? disk, id: item.name, serial: item.serial, queueSize: item.queueSize, log,
          });
          break;
        }
        case 'rng':
          device = new VirtioRng();
          break;
        case 'console': {
          const port = new VirtioConsole({ output: item.connected ? (bytes) => machine.config.console.write(bytes) : () => {} });
          if (item.connected && console === null) console = port;
          device = port;
          break;
        }
      }
      devices.push(device);
      machine.virtioSlots[slotForDevice(n)]!.plug(device);
    }
  } catch (error) {
    await close();
    throw error;
  }
  if (console !== null && guestConsoleIsHvc(machine.config.append)) {
    const port = console;
    machine.routeConsoleInput((bytes) => port.receive(bytes));
  }
  return { devices, console, close };
}

async function openDrive(item: Extract<VirtioDevicePlan, { kind: 'blk' }>): Promise<DiskImage> {
  const drive = item.drive;
  return openDiskImage(drive.file, {
    format: drive.format as DiskFormat | undefined,
    readOnly: drive.readonly ?? false,
    cache: (drive.cache ?? 'writeback') as CacheMode,
    snapshot: item.snapshot,
  });
}
