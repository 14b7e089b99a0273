// QEMU's socket network backends in Node: frames to and from another VM (wkvm or QEMU) over a TCP or
// Unix stream (node:net, 4-byte length prefixes, stream_framing.ts) or over UDP (node:dgram, one frame
// per datagram, unicast or multicast). Behaviour follows QEMU 7.2 as observed, not as imagined:
//   - a stream server serves one peer at a time; connections that arrive meanwhile wait (as in the
//     kernel's backlog under QEMU) and the next is served when the peer goes;
//   - a client that cannot connect, or whose peer goes, stays unconnected: QEMU 7.2 has no reconnect=;
//   - the guest's link stays up throughout (QEMU 7.2's carrier does not drop), frames sent while no peer
//     is connected are dropped;
//   - a length over NET_BUFSIZE closes that connection with a message; zero lengths are skipped.
// Every socket is unref'd, so a VM whose backend is not closed does not keep the process alive.
import { createSocket, type Socket as DatagramSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { lstatSync, unlinkSync } from 'node:fs';
import { isIP, createConnection, createServer, type Server, type Socket } from 'node:net';
import type { FrameReceiver, NetBackend } from './backend.js';
import {
  describeSocketAddress, NetdevOptionError, type DatagramNetdevSpec, type SocketNetdevSpec, type StreamNetdevSpec,
} from './socket_netdev.js';
import { encodeStreamFrame, MAX_SOCKET_FRAME, OversizedFrameError, StreamFrameDecoder } from './stream_framing.js';

/**
 * Bytes written to a stream peer and not yet taken by the host's network beyond which the guest's frames
 * are dropped: a peer that stops reading must not make the VMM buffer without end (a real link drops too).
 */
export const MAX_UNSENT_STREAM_BYTES = 1 << 20;
/** Connections held while the server's one peer is connected; more are closed at once. */
export const MAX_WAITING_PEERS = 8;

export interface SocketBackendOptions {
  /** The netdev id, for messages. */
  readonly id: string;
  readonly log: (message: string) => void;
}

/** Log lines of a kind that a peer or the guest can cause over and over: the first few tell the story. */
const REPEATED_LOG_LIMIT = 8;

function limitedLog(options: SocketBackendOptions): (message: string) => void {
  let logged = 0;
  return (message) => {
    if (logged++ < REPEATED_LOG_LIMIT) options.log(`netdev ${options.id}: ${message}`);
  };
}

/**
 * Opens the backend a socket -netdev asks for. Rejects with NetdevOptionError where QEMU 7.2 refuses to
 * start (a legacy listen= or any datagram socket that cannot bind, a legacy host name that does not
 * resolve); a stream that cannot connect or listen is reported through `log` and the VM runs on
 * unconnected, as QEMU 7.2's does.
 */
export async function openSocketNetdev(spec: SocketNetdevSpec, options: SocketBackendOptions): Promise<NetBackend> {
  if (spec.type === 'dgram') return DatagramSocketBackend.open(spec, options);
  return StreamSocketBackend.open(spec, options);
}

/** The legacy socket's rule: a host name it cannot resolve stops QEMU before the guest starts. */
async function checkResolvable(host: string): Promise<void> {
  if (host === '' || isIP(host) !== 0) return;
  try {
    await lookup(host);
  } catch {
    throw new NetdevOptionError(`can't resolve host address '${host}'`);
  }
}

export class StreamSocketBackend implements NetBackend {
  private receiver: FrameReceiver | null = null;
  /** The connected peer, or null. */
  private peer: Socket | null = null;
  private decoder = new StreamFrameDecoder();
  private readonly waiting: Socket[] = [];
  private server: Server | null = null;
  /** A Unix socket path this backend created, removed again on close (QEMU removes it at exit). */
  private createdPath: string | null = null;
  private closed = false;
  private readonly logRepeated: (message: string) => void;

  private constructor(
    private readonly spec: StreamNetdevSpec,
    private readonly options: SocketBackendOptions,
  ) {
    this.logRepeated = limitedLog(options);
  }

  static async open(spec: StreamNetdevSpec, options: SocketBackendOptions): Promise<StreamSocketBackend> {
    const backend = new StreamSocketBackend(spec, options);
    if (spec.spelling === 'socket' && spec.address.type === 'inet') await checkResolvable(spec.address.host);
    if (spec.server) await backend.listen();
    else backend.connect();
    return backend;
  }

  /** Whether a peer is connected, not still being connected to (for tests and diagnostics). */
  get connected(): boolean {
    return this.peer !== null && !this.peer.connecting;
  }

  /** The TCP port listened on (useful with port 0), or null. */
  get listeningPort(): number | null {
    const bound = this.server?.address();
    return typeof bound === 'object' && bound !== null ? bound.port : null;
  }

  attach(receive: FrameReceiver): void {
    this.receiver = receive;
  }

  send(frame: Uint8Array): void {
    const peer = this.peer;
    if (peer === null || !peer.writable) return;
    if (frame.length > MAX_SOCKET_FRAME) {
      this.logRepeated(`dropped a ${frame.length}-byte frame from the guest (the peer takes at most ${MAX_SOCKET_FRAME})`);
      return;
    }
    if (peer.writableLength > MAX_UNSENT_STREAM_BYTES) {
      this.logRepeated(`dropped a frame from the guest: the peer is not reading (${peer.writableLength} bytes unsent)`);
      return;
    }
    peer.write(encodeStreamFrame(frame));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.peer?.destroy();
    this.peer = null;
    for (const socket of this.waiting.splice(0)) socket.destroy();
    this.server?.close();
    this.server = null;
    if (this.createdPath !== null) removeSocketFile(this.createdPath);
    this.createdPath = null;
  }

  private get where(): string {
    return `netdev ${this.options.id}`;
  }

  private listen(): Promise<void> {
    const address = this.spec.address;
    const server = createServer({ pauseOnConnect: true }, (socket) => this.accepted(socket));
    server.unref();
    this.server = server;
    if (address.type === 'unix') clearStaleSocketFile(address.path);
    return new Promise((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        this.server = null;
        const message = `can't listen on ${describeSocketAddress(address)}: ${error.message}`;
        // The legacy listen= binds before the guest starts and QEMU exits when it cannot; 7.2's stream
        // listens asynchronously and runs on without a network.
        if (this.spec.spelling === 'socket') reject(new NetdevOptionError(message));
        else {
          this.options.log(`${this.where}: ${message}; the NIC stays unconnected`);
          resolve();
        }
      });
      const onListening = (): void => {
        if (address.type === 'unix') this.createdPath = address.path;
        resolve();
      };
      if (address.type === 'unix') server.listen(address.path, onListening);
      else server.listen(address.port, address.host === '' ? undefined : address.host, onListening);
    });
  }

  private accepted(socket: Socket): void {
    socket.unref();
    if (this.closed) {
      socket.destroy();
      return;
    }
    if (this.peer === null) {
      this.adopt(socket);
      return;
    }
    if (this.waiting.length >= MAX_WAITING_PEERS) {
      socket.destroy();
      return;
    }
    // Held unread (pauseOnConnect) until the current peer goes.
    socket.on('error', () => {});
    this.waiting.push(socket);
  }

  private connect(): void {
    const address = this.spec.address;
    const socket = address.type === 'unix'
      ? createConnection({ path: address.path })
      : createConnection({ host: address.host === '' ? undefined : address.host, port: address.port });
    socket.unref();
    let established = false;
    socket.once('connect', () => {
      established = true;
    });
    socket.once('error', (error: Error) => {
      if (!established) this.options.log(`${this.where}: can't connect to ${describeSocketAddress(address)}: ${error.message}; the NIC stays unconnected`);
    });
    this.adopt(socket);
  }

  /** Makes `socket` the peer: its frames go to the guest, the guest's to it. */
  private adopt(socket: Socket): void {
    this.peer = socket;
    this.decoder = new StreamFrameDecoder();
    socket.setNoDelay(true); // one frame is one message: no waiting to fill a segment
    socket.on('data', (chunk: Buffer) => this.received(socket, chunk));
    socket.on('error', () => {}); // the close that follows says what matters: the peer is gone
    socket.on('close', () => this.peerGone(socket));
    socket.resume();
  }

  private received(socket: Socket, chunk: Buffer): void {
    if (socket !== this.peer) return;
    try {
      this.decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength), (frame) => this.receiver?.(frame));
    } catch (error) {
      if (!(error instanceof OversizedFrameError)) throw error;
      this.options.log(`${this.where}: ${error.message}: connection closed`);
      socket.destroy();
    }
  }

  private peerGone(socket: Socket): void {
    if (socket !== this.peer) return;
    this.peer = null;
    if (this.closed || this.server === null) return;
    // The next connection that waited is served, as QEMU accepts again once its peer has gone.
    for (let next = this.waiting.shift(); next !== undefined; next = this.waiting.shift()) {
      if (next.destroyed) continue;
      next.removeAllListeners('error');
      this.adopt(next);
      return;
    }
  }
}

