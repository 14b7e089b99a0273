// The user network backend byte by byte: frames built here as a guest would send them, replies checked
// field by field, with checksums recomputed independently of the backend's own code.
import { describe, it, expect, beforeEach } from 'vitest';
import { UserNetBackend, USER_NET_PROVIDES_NAT } from '../../../host/net/user.js';
import {
  BROADCAST, DNS_IP, DNS_MAC, GUEST_IP, GUEST_MAC, HOST_IP, HOST_MAC, checksumOf, ethernet, ipv4Packet, u16,
} from './frames.js';

function arpRequest(targetIp: number[], senderIp = GUEST_IP): Uint8Array {
  return ethernet(BROADCAST, 0x0806, [0, 1, 8, 0, 6, 4, 0, 1, ...GUEST_MAC, ...senderIp, 0, 0, 0, 0, 0, 0, ...targetIp]);
}

function echoRequest(dst: number[], data: number[]): Uint8Array {
  const icmp = [8, 0, 0, 0, 0x43, 0x21, 0, 7, ...data];
  const sum = checksumOf(icmp);
  icmp[2] = sum >> 8;
  icmp[3] = sum & 0xff;
  const dstMac = dst[3] === 3 ? DNS_MAC : HOST_MAC;
  return ethernet(dstMac, 0x0800, ipv4Packet(GUEST_IP, dst, 1, icmp));
}

/** A DHCP client message from GUEST_MAC, in a UDP broadcast from 0.0.0.0:68 to 255.255.255.255:67. */
function dhcpMessage(type: number, options: number[] = [], ciaddr = [0, 0, 0, 0]): Uint8Array {
  const bootp = new Array<number>(236).fill(0);
  bootp.splice(0, 4, 1, 1, 6, 0);
  bootp.splice(4, 4, 0xde, 0xad, 0xbe, 0xef);
  bootp.splice(10, 2, 0x80, 0); // broadcast flag
  bootp.splice(12, 4, ...ciaddr);
  bootp.splice(28, 6, ...GUEST_MAC);
  const data = [...bootp, 99, 130, 83, 99, 53, 1, type, ...options, 55, 3, 1, 3, 6, 255];
  const udp = [...u16(68), ...u16(67), ...u16(8 + data.length), 0, 0, ...data]; // no UDP checksum
  return ethernet(BROADCAST, 0x0800, ipv4Packet([0, 0, 0, 0], [255, 255, 255, 255], 17, udp));
}

interface DhcpReply {
  op: number;
  xid: number[];
  yiaddr: number[];
  siaddr: number[];
  chaddr: number[];
  options: Map<number, number[]>;
  ipDestination: number[];
  ethernetDestination: number[];
}

/** Checks a reply's IPv4 and UDP headers and checksums, then takes its DHCP fields apart. */
function parseDhcpReply(frame: Uint8Array): DhcpReply {
  const ip = Array.from(frame.subarray(14, 34));
  expect(checksumOf(ip)).toBe(0);
  expect(ip[9]).toBe(17);
  expect(ip.slice(12, 16)).toEqual(HOST_IP);
  const totalLength = (ip[2]! << 8) | ip[3]!;
  const udp = Array.from(frame.subarray(34, 14 + totalLength));
  expect(udp.slice(0, 4)).toEqual([0, 67, 0, 68]);
  expect((udp[4]! << 8) | udp[5]!).toBe(udp.length);
  expect(udp[6]! | udp[7]!).not.toBe(0);
  const pseudo = [...ip.slice(12, 20), 0, 17, ...u16(udp.length)];
  expect(checksumOf([...pseudo, ...udp])).toBe(0);
  const data = udp.slice(8);
  expect(data.length).toBeGreaterThanOrEqual(300);
  expect(data.slice(236, 240)).toEqual([99, 130, 83, 99]);
  const options = new Map<number, number[]>();
  for (let at = 240; data[at] !== 255; ) {
    if (data[at] === 0) {
      at++;
      continue;
    }
    options.set(data[at]!, data.slice(at + 2, at + 2 + data[at + 1]!));
    at += 2 + data[at + 1]!;
  }
  return {
    op: data[0]!,
    xid: data.slice(4, 8),
    yiaddr: data.slice(16, 20),
    siaddr: data.slice(20, 24),
    chaddr: data.slice(28, 34),
    options,
    ipDestination: ip.slice(16, 20),
    ethernetDestination: Array.from(frame.subarray(0, 6)),
  };
}

let backend: UserNetBackend;
let received: Uint8Array[];

