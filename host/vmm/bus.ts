// The MMIO bus: which device answers a guest-physical address (QEMU's address_space dispatch for the
// regions that are not RAM). An access that hits no device is reported as such, and the VMM makes the
// guest take an access fault, as QEMU does for unassigned addresses on RISC-V.
import type { AccessSize, MmioDevice } from '../devices/device.js';

interface Mapping {
  readonly base: number;
  readonly end: number;
  readonly device: MmioDevice;
}

export class BusError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BusError';
  }
}

export class MmioBus {
  private mappings: Mapping[] = [];
  private last: Mapping | null = null;

  register(base: number, device: MmioDevice): void {
    const end = base + device.size;
    for (const m of this.mappings) {
      if (base < m.end && m.base < end) {
        throw new BusError(`${device.name} at 0x${base.toString(16)} overlaps ${m.device.name} at 0x${m.base.toString(16)}`);
      }
    }
    this.mappings.push({ base, end, device });
    this.mappings.sort((a, b) => a.base - b.base);
  }

  find(addr: number): Mapping | null {
    const last = this.last;
    if (last !== null && addr >= last.base && addr < last.end) return last;
    for (const m of this.mappings) {
      if (addr >= m.base && addr < m.end) {
        this.last = m;
        return m;
      }
    }
    return null;
  }

  /** The device that takes all of an access, or null. */
  private claimant(addr: number, size: number): Mapping | null {
    const m = this.find(addr);
    if (m === null || addr + size > m.end) return null;
    if (m.device.claims !== undefined && !m.device.claims(addr - m.base, size)) return null;
    return m;
  }

  /** A guest load. Returns null when no device claims the whole access. */
  read(addr: number, size: 1 | 2 | 4 | 8): bigint | null {
    const m = this.claimant(addr, size);
    if (m === null) return null;
    const offset = addr - m.base;
    if (size !== 8) return BigInt(m.device.read(offset, size as AccessSize));
    if (m.device.read64) return m.device.read64(offset);
    const lo = m.device.read(offset, 4);
    const hi = m.device.read(offset + 4, 4);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** A guest store. Returns false when no device claims the whole access. */
  write(addr: number, size: 1 | 2 | 4 | 8, value: bigint): boolean {
    const m = this.claimant(addr, size);
    if (m === null) return false;
    const offset = addr - m.base;
    if (size !== 8) {
      m.device.write(offset, size as AccessSize, Number(value & 0xffffffffn));
    } else if (m.device.write64) {
      m.device.write64(offset, value);
    } else {
      m.device.write(offset, 4, Number(value & 0xffffffffn));
      m.device.write(offset + 4, 4, Number((value >> 32n) & 0xffffffffn));
    }
    return true;
  }

  devices(): MmioDevice[] {
    return this.mappings.map((m) => m.device);
  }
}
