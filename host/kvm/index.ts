export { Hypervisor, type Capabilities } from './hypervisor.js';
export { CORE_ISA } from './isa.js';
export { Vm, type VmOptions, type MemoryRegion, type GuestDebugPoints } from './vm.js';
export { Vcpu, type Regs, type Privilege } from './vcpu.js';
export type { DebugHit, VcpuExit, VcpuExitReason } from './exits.js';
export * from './errors.js';
export { compileCore, realTimeClock, type CoreSource, type TickClock, type CoreExports } from './core.js';
