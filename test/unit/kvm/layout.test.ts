// The one memory layout (assembly/abi/layout.ts) that the core and the host share: no two per-hart
// fields may overlap, or a write to one silently changes the other (as HART_RUNNING once sat inside the
// u64 trap counter). Sizes come from each constant's comment (`// u64 …`, `// 8 × u64 …`, `// i32 …`);
// CSR slots without a comment are u64.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import * as layout from '../../../assembly/abi/layout.js';

const SIZES: Record<string, number> = { u8: 1, u16: 2, i32: 4, u32: 4, i64: 8, u64: 8 };
const source = readFileSync(new URL('../../../assembly/abi/layout.ts', import.meta.url), 'utf8');

interface Field { name: string; start: number; end: number }

function hartFields(): Field[] {
  const fields: Field[] = [];
  for (const line of source.split('\n')) {
    const m = /^export const ((?:HART|CSR|RUN)_\w+) = [^;]+;(?:\s*\/\/\s*(?:(\d+) × )?(u8|u16|i32|u32|i64|u64)\b)?/.exec(line);
    if (m === null) continue;
    const [, name, count, type] = m;
    if (['HART_SIZE', 'HART_CSR', 'HART_RUN', 'HART_TLB'].includes(name!)) continue; // region bases
    const size = type !== undefined ? SIZES[type]! * Number(count ?? 1) : name!.startsWith('CSR_') ? 8 : 0;
    if (size === 0) continue;
    const start = (layout as unknown as Record<string, number>)[name!]!;
    fields.push({ name: name!, start, end: start + size });
  }
  return fields.sort((a, b) => a.start - b.start);
}

describe('the shared memory layout', () => {
  it('knows the size of the per-hart fields it checks', () => {
    const names = hartFields().map((f) => f.name);
    for (const name of ['HART_X', 'HART_PC', 'HART_TRAP_COUNT', 'HART_RUNNING', 'CSR_MSTATUS', 'CSR_PMPADDR', 'RUN_SBI_ARGS', 'RUN_DOORBELL']) {
      expect(names).toContain(name);
    }
  });

  it('has no two per-hart fields sharing a byte, all before the TLBs', () => {
    const fields = hartFields();
    for (let i = 1; i < fields.length; i++) {
      const [a, b] = [fields[i - 1]!, fields[i]!];
      expect(a.end, `${a.name} [0x${a.start.toString(16)}, 0x${a.end.toString(16)}) overlaps ${b.name} at 0x${b.start.toString(16)}`).toBeLessThanOrEqual(b.start);
    }
    expect(fields.at(-1)!.end).toBeLessThanOrEqual(layout.HART_TLB);
  });
});
