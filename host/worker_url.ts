// Worker threads run compiled JavaScript. From dist/ a worker's module sits beside the module that starts
// it; from the TypeScript sources (tests run those) the compiled one in dist/ is used.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** `fileName` beside `moduleUrl` if it exists there, else dist/host/`hostDir`/`fileName` (for host/`hostDir`/ sources). */
export function compiledWorkerUrl(moduleUrl: string, hostDir: string, fileName: string): URL {
  const sibling = new URL(`./${fileName}`, moduleUrl);
  if (existsSync(fileURLToPath(sibling))) return sibling;
  return new URL(`../../dist/host/${hostDir}/${fileName}`, moduleUrl);
}
