// What a set of figures was measured on: they mean little without the machine, Node and commit.
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';

export interface BenchEnvironment {
  readonly date: string;
  readonly node: string;
  readonly v8: string;
  readonly cpu: string;
  readonly cores: number;
  /** 1-minute load average when the run began: other work on the machine skews every figure. */
  readonly loadAverage: number;
  readonly commit: string | null;
  /** Uncommitted changes under assembly/ or host/ (the code being measured). */
  readonly dirty: boolean | null;
  readonly qemu: string | null;
}

export function describeEnvironment(root: string, qemuPath: string | null): BenchEnvironment {
  const cpuList = cpus();
  return {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    cpu: cpuList[0]?.model.trim() ?? 'unknown',
    cores: cpuList.length,
    loadAverage: loadavg()[0]!,
    commit: tryRun('git', ['-C', root, 'rev-parse', '--short=12', 'HEAD']),
    dirty: ((status) => (status === null ? null : status.length > 0))(tryRun('git', ['-C', root, 'status', '--porcelain', '--', 'assembly', 'host'])),
    qemu: qemuPath === null ? null : tryRun(qemuPath, ['--version'])?.split('\n')[0] ?? null,
  };
}

function tryRun(command: string, args: readonly string[]): string | null {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
  } catch {
    return null;
  }
}
