// From QEMU-style options to devices on the board: plan.ts checks the options and decides which devices
// go where (see there for the slot order); this builds each device, opens its backend (disk image, host
// directory, user network, console file) and plugs it into its virtio-mmio transport or PCI slot.
import { openDiskImage, type CacheMode, type DiskFormat, type DiskImage } from '../../block/index.js';
import { VirtioBlk } from './blk.js';
import { guestConsoleIsHvc, VirtioConsole } from './console.js';
import type { VirtioDevice } from './device.js';
import { VirtioConfigError } from './errors.js';
import { VirtioRng } from './rng.js';
import { VirtioBalloon } from './balloon.js';
import { VirtioNet, type NetBackend } from './net.js';
import { Virtio9p } from './p9.js';
import { LocalBackend } from './p9_local.js';
import { UserNetBackend } from '../../net/user.js';
import { TftpDirectory } from '../../net/tftp_node.js';
import { NodeNatSockets } from '../../net/nat_node.js';
import { NetdevOptionError } from '../../net/socket_netdev.js';
import { openSocketNetdev } from '../../net/socket_node.js';
import type { PersistentNetBackends } from '../../net/persistent.js';
import { DRAM_BASE } from '../../vmm/memmap.js';
import { closeSync, openSync, writeSync } from 'node:fs';
import type { VirtioMmioTransport } from './transport.js';
import { planVirtioDevices, virtioSlots, type VirtioDevicePlan, type VirtioOptions } from './plan.js';

export {
  planVirtioDevices, virtioSlots, supportedDevices, type DriveSpec, type VirtioOptions, type VirtioDevicePlan, type PciPlacement,
  type NetworkPlan,
} from './plan.js';

/** What attaching needs from the machine. */
export interface VirtioMachine {
  readonly virtioSlots: readonly VirtioMmioTransport[];
  /** Puts a device on the PCIe bus behind a virtio-pci transport in `slot` (a machine without PCI lacks it). */
  plugVirtioPci?(device: VirtioDevice, options: { slot: number; log?: (message: string) => void }): number;
  readonly config: { readonly append?: string; readonly memoryBytes?: number; readonly console: { write(bytes: Uint8Array): void } };
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
  const slots = virtioSlots(plan);
  const devices: VirtioDevice[] = [];
  const fileOutputs: number[] = [];
  const close = async () => {
    await Promise.allSettled(devices.map((d) => d.close?.()));
    for (const fd of fileOutputs.splice(0)) closeSync(fd);
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
        case 'net':
          device = new VirtioNet({ backend: await openNetwork(item, options.persistentNetworks, log), mac: item.mac, id: item.netdev, log });
          break;
        case '9p': {
          const backend = await LocalBackend.open({ root: item.path, readOnly: item.readOnly });
          device = new Virtio9p({ backend, mountTag: item.mountTag, id: item.id, log });
          break;
        }
        case 'balloon':
          device = new VirtioBalloon({ ram: machine.config.memoryBytes === undefined ? undefined : { base: DRAM_BASE, size: machine.config.memoryBytes } });
          break;
        case 'console': {
          const port = new VirtioConsole({ output: consoleOutput(item, machine, fileOutputs) });
          if (item.connected && console === null) console = port;
          device = port;
          break;
        }
      }
      devices.push(device);
      if (item.pci === undefined) {
        machine.virtioSlots[slots[n]!]!.plug(device);
      } else {
        if (machine.plugVirtioPci === undefined) throw new VirtioConfigError(`-device ${device.name}`, 'this machine has no PCI bus');
        machine.plugVirtioPci(device, { slot: item.pci.slot, log });
      }
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

async function openNetwork(
  item: Extract<VirtioDevicePlan, { kind: 'net' }>, persistent: PersistentNetBackends | undefined, log: ((message: string) => void) | undefined,
): Promise<NetBackend> {
  const network = item.network;
  if (network.type !== 'user') {
    const open = () => openSocketNetdev(network, { id: item.netdev, log: log ?? (() => {}) });
    try {
      return await (persistent === undefined ? open() : persistent.lease(item.netdev, open));
    } catch (error) {
      if (error instanceof NetdevOptionError) throw new VirtioConfigError(`-netdev ${network.spelling},id=${item.netdev}`, error.message);
      throw error;
    }
  }
  const tftp = network.tftp === undefined ? undefined : await TftpDirectory.open(network.tftp).catch((error: Error) => {
    throw new VirtioConfigError(`-netdev ${item.netdev}`, `tftp=${network.tftp}: ${error.message}`);
  });
  const backend = new UserNetBackend({
    restrict: network.restrict, sockets: new NodeNatSockets(), hostForwards: network.hostForwards, ...(log === undefined ? {} : { log }),
    ...(tftp === undefined ? {} : { tftp }), ...(network.bootFile === undefined ? {} : { bootFile: network.bootFile }),
  });
  if (!network.restrict && !backend.providesNat) {
    log?.(`user network '${item.netdev}': the guest reaches 10.0.2.2 (ARP, ping, DHCP) but nothing beyond it: no NAT sockets`);
  }
  return backend;
}

/** A console port's output: the machine's console, a -chardev file (opened here, as QEMU truncates it unless append=on), or nowhere. */
function consoleOutput(item: Extract<VirtioDevicePlan, { kind: 'console' }>, machine: VirtioMachine, fileOutputs: number[]): (bytes: Uint8Array) => void {
  if (item.connected) return (bytes) => machine.config.console.write(bytes);
  if (item.file === undefined) return () => {};
  let fd: number;
  try {
    fd = openSync(item.file, item.append ? 'a' : 'w');
  } catch (error) {
    throw new VirtioConfigError(`-chardev file,path=${item.file}`, `cannot open: ${(error as Error).message}`);
  }
  fileOutputs.push(fd);
  return (bytes) => {
    writeSync(fd, bytes);
  };
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
