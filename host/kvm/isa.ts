// What the core implements, in the device tree's words: one place for the CPU's capability, the virt
// board's `riscv,isa` and the FDT writer's default.
import { parseQemuBool } from '../qemu_bool.js';

/**
 * The ISA the core implements, as a device tree's `riscv,isa` spells it: RV64GC, Zihintpause (PAUSE is
 * a FENCE), the bit-manipulation extensions Zba/Zbb/Zbc/Zbs, and Sstc (stimecmp). QEMU 7.2's rv64 CPU
 * advertises the same list, plus H.
 */
export const CORE_ISA = 'rv64imafdc_zicsr_zifencei_zihintpause_zba_zbb_zbc_zbs_sstc';

/**
 * The extensions an ISA string such as a device tree's `riscv,isa` names that `implemented` does not:
 * single letters after the base (`h` of "rv64imafdch_zicsr"), then multi-letter ones (`zicbom`), in the
 * order given. A guest told of them may use them and take illegal-instruction traps.
 */
export function isaExtensionsMissing(isa: string, implemented: string = CORE_ISA): string[] {
  const have = isaExtensions(implemented);
  return [...isaExtensions(isa)].filter((extension) => !have.has(extension));
}

function isaExtensions(isa: string): Set<string> {
  const [base = '', ...multi] = isa.toLowerCase().split('_');
  const letters = base.replace(/^rv(32|64|128)/, '');
  const extensions = new Set<string>();
  for (const letter of letters) {
    if (letter === 'g') ['i', 'm', 'a', 'f', 'd', 'zicsr', 'zifencei'].forEach((e) => extensions.add(e));
    else extensions.add(letter);
  }
  for (const extension of multi) if (extension !== '') extensions.add(extension);
  return extensions;
}

/** The extensions of CORE_ISA a `-cpu` property may turn off (QEMU's property names, any case). */
const OPTIONAL_EXTENSIONS = ['sstc', 'zihintpause', 'zba', 'zbb', 'zbc', 'zbs'];
/** QEMU CPU properties for what wkvm's CPU always has: `=true` is what it is; `=false` cannot be had. */
const BUILT_IN = ['i', 'm', 'a', 'f', 'd', 'c', 's', 'u', 'zicsr', 'zifencei', 'zicntr', 'zihpm', 'counters', 'mmu', 'pmp'];
/** QEMU CPU properties for extensions wkvm has not: `=false` is what wkvm is; `=true` cannot be had. */
const ABSENT_EXTENSIONS = ['h', 'v', 'zicbom', 'zicboz', 'svpbmt', 'svnapot', 'svinval', 'zfh', 'zfhmin', 'zicond', 'zawrs', 'zkn', 'zks', 'zbkb', 'zbkc', 'zbkx'];

/** -cpu: a model or property wkvm's CPU cannot be. */
export class CpuModelError extends Error {
  override readonly name = 'CpuModelError';
}

/**
 * The ISA string a `-cpu MODEL[,ext=on|off,...]` option gives the guest to see: `rv64`/`max` are the
 * core's whole ISA, `sifive-u54` plain RV64GC (the shared guest's README uses both), and a property
 * set false drops its extension from what the device tree advertises (Linux then leaves it unused:
 * sstc=false makes it program the timer through SBI). The core still decodes such an instruction if a
 * program uses it anyway.
 */
export function isaForCpu(option: string): string {
  const [model = '', ...properties] = option.split(',');
  const extensions = model === 'sifive-u54' ? new Set<string>() : model === 'rv64' || model === 'max' ? new Set(OPTIONAL_EXTENSIONS) : null;
  if (extensions === null) throw new CpuModelError(`-cpu ${model}: unsupported CPU model (wkvm has rv64, max, sifive-u54)`);
  for (const property of properties) {
    const [rawKey = '', value = 'on'] = property.split('=');
    const key = rawKey.toLowerCase();
    if (key === 'priv_spec') {
      if (value !== 'v1.12.0') throw new CpuModelError(`-cpu ${property}: wkvm implements privileged spec v1.12.0`);
      continue;
    }
    if (!OPTIONAL_EXTENSIONS.includes(key) && !ABSENT_EXTENSIONS.includes(key) && !BUILT_IN.includes(key)) {
      throw new CpuModelError(`-cpu ${property}: unsupported CPU property (wkvm knows priv_spec, ${[...BUILT_IN, ...OPTIONAL_EXTENSIONS, ...ABSENT_EXTENSIONS].join(', ')})`);
    }
    const enabled = parseQemuBool(value);
    if (enabled === null) throw new CpuModelError(`-cpu ${property}: expected on/off or true/false`);
    if (OPTIONAL_EXTENSIONS.includes(key)) {
      if (enabled) extensions.add(key);
      else extensions.delete(key);
    } else if (BUILT_IN.includes(key)) {
      if (!enabled) throw new CpuModelError(`-cpu ${property}: wkvm's CPU always has ${key}`);
    } else if (enabled) {
      throw new CpuModelError(`-cpu ${property}: wkvm's CPU does not implement ${key}`);
    }
  }
  // CORE_ISA's own order, so the default -cpu rv64 gives exactly CORE_ISA.
  return CORE_ISA.split('_').filter((part, index) => index === 0 || !OPTIONAL_EXTENSIONS.includes(part) || extensions.has(part)).join('_');
}
