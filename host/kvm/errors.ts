// Typed errors of the KVM layer. Each carries the context a caller needs to report it.

export class KvmError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The WASM core could not be found, compiled or instantiated. */
export class CoreLoadError extends KvmError {
  constructor(readonly source: string, readonly reason: string) {
    super(`cannot load the wkvm core from ${source}: ${reason}`);
  }
}

/** A memory slot request that KVM_SET_USER_MEMORY_REGION would refuse. */
export class MemoryRegionError extends KvmError {
  constructor(readonly slot: number, readonly reason: string) {
    super(`memory slot ${slot}: ${reason}`);
  }
}

/** A vCPU operation that is not valid in the vCPU's current state. */
export class VcpuStateError extends KvmError {
  constructor(readonly vcpuId: number, readonly reason: string) {
    super(`vcpu ${vcpuId}: ${reason}`);
  }
}

/** VM options KVM_CREATE_VM would refuse. */
export class VmConfigError extends KvmError {
  constructor(readonly option: string, readonly reason: string) {
    super(`VM option ${option}: ${reason}`);
  }
}

/** A guest-physical range that is not RAM in any slot. */
export class GuestMemoryError extends KvmError {
  constructor(readonly guestPhysAddr: number, readonly length: number, readonly reason: string) {
    super(`guest memory [0x${guestPhysAddr.toString(16)}, +0x${length.toString(16)}): ${reason}`);
  }
}
