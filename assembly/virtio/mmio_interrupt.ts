// virtio-mmio's InterruptStatus and InterruptACK, served in the core (layout: VIRTIO_MMIO_IN_CORE). A
// guest's virtio interrupt handler reads the one and writes the other for every interrupt; as MMIO exits
// they cost a return to the VMM each, two of the four exits of a 4 KiB disk request.
//
// The VMM and the harts share each transport's status word: the VMM sets bits (Atomics.or) and then raises
// the line; an acknowledgement clears bits and, when none is left, lowers the line — and looks again,
// because bits the VMM set between the two came with a raise the lowering may have undone.
import {
  MACHINE_FLAGS, MACHINE_FLAG_PLIC, VIRTIO_MMIO_BASE, VIRTIO_MMIO_STRIDE, VIRTIO_MMIO_SLOTS, VIRTIO_MMIO_FIRST_IRQ,
  VIRTIO_MMIO_IN_CORE, VIRTIO_MMIO_INTERRUPT,
} from "../abi/layout";
import { setIrqLevel } from "../irq/plic";

/**
 * The slot whose register `register` (VIRTIO_MMIO_INTERRUPT_STATUS or _ACK) a `size`-byte access at
 * guest-physical `pa` is, if the core serves it; else -1 (the access is the VMM's).
 */
export function inCoreInterruptRegister(pa: u64, size: i32, register: u32): i32 {
  const offset = pa - <u64>VIRTIO_MMIO_BASE;
  if (offset >= <u64>(VIRTIO_MMIO_SLOTS * VIRTIO_MMIO_STRIDE) || size != 4) return -1;
  if ((<u32>offset & (VIRTIO_MMIO_STRIDE - 1)) != register) return -1;
  const slot = <i32>(offset / VIRTIO_MMIO_STRIDE);
  if ((atomic.load<u32>(VIRTIO_MMIO_IN_CORE) & (1 << slot)) == 0) return -1;
  // The core lowers the line itself, so it must be the core's PLIC.
  if ((load<i32>(MACHINE_FLAGS) & MACHINE_FLAG_PLIC) == 0) return -1;
  return slot;
}

/** InterruptStatus of transport `slot`. */
export function readInterruptStatus(slot: i32): u32 {
  return atomic.load<u32>(VIRTIO_MMIO_INTERRUPT + (<usize>slot << 2));
}

/** InterruptACK of transport `slot`: clears `bits`, and lowers the line if none is left. */
export function acknowledgeInterrupt(slot: i32, bits: u32): void {
  const word = VIRTIO_MMIO_INTERRUPT + (<usize>slot << 2);
  if ((atomic.and<u32>(word, ~bits) & ~bits) != 0) return;
  const irq = <u32>(VIRTIO_MMIO_FIRST_IRQ + slot);
  setIrqLevel(irq, false);
  if (atomic.load<u32>(word) != 0) setIrqLevel(irq, true);
}
