// The user network's TFTP server (QEMU's -netdev user,tftp=DIR[,bootfile=FILE]): read requests to
// 10.0.2.2:69 are served from a directory, as slirp does for PXE and U-Boot network boots. RFC 1350 in octet
// mode, with the blksize (RFC 2348) and tsize (RFC 2349) options; write requests are refused, as slirp
// refuses them. Replies come from port 69 (slirp's way, which every client accepts: the client takes the
// TID of the first reply). Node-free: the files come through a TftpFileSource.

/** TFTP's well-known port on 10.0.2.2. */
export const TFTP_PORT = 69;

const Opcode = { readRequest: 1, writeRequest: 2, data: 3, ack: 4, error: 5, optionAck: 6 } as const;
export const TftpErrorCode = { notDefined: 0, fileNotFound: 1, accessViolation: 2, illegalOperation: 4, unknownTransfer: 5, optionRefused: 8 } as const;

/** RFC 1350's block size, and the largest a client may ask for that still fits a 1500-byte MTU (IP 20 + UDP 8 + TFTP 4). */
const DEFAULT_BLOCK_SIZE = 512;
const MIN_BLOCK_SIZE = 8;
export const MAX_BLOCK_SIZE = 1468;
/** Transfers at once (slirp keeps 20); a further request gets an error rather than more host files open. */
export const MAX_TFTP_SESSIONS = 20;
/** A transfer the client has not acknowledged for this long is dropped (slirp: 5 s). */
const SESSION_IDLE_MS = 5_000;
/** Longest file name taken (slirp's request is one 512-byte datagram too). */
const MAX_NAME = 512;

/** A file opened for reading. */
export interface TftpFile {
  readonly size: number;
  /** Up to `length` bytes at `offset` (fewer only at the end of the file). */
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): void;
}

/** Where the server's files come from. */
export interface TftpFileSource {
  /** The file `name` (as the client wrote it, relative to the served directory); null if it is not there or may not be read. */
  open(name: string): Promise<TftpFile | null>;
}

/** A datagram for the guest: to its address and port, from 10.0.2.2:69. */
export type TftpSend = (guestAddress: number, guestPort: number, payload: Uint8Array) => void;

interface Session {
  readonly key: string;
  readonly guestAddress: number;
  readonly guestPort: number;
  file: TftpFile | null;
  blockSize: number;
  /** The block last sent (0: the option acknowledgement, or nothing yet), counted past 65535. */
  block: number;
  /** Its payload, kept to send again when the client asks for it again. */
  lastData: Uint8Array | null;
  /** Whether the last block (shorter than blockSize) has been sent. */
  finished: boolean;
  /** A read is in progress: acknowledgements meanwhile are the client repeating itself. */
  reading: boolean;
  timer: ReturnType<typeof setTimeout> | null;
}

export interface TftpServerOptions {
  readonly files: TftpFileSource;
  readonly send: TftpSend;
  /** How idle sessions are timed out (default setTimeout; tests may pass their own). */
  readonly setTimer?: (task: () => void, ms: number) => ReturnType<typeof setTimeout>;
  readonly clearTimer?: (timer: ReturnType<typeof setTimeout>) => void;
}

export class TftpServer {
  private readonly sessions = new Map<string, Session>();
  private readonly setTimer: (task: () => void, ms: number) => ReturnType<typeof setTimeout>;
  private readonly clearTimer: (timer: ReturnType<typeof setTimeout>) => void;
  private closed = false;

  constructor(private readonly options: TftpServerOptions) {
    this.setTimer = options.setTimer ?? ((task, ms) => setTimeout(task, ms));
    this.clearTimer = options.clearTimer ?? ((timer) => clearTimeout(timer));
  }

  /** Transfers in progress. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** A datagram from the guest to 10.0.2.2:69. */
  receive(guestAddress: number, guestPort: number, packet: Uint8Array): void {
    if (this.closed || packet.length < 2) return;
    const opcode = (packet[0]! << 8) | packet[1]!;
    const key = `${guestAddress}:${guestPort}`;
    switch (opcode) {
      case Opcode.readRequest:
        this.startRead(key, guestAddress, guestPort, packet);
        break;
      case Opcode.writeRequest:
        this.sendError(guestAddress, guestPort, TftpErrorCode.accessViolation, 'Access violation');
        break;
      case Opcode.ack: {
        const session = this.sessions.get(key);
        if (session === undefined) {
          if (packet.length >= 4) this.sendError(guestAddress, guestPort, TftpErrorCode.unknownTransfer, 'Unknown transfer ID');
          return;
        }
        if (packet.length >= 4) this.acknowledged(session, (packet[2]! << 8) | packet[3]!);
        break;
      }
      case Opcode.error:
        this.end(key);
        break;
      default:
        this.sendError(guestAddress, guestPort, TftpErrorCode.illegalOperation, 'Illegal TFTP operation');
    }
  }

  close(): void {
    this.closed = true;
    for (const key of [...this.sessions.keys()]) this.end(key);
  }

