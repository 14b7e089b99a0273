// QEMU's socket network backends against Node socket peers: what a peer writes comes out as the guest's
// frames, what the guest sends reaches the peer framed, and hostile or vanishing peers are survived.
import { afterEach, describe, expect, it } from 'vitest';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NetBackend } from '../../../host/net/backend.js';
import { NetdevOptionError, parseSocketNetdev } from '../../../host/net/socket_netdev.js';
import { DatagramSocketBackend, openSocketNetdev, StreamSocketBackend } from '../../../host/net/socket_node.js';
import { encodeStreamFrame, MAX_SOCKET_FRAME, StreamFrameDecoder } from '../../../host/net/stream_framing.js';
import { PersistentNetBackends } from '../../../host/net/persistent.js';

const frameOf = (length: number, seed: number): Uint8Array => Uint8Array.from({ length }, (_, i) => (i * 13 + seed) & 0xff);

/** Waits for `condition` (socket events take their time; the test fails only if it never comes). */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let tries = 0; !condition(); tries++) {
    if (tries > 1000) throw new Error(`never happened: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A backend and what it gave the guest and logged. */
interface Opened<T extends NetBackend> {
  backend: T;
  received: Uint8Array[];
  log: string[];
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

async function open<T extends NetBackend>(options: Record<string, string>): Promise<Opened<T>> {
  const log: string[] = [];
  const backend = (await openSocketNetdev(parseSocketNetdev({ id: 'n0', ...options }), { id: 'n0', log: (line) => log.push(line) })) as T;
  cleanups.push(() => backend.close?.());
  const received: Uint8Array[] = [];
  backend.attach((frame) => received.push(frame));
  return { backend, received, log };
}

/** A Node stream peer that decodes what it reads. */
function streamPeer(socket: Socket): { socket: Socket; frames: Uint8Array[]; closed: () => boolean } {
  const decoder = new StreamFrameDecoder();
  const frames: Uint8Array[] = [];
  let closed = false;
  socket.on('data', (chunk: Buffer) => frames.push(...decoder.framesOf(new Uint8Array(chunk))));
  socket.on('error', () => {});
  socket.on('close', () => {
    closed = true;
  });
  cleanups.push(() => socket.destroy());
  return { socket, frames, closed: () => closed };
}

async function connectTo(port: number): Promise<ReturnType<typeof streamPeer>> {
  const socket = createConnection({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  return streamPeer(socket);
}

async function listeningServer(onConnection: (socket: Socket) => void = () => {}): Promise<{ server: Server; port: number }> {
  const server = createServer(onConnection);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => server.close());
  return { server, port: (server.address() as AddressInfo).port };
}

const streamServer = (port = 0): Record<string, string> => ({
  type: 'stream', server: 'on', 'addr.type': 'inet', 'addr.host': '127.0.0.1', 'addr.port': String(port),
});

describe('-netdev stream, server=on', () => {
  it('turns a peer\'s byte stream into frames however it is cut, and frames the guest\'s for it', async () => {
    const { backend, received } = await open<StreamSocketBackend>(streamServer());
    const peer = await connectTo(backend.listeningPort!);
    await until(() => backend.connected, 'the server adopts its peer');
    const frames = [frameOf(60, 1), frameOf(1514, 2), frameOf(42, 3), frameOf(9000, 4)];
    const stream = Buffer.concat(frames.map((frame) => encodeStreamFrame(frame)));
    // Three whole frames in one write, then the last one cut inside its length prefix and its body.
    const cut = encodeStreamFrame(frames[0]!).length + encodeStreamFrame(frames[1]!).length + encodeStreamFrame(frames[2]!).length;
    peer.socket.write(stream.subarray(0, cut + 2));
    await until(() => received.length === 3, 'three frames from one chunk');
    peer.socket.write(stream.subarray(cut + 2, cut + 500));
    peer.socket.write(stream.subarray(cut + 500));
    await until(() => received.length === 4, 'the frame split across chunks');
    expect(received).toEqual(frames);

    backend.send(frameOf(98, 5));
    backend.send(frameOf(1514, 6));
    await until(() => peer.frames.length === 2, 'the guest\'s frames reach the peer');
    expect(peer.frames).toEqual([frameOf(98, 5), frameOf(1514, 6)]);
  });

  it('closes a connection whose peer announces a frame over 69632 bytes, says so, and serves the next peer', async () => {
    const { backend, received, log } = await open<StreamSocketBackend>(streamServer());
    const hostile = await connectTo(backend.listeningPort!);
    hostile.socket.write(Buffer.concat([encodeStreamFrame(frameOf(64, 1)), Buffer.from([0, 1, 0x10, 0x01]), Buffer.alloc(1000)]));
    await until(hostile.closed, 'the hostile peer is cut off');
    expect(received).toEqual([frameOf(64, 1)]);
    expect(log).toEqual(['netdev n0: the peer announced a frame of 69633 bytes (at most 69632): connection closed']);

    const next = await connectTo(backend.listeningPort!);
    next.socket.write(encodeStreamFrame(frameOf(MAX_SOCKET_FRAME, 2)));
    await until(() => received.length === 2, 'the next peer\'s frame of the largest size');
    expect(received[1]).toEqual(frameOf(MAX_SOCKET_FRAME, 2));
  });

  it('serves one peer at a time: a second connection waits unread and is served when the first goes', async () => {
    const { backend, received } = await open<StreamSocketBackend>(streamServer());
    const first = await connectTo(backend.listeningPort!);
    await until(() => backend.connected, 'the first peer is adopted');
    const second = await connectTo(backend.listeningPort!);
    second.socket.write(encodeStreamFrame(frameOf(50, 2)));
    first.socket.write(encodeStreamFrame(frameOf(50, 1)));
    await until(() => received.length === 1, 'the first peer\'s frame');
    backend.send(frameOf(60, 3));
    await until(() => first.frames.length === 1, 'the guest\'s frame reaches the first peer');

    first.socket.end();
    await until(() => received.length === 2, 'the waiting peer is served once the first has gone');
    expect(received).toEqual([frameOf(50, 1), frameOf(50, 2)]);
    backend.send(frameOf(60, 4));
    await until(() => second.frames.length === 1, 'the guest\'s frames now reach the second peer');
    expect(second.frames).toEqual([frameOf(60, 4)]);
    expect(first.frames).toEqual([frameOf(60, 3)]);
  });

  it('drops the guest\'s frames, with a message, once a peer that does not read has 1 MiB unsent', async () => {
    const { backend, log } = await open<StreamSocketBackend>(streamServer());
    const peer = await connectTo(backend.listeningPort!);
    peer.socket.pause();
    await until(() => backend.connected, 'the peer is adopted');
    // More than the kernel's socket buffers on both sides can hold.
    for (let i = 0; i < 4000 && log.length === 0; i++) {
      backend.send(frameOf(9000, i));
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(log[0]).toMatch(/^netdev n0: dropped a frame from the guest: the peer is not reading \(\d+ bytes unsent\)$/);
  });

  it('listens on a Unix socket, replacing a stale socket file, and removes the file on close; refuses to replace other files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wkvm-netdev-'));
    const path = join(dir, 'vm.sock');
    // The socket file of an earlier server (a VM that died leaves its file behind).
    const leftover = createServer();
    leftover.listen(path);
    await once(leftover, 'listening');
    const { backend, received } = await open<StreamSocketBackend>({ type: 'stream', server: 'on', 'addr.type': 'unix', 'addr.path': path });
    const socket = createConnection({ path });
    await once(socket, 'connect');
    const peer = streamPeer(socket);
    peer.socket.write(encodeStreamFrame(frameOf(77, 1)));
    await until(() => received.length === 1, 'a frame over the Unix socket');
    backend.close();
    expect(existsSync(path)).toBe(false);
    leftover.close();

    const file = join(dir, 'plain.txt');
    writeFileSync(file, 'keep me');
    await expect(open({ type: 'stream', server: 'on', 'addr.type': 'unix', 'addr.path': file })).rejects.toThrow(/plain\.txt: exists and is not a socket/);
    expect(existsSync(file)).toBe(true);
  });

  it('reports a port it cannot listen on and runs on unconnected (QEMU 7.2); the legacy listen= refuses to start', async () => {
    const { port } = await listeningServer();
    const stream = await open<StreamSocketBackend>(streamServer(port));
    expect(stream.log).toEqual([expect.stringMatching(new RegExp(`^netdev n0: can't listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE.*; the NIC stays unconnected$`))]);
    stream.backend.send(frameOf(60, 1)); // dropped: no peer
    const legacy = open({ type: 'socket', listen: `127.0.0.1:${port}` });
    await expect(legacy).rejects.toThrow(NetdevOptionError);
    await expect(legacy).rejects.toThrow(/can't listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
  });
});

