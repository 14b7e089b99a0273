// The user network's NAT against real local servers: frames built as a guest would send them go in, the
// backend's frames come out and are checked byte by byte (checksums recomputed here), and what the host
// side sees is checked through real node:dgram and node:net sockets.
import { describe, it, expect, afterEach } from 'vitest';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { MAX_TCP_CONNECTIONS, UserNetBackend } from '../../../host/net/user.js';
import { NodeNatSockets, nameserverOf } from '../../../host/net/nat_node.js';
import { parseHostForward, type NatSockets } from '../../../host/net/nat.js';
import { parseKeyValues } from '../../../host/cli/args.js';
import {
  DNS_IP, DNS_MAC, GUEST_IP, GUEST_MAC, HOST_IP, HOST_MAC, checksumOf, guestTcp, guestUdp, pseudoHeader, u16, type GuestTcp,
} from './frames.js';

const FIN = 1;
const SYN = 2;
const RST = 4;
const PSH = 8;
const ACK = 16;

interface Reply {
  ethernetDestination: number[];
  ethernetSource: number[];
  source: number[];
  destination: number[];
  protocol: number;
  /** The UDP or TCP segment, checksum verified. */
  segment: number[];
}

/** An IPv4 frame from the backend, with its IP checksum and its UDP/TCP checksum checked. */
function parseReply(frame: Uint8Array): Reply {
  expect((frame[12]! << 8) | frame[13]!).toBe(0x0800);
  const ip = Array.from(frame.subarray(14, 34));
  expect(checksumOf(ip)).toBe(0);
  const totalLength = (ip[2]! << 8) | ip[3]!;
  const segment = Array.from(frame.subarray(34, 14 + totalLength));
  const protocol = ip[9]!;
  expect(checksumOf([...pseudoHeader(ip.slice(12, 16), ip.slice(16, 20), protocol, segment.length), ...segment])).toBe(0);
  return {
    ethernetDestination: Array.from(frame.subarray(0, 6)), ethernetSource: Array.from(frame.subarray(6, 12)),
    source: ip.slice(12, 16), destination: ip.slice(16, 20), protocol, segment,
  };
}

interface TcpReply {
  source: number[];
  destination: number[];
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  mss: number | null;
  data: string;
}

