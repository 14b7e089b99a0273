// What the core implements, in the device tree's words: one place for the CPU's capability, the virt
// board's `riscv,isa` and the FDT writer's default.

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
