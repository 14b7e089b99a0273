import { describe, it, expect } from 'vitest';
import { CORE_ISA, isaExtensionsMissing } from '../../../host/kvm/isa.js';

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
