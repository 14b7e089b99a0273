// `-bios default`: like QEMU, boot the OpenSBI build the system carries. wkvm ships no firmware of its
// own, so it looks where QEMU's data files and Debian's opensbi package put theirs.
import { existsSync } from 'node:fs';

/** Where a default firmware may be, in the order tried ($WKVM_FIRMWARE first). */
export function defaultFirmwareCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const candidates: string[] = [];
  if (env.WKVM_FIRMWARE) candidates.push(env.WKVM_FIRMWARE);
  candidates.push(
    '/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin', // qemu-system-data (Debian), QEMU's own install
    '/usr/local/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin', // QEMU built from source
    '/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin', // Debian's opensbi package
  );
  return candidates;
}

/** The first default firmware that exists, or null. */
export function findDefaultFirmware(env: NodeJS.ProcessEnv = process.env, exists: (path: string) => boolean = existsSync): string | null {
  return defaultFirmwareCandidates(env).find((path) => exists(path)) ?? null;
}