/** QEMU replaces a socket file left at the path; anything else there is not wkvm's to delete. */
function clearStaleSocketFile(path: string): void {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new NetdevOptionError(`addr.path=${path}: exists and is not a socket`);
  removeSocketFile(path);
}

function removeSocketFile(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

export class DatagramSocketBackend implements NetBackend {
  private receiver: FrameReceiver | null = null;
  private closed = false;
  private readonly logRepeated: (message: string) => void;

  private constructor(
    private readonly spec: DatagramNetdevSpec,
    private readonly socket: DatagramSocket,
    options: SocketBackendOptions,
  ) {
    this.logRepeated = limitedLog(options);
    socket.on('message', (message: Buffer) => {
      // A UDP datagram is at most 64 KiB, under NET_BUFSIZE; an empty one is no frame.
      if (message.length === 0 || this.closed) return;
      this.receiver?.(new Uint8Array(message.buffer, message.byteOffset, message.byteLength));
    });
    socket.on('error', (error: Error) => this.logRepeated(`socket error: ${error.message}`));
  }

  static async open(spec: DatagramNetdevSpec, options: SocketBackendOptions): Promise<DatagramSocketBackend> {
    const remote = spec.remote;
    if (spec.spelling === 'socket') await checkResolvable(remote.host);
    const family = isIP(remote.host) === 6 || (spec.local !== null && isIP(spec.local.host) === 6) ? 'udp6' : 'udp4';
    // Multicast: every VM on the host binds the group's port, so the port must be shareable.
    const socket = createSocket({ type: family, reuseAddr: spec.multicast });
    const bindAddress = spec.multicast ? undefined : (spec.local?.host === '' ? undefined : spec.local?.host);
    const bindPort = spec.multicast ? remote.port : spec.local?.port ?? 0;
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ port: bindPort, ...(bindAddress === undefined ? {} : { address: bindAddress }) }, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      if (spec.multicast) {
        const iface = spec.local?.host;
        socket.addMembership(remote.host, iface === undefined || iface === '' ? undefined : iface);
        if (iface !== undefined && iface !== '') socket.setMulticastInterface(iface);
        socket.setMulticastLoopback(true);
      }
    } catch (error) {
      socket.close();
      const where = spec.multicast ? `mcast=${describeSocketAddress(remote)}` : `ip=${bindAddress ?? '0.0.0.0'}`;
      throw new NetdevOptionError(`can't bind ${where} to socket: ${(error as Error).message}`);
    }
    socket.unref();
    return new DatagramSocketBackend(spec, socket, options);
  }

  /** The UDP port bound (useful with port 0). */
  get localPort(): number {
    return this.socket.address().port;
  }

  attach(receive: FrameReceiver): void {
    this.receiver = receive;
  }

  send(frame: Uint8Array): void {
    if (this.closed) return;
    this.socket.send(frame, this.spec.remote.port, this.spec.remote.host, (error) => {
      // EMSGSIZE for a frame over UDP's 65507 bytes, ECONNREFUSED when no one listens: the frame is lost.
      if (error !== null && error !== undefined) this.logRepeated(`dropped a ${frame.length}-byte frame: ${error.message}`);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
  }
}
