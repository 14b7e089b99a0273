import { describe, it, expect } from 'vitest';
import { CORE_ISA, CpuModelError, isaExtensionsMissing, isaForCpu } from '../../../host/kvm/isa.js';

describe('isaExtensionsMissing', () => {
  it('finds nothing missing in the core\'s own ISA, or in RV64GC spelled with g', () => {
    expect(isaExtensionsMissing(CORE_ISA)).toEqual([]);
    expect(isaExtensionsMissing('rv64gc')).toEqual([]);
    expect(isaExtensionsMissing('RV64IMAFDC_Zicsr_Zba')).toEqual([]);
  });

  it('names single letters and multi-letter extensions the core lacks, in the order given', () => {
    expect(isaExtensionsMissing('rv64imafdch_zicsr_zifencei_zihintpause_zba_zbb_zbc_zbs_sstc')).toEqual(['h']);
    expect(isaExtensionsMissing('rv64imafdcv_zicbom_svpbmt_zba')).toEqual(['v', 'zicbom', 'svpbmt']);
    expect(isaExtensionsMissing('rv64i_m_a_f_d_c_h', 'rv64imafdc')).toEqual(['h']);
  });
});

describe('isaForCpu (-cpu)', () => {
  it('gives the core\'s ISA for rv64 and max, and plain RV64GC for sifive-u54', () => {
    expect(isaForCpu('rv64')).toBe(CORE_ISA);
    expect(isaForCpu('max')).toBe(CORE_ISA);
    expect(isaForCpu('sifive-u54')).toBe('rv64imafdc_zicsr_zifencei');
  });

  it('drops what a property turns off, in QEMU\'s spellings (any case, false/off), and takes h=false as what wkvm is', () => {
    expect(isaForCpu('rv64,sstc=false,h=false')).toBe('rv64imafdc_zicsr_zifencei_zihintpause_zba_zbb_zbc_zbs');
    expect(isaForCpu('rv64,h=false,sstc=false,Zihintpause=false')).toBe('rv64imafdc_zicsr_zifencei_zba_zbb_zbc_zbs');
    expect(isaForCpu('rv64,zba=off,zbb=off,zbc=off,zbs=off')).toBe('rv64imafdc_zicsr_zifencei_zihintpause_sstc');
    expect(isaForCpu('sifive-u54,zbb=on')).toBe('rv64imafdc_zicsr_zifencei_zbb');
    expect(isaForCpu('rv64,pmp=true,mmu=on,Zifencei=true,c=true,priv_spec=v1.12.0')).toBe(CORE_ISA);
  });

  it('refuses models and extensions wkvm has not, and properties it does not know', () => {
    expect(() => isaForCpu('thead-c906')).toThrow(/-cpu thead-c906: unsupported CPU model/);
    expect(() => isaForCpu('rv64,v=true')).toThrow(/does not implement v/);
    expect(() => isaForCpu('rv64,h=on')).toThrow(/does not implement h/);
    expect(() => isaForCpu('rv64,vlen=128')).toThrow(/vlen=128: unsupported CPU property/);
    expect(() => isaForCpu('rv64,mmu=false')).toThrow(/always has mmu/);
    expect(() => isaForCpu('rv64,priv_spec=v1.10.0')).toThrow(/privileged spec v1\.12\.0/);
    expect(() => isaForCpu('rv64,sstc=maybe')).toThrow(/expected on\/off/);
    expect(() => isaForCpu('rv64,sstc=maybe')).toThrow(CpuModelError);
  });
});
