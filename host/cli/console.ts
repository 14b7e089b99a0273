// The serial console on stdio, as QEMU's `-nographic` (`-serial mon:stdio`): raw mode on a TTY, and
// QEMU's mux escapes on any stdin, a pipe too, as QEMU's mux reads them: Ctrl-A x quits, Ctrl-A h
// helps, Ctrl-A c switches the keyboard between the guest's serial console and the monitor, Ctrl-A
// Ctrl-A sends Ctrl-A. While the monitor has the keyboard the guest's output still shows, as on QEMU's
// mux (only input is switched). The terminal is restored on every exit path.

const CTRL_A = 0x01;

/** The monitor on the console's mux (an HmpTerminal). */
export interface ConsoleMonitor {
  /** It gets the keyboard: banner (first time) and prompt. */
  focus(): void;
  input(bytes: Uint8Array): Promise<void>;
}

export interface StdioConsoleHandlers {
  /** Bytes for the guest. */
  input(bytes: Uint8Array): void;
  /** The user pressed Ctrl-A x. */
  quit(): void;
  /** The monitor Ctrl-A c switches to; none: Ctrl-A c does nothing (QEMU with -monitor or -qmp elsewhere). */
  monitor?: ConsoleMonitor;
}

const HELP = [
  'C-a h    print this help',
  'C-a x    exit emulator',
  'C-a c    switch between console and monitor',
  'C-a C-a  sends C-a',
];

export class StdioConsole {
  private escapePending = false;
  private rawMode = false;
  /** Where typed bytes go: the guest, or the monitor after Ctrl-A c. */
  private focus: 'guest' | 'monitor' = 'guest';
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
    const out: number[] = [];
    // Bytes typed before an escape go where the keyboard was until then.
    const flush = () => {
      if (out.length === 0) return;
      const bytes = Uint8Array.from(out.splice(0));
      if (this.focus === 'monitor' && this.handlers.monitor !== undefined) void this.handlers.monitor.input(bytes);
      else this.handlers.input(bytes);
    };
    for (const byte of chunk) {
      if (this.escapePending) {
        this.escapePending = false;
        if (byte === 0x78 /* x */) {
          flush();
          process.stderr.write('\r\nwkvm: terminating on signal from the console (Ctrl-A x)\r\n');
          this.handlers.quit();
          return;
        }
        if (byte === 0x68 /* h */) {
          process.stderr.write(`\r\n${HELP.join('\r\n')}\r\n`);
        } else if (byte === 0x63 /* c */) {
          flush();
          this.switchFocus();
        } else if (byte === CTRL_A) {
          out.push(CTRL_A);
        }
        continue;
      }
      if (byte === CTRL_A) this.escapePending = true;
      else out.push(byte);
    }
    flush();
  }

  private switchFocus(): void {
    const monitor = this.handlers.monitor;
    if (monitor === undefined) return;
    if (this.focus === 'guest') {
      this.focus = 'monitor';
      process.stdout.write('\r\n');
      monitor.focus();
    } else {
      this.focus = 'guest';
      process.stdout.write('\r\n');
    }
  }
}
