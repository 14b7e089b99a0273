// What the core implements, in the device tree's words: one place for the CPU's capability, the virt
// board's `riscv,isa` and the FDT writer's default.

/**
 * The ISA the core implements, as a device tree's `riscv,isa` spells it: RV64GC, Zihintpause (PAUSE is
 * a FENCE), the bit-manipulation extensions Zba/Zbb/Zbc/Zbs, and Sstc (stimecmp). QEMU 7.2's rv64 CPU
 * advertises the same list, plus H.
 */
export const CORE_ISA = 'rv64imafdc_zicsr_zifencei_zihintpause_zba_zbb_zbc_zbs_sstc';
