// Runs one of the project's scripts (scripts/start.mjs, scripts/guest/build.sh) as a user would,
// feeding stdin only once the console shows a marker: bytes sent before the guest's tty is open
// are dropped, as on real hardware.
import { spawn } from 'node:child_process';

export interface ScriptResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface ScriptOptions {
  cwd: string;
  env?: Record<string, string | undefined>;
  input?: Array<{ after: string; send: string }>;
  timeoutMs?: number;
}

export function runScript(command: string, args: string[], options: ScriptOptions): Promise<ScriptResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: mergeEnv(process.env, options.env ?? {}),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const pending = [...(options.input ?? [])];
    const feed = () => {
      while (pending.length > 0 && stdout.includes(pending[0]!.after)) child.stdin.write(pending.shift()!.send);
    };
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('latin1');
      feed();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('latin1');
    });
    child.stdin.on('error', () => {});
    if (pending.length === 0) child.stdin.end();
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} timed out; stdout so far:\n${stdout.slice(-3000)}\nstderr:\n${stderr}`));
    }, options.timeoutMs ?? 45_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** process.env plus overrides; an override of undefined removes the variable. */
function mergeEnv(base: NodeJS.ProcessEnv, overrides: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}
