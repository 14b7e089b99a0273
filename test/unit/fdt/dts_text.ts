// Test helpers: run the reference device-tree compiler (dtc) and read the DTS text it prints into a
// tree of raw property bytes, so trees can be compared with whatever dtc chose to print a value as
// (`<0x384000>` and `"\08@"` are the same four bytes).

import { spawnSync } from 'node:child_process';

export interface DtsNode {
  name: string;
  path: string;
  properties: Map<string, Uint8Array>;
  children: DtsNode[];
}

export interface DtcResult {
  stdout: string;
  /** dtc's warnings, one per line. */
  warnings: string[];
}

/** Runs dtc; fails (does not skip) when it is missing, since CI is expected to install it. */
export function runDtc(args: readonly string[]): DtcResult {
  const result = spawnSync('dtc', args, { encoding: 'utf8' });
  if (result.error !== undefined) {
    const code = (result.error as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT'
        ? 'dtc is not installed: these tests need the device tree compiler (apt-get install -y device-tree-compiler)'
        : `could not run dtc: ${result.error.message}`,
    );
  }
  if (result.status !== 0) throw new Error(`dtc ${args.join(' ')} exited with ${result.status}:\n${result.stderr}`);
  return { stdout: result.stdout, warnings: result.stderr.split('\n').filter((line) => line.trim() !== '') };
}

/** Parses DTS as `dtc -O dts` prints it (no labels, includes or phandle references). */
export function parseDtsText(text: string): DtsNode {
  let pos = 0;
  const fail = (what: string): never => {
    throw new Error(`DTS parse error: ${what} at "${text.slice(pos, pos + 40)}"`);
  };
  const skipSpace = (): void => {
    while (pos < text.length) {
      if (/\s/.test(text[pos])) pos++;
      else if (text.startsWith('//', pos)) pos = text.indexOf('\n', pos) < 0 ? text.length : text.indexOf('\n', pos);
      else if (text.startsWith('/*', pos)) pos = text.indexOf('*/', pos) + 2;
      else break;
    }
  };
  const expect = (literal: string): void => {
    skipSpace();
    if (!text.startsWith(literal, pos)) fail(`expected "${literal}"`);
    pos += literal.length;
  };
  const readName = (): string => {
    skipSpace();
    const match = /^[A-Za-z0-9,._+?#@\/-]+/.exec(text.slice(pos));
    if (match === null) fail('expected a name');
    pos += match![0].length;
    return match![0];
  };

  const readValue = (): Uint8Array => {
    const bytes: number[] = [];
    for (;;) {
      skipSpace();
      const open = text[pos++];
      if (open === '<') {
        const end = text.indexOf('>', pos);
        for (const cell of text.slice(pos, end).trim().split(/\s+/).filter((c) => c !== '')) {
          const value = Number(cell);
          bytes.push((value >>> 24) & 0xff, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff);
        }
        pos = end + 1;
      } else if (open === '"') {
        while (text[pos] !== '"') {
          if (text[pos] === '\\') {
            pos++;
            const escape = text[pos++];
            if (escape === 'x') {
              bytes.push(parseInt(text.slice(pos, pos + 2), 16));
              pos += 2;
            } else if (/[0-7]/.test(escape)) {
              let octal = escape;
              while (octal.length < 3 && /[0-7]/.test(text[pos])) octal += text[pos++];
              bytes.push(parseInt(octal, 8));
            } else {
              bytes.push(({ n: 10, t: 9, r: 13, a: 7, b: 8, f: 12, v: 11 } as Record<string, number>)[escape] ?? escape.charCodeAt(0));
            }
          } else {
            bytes.push(...Buffer.from(text[pos++], 'utf8'));
          }
        }
        pos++;
        bytes.push(0);
      } else if (open === '[') {
        const end = text.indexOf(']', pos);
        for (const byte of text.slice(pos, end).trim().split(/\s+/).filter((b) => b !== '')) bytes.push(parseInt(byte, 16));
        pos = end + 1;
      } else {
        pos--;
        fail('expected a value');
      }
      skipSpace();
      if (text[pos] === ',') pos++;
      else return new Uint8Array(bytes);
    }
  };

  const readNodeBody = (node: DtsNode): void => {
    expect('{');
    for (;;) {
      skipSpace();
      if (text.startsWith('};', pos)) {
        pos += 2;
        return;
      }
      const name = readName();
      skipSpace();
      if (text[pos] === '{') {
        const child: DtsNode = {
          name,
          path: node.path === '/' ? `/${name}` : `${node.path}/${name}`,
          properties: new Map(),
          children: [],
        };
        node.children.push(child);
        readNodeBody(child);
      } else if (text[pos] === '=') {
        pos++;
        node.properties.set(name, readValue());
        expect(';');
      } else {
        expect(';');
        node.properties.set(name, new Uint8Array(0));
      }
    }
  };

  expect('/dts-v1/;');
  skipSpace();
  while (text.startsWith('/memreserve/', pos)) pos = text.indexOf(';', pos) + 1;
  expect('/');
  const root: DtsNode = { name: '', path: '/', properties: new Map(), children: [] };
  readNodeBody(root);
  skipSpace();
  if (pos !== text.length) fail('trailing text');
  return root;
}

/** Every node of a tree, parents before children, in document order. */
export function allNodes<T extends { children: T[] }>(root: T): T[] {
  return [root, ...root.children.flatMap((child) => allNodes(child))];
}

export function cells(value: Uint8Array): number[] {
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  return Array.from({ length: value.length / 4 }, (_, i) => view.getUint32(i * 4));
}

export function hex(value: number): string {
  return `0x${value.toString(16)}`;
}
