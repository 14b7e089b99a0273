// What a browser page imports must not import Node's modules: the machine model, virtio-blk over an
// in-memory disk, the KVM-style API. Walks the static import graph of the built modules (dist/, which
// `npm test` builds first); dynamic import() is allowed (Node's worker_threads and file reads load on demand).
// The browser test boots Linux with these modules; this one names the import that would break it.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../../helpers/wkvm_cli.js';

const ENTRY_POINTS = [
  'dist/host/index.js',
  'dist/host/kvm/index.js',
  'dist/host/vmm/virt_machine.js',
  'dist/host/vmm/smp_runner.js',
  'dist/host/vmm/vcpu_web_worker.js',
  'dist/host/devices/virtio/blk.js',
  'dist/host/devices/virtio/rng.js',
  'dist/host/devices/virtio/console.js',
  'dist/host/block/raw.js',
  'dist/host/block/memory_file.js',
  'dist/host/block/qcow2/image.js',
  'dist/host/block/probe.js',
  // The socket network backends' framing and option checks (their sockets are in socket_node.ts).
  'dist/host/net/stream_framing.js',
  'dist/host/net/socket_netdev.js',
  'dist/host/net/persistent.js',
  // What only reads a command line or a domain definition (the virtio plan, libvirt domain XML).
  'dist/host/devices/virtio/plan.js',
  'dist/host/mgmt/domain_xml.js',
];

/** `import ... from '...'`, `export ... from '...'` and bare `import '...'` at the start of a line. */
const STATIC_IMPORT = /^\s*(?:import|export)\s(?:[^;'"]*?\sfrom\s)?\s*['"]([^'"]+)['"]/gm;

/** Node's Buffer, which browsers lack, used by name (a page would fail when the module loads or runs). */
const BUFFER_USE = /(?<![\w$]|[\w$)\]]\.)Buffer\.(from|alloc|allocUnsafe|concat|isBuffer|byteLength)\b/;

function nodeImports(entry: string): string[] {
  const found: string[] = [];
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    if (BUFFER_USE.test(source)) found.push(`${relative(REPO, file)} uses Node's Buffer`);
    for (const match of source.matchAll(STATIC_IMPORT)) {
      const specifier = match[1]!;
      if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier));
      else found.push(`${relative(REPO, file)} imports ${specifier}`);
    }
  };
  visit(resolve(REPO, entry));
  return found;
}

describe('modules a browser page loads', () => {
  it.each(ENTRY_POINTS)('%s imports nothing outside the project and uses no Buffer', (entry) => {
    expect(existsSync(resolve(REPO, entry)), `${entry} is built`).toBe(true);
    expect(nodeImports(entry)).toEqual([]);
  });

  it('the check sees Node imports where they are', () => {
    expect(nodeImports('dist/host/block/disk.js').some((line) => line.includes('node:fs'))).toBe(true);
    expect(nodeImports('dist/host/vmm/vcpu_worker.js')).toContain('dist/host/vmm/vcpu_worker.js imports node:worker_threads');
    expect(BUFFER_USE.test("const magic = [...Buffer.from('vhdxfile')];")).toBe(true);
    expect(BUFFER_USE.test('new ArrayBuffer(8); SharedArrayBuffer.prototype; this.bitBuffer.from')).toBe(false);
  });
});
