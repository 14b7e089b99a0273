// The serial console on stdio, as QEMU's `-nographic`: raw mode on a TTY with the Ctrl-A escapes
// (Ctrl-A x quits, Ctrl-A h helps, Ctrl-A Ctrl-A sends Ctrl-A), plain byte pass-through otherwise.
// The terminal is restored on every exit path.

const CTRL_A = 0x01;

export interface StdioConsoleHandlers {
  /** Bytes for the guest. */
  input(bytes: Uint8Array): void;
  /** The user pressed Ctrl-A x. */
  quit(): void;
}

export class StdioConsole {
  private escapePending = false;
  private rawMode = false;
  private readonly onData = (chunk: Buffer) => this.handleInput(chunk);
  private readonly restoreOnExit = () => this.restoreTerminal();

  constructor(private readonly handlers: StdioConsoleHandlers) {}

  start(): void {
    const stdin = process.stdin;
    if (stdin.isTTY) {
      stdin.setRawMode(true);
      this.rawMode = true;
      process.on('exit', this.restoreOnExit);
    }
    stdin.on('data', this.onData);
    stdin.on('error', () => {});
    stdin.resume();
  }

  stop(): void {
    process.stdin.off('data', this.onData);
    process.stdin.pause();
    this.restoreTerminal();
    process.off('exit', this.restoreOnExit);
  }

  write(bytes: Uint8Array): void {
    process.stdout.write(bytes);
  }

  private restoreTerminal(): void {
    if (this.rawMode) {
      process.stdin.setRawMode(false);
      this.rawMode = false;
    }
  }

  private handleInput(chunk: Uint8Array): void {
    if (!this.rawMode) {
      this.handlers.input(chunk);
      return;
    }
    const out: number[] = [];
    for (const byte of chunk) {
      if (this.escapePending) {
        this.escapePending = false;
        if (byte === 0x78 /* x */) {
          this.handlers.input(Uint8Array.from(out));
          process.stderr.write('\r\nwkvm: terminating on signal from the console (Ctrl-A x)\r\n');
          this.handlers.quit();
          return;
        }
        if (byte === 0x68 /* h */) {
          process.stderr.write('\r\nC-a h    print this help\r\nC-a x    exit emulator\r\nC-a C-a  sends C-a\r\n');
        } else if (byte === CTRL_A) {
          out.push(CTRL_A);
        }
        continue;
      }
      if (byte === CTRL_A) this.escapePending = true;
      else out.push(byte);
    }
    if (out.length > 0) this.handlers.input(Uint8Array.from(out));
  }
}
