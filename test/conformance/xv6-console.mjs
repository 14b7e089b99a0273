// Types one command at xv6's shell prompt and waits for usertests' verdict: exit 0 on ALL TESTS PASSED,
// 1 on a FAILED test or a kernel panic, 2 when TIMEOUT seconds pass first. The console is echoed.
//   node xv6-console.mjs TIMEOUT COMMAND PROGRAM ARGS...
import { spawn } from 'node:child_process';

const [timeoutText, command, program, ...args] = process.argv.slice(2);
const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'inherit'] });
let output = '';
let typed = false;
const finish = (status, why) => {
  process.stderr.write(`\nxv6: ${why}\n`);
  child.kill();
  process.exit(status);
};
setTimeout(() => finish(2, `no verdict after ${timeoutText} s`), Number(timeoutText) * 1000).unref();
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  output += chunk.toString('latin1');
  if (!typed && output.includes('$ ')) {
    typed = true;
    child.stdin.write(`${command}\n`);
  }
  if (output.includes('ALL TESTS PASSED')) finish(0, 'ALL TESTS PASSED');
  if (/SOME TESTS FAILED|\bFAILED\b|panic:|Usage: /.test(output)) finish(1, 'a test failed, the kernel panicked or the command was wrong');
});
child.on('exit', (code) => finish(1, `the VMM exited (${code}) before a verdict`));
