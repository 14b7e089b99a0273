// The monitor's terminal side: bytes typed in, lines run through an HmpSession, the banner, the
// `(qemu) ` prompt and the echo out. One per place the monitor is reached: the stdio console's Ctrl-A c,
// -monitor stdio, and each client of -monitor tcp:/unix:. QEMU's readline redraws the whole line on
// each key with cursor escapes; this echoes plainly (a key, or backspace-space-backspace), which reads
// the same on a terminal and keeps transcripts legible. Node-free.
import { HMP_PROMPT, HmpSession, hmpBanner } from './hmp.js';
import type { MonitorTarget } from './target.js';

const BACKSPACE = 0x08;
const DELETE = 0x7f;
const CTRL_C = 0x03;
const CTRL_U = 0x15;

export class HmpTerminal {
  readonly session: HmpSession;
  private line = '';
  private lastWasCr = false;
  /** Inside an escape sequence (ESC [ ... final byte): arrow and function keys, not line editing here. */
  private inEscape: 'no' | 'esc' | 'csi' = 'no';
  private greeted = false;
  /** Lines run one at a time: a `stop` finishes before the next line's command starts. */
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly target: MonitorTarget, private readonly write: (text: string) => void) {
    this.session = new HmpSession(target);
  }

  /** The monitor gets the terminal (a client connected, or Ctrl-A c): the banner the first time, then the prompt. */
  focus(): void {
    if (!this.greeted) this.write(hmpBanner(this.target));
    this.greeted = true;
    this.write(HMP_PROMPT);
  }

  /** Typed bytes; resolves once the lines they complete have run. */
  input(bytes: Uint8Array): Promise<void> {
    for (const byte of bytes) {
      if (this.inEscape === 'esc') {
        this.inEscape = byte === 0x5b || byte === 0x4f ? 'csi' : 'no';
        continue;
      }
      if (this.inEscape === 'csi') {
        if (byte >= 0x40 && byte <= 0x7e) this.inEscape = 'no';
        continue;
      }
      if (byte === 0x1b) {
        this.inEscape = 'esc';
        continue;
      }
      const afterCr = this.lastWasCr;
      this.lastWasCr = byte === 0x0d;
      if (byte === 0x0a && afterCr) continue; // CR LF is one Enter
      if (byte === 0x0d || byte === 0x0a) {
        const line = this.line;
        this.line = '';
        this.write('\r\n');
        this.running = this.running.then(async () => {
          this.write(await this.session.execute(line));
          this.write(HMP_PROMPT);
        });
      } else if (byte === BACKSPACE || byte === DELETE) {
        if (this.line.length > 0) {
          this.line = this.line.slice(0, -1);
          this.write('\b \b');
        }
      } else if (byte === CTRL_C || byte === CTRL_U) {
        this.line = '';
        this.write(`\r\n${HMP_PROMPT}`);
      } else if (byte >= 0x20 && byte < 0x7f) {
        this.line += String.fromCharCode(byte);
        this.write(String.fromCharCode(byte));
      }
      // Other control bytes are ignored.
    }
    return this.running;
  }
}
