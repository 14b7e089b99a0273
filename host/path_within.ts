// Whether a resolved host path lies inside a directory, for the servers that give a guest one host
// directory (9p's -fsdev local, the user network's tftp=) and must never let it out. Node-only (node:path).
import { sep } from 'node:path';

/** Whether `path` is `root` or below it; both must be resolved (realpath) already. */
export function isWithinDirectory(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}
