// Runs test/guest/hello/hello.elf with wkvm's KVM-style API in the page: the core from build/core.wasm,
// a 16550 transmit register and the SiFive test finisher as the only devices, as an embedding app would
// write them. Posts what the guest printed and its exit status to /result; then runs it again translating
// every block to WebAssembly at once (the block translator compiles modules with the page's WebAssembly
// API) and posts that run's output and the translator's record too.
import { Hypervisor } from '/dist/host/kvm/index.js';
import { parseElf } from '/dist/host/vmm/loader/elf.js';

const UART = 0x1000_0000;
const FINISHER = 0x10_0000;
const RAM = 0x8000_0000;

async function runHello(hv, options) {
  const vm = hv.createVm({ vcpus: 1, ...options });
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: RAM, size: 64 << 20 });
  const bytes = new Uint8Array(await (await fetch('/test/guest/hello/hello.elf')).arrayBuffer());
  const elf = parseElf(bytes, 'hello.elf');
  for (const segment of elf.segments) vm.guestMemory(segment.paddr, segment.data.length).set(segment.data);
  const vcpu = vm.createVcpu(0);
  vcpu.reset(BigInt(elf.entry));
  let output = '';
  for (let slices = 0; slices < 10_000; slices++) {
    const exit = vcpu.run();
    if (exit.reason !== 'mmio') {
      if (exit.reason === 'budget' || exit.reason === 'halt') continue;
      return { output, status: `exit ${exit.reason}` };
    }
    if (!exit.isWrite) {
      vcpu.completeMmioRead(exit.addr === UART + 5 ? 0x60 : 0); // LSR: transmitter empty
    } else if (exit.addr === UART) {
      output += String.fromCharCode(Number(exit.data & 0xffn));
    } else if (exit.addr === FINISHER) {
      const value = Number(exit.data & 0xffffffffn);
      return { output, status: (value & 0xffff) === 0x5555 ? 0 : value >>> 16, jit: { ...vcpu.jitStatistics, firstError: vm.jitCompileError } };
    }
  }
  return { output, status: 'did not finish' };
}

let result;
try {
  const hv = await Hypervisor.create();
  const plain = await runHello(hv, {});
  const translated = await runHello(hv, { jitThreshold: 1, jitBatch: 1 });
  result = { ...plain, translated, crossOriginIsolated };
} catch (error) {
  result = { error: String(error?.stack ?? error), crossOriginIsolated };
}
document.getElementById('console').textContent = result.output ?? result.error;
await fetch('/result', { method: 'POST', body: JSON.stringify(result) });