describe('-netdev stream, server=off, and the legacy connect=', () => {
  it('connects, exchanges frames, and stays unconnected when the peer goes (QEMU 7.2 has no reconnect=)', async () => {
    const peers: Array<ReturnType<typeof streamPeer>> = [];
    const { port } = await listeningServer((socket) => peers.push(streamPeer(socket)));
    const { backend, received } = await open<StreamSocketBackend>({ type: 'socket', connect: `127.0.0.1:${port}` });
    await until(() => peers.length === 1 && backend.connected, 'the backend connects');
    backend.send(frameOf(60, 1));
    peers[0]!.socket.write(encodeStreamFrame(frameOf(70, 2)));
    await until(() => received.length === 1 && peers[0]!.frames.length === 1, 'frames both ways');
    expect(received).toEqual([frameOf(70, 2)]);
    expect(peers[0]!.frames).toEqual([frameOf(60, 1)]);

    peers[0]!.socket.end();
    await until(() => !backend.connected, 'the backend sees its peer go');
    backend.send(frameOf(60, 3)); // dropped, no error
    expect(peers).toHaveLength(1);
  });

  it('reports a refused connection and runs on unconnected, as QEMU 7.2 does for both spellings', async () => {
    const { server, port } = await listeningServer();
    server.close();
    await once(server, 'close');
    for (const options of [{ type: 'socket', connect: `127.0.0.1:${port}` }, { ...streamServer(port), server: 'off' }]) {
      const { backend, log } = await open<StreamSocketBackend>(options);
      await until(() => log.length > 0, 'the refusal is reported');
      expect(log).toEqual([`netdev n0: can't connect to 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}; the NIC stays unconnected`]);
      expect(backend.connected).toBe(false);
      backend.send(frameOf(60, 1));
    }
  });

  it('refuses to start when the legacy connect= names a host that does not resolve, as QEMU does', async () => {
    await expect(open({ type: 'socket', connect: 'nonexistent.invalid:5000' })).rejects.toThrow("can't resolve host address 'nonexistent.invalid'");
  });
});