/** Lets the backend's deferred replies arrive. */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

beforeEach(() => {
  backend = new UserNetBackend({ restrict: true });
  received = [];
  backend.attach((frame) => received.push(frame));
});

describe('user network backend', () => {
  it('provides NAT only with host sockets and restrict off', () => {
    expect(USER_NET_PROVIDES_NAT).toBe(true);
    expect(new UserNetBackend({ restrict: false }).providesNat).toBe(false);
    expect(backend.providesNat).toBe(false);
    expect(backend.restrict).toBe(true);
  });

  it.each([
    ['host', HOST_IP, HOST_MAC],
    ['dns', DNS_IP, DNS_MAC],
  ])('answers an ARP request for the %s address with its slirp MAC', async (_name, ip, mac) => {
    backend.send(arpRequest(ip));
    expect(received).toHaveLength(0); // never inside send()
    await settle();
    expect(received).toHaveLength(1);
    const reply = Array.from(received[0]!);
    expect(reply.slice(0, 6)).toEqual(GUEST_MAC);
    expect(reply.slice(6, 12)).toEqual(mac);
    expect(reply.slice(12, 14)).toEqual([0x08, 0x06]);
    expect(reply.slice(14, 22)).toEqual([0, 1, 8, 0, 6, 4, 0, 2]);
    expect(reply.slice(22, 28)).toEqual(mac);
    expect(reply.slice(28, 32)).toEqual(ip);
    expect(reply.slice(32, 38)).toEqual(GUEST_MAC);
    expect(reply.slice(38, 42)).toEqual(GUEST_IP);
  });

  it('does not answer ARP for other addresses, the guest\'s own probes included', async () => {
    backend.send(arpRequest([10, 0, 2, 15], [0, 0, 0, 0]));
    backend.send(arpRequest([10, 0, 2, 1]));
    backend.send(arpRequest([8, 8, 8, 8]));
    await settle();
    expect(received).toHaveLength(0);
  });

  it.each([['host', HOST_IP], ['dns', DNS_IP]])('answers a ping of the %s address with valid checksums', async (_name, ip) => {
    const data = Array.from({ length: 57 }, (_, i) => i * 3); // odd length: the checksum's last byte
    backend.send(echoRequest(ip, data));
    await settle();
    expect(received).toHaveLength(1);
    const reply = received[0]!;
    expect(Array.from(reply.subarray(0, 6))).toEqual(GUEST_MAC);
    const header = Array.from(reply.subarray(14, 34));
    expect(checksumOf(header)).toBe(0);
    expect(header[0]).toBe(0x45);
    expect(header[9]).toBe(1);
    expect((header[2]! << 8) | header[3]!).toBe(20 + 8 + 57);
    expect(header.slice(12, 16)).toEqual(ip);
    expect(header.slice(16, 20)).toEqual(GUEST_IP);
    const icmp = Array.from(reply.subarray(34, 34 + 8 + 57));
    expect(checksumOf(icmp)).toBe(0);
    expect(icmp.slice(0, 2)).toEqual([0, 0]);
    expect(icmp.slice(4, 8)).toEqual([0x43, 0x21, 0, 7]);
    expect(icmp.slice(8)).toEqual(data);
  });

  it('ignores pings with a bad ICMP checksum, to other addresses, or in fragments', async () => {
    const bad = echoRequest(HOST_IP, [1, 2, 3, 4]);
    bad[34 + 2] ^= 0xff;
    backend.send(bad);
    backend.send(echoRequest([10, 0, 2, 4], [1, 2, 3]));
    const icmp = Array.from(echoRequest(HOST_IP, [1, 2, 3, 4]).subarray(34));
    backend.send(ethernet(HOST_MAC, 0x0800, ipv4Packet(GUEST_IP, HOST_IP, 1, icmp, 0x2000))); // more fragments
    backend.send(ethernet(HOST_MAC, 0x0800, ipv4Packet(GUEST_IP, HOST_IP, 1, icmp, 0x0001))); // an offset
    await settle();
    expect(received).toHaveLength(0);
  });

  it('offers 10.0.2.15 to a DISCOVER with mask, router, DNS, lease time, type and server id', async () => {
    backend.send(dhcpMessage(1));
    await settle();
    expect(received).toHaveLength(1);
    const offer = parseDhcpReply(received[0]!);
    expect(offer.op).toBe(2);
    expect(offer.xid).toEqual([0xde, 0xad, 0xbe, 0xef]);
    expect(offer.yiaddr).toEqual(GUEST_IP);
    expect(offer.siaddr).toEqual(HOST_IP);
    expect(offer.chaddr).toEqual(GUEST_MAC);
    expect(offer.ethernetDestination).toEqual(GUEST_MAC);
    expect(offer.ipDestination).toEqual([255, 255, 255, 255]);
    expect(offer.options.get(53)).toEqual([2]);
    expect(offer.options.get(54)).toEqual(HOST_IP);
    expect(offer.options.get(51)).toEqual([0, 1, 0x51, 0x80]); // 86400
    expect(offer.options.get(1)).toEqual([255, 255, 255, 0]);
    expect(offer.options.get(3)).toEqual(HOST_IP);
    expect(offer.options.get(6)).toEqual(DNS_IP);
  });

  it('ACKs a REQUEST for the offered address and NAKs one for another', async () => {
    backend.send(dhcpMessage(1));
    backend.send(dhcpMessage(3, [50, 4, ...GUEST_IP, 54, 4, ...HOST_IP]));
    await settle();
    expect(received).toHaveLength(2);
    const ack = parseDhcpReply(received[1]!);
    expect(ack.options.get(53)).toEqual([5]);
    expect(ack.yiaddr).toEqual(GUEST_IP);
    expect(ack.options.get(1)).toEqual([255, 255, 255, 0]);
    expect(ack.options.get(3)).toEqual(HOST_IP);
    expect(ack.options.get(6)).toEqual(DNS_IP);
    expect(ack.options.get(51)).toEqual([0, 1, 0x51, 0x80]);

    backend.send(dhcpMessage(3, [50, 4, 10, 0, 2, 99]));
    await settle();
    const nak = parseDhcpReply(received[2]!);
    expect(nak.options.get(53)).toEqual([6]);
    expect(nak.yiaddr).toEqual([0, 0, 0, 0]);
  });

  it('ACKs a renewal (ciaddr set) at the client address, and stays silent for another server\'s REQUEST', async () => {
    backend.send(dhcpMessage(3, [], GUEST_IP));
    backend.send(dhcpMessage(3, [50, 4, ...GUEST_IP, 54, 4, 10, 0, 2, 9]));
    await settle();
    expect(received).toHaveLength(1);
    const ack = parseDhcpReply(received[0]!);
    expect(ack.options.get(53)).toEqual([5]);
    expect(ack.ipDestination).toEqual(GUEST_IP);
  });

  it('drops everything it does not serve: TCP, DNS queries, other UDP, other EtherTypes', async () => {
    backend.send(ethernet(HOST_MAC, 0x0800, ipv4Packet(GUEST_IP, [93, 184, 216, 34], 6, new Array(20).fill(0))));
    backend.send(ethernet(DNS_MAC, 0x0800, ipv4Packet(GUEST_IP, DNS_IP, 17, [0, 53, 0, 53, 0, 12, 0, 0, 1, 2, 3, 4])));
    backend.send(ethernet(HOST_MAC, 0x86dd, new Array(40).fill(0)));
    await settle();
    expect(received).toHaveLength(0);
  });

  it('survives garbage without throwing or answering', async () => {
    const valid = [arpRequest(HOST_IP), echoRequest(HOST_IP, [1, 2, 3, 4, 5]), dhcpMessage(1)];
    const garbage: Uint8Array[] = [new Uint8Array(0), Uint8Array.of(1, 2, 3)];
    // Every truncation of a valid request.
    for (const frame of valid) for (let n = 0; n < frame.length; n++) garbage.push(frame.slice(0, n));
    // IP options (IHL 6), a total length beyond the frame, a bad header checksum.
    const ping = echoRequest(HOST_IP, [1, 2, 3, 4]);
    for (const [at, value] of [[14, 0x46], [17, 0xff], [24, 0x00]] as const) {
      const bad = ping.slice();
      bad[at] = value;
      garbage.push(bad);
    }
    // Random bytes behind our MAC with each EtherType we parse.
    let seed = 12345;
    const random = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    for (let i = 0; i < 200; i++) {
      const type = i % 2 === 0 ? 0x0800 : 0x0806;
      garbage.push(ethernet(HOST_MAC, type, Array.from({ length: random() }, random)));
    }
    for (const frame of garbage) expect(() => backend.send(frame)).not.toThrow();
    await settle();
    expect(received).toHaveLength(0);
  });

  it('delivers nothing after close', async () => {
    backend.send(arpRequest(HOST_IP));
    backend.close();
    backend.send(arpRequest(HOST_IP));
    await settle();
    expect(received).toHaveLength(0);
  });
});