  private startRead(key: string, guestAddress: number, guestPort: number, packet: Uint8Array): void {
    this.end(key); // a new request from the same port starts over
    const fields = splitStrings(packet.subarray(2));
    const [name, mode, ...optionFields] = fields ?? [];
    if (name === undefined || mode === undefined || name.length === 0 || name.length > MAX_NAME) {
      this.sendError(guestAddress, guestPort, TftpErrorCode.illegalOperation, 'Illegal TFTP operation');
      return;
    }
    if (mode.toLowerCase() !== 'octet') {
      this.sendError(guestAddress, guestPort, TftpErrorCode.illegalOperation, 'Unsupported transfer mode');
      return;
    }
    if (this.sessions.size >= MAX_TFTP_SESSIONS) {
      this.sendError(guestAddress, guestPort, TftpErrorCode.notDefined, 'Too many transfers');
      return;
    }
    const options = new Map<string, string>();
    for (let i = 0; i + 1 < optionFields.length; i += 2) options.set(optionFields[i]!.toLowerCase(), optionFields[i + 1]!);
    const session: Session = {
      key, guestAddress, guestPort, file: null, blockSize: DEFAULT_BLOCK_SIZE, block: 0, lastData: null, finished: false, reading: true, timer: null,
    };
    this.sessions.set(key, session);
    this.touch(session);
    this.options.files.open(name).then(
      (file) => this.opened(session, file, options),
      () => this.opened(session, null, options),
    );
  }

  private opened(session: Session, file: TftpFile | null, options: ReadonlyMap<string, string>): void {
    if (this.sessions.get(session.key) !== session) {
      file?.close();
      return;
    }
    session.reading = false;
    if (file === null) {
      this.sendError(session.guestAddress, session.guestPort, TftpErrorCode.fileNotFound, 'File not found');
      this.end(session.key);
      return;
    }
    session.file = file;
    // Options the server takes go back in an OACK, which the client acknowledges as block 0.
    const accepted: Array<[string, string]> = [];
    const blockSize = options.get('blksize');
    if (blockSize !== undefined && /^\d+$/.test(blockSize) && Number(blockSize) >= MIN_BLOCK_SIZE) {
      session.blockSize = Math.min(Number(blockSize), MAX_BLOCK_SIZE);
      accepted.push(['blksize', String(session.blockSize)]);
    }
    if (options.get('tsize') === '0') accepted.push(['tsize', String(file.size)]);
    if (accepted.length > 0) this.options.send(session.guestAddress, session.guestPort, optionAck(accepted));
    else this.sendBlock(session, 1);
  }

  private acknowledged(session: Session, block16: number): void {
    if (session.reading || session.file === null) return;
    this.touch(session);
    if (block16 === (session.block & 0xffff)) {
      if (session.finished) this.end(session.key);
      else this.sendBlock(session, session.block + 1);
    } else if (block16 === ((session.block - 1) & 0xffff) && session.lastData !== null) {
      // The client did not get the block after this one and asks again by repeating its acknowledgement.
      this.options.send(session.guestAddress, session.guestPort, session.lastData);
    }
  }

  private sendBlock(session: Session, block: number): void {
    const file = session.file!;
    const offset = (block - 1) * session.blockSize;
    session.reading = true;
    file.read(offset, Math.max(0, Math.min(session.blockSize, file.size - offset))).then(
      (bytes) => {
        if (this.sessions.get(session.key) !== session) return;
        session.reading = false;
        const packet = new Uint8Array(4 + bytes.length);
        packet[1] = Opcode.data;
        packet[2] = (block >> 8) & 0xff;
        packet[3] = block & 0xff;
        packet.set(bytes, 4);
        session.block = block;
        session.lastData = packet;
        session.finished = bytes.length < session.blockSize;
        this.options.send(session.guestAddress, session.guestPort, packet);
      },
      () => {
        if (this.sessions.get(session.key) !== session) return;
        this.sendError(session.guestAddress, session.guestPort, TftpErrorCode.notDefined, 'Read error');
        this.end(session.key);
      },
    );
  }

  private touch(session: Session): void {
    if (session.timer !== null) this.clearTimer(session.timer);
    session.timer = this.setTimer(() => this.end(session.key), SESSION_IDLE_MS);
  }

  private end(key: string): void {
    const session = this.sessions.get(key);
    if (session === undefined) return;
    this.sessions.delete(key);
    if (session.timer !== null) this.clearTimer(session.timer);
    session.file?.close();
  }

  private sendError(guestAddress: number, guestPort: number, code: number, message: string): void {
    const text = new TextEncoder().encode(message);
    const packet = new Uint8Array(4 + text.length + 1);
    packet[1] = Opcode.error;
    packet[3] = code;
    packet.set(text, 4);
    this.options.send(guestAddress, guestPort, packet);
  }
}

/** NUL-terminated strings, as a request carries them; null if the last is not terminated. */
function splitStrings(bytes: Uint8Array): string[] | null {
  const strings: string[] = [];
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 0) continue;
    strings.push(new TextDecoder('latin1').decode(bytes.subarray(start, i)));
    start = i + 1;
  }
  return start === bytes.length ? strings : null;
}

function optionAck(options: ReadonlyArray<readonly [string, string]>): Uint8Array {
  const text = new TextEncoder().encode(options.map(([key, value]) => `${key}\0${value}\0`).join(''));
  const packet = new Uint8Array(2 + text.length);
  packet[1] = Opcode.optionAck;
  packet.set(text, 2);
  return packet;
}
