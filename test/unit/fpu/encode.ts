// Encodings of the F and D computational instructions, by mnemonic, for the tests.

export type OperandKind = 'S' | 'D' | 'X';

export interface FpInstructionSpec {
  mnemonic: string;
  sources: OperandKind[];
  destination: OperandKind;
  /** The funct3 field is a rounding mode (otherwise it selects the operation). */
  rounded: boolean;
  encode(fields: { rd: number; rs1: number; rs2?: number; rs3?: number; rm?: number }): number;
}

export class UnknownMnemonicError extends Error {
  constructor(readonly mnemonic: string) {
    super(`no encoding for FP mnemonic '${mnemonic}'`);
    this.name = 'UnknownMnemonicError';
  }
}

const OP_FP = 0x53;

function rType(funct7: number, fixedRs2: number | undefined, fixedFunct3: number | undefined) {
  return (f: { rd: number; rs1: number; rs2?: number; rm?: number }): number =>
    ((funct7 << 25) |
      ((fixedRs2 ?? f.rs2 ?? 0) << 20) |
      (f.rs1 << 15) |
      ((fixedFunct3 ?? f.rm ?? 0) << 12) |
      (f.rd << 7) |
      OP_FP) >>>
    0;
}

const specs = new Map<string, FpInstructionSpec>();

function add(
  mnemonic: string,
  sources: OperandKind[],
  destination: OperandKind,
  rounded: boolean,
  encode: FpInstructionSpec['encode'],
): void {
  specs.set(mnemonic, { mnemonic, sources, destination, rounded, encode });
}

const formats: [string, OperandKind, number][] = [
  ['s', 'S', 0],
  ['d', 'D', 1],
];
const integers: [string, number][] = [
  ['w', 0],
  ['wu', 1],
  ['l', 2],
  ['lu', 3],
];

for (const [suffix, kind, fmt] of formats) {
  for (const [name, base] of [
    ['fadd', 0x00],
    ['fsub', 0x04],
    ['fmul', 0x08],
    ['fdiv', 0x0c],
  ] as const) {
    add(`${name}.${suffix}`, [kind, kind], kind, true, rType(base | fmt, undefined, undefined));
  }
  add(`fsqrt.${suffix}`, [kind], kind, true, rType(0x2c | fmt, 0, undefined));
  for (const [name, f3] of [
    ['fsgnj', 0],
    ['fsgnjn', 1],
    ['fsgnjx', 2],
  ] as const) {
    add(`${name}.${suffix}`, [kind, kind], kind, false, rType(0x10 | fmt, undefined, f3));
  }
  add(`fmin.${suffix}`, [kind, kind], kind, false, rType(0x14 | fmt, undefined, 0));
  add(`fmax.${suffix}`, [kind, kind], kind, false, rType(0x14 | fmt, undefined, 1));
  add(`feq.${suffix}`, [kind, kind], 'X', false, rType(0x50 | fmt, undefined, 2));
  add(`flt.${suffix}`, [kind, kind], 'X', false, rType(0x50 | fmt, undefined, 1));
  add(`fle.${suffix}`, [kind, kind], 'X', false, rType(0x50 | fmt, undefined, 0));
  add(`fclass.${suffix}`, [kind], 'X', false, rType(0x70 | fmt, 0, 1));
  for (const [intName, sel] of integers) {
    add(`fcvt.${intName}.${suffix}`, [kind], 'X', true, rType(0x60 | fmt, sel, undefined));
    add(`fcvt.${suffix}.${intName}`, ['X'], kind, true, rType(0x68 | fmt, sel, undefined));
  }
  for (const [name, opcode] of [
    ['fmadd', 0x43],
    ['fmsub', 0x47],
    ['fnmsub', 0x4b],
    ['fnmadd', 0x4f],
  ] as const) {
    add(`${name}.${suffix}`, [kind, kind, kind], kind, true, (f) =>
      (((f.rs3 ?? 0) << 27) |
        (fmt << 25) |
        ((f.rs2 ?? 0) << 20) |
        (f.rs1 << 15) |
        ((f.rm ?? 0) << 12) |
        (f.rd << 7) |
        opcode) >>>
      0,
    );
  }
}
add('fcvt.s.d', ['D'], 'S', true, rType(0x20, 1, undefined));
add('fcvt.d.s', ['S'], 'D', true, rType(0x21, 0, undefined));
add('fmv.x.w', ['S'], 'X', false, rType(0x70, 0, 0));
add('fmv.x.d', ['D'], 'X', false, rType(0x71, 0, 0));
add('fmv.w.x', ['X'], 'S', false, rType(0x78, 0, 0));
add('fmv.d.x', ['X'], 'D', false, rType(0x79, 0, 0));

export function fpSpec(mnemonic: string): FpInstructionSpec {
  const spec = specs.get(mnemonic);
  if (!spec) throw new UnknownMnemonicError(mnemonic);
  return spec;
}

export function allFpMnemonics(): string[] {
  return [...specs.keys()];
}