const read32 = (b: number[], at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

function parseTcpReply(frame: Uint8Array): TcpReply {
  const reply = parseReply(frame);
  expect(reply.protocol).toBe(6);
  expect(reply.ethernetDestination).toEqual(GUEST_MAC);
  const t = reply.segment;
  const headerLength = (t[12]! >> 4) * 4;
  let mss: number | null = null;
  if (headerLength > 20 && t[20] === 2) mss = (t[22]! << 8) | t[23]!;
  return {
    source: reply.source, destination: reply.destination, srcPort: (t[0]! << 8) | t[1]!, dstPort: (t[2]! << 8) | t[3]!,
    seq: read32(t, 4), ack: read32(t, 8), flags: t[13]!, window: (t[14]! << 8) | t[15]!, mss,
    data: Buffer.from(t.slice(headerLength)).toString(),
  };
}

const bytes = (text: string): number[] => [...Buffer.from(text)];

/** A backend with a guest attached, and a way to wait for what it sends the guest, in order. */
class Guest {
  readonly frames: Uint8Array[] = [];
  private waiters: Array<() => void> = [];
  constructor(readonly backend: UserNetBackend) {
    backend.attach((frame) => {
      this.frames.push(frame);
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  send(frame: Uint8Array): void {
    this.backend.send(frame);
  }

  /** Says hello (an ARP request for the gateway), so that the backend learns the guest's MAC. */
  async announce(): Promise<void> {
    this.send(Uint8Array.from([
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, ...GUEST_MAC, 8, 6, 0, 1, 8, 0, 6, 4, 0, 1, ...GUEST_MAC, ...GUEST_IP, 0, 0, 0, 0, 0, 0, ...HOST_IP,
    ]));
    const arpReply = await this.next();
    expect((arpReply[12]! << 8) | arpReply[13]!).toBe(0x0806);
  }

  async next(timeoutMs = 3000): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length === 0) {
      if (Date.now() > deadline) throw new Error('no frame for the guest');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.frames.shift()!;
  }

  async nextTcp(): Promise<TcpReply> {
    return parseTcpReply(await this.next());
  }

  /** Nothing more arrives for a while. */
  async quiet(ms = 150): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    expect(this.frames.map((f) => parseTcpReply(f))).toEqual([]);
  }
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function natGuest(options: { restrict?: boolean; sockets?: NatSockets; hostfwd?: string[] } = {}): Promise<Guest> {
  const backend = new UserNetBackend({
    restrict: options.restrict ?? false, sockets: options.sockets ?? new NodeNatSockets({ dnsServer: '127.0.0.1' }),
    hostForwards: (options.hostfwd ?? []).map(parseHostForward),
  });
  cleanups.push(() => backend.close());
  const guest = new Guest(backend);
  await guest.announce();
  return guest;
}

async function udpEchoServer(): Promise<{ server: UdpSocket; port: number; seen: string[] }> {
  const server = createSocket('udp4');
  const seen: string[] = [];
  server.on('message', (message, from) => {
    seen.push(message.toString());
    server.send(Buffer.concat([Buffer.from('echo:'), message]), from.port, from.address);
  });
  server.bind(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => server.close());
  return { server, port: server.address().port, seen };
}

async function tcpServer(handler: (socket: Socket) => void): Promise<number> {
  const server: Server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise((resolve) => server.close(resolve));
  });
  return (server.address() as { port: number }).port;
}

/** A port nothing listens on (bound and released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('user network NAT: UDP', () => {
  it('relays a datagram to 10.0.2.2 to a UDP server on 127.0.0.1 and brings the answer back with checksums', async () => {
    const { port, seen } = await udpEchoServer();
    const guest = await natGuest();
    expect(guest.backend.providesNat).toBe(true);
    guest.send(guestUdp(HOST_MAC, HOST_IP, 40000, port, bytes('hello udp')));
    const reply = parseReply(await guest.next());
    expect(seen).toEqual(['hello udp']);
    expect(reply.ethernetDestination).toEqual(GUEST_MAC);
    expect(reply.ethernetSource).toEqual(HOST_MAC);
    expect(reply.protocol).toBe(17);
    expect(reply.source).toEqual(HOST_IP);
    expect(reply.destination).toEqual(GUEST_IP);
    expect(reply.segment.slice(0, 4)).toEqual([...u16(port), ...u16(40000)]);
    expect((reply.segment[4]! << 8) | reply.segment[5]!).toBe(reply.segment.length);
    expect(Buffer.from(reply.segment.slice(8)).toString()).toBe('echo:hello udp');
    // The same flow again uses the same host socket: the server sees the same source port.
    guest.send(guestUdp(HOST_MAC, HOST_IP, 40000, port, bytes('again')));
    expect(Buffer.from(parseReply(await guest.next()).segment.slice(8)).toString()).toBe('echo:again');
  });

  it('forwards nothing with restrict=on', async () => {
    const { port, seen } = await udpEchoServer();
    const guest = await natGuest({ restrict: true });
    expect(guest.backend.providesNat).toBe(false);
    guest.send(guestUdp(HOST_MAC, HOST_IP, 40000, port, bytes('hello')));
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(seen).toEqual([]);
    expect(guest.frames).toEqual([]);
  });

  it('sends DNS queries to 10.0.2.3 to the host\'s nameserver and answers from 10.0.2.3:53', async () => {
    const sent: Array<[string, number, string]> = [];
    let answer: ((data: Uint8Array, host: string, port: number) => void) | null = null;
    const real = new NodeNatSockets();
    const sockets: NatSockets = {
      dnsServer: '192.0.2.53',
      udp: (receive) => {
        answer = receive;
        return { send: (data, host, port) => sent.push([host, port, Buffer.from(data).toString()]), close: () => {} };
      },
      connect: (host, port, events) => real.connect(host, port, events),
      listen: (address, port, accept) => real.listen(address, port, accept),
    };
    const guest = await natGuest({ sockets });
    guest.send(guestUdp(DNS_MAC, DNS_IP, 33333, 53, bytes('query')));
    expect(sent).toEqual([['192.0.2.53', 53, 'query']]);
    answer!(Buffer.from('response'), '192.0.2.53', 53);
    const reply = parseReply(await guest.next());
    expect(reply.ethernetSource).toEqual(DNS_MAC);
    expect(reply.source).toEqual(DNS_IP);
    expect(reply.segment.slice(0, 4)).toEqual([...u16(53), ...u16(33333)]);
    expect(Buffer.from(reply.segment.slice(8)).toString()).toBe('response');
  });

  it('answers an A query to 10.0.2.3 from the host\'s own lookup (localhost is 127.0.0.1)', async () => {
    const guest = await natGuest();
    // id 0x4242, recursion desired, one question: localhost A IN.
    const query = [0x42, 0x42, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 9, ...bytes('localhost'), 0, 0, 1, 0, 1];
    guest.send(guestUdp(DNS_MAC, DNS_IP, 33334, 53, query));
    const reply = parseReply(await guest.next());
    expect(reply.source).toEqual(DNS_IP);
    expect(reply.segment.slice(0, 4)).toEqual([...u16(53), ...u16(33334)]);
    const dns = reply.segment.slice(8);
    expect(dns.slice(0, 12)).toEqual([0x42, 0x42, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    expect(dns.slice(12, 12 + query.length - 12)).toEqual(query.slice(12));
    expect(dns.slice(query.length)).toEqual([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
  });

  it('says NXDOMAIN for a name the host cannot look up, and forwards other query types', async () => {
    const forwarded: string[] = [];
    const real = new NodeNatSockets();
    const sockets: NatSockets = {
      dnsServer: '192.0.2.53',
      lookup: (name) => Promise.resolve(name === 'known' ? [0x01020304] : []),
      udp: () => ({ send: (_data, host) => forwarded.push(host), close: () => {} }),
      connect: (host, port, events) => real.connect(host, port, events),
      listen: (address, port, accept) => real.listen(address, port, accept),
    };
    const guest = await natGuest({ sockets });
    const question = (name: string, type: number): number[] => [0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, name.length, ...bytes(name), 0, 0, type, 0, 1];
    guest.send(guestUdp(DNS_MAC, DNS_IP, 1000, 53, question('unknown', 1)));
    expect(parseReply(await guest.next()).segment.slice(8 + 2, 8 + 8)).toEqual([0x81, 0x83, 0, 1, 0, 0]);
    guest.send(guestUdp(DNS_MAC, DNS_IP, 1000, 53, question('known', 28)));
    expect(parseReply(await guest.next()).segment.slice(8 + 2, 8 + 8)).toEqual([0x81, 0x80, 0, 1, 0, 0]);
    guest.send(guestUdp(DNS_MAC, DNS_IP, 1000, 53, question('known', 15)));
    expect(forwarded).toEqual(['192.0.2.53']);
  });

  it('reads the first IPv4 nameserver of resolv.conf', () => {
    expect(nameserverOf('# x\nsearch lan\nnameserver fe80::1\nnameserver 10.1.2.3\nnameserver 8.8.8.8\n')).toBe('10.1.2.3');
    expect(nameserverOf('search lan\n')).toBe('127.0.0.1');
  });
});

describe('user network NAT: TCP from the guest', () => {
  const flow = { dst: HOST_IP, srcPort: 40001 };

  it('handshakes, relays bytes both ways within the guest\'s window, and closes with FIN both ways', async () => {
    const received: string[] = [];
    let ended = false;
    const port = await tcpServer((socket) => {
      socket.on('data', (chunk) => {
        received.push(chunk.toString());
        socket.write(`echo:${chunk.toString()}`);
      });
      socket.on('end', () => {
        ended = true;
      });
    });
    const guest = await natGuest();
    const seg = (s: Omit<GuestTcp, 'dst' | 'srcPort' | 'dstPort'>): void => guest.send(guestTcp({ ...flow, dstPort: port, ...s }));
    seg({ seq: 1000, ack: 0, flags: SYN, window: 8, mss: 1460 });
    const synAck = await guest.nextTcp();
    expect(synAck).toMatchObject({ source: HOST_IP, destination: GUEST_IP, srcPort: port, dstPort: 40001, flags: SYN | ACK, ack: 1001 });
    expect(synAck.mss).not.toBeNull();
    expect(synAck.mss!).toBeLessThanOrEqual(1460);
    const iss = synAck.seq;
    seg({ seq: 1001, ack: iss + 1, flags: ACK, window: 8 });
    // A segment after a gap is dropped and answered with a duplicate ACK.
    seg({ seq: 1010, ack: iss + 1, flags: ACK | PSH, window: 8, data: bytes('later') });
    expect(await guest.nextTcp()).toMatchObject({ flags: ACK, seq: iss + 1, ack: 1001 });
    seg({ seq: 1001, ack: iss + 1, flags: ACK | PSH, window: 8, data: bytes('hello') });
    expect(await guest.nextTcp()).toMatchObject({ flags: ACK, seq: iss + 1, ack: 1006 });
    // "echo:hello" is 10 bytes; the guest's window of 8 lets 8 through until it acknowledges them.
    const first = await guest.nextTcp();
    expect(first).toMatchObject({ seq: iss + 1, ack: 1006, data: 'echo:hel' });
    expect(first.flags & ACK).toBe(ACK);
    await guest.quiet();
    seg({ seq: 1006, ack: iss + 9, flags: ACK, window: 8 });
    expect(await guest.nextTcp()).toMatchObject({ seq: iss + 9, data: 'lo' });
    expect(received).toEqual(['hello']);
    seg({ seq: 1006, ack: iss + 11, flags: ACK | FIN, window: 8 });
    expect(await guest.nextTcp()).toMatchObject({ flags: ACK, ack: 1007 });
    // The server ends in turn (node ends a socket whose peer ended): our FIN.
    expect(await guest.nextTcp()).toMatchObject({ flags: FIN | ACK, seq: iss + 11, ack: 1007 });
    expect(ended).toBe(true);
    seg({ seq: 1007, ack: iss + 12, flags: ACK, window: 8 });
    await guest.quiet();
    // The connection is gone: more data is reset.
    seg({ seq: 1007, ack: iss + 12, flags: ACK | PSH, window: 8, data: bytes('x') });
    expect(await guest.nextTcp()).toMatchObject({ flags: RST, seq: iss + 12 });
  });

  it('lets the guest send only what the host socket has passed on: the window shrinks, excess is dropped, drain reopens it', async () => {
    const written: string[] = [];
    let buffered = 0;
    let events: Parameters<NatSockets['connect']>[2] | null = null;
    const sockets: NatSockets = {
      dnsServer: '127.0.0.1',
      udp: () => ({ send: () => {}, close: () => {} }),
      listen: () => ({ ready: Promise.resolve(0), close: () => {} }),
      connect: (_host, _port, heard) => {
        events = heard;
        queueMicrotask(() => heard.connected());
        return {
          write: (data) => written.push(Buffer.from(data).toString()),
          get bufferedBytes() { return buffered; },
          end: () => {}, destroy: () => {}, pause: () => {}, resume: () => {},
        };
      },
    };
    const guest = await natGuest({ sockets });
    const seg = (s: Omit<GuestTcp, 'dst' | 'srcPort' | 'dstPort'>): void => guest.send(guestTcp({ ...flow, dstPort: 9, ...s }));
    seg({ seq: 100, ack: 0, flags: SYN, mss: 1460 });
    const synAck = await guest.nextTcp();
    expect(synAck.window).toBe(0xffff);
    const iss = synAck.seq;
    seg({ seq: 101, ack: iss + 1, flags: ACK });
    // The host socket now holds 0xfffa bytes it could not pass on: 5 bytes of window are left.
    buffered = 0xfffa;
    seg({ seq: 101, ack: iss + 1, flags: ACK | PSH, data: bytes('abcdefgh') });
    expect(await guest.nextTcp()).toMatchObject({ flags: ACK, ack: 106, window: 5 });
    expect(written).toEqual(['abcde']);
    buffered = 0;
    events!.drained();
    expect(await guest.nextTcp()).toMatchObject({ flags: ACK, ack: 106, window: 0xffff });
    seg({ seq: 106, ack: iss + 1, flags: ACK | PSH, data: bytes('fgh') });
    expect(await guest.nextTcp()).toMatchObject({ flags: ACK, ack: 109 });
    expect(written).toEqual(['abcde', 'fgh']);
  });

  it('resets connections past MAX_TCP_CONNECTIONS instead of opening more host sockets', async () => {
    let opened = 0;
    const sockets: NatSockets = {
      dnsServer: '127.0.0.1',
      udp: () => ({ send: () => {}, close: () => {} }),
      listen: () => ({ ready: Promise.resolve(0), close: () => {} }),
      connect: () => {
        opened++;
        return { write: () => {}, bufferedBytes: 0, end: () => {}, destroy: () => {}, pause: () => {}, resume: () => {} };
      },
    };
    const guest = await natGuest({ sockets });
    for (let port = 0; port < MAX_TCP_CONNECTIONS; port++) {
      guest.send(guestTcp({ dst: HOST_IP, srcPort: 20000 + port, dstPort: 80, seq: 1, ack: 0, flags: SYN, mss: 1460 }));
    }
    expect(opened).toBe(MAX_TCP_CONNECTIONS);
    guest.send(guestTcp({ dst: HOST_IP, srcPort: 19999, dstPort: 80, seq: 1, ack: 0, flags: SYN, mss: 1460 }));
    expect(await guest.nextTcp()).toMatchObject({ flags: RST | ACK, ack: 2, dstPort: 19999 });
    expect(opened).toBe(MAX_TCP_CONNECTIONS);
  });

  it('resets a connection to a closed port', async () => {
    const port = await closedPort();
    const guest = await natGuest();
    guest.send(guestTcp({ ...flow, dstPort: port, seq: 77, ack: 0, flags: SYN, mss: 1460 }));
    expect(await guest.nextTcp()).toMatchObject({ flags: RST | ACK, ack: 78, srcPort: port, dstPort: 40001, source: HOST_IP });
  });

  it('resets a guest connection with restrict=on', async () => {
    const port = await tcpServer(() => {});
    const guest = await natGuest({ restrict: true });
    guest.send(guestTcp({ ...flow, dstPort: port, seq: 5, ack: 0, flags: SYN, mss: 1460 }));
    expect(await guest.nextTcp()).toMatchObject({ flags: RST | ACK, ack: 6 });
  });

  it('resets the guest when the host side resets', async () => {
    const port = await tcpServer((socket) => socket.on('data', () => socket.resetAndDestroy()));
    const guest = await natGuest();
    guest.send(guestTcp({ ...flow, dstPort: port, seq: 1, ack: 0, flags: SYN, mss: 1460 }));
    const iss = (await guest.nextTcp()).seq;
    guest.send(guestTcp({ ...flow, dstPort: port, seq: 2, ack: iss + 1, flags: ACK | PSH, data: bytes('boom') }));
    expect(await guest.nextTcp()).toMatchObject({ flags: ACK, ack: 6 });
    expect(await guest.nextTcp()).toMatchObject({ flags: RST | ACK, seq: iss + 1 });
  });
});

describe('user network hostfwd', () => {
  it('turns a host connection into a SYN to 10.0.2.15:GUESTPORT and relays both ways', async () => {
    const guest = await natGuest({ restrict: true, hostfwd: ['tcp:127.0.0.1:0-:8080'] });
    const [hostPort] = await guest.backend.hostForwardPorts();
    const client = createConnection({ host: '127.0.0.1', port: hostPort! });
    cleanups.push(() => client.destroy());
    let fromGuest = '';
    client.on('data', (chunk) => {
      fromGuest += chunk.toString();
    });
    const clientEnded = once(client, 'end');
    await once(client, 'connect');
    const syn = await guest.nextTcp();
    expect(syn).toMatchObject({ source: HOST_IP, destination: GUEST_IP, dstPort: 8080, flags: SYN });
    expect(syn.mss).toBe(1460);
    const reply = (s: Omit<GuestTcp, 'dst' | 'srcPort' | 'dstPort'>): void => guest.send(guestTcp({ dst: HOST_IP, srcPort: 8080, dstPort: syn.srcPort, ...s }));
    client.write('ping');
    reply({ seq: 9000, ack: syn.seq + 1, flags: SYN | ACK, mss: 1400 });
    expect(await guest.nextTcp()).toMatchObject({ flags: ACK, seq: syn.seq + 1, ack: 9001 });
    expect(await guest.nextTcp()).toMatchObject({ seq: syn.seq + 1, ack: 9001, data: 'ping' });
    reply({ seq: 9001, ack: syn.seq + 5, flags: ACK | PSH, data: bytes('pong') });
    expect(await guest.nextTcp()).toMatchObject({ flags: ACK, ack: 9005 });
    reply({ seq: 9005, ack: syn.seq + 5, flags: ACK | FIN });
    await clientEnded;
    expect(fromGuest).toBe('pong');
    expect(await guest.nextTcp()).toMatchObject({ flags: ACK, ack: 9006 });
    client.end();
    expect(await guest.nextTcp()).toMatchObject({ flags: FIN | ACK, seq: syn.seq + 5, ack: 9006 });
  });

  it('asks a guest that has been silent for its MAC (ARP) and sends the SYN once it answers', async () => {
    const backend = new UserNetBackend({ restrict: true, sockets: new NodeNatSockets(), hostForwards: [parseHostForward('tcp:127.0.0.1:0-:22')] });
    cleanups.push(() => backend.close());
    const guest = new Guest(backend);
    const [hostPort] = await backend.hostForwardPorts();
    const client = createConnection({ host: '127.0.0.1', port: hostPort! });
    cleanups.push(() => client.destroy());
    const arp = Array.from(await guest.next());
    expect(arp.slice(0, 14)).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, ...HOST_MAC, 8, 6]);
    expect(arp.slice(14, 42)).toEqual([0, 1, 8, 0, 6, 4, 0, 1, ...HOST_MAC, ...HOST_IP, 0, 0, 0, 0, 0, 0, ...GUEST_IP]);
    guest.send(Uint8Array.from([...HOST_MAC, ...GUEST_MAC, 8, 6, 0, 1, 8, 0, 6, 4, 0, 2, ...GUEST_MAC, ...GUEST_IP, ...HOST_MAC, ...HOST_IP]));
    expect(await guest.nextTcp()).toMatchObject({ source: HOST_IP, destination: GUEST_IP, dstPort: 22, flags: SYN });
  });

  it('forwards a host UDP port (hostfwd=udp:...): a client\'s datagrams reach the guest\'s port from 10.0.2.2, its answers go back to the client', async () => {
    const guest = await natGuest({ restrict: true, hostfwd: ['udp:127.0.0.1:0-:5353'] });
    const [hostPort] = await guest.backend.hostForwardPorts();
    const clients = [createSocket('udp4'), createSocket('udp4')];
    for (const client of clients) {
      client.bind(0, '127.0.0.1');
      await once(client, 'listening');
      cleanups.push(() => client.close());
    }
    const answers = clients.map((client) => {
      const got: string[] = [];
      client.on('message', (message) => got.push(message.toString()));
      return got;
    });
    clients[0]!.send('query-a', hostPort!, '127.0.0.1');
    const first = parseReply(await guest.next());
    expect(first.protocol).toBe(17);
    expect(first.source).toEqual(HOST_IP);
    expect(first.destination).toEqual(GUEST_IP);
    const portA = (first.segment[0]! << 8) | first.segment[1]!;
    expect((first.segment[2]! << 8) | first.segment[3]!).toBe(5353);
    expect(Buffer.from(first.segment.slice(8)).toString()).toBe('query-a');
    clients[1]!.send('query-b', hostPort!, '127.0.0.1');
    const second = parseReply(await guest.next());
    const portB = (second.segment[0]! << 8) | second.segment[1]!;
    expect(portB).not.toBe(portA); // each client is its own source port on 10.0.2.2
    // The guest answers each from port 5353, as a server would; each answer reaches its own client.
    guest.send(guestUdp(HOST_MAC, HOST_IP, 5353, portB, bytes('answer-b')));
    guest.send(guestUdp(HOST_MAC, HOST_IP, 5353, portA, bytes('answer-a')));
    const deadline = Date.now() + 3000;
    while ((answers[0]!.length === 0 || answers[1]!.length === 0) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(answers).toEqual([['answer-a'], ['answer-b']]);
  });

  it('stops listening when the backend closes', async () => {
    const guest = await natGuest({ hostfwd: ['tcp:127.0.0.1:0-:22'] });
    const [hostPort] = await guest.backend.hostForwardPorts();
    guest.backend.close();
    const client = createConnection({ host: '127.0.0.1', port: hostPort! });
    const [error] = (await once(client, 'error')) as [NodeJS.ErrnoException];
    expect(error.code).toBe('ECONNREFUSED');
  });

  it('parses QEMU\'s rule syntax and keeps repeated hostfwd= options', () => {
    expect(parseHostForward('tcp::2222-:22')).toEqual({ protocol: 'tcp', hostAddress: '', hostPort: 2222, guestAddress: 0, guestPort: 22 });
    expect(parseHostForward('udp::5353-:53')).toEqual({ protocol: 'udp', hostAddress: '', hostPort: 5353, guestAddress: 0, guestPort: 53 });
    expect(parseHostForward(':127.0.0.1:80-10.0.2.15:8080')).toMatchObject({ hostAddress: '127.0.0.1', guestAddress: 0x0a00020f, guestPort: 8080 });
    expect(() => parseHostForward('tcp::2222-10.0.2.300:22')).toThrow(/bad guest address/);
    expect(parseKeyValues('user,hostfwd=tcp::1-:2,hostfwd=tcp::3-:4,id=n', 'type', 'nic')).toEqual({
      type: 'user', hostfwd: 'tcp::1-:2\ntcp::3-:4', id: 'n',
    });
  });
});
