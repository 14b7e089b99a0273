// One TCP connection of the user network's NAT, terminated in the backend (RFC 793): the guest talks TCP
// to this endpoint, which relays the bytes to a host socket (NatStream). Either side may open it: the guest
// (its SYN is answered once the host connection is up, or reset if that fails) or a hostfwd listener (this
// endpoint sends the SYN). The link to the guest is virtual, so there is no congestion control: data goes
// out as far as the guest's window allows, out-of-order segments are dropped with a duplicate ACK, and
// whatever stays unacknowledged for a while is sent again from the oldest byte (the NIC can drop frames).
// No window scaling, SACK or timestamps are offered, so the guest's window is its raw 16-bit field.
import type { NatStream, NatStreamEvents } from './nat.js';
import { TcpFlag, type TcpHeader, type TcpSegment } from './packet.js';

/**
 * The most this endpoint lets the guest send ahead: what the host socket has not yet passed on counts
 * against it, so a guest cannot fill the VMM's memory faster than the host's network drains it.
 */
const OUR_WINDOW = 0xffff;
/** The MSS this endpoint advertises and the most it sends per segment (Ethernet's 1500 - 40). */
export const TCP_MAX_SEGMENT = 1460;
/** RFC 1122's default when the peer sends no MSS option. */
const DEFAULT_MSS = 536;
const RETRANSMIT_MS = 1000;
const MAX_RETRANSMITS = 8;

/** A segment for the guest; the backend adds ports and addresses. */
export interface TcpOutput extends Omit<TcpHeader, 'sourcePort' | 'destinationPort'> {
  readonly data?: Uint8Array;
}

export interface TcpConnectionHooks {
  output(segment: TcpOutput): void;
  /** The connection is over: forget it. */
  closed(): void;
  log?(message: string): void;
}

type State = 'connecting' | 'syn-sent' | 'syn-received' | 'established' | 'closed';

const seqDiff = (a: number, b: number): number => (a - b) | 0;

/** A reset answering a segment that belongs to no connection (RFC 793, "Reset Generation"), or null for a RST. */
export function resetFor(segment: TcpSegment): TcpOutput | null {
  if ((segment.flags & TcpFlag.rst) !== 0) return null;
  if ((segment.flags & TcpFlag.ack) !== 0) return { flags: TcpFlag.rst, seq: segment.ack, ack: 0, window: 0 };
  const length = segment.dataLength + ((segment.flags & TcpFlag.syn) !== 0 ? 1 : 0) + ((segment.flags & TcpFlag.fin) !== 0 ? 1 : 0);
  return { flags: TcpFlag.rst | TcpFlag.ack, seq: 0, ack: (segment.seq + length) >>> 0, window: 0 };
}

export class TcpConnection implements NatStreamEvents {
  private state: State;
  private stream: NatStream | null = null;
  private readonly iss: number;
  /** Oldest unacknowledged sequence number, and the next to send. */
  private sndUna: number;
  private sndNxt: number;
  private sndWnd = 0;
  private mss = DEFAULT_MSS;
  private rcvNxt = 0;
  /** Bytes for the guest from sequence number `bufSeq` on: unacknowledged, then unsent. */
  private buf = new Uint8Array(4096);
  private bufStart = 0;
  private bufEnd = 0;
  private bufSeq: number;
  private synOutstanding = true;
  private hostEnded = false;
  private finSent = false;
  private finAcked = false;
  private guestFin = false;
  private paused = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private retransmits = 0;

  private constructor(private readonly hooks: TcpConnectionHooks, state: State, iss: number) {
    this.state = state;
    this.iss = iss >>> 0;
    this.sndUna = this.iss;
    this.sndNxt = this.iss;
    this.bufSeq = (this.iss + 1) >>> 0;
  }

  /** The guest's SYN: the endpoint waits for connected() or failed() from the host connection. */
  static fromGuest(hooks: TcpConnectionHooks, syn: TcpSegment, iss: number): TcpConnection {
    const connection = new TcpConnection(hooks, 'connecting', iss);
    connection.rcvNxt = (syn.seq + 1) >>> 0;
    connection.takePeerSyn(syn);
    return connection;
  }

  /** A host connection forwarded to the guest: sends the SYN at once. */
  static toGuest(hooks: TcpConnectionHooks, stream: NatStream, iss: number): TcpConnection {
    const connection = new TcpConnection(hooks, 'syn-sent', iss);
    connection.stream = stream;
    connection.sendSyn();
    return connection;
  }

