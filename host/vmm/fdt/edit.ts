// Changing a device tree someone else made: parse it (reader.ts), change nodes and properties in the
// tree, write it out again (writer.ts). The VMM does this to a -dtb blob, as QEMU does, to put in the
// command line and the initrd's place.
import { FdtNode, type FdtTree } from './reader.js';
import { FdtWriter } from './writer.js';

/** The blob of `tree`: its reservations, boot CPU and every node and property in order. */
export function serializeFdt(tree: FdtTree): Uint8Array {
  const writer = new FdtWriter({ bootCpuidPhys: tree.bootCpuidPhys });
  for (const { address, size } of tree.reservations) writer.addReservation(address, size);
  const write = (node: FdtNode): void => {
    writer.beginNode(node.name);
    for (const [name, value] of node.properties) writer.propBytes(name, value);
    for (const child of node.children) write(child);
    writer.endNode();
  };
  write(tree.root);
  return writer.finish();
}

/** The child `name` of `parent`, added (empty) if it has none. */
export function ensureChild(parent: FdtNode, name: string): FdtNode {
  const existing = parent.child(name);
  if (existing !== undefined) return existing;
  const child = new FdtNode(name, parent.path === '/' ? `/${name}` : `${parent.path}/${name}`);
  parent.children.push(child);
  return child;
}

/** A string property's value: the UTF-8 bytes and their NUL. */
export function fdtString(value: string): Uint8Array {
  const bytes = new TextEncoder().encode(value);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** A 64-bit value as two big-endian cells. */
export function fdtU64(value: number | bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(value));
  return out;
}