describe('-netdev dgram and the legacy udp= and mcast=', () => {
  async function udpPeer(): Promise<{ socket: UdpSocket; port: number; datagrams: Uint8Array[] }> {
    const socket = createSocket('udp4');
    const datagrams: Uint8Array[] = [];
    socket.on('message', (message) => datagrams.push(new Uint8Array(message)));
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    cleanups.push(() => socket.close());
    return { socket, port: socket.address().port, datagrams };
  }

  it('sends each frame as one datagram to the remote and takes each datagram as one frame', async () => {
    const peer = await udpPeer();
    for (const options of [
      { type: 'dgram', 'local.type': 'inet', 'local.host': '127.0.0.1', 'local.port': '0', 'remote.type': 'inet', 'remote.host': '127.0.0.1', 'remote.port': String(peer.port) },
      { type: 'socket', udp: `127.0.0.1:${peer.port}`, localaddr: '127.0.0.1:0' },
    ]) {
      peer.datagrams.length = 0;
      const { backend, received } = await open<DatagramSocketBackend>(options);
      backend.send(frameOf(60, 1));
      backend.send(frameOf(9000, 2));
      await until(() => peer.datagrams.length === 2, 'two datagrams');
      expect(peer.datagrams).toEqual([frameOf(60, 1), frameOf(9000, 2)]);
      peer.socket.send(frameOf(1514, 3), backend.localPort, '127.0.0.1');
      peer.socket.send(new Uint8Array(0), backend.localPort, '127.0.0.1');
      peer.socket.send(frameOf(64, 4), backend.localPort, '127.0.0.1');
      await until(() => received.length === 2, 'the peer\'s frames, the empty datagram skipped');
      expect(received).toEqual([frameOf(1514, 3), frameOf(64, 4)]);
      backend.close();
    }
  });

  it('refuses to start when the local port is taken, as QEMU does', async () => {
    const taken = await udpPeer();
    await expect(open({
      type: 'dgram', 'local.type': 'inet', 'local.host': '127.0.0.1', 'local.port': String(taken.port), 'remote.type': 'inet', 'remote.host': '127.0.0.1', 'remote.port': '9',
    })).rejects.toThrow(/can't bind ip=127\.0\.0\.1 to socket: .*EADDRINUSE/);
  });

  it('joins VMs on one multicast group: each hears the other\'s frames (mcast= and dgram with a multicast remote)', async (context) => {
    // A port free a moment ago, for the group (every member binds it, so the probe must let go).
    const probe = createSocket('udp4');
    probe.bind(0);
    await once(probe, 'listening');
    const port = probe.address().port;
    probe.close();
    let first: Opened<DatagramSocketBackend>;
    try {
      first = await open<DatagramSocketBackend>({ type: 'socket', mcast: `230.0.0.1:${port}` });
    } catch (error) {
      // A host without a multicast route (some containers) cannot join a group at all.
      context.skip(`no multicast here: ${(error as Error).message}`);
      return;
    }
    const second = await open<DatagramSocketBackend>({ type: 'dgram', 'remote.type': 'inet', 'remote.host': '230.0.0.1', 'remote.port': String(port) });
    first.backend.send(frameOf(60, 1));
    await until(() => second.received.length >= 1 || first.log.length > 0, 'the second VM hears the first, or the send fails');
    // A host with no route for the group (no default route) refuses the send (ENETUNREACH).
    if (second.received.length === 0) {
      context.skip(`no multicast route here: ${first.log.join('; ')}`);
      return;
    }
    second.backend.send(frameOf(80, 2));
    await until(() => first.received.some((frame) => frame.length === 80), 'the first VM hears the second');
    expect(second.received[0]).toEqual(frameOf(60, 1));
    expect(first.received).toContainEqual(frameOf(80, 2));
  });
});

describe('netdevs kept across reboots', () => {
  it('opens a netdev once for all boots; a boot\'s NIC closing only lets go of it, and the run\'s end closes it', async () => {
    const pool = new PersistentNetBackends();
    let opened = 0;
    let closed = 0;
    let receiver: (frame: Uint8Array) => void = () => {};
    const sent: Uint8Array[] = [];
    const open = (): Promise<NetBackend> => {
      opened++;
      return Promise.resolve({ send: (frame) => sent.push(frame), attach: (receive) => (receiver = receive), close: () => closed++ });
    };
    const firstBoot: Uint8Array[] = [];
    const first = await pool.lease('n0', open);
    first.attach((frame) => firstBoot.push(frame));
    receiver(frameOf(60, 1));
    first.close?.();
    receiver(frameOf(60, 2)); // between boots: nobody takes it
    const secondBoot: Uint8Array[] = [];
    const second = await pool.lease('n0', open);
    second.attach((frame) => secondBoot.push(frame));
    receiver(frameOf(60, 3));
    second.send(frameOf(60, 4));
    expect([opened, closed]).toEqual([1, 0]);
    expect([firstBoot, secondBoot, sent]).toEqual([[frameOf(60, 1)], [frameOf(60, 3)], [frameOf(60, 4)]]);
    pool.closeAll();
    expect(closed).toBe(1);
  });
});