  /** The host stream of a guest-opened connection, once the backend has it. */
  bind(stream: NatStream): void {
    this.stream = stream;
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  // NatStreamEvents: the host side.

  connected(): void {
    if (this.state !== 'connecting') return;
    this.state = 'syn-received';
    this.sendSyn();
  }

  data(bytes: Uint8Array): void {
    if (this.state === 'closed' || this.hostEnded) return;
    this.append(bytes);
    this.pump();
  }

  end(): void {
    if (this.state === 'closed') return;
    this.hostEnded = true;
    this.pump();
  }

  drained(): void {
    // The window the guest last heard of may have been closed: tell it that it is open again.
    if (this.state === 'established' && !this.guestFin) this.sendAck();
  }

  failed(reason: string): void {
    if (this.state === 'closed') return;
    this.hooks.log?.(`user net: TCP connection reset (${reason})`);
    if (this.state === 'connecting') this.hooks.output({ flags: TcpFlag.rst | TcpFlag.ack, seq: 0, ack: this.rcvNxt, window: 0 });
    else this.hooks.output({ flags: TcpFlag.rst | TcpFlag.ack, seq: this.sndNxt, ack: this.rcvNxt, window: 0 });
    this.finish(false);
  }

  /** Ends the connection from the backend (close()): the host stream is dropped, the guest is not told. */
  abort(): void {
    if (this.state !== 'closed') this.finish(true);
  }

  // The guest side.

  segment(segment: TcpSegment, data: Uint8Array): void {
    const flags = segment.flags;
    if (this.state === 'closed') return;
    if ((flags & TcpFlag.rst) !== 0) {
      // In SYN-SENT a reset counts only if it acknowledges our SYN; elsewhere one at the expected place.
      const valid = this.state === 'syn-sent' ? (flags & TcpFlag.ack) !== 0 && segment.ack === this.sndNxt : segment.seq === this.rcvNxt;
      if (valid) this.finish(true);
      return;
    }
    switch (this.state) {
      case 'connecting':
        return; // a repeated SYN while the host connects
      case 'syn-sent':
        this.synSentSegment(segment);
        return;
      case 'syn-received':
        if ((flags & TcpFlag.syn) !== 0) {
          this.sendSyn(); // our SYN-ACK was lost
          return;
        }
        if ((flags & TcpFlag.ack) === 0) return;
        if (segment.ack !== ((this.iss + 1) >>> 0)) {
          this.hooks.output({ flags: TcpFlag.rst, seq: segment.ack, ack: 0, window: 0 });
          return;
        }
        this.state = 'established';
        break;
      default:
        if ((flags & TcpFlag.syn) !== 0) {
          this.sendAck(); // a stray SYN in a synchronized state is answered with an ACK
          return;
        }
    }
    if ((flags & TcpFlag.ack) !== 0) this.takeAck(segment);
    this.takeData(segment, data);
    this.pump();
    this.closeIfDone();
  }

  private synSentSegment(segment: TcpSegment): void {
    const flags = segment.flags;
    if ((flags & TcpFlag.ack) !== 0 && segment.ack !== this.sndNxt) {
      this.hooks.output({ flags: TcpFlag.rst, seq: segment.ack, ack: 0, window: 0 });
      return;
    }
    if ((flags & (TcpFlag.syn | TcpFlag.ack)) !== (TcpFlag.syn | TcpFlag.ack)) return;
    this.rcvNxt = (segment.seq + 1) >>> 0;
    this.takePeerSyn(segment);
    this.synOutstanding = false;
    this.sndUna = segment.ack;
    this.state = 'established';
    this.retransmits = 0;
    this.sendAck();
    this.stream?.resume();
    this.pump();
  }

  private takePeerSyn(syn: TcpSegment): void {
    this.sndWnd = syn.window;
    this.mss = Math.min(TCP_MAX_SEGMENT, syn.mss ?? DEFAULT_MSS);
  }

  private takeAck(segment: TcpSegment): void {
    const ack = segment.ack;
    const acked = seqDiff(ack, this.sndUna);
    if (acked < 0 || seqDiff(ack, this.sndNxt) > 0) return; // old, or for what was never sent
    this.sndWnd = segment.window;
    if (acked === 0) return;
    let rest = acked;
    if (this.synOutstanding) {
      this.synOutstanding = false;
      rest--;
    }
    const data = Math.min(rest, this.bufEnd - this.bufStart);
    this.bufStart += data;
    this.bufSeq = (this.bufSeq + data) >>> 0;
    rest -= data;
    if (rest > 0 && this.finSent) this.finAcked = true;
    this.sndUna = ack;
    this.retransmits = 0;
    this.stopTimer();
    if (this.sndUna !== this.sndNxt) this.startTimer();
  }

  private takeData(segment: TcpSegment, data: Uint8Array): void {
    let fin = (segment.flags & TcpFlag.fin) !== 0;
    if (data.length === 0 && !fin) return;
    let bytes = data;
    // A retransmission overlapping what arrived already is trimmed; anything after a gap is dropped.
    const early = seqDiff(this.rcvNxt, segment.seq);
    if (early < 0 || this.guestFin) {
      this.sendAck();
      return;
    }
    if (early > 0) {
      if (early > bytes.length) {
        this.sendAck();
        return;
      }
      bytes = bytes.subarray(early);
    }
    // A guest that sends past the window it was given has the excess dropped (it resends it later).
    const room = this.window();
    if (bytes.length > room) {
      bytes = bytes.subarray(0, room);
      fin = false;
    }
    if (bytes.length > 0) {
      this.stream?.write(bytes.slice());
      this.rcvNxt = (this.rcvNxt + bytes.length) >>> 0;
    }
    if (fin) {
      this.rcvNxt = (this.rcvNxt + 1) >>> 0;
      this.guestFin = true;
      this.stream?.end();
    }
    this.sendAck();
  }

  // Sending to the guest.

  private append(bytes: Uint8Array): void {
    const length = this.bufEnd - this.bufStart;
    if (this.bufEnd + bytes.length > this.buf.length) {
      if (length + bytes.length <= this.buf.length) {
        this.buf.copyWithin(0, this.bufStart, this.bufEnd);
      } else {
        const grown = new Uint8Array((length + bytes.length) * 2);
        grown.set(this.buf.subarray(this.bufStart, this.bufEnd), 0);
        this.buf = grown;
      }
      this.bufStart = 0;
      this.bufEnd = length;
    }
    this.buf.set(bytes, this.bufEnd);
    this.bufEnd += bytes.length;
  }

  /** Sends what the guest's window allows, then our FIN once the host has ended and all data went. */
  private pump(): void {
    if (this.state !== 'established') return;
    const buffered = this.bufEnd - this.bufStart;
    let offset = seqDiff(this.sndNxt, this.bufSeq);
    while (offset < buffered) {
      const room = this.sndWnd - seqDiff(this.sndNxt, this.sndUna);
      const size = Math.min(this.mss, buffered - offset, room);
      if (size <= 0) break;
      const data = this.buf.slice(this.bufStart + offset, this.bufStart + offset + size);
      this.hooks.output({ flags: TcpFlag.ack | TcpFlag.psh, seq: this.sndNxt, ack: this.rcvNxt, window: this.window(), data });
      this.sndNxt = (this.sndNxt + size) >>> 0;
      offset += size;
    }
    if (offset >= buffered && this.hostEnded && !this.finSent) {
      this.hooks.output({ flags: TcpFlag.fin | TcpFlag.ack, seq: this.sndNxt, ack: this.rcvNxt, window: this.window() });
      this.sndNxt = (this.sndNxt + 1) >>> 0;
      this.finSent = true;
    }
    if (this.sndUna !== this.sndNxt && this.timer === null) this.startTimer();
    // Backpressure: the host socket waits while bytes wait for the guest's window.
    const waiting = offset < buffered;
    if (waiting && !this.paused) this.stream?.pause();
    else if (!waiting && this.paused) this.stream?.resume();
    this.paused = waiting;
  }

  private sendSyn(): void {
    const flags = this.state === 'syn-sent' ? TcpFlag.syn : TcpFlag.syn | TcpFlag.ack;
    this.hooks.output({ flags, seq: this.iss, ack: this.state === 'syn-sent' ? 0 : this.rcvNxt, window: this.window(), mss: TCP_MAX_SEGMENT });
    this.sndNxt = (this.iss + 1) >>> 0;
    this.startTimer();
  }

  private window(): number {
    return Math.max(0, OUR_WINDOW - (this.stream?.bufferedBytes ?? 0));
  }

  private sendAck(): void {
    this.hooks.output({ flags: TcpFlag.ack, seq: this.sndNxt, ack: this.rcvNxt, window: this.window() });
  }

  private startTimer(): void {
    this.stopTimer();
    const timer = setTimeout(() => this.retransmit(), RETRANSMIT_MS);
    (timer as { unref?: () => void }).unref?.();
    this.timer = timer;
  }

  private stopTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Nothing acknowledged for a while: everything from the oldest unacknowledged byte goes again. */
  private retransmit(): void {
    this.timer = null;
    if (this.state === 'closed' || this.sndUna === this.sndNxt) return;
    if (++this.retransmits > MAX_RETRANSMITS) {
      this.failed('the guest stopped answering');
      return;
    }
    if (this.synOutstanding) {
      this.sendSyn();
      return;
    }
    this.sndNxt = this.sndUna;
    if (this.finSent && !this.finAcked) this.finSent = false;
    this.pump();
    if (this.timer === null) this.startTimer();
  }

  private closeIfDone(): void {
    if (this.guestFin && this.finAcked) this.finish(false);
  }

  private finish(dropStream: boolean): void {
    this.state = 'closed';
    this.stopTimer();
    if (dropStream) this.stream?.destroy();
    this.stream = null;
    this.buf = new Uint8Array(0);
    this.bufStart = this.bufEnd = 0;
    this.hooks.closed();
  }
}
