// The package's public entry: the KVM-style API and the virt machine.
export * from './kvm/index.js';
export { VirtMachine, MachineError, type VirtMachineConfig, type MachineOutcome, type ConsoleBackend } from './vmm/virt_machine.js';
export type { MmioDevice, IrqLine, AccessSize } from './devices/device.js';
