// Byte-level Ethernet, ARP, IPv4, ICMP, UDP and TCP (RFC 826, 791, 792, 768, 793) for the user network backend:
// parsing that refuses whatever it cannot fully account for, and building replies with their checksums.
// IPv4 addresses are unsigned 32-bit numbers, 10.0.2.2 = 0x0a000202.

export const ETHERNET_HEADER_SIZE = 14;
export const IPV4_HEADER_SIZE = 20;
export const UDP_HEADER_SIZE = 8;
export const ICMP_HEADER_SIZE = 8;
export const TCP_HEADER_SIZE = 20;
export const ARP_PACKET_SIZE = 28;
/** The shortest frame on a real wire (without FCS); replies are padded to it, as a NIC would. */
const ETHERNET_MIN_FRAME = 60;

export const EtherType = { ipv4: 0x0800, arp: 0x0806 } as const;
export const IpProtocol = { icmp: 1, tcp: 6, udp: 17 } as const;
export const TcpFlag = { fin: 0x01, syn: 0x02, rst: 0x04, psh: 0x08, ack: 0x10 } as const;
/** TCP option kinds: end of list, no-operation, maximum segment size. */
const TcpOption = { end: 0, nop: 1, mss: 2 } as const;
export const ArpOp = { request: 1, reply: 2 } as const;
export const IcmpType = { echoReply: 0, echoRequest: 8 } as const;

export const BROADCAST_MAC: Readonly<Uint8Array> = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
export const BROADCAST_IPV4 = 0xffffffff;
const DEFAULT_TTL = 64;

export function ipv4(a: number, b: number, c: number, d: number): number {
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

export function formatIpv4(address: number): string {
  return [address >>> 24, (address >>> 16) & 0xff, (address >>> 8) & 0xff, address & 0xff].join('.');
}

export function readIpv4(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

export function writeIpv4(bytes: Uint8Array, at: number, address: number): void {
  bytes[at] = address >>> 24;
  bytes[at + 1] = address >>> 16;
  bytes[at + 2] = address >>> 8;
  bytes[at + 3] = address;
}

export function readU16(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 8) | bytes[at + 1]!;
}

export function writeU16(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 8;
  bytes[at + 1] = value;
}

export function sameBytes(a: Uint8Array, aAt: number, b: Readonly<Uint8Array>, length = b.length): boolean {
  for (let i = 0; i < length; i++) if (a[aAt + i] !== b[i]) return false;
  return true;
}

/**
 * The 16-bit one's complement sum of `length` bytes from `at`, plus `initial` (a pseudo-header's sum),
 * folded but not complemented. A received header with its checksum field in sums to 0xffff.
 */
export function onesComplementSum(bytes: Uint8Array, at: number, length: number, initial = 0): number {
  let sum = initial;
  const end = at + length;
  let i = at;
  for (; i + 1 < end; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (i < end) sum += bytes[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The checksum field value: the complement of the sum taken with the field zeroed. */
export function internetChecksum(bytes: Uint8Array, at: number, length: number, initial = 0): number {
  return ~onesComplementSum(bytes, at, length, initial) & 0xffff;
}

/** The sum of the UDP/TCP pseudo-header (RFC 768). */
export function pseudoHeaderSum(source: number, destination: number, protocol: number, length: number): number {
  return (source >>> 16) + (source & 0xffff) + (destination >>> 16) + (destination & 0xffff) + protocol + length;
}

/** A received IPv4 datagram that passed every check: its header and where its payload lies in the frame. */
export interface Ipv4Datagram {
  readonly source: number;
  readonly destination: number;
  readonly protocol: number;
  /** Offset of the payload in the frame. */
  readonly payloadAt: number;
  readonly payloadLength: number;
}

/**
 * The IPv4 datagram in an Ethernet frame, or null for anything the backend does not take: a bad version,
 * length or header checksum, IP options, or a fragment (there is no reassembly).
 */
export function parseIpv4(frame: Uint8Array): Ipv4Datagram | null {
  const at = ETHERNET_HEADER_SIZE;
  if (frame.length < at + IPV4_HEADER_SIZE) return null;
  if (frame[at] !== 0x45) return null; // version 4, 20-byte header: options are refused
  const totalLength = readU16(frame, at + 2);
  // Frames may carry padding after the datagram, never less than it.
  if (totalLength < IPV4_HEADER_SIZE || at + totalLength > frame.length) return null;
  if ((readU16(frame, at + 6) & 0x3fff) !== 0) return null; // more-fragments or a fragment offset
  if (onesComplementSum(frame, at, IPV4_HEADER_SIZE) !== 0xffff) return null;
  return {
    source: readIpv4(frame, at + 12),
    destination: readIpv4(frame, at + 16),
    protocol: frame[at + 9]!,
    payloadAt: at + IPV4_HEADER_SIZE,
    payloadLength: totalLength - IPV4_HEADER_SIZE,
  };
}

/** A frame of at least the wire's minimum size with its Ethernet header written. */
export function ethernetFrame(destination: Readonly<Uint8Array>, source: Readonly<Uint8Array>, etherType: number, length: number): Uint8Array {
  const frame = new Uint8Array(Math.max(length, ETHERNET_MIN_FRAME));
  frame.set(destination, 0);
  frame.set(source, 6);
  writeU16(frame, 12, etherType);
  return frame;
}

export interface Ipv4Route {
  readonly destinationMac: Readonly<Uint8Array>;
  readonly sourceMac: Readonly<Uint8Array>;
  readonly source: number;
  readonly destination: number;
}

/** An IPv4 frame with its header complete and `payloadLength` zero bytes of payload at IPV4_PAYLOAD_AT. */
export function ipv4Frame(route: Ipv4Route, protocol: number, payloadLength: number, id: number): Uint8Array {
  const totalLength = IPV4_HEADER_SIZE + payloadLength;
  const frame = ethernetFrame(route.destinationMac, route.sourceMac, EtherType.ipv4, ETHERNET_HEADER_SIZE + totalLength);
  const at = ETHERNET_HEADER_SIZE;
  frame[at] = 0x45;
  writeU16(frame, at + 2, totalLength);
  writeU16(frame, at + 4, id);
  frame[at + 8] = DEFAULT_TTL;
  frame[at + 9] = protocol;
  writeIpv4(frame, at + 12, route.source);
  writeIpv4(frame, at + 16, route.destination);
  writeU16(frame, at + 10, internetChecksum(frame, at, IPV4_HEADER_SIZE));
  return frame;
}

export const IPV4_PAYLOAD_AT = ETHERNET_HEADER_SIZE + IPV4_HEADER_SIZE;

/** A received UDP datagram with a consistent length and, if it has one, a correct checksum. */
export interface UdpDatagram {
  readonly sourcePort: number;
  readonly destinationPort: number;
  readonly dataAt: number;
  readonly dataLength: number;
}

export function parseUdp(frame: Uint8Array, ip: Ipv4Datagram): UdpDatagram | null {
  if (ip.protocol !== IpProtocol.udp || ip.payloadLength < UDP_HEADER_SIZE) return null;
  const at = ip.payloadAt;
  const length = readU16(frame, at + 4);
  if (length < UDP_HEADER_SIZE || length > ip.payloadLength) return null;
  if (readU16(frame, at + 6) !== 0) {
    const pseudo = pseudoHeaderSum(ip.source, ip.destination, IpProtocol.udp, length);
    if (onesComplementSum(frame, at, length, pseudo) !== 0xffff) return null;
  }
  return { sourcePort: readU16(frame, at), destinationPort: readU16(frame, at + 2), dataAt: at + UDP_HEADER_SIZE, dataLength: length - UDP_HEADER_SIZE };
}

/** A UDP frame whose data (`data`) is copied in and whose checksum is set. */
export function udpFrame(route: Ipv4Route, sourcePort: number, destinationPort: number, data: Uint8Array, id: number): Uint8Array {
  const length = UDP_HEADER_SIZE + data.length;
  const frame = ipv4Frame(route, IpProtocol.udp, length, id);
  const at = IPV4_PAYLOAD_AT;
  writeU16(frame, at, sourcePort);
  writeU16(frame, at + 2, destinationPort);
  writeU16(frame, at + 4, length);
  frame.set(data, at + UDP_HEADER_SIZE);
  const checksum = internetChecksum(frame, at, length, pseudoHeaderSum(route.source, route.destination, IpProtocol.udp, length));
  // A computed zero is sent as all ones: zero means "no checksum" in UDP.
  writeU16(frame, at + 6, checksum === 0 ? 0xffff : checksum);
  return frame;
}

/** The TCP header fields wkvm reads and writes (no urgent pointer). */
export interface TcpFields {
  readonly sourcePort: number;
  readonly destinationPort: number;
  readonly seq: number;
  readonly ack: number;
  readonly flags: number;
  readonly window: number;
}

/** A received TCP segment with a consistent header and a correct checksum. */
export interface TcpSegment extends TcpFields {
  /** The maximum segment size option, or null without one. */
  readonly mss: number | null;
  readonly dataAt: number;
  readonly dataLength: number;
}

export function parseTcp(frame: Uint8Array, ip: Ipv4Datagram): TcpSegment | null {
  if (ip.protocol !== IpProtocol.tcp || ip.payloadLength < TCP_HEADER_SIZE) return null;
  const at = ip.payloadAt;
  const headerLength = (frame[at + 12]! >>> 4) * 4;
  if (headerLength < TCP_HEADER_SIZE || headerLength > ip.payloadLength) return null;
  const pseudo = pseudoHeaderSum(ip.source, ip.destination, IpProtocol.tcp, ip.payloadLength);
  if (onesComplementSum(frame, at, ip.payloadLength, pseudo) !== 0xffff) return null;
  let mss: number | null = null;
  for (let i = at + TCP_HEADER_SIZE; i < at + headerLength;) {
    const kind = frame[i]!;
    if (kind === TcpOption.end) break;
    if (kind === TcpOption.nop) {
      i++;
      continue;
    }
    const length = frame[i + 1] ?? 0;
    if (length < 2 || i + length > at + headerLength) return null;
    if (kind === TcpOption.mss && length === 4) mss = readU16(frame, i + 2);
    i += length;
  }
  return {
    sourcePort: readU16(frame, at),
    destinationPort: readU16(frame, at + 2),
    seq: readIpv4(frame, at + 4),
    ack: readIpv4(frame, at + 8),
    flags: frame[at + 13]! & 0x3f,
    window: readU16(frame, at + 14),
    mss,
    dataAt: at + headerLength,
    dataLength: ip.payloadLength - headerLength,
  };
}

/** The header fields of a TCP segment to build; `mss` adds that option (sent with SYNs). */
export interface TcpHeader extends TcpFields {
  readonly mss?: number;
}

/** A TCP frame with `data` copied in and its checksum set. */
export function tcpFrame(route: Ipv4Route, header: TcpHeader, data: Uint8Array, id: number): Uint8Array {
  const headerLength = TCP_HEADER_SIZE + (header.mss === undefined ? 0 : 4);
  const length = headerLength + data.length;
  const frame = ipv4Frame(route, IpProtocol.tcp, length, id);
  const at = IPV4_PAYLOAD_AT;
  writeU16(frame, at, header.sourcePort);
  writeU16(frame, at + 2, header.destinationPort);
  writeIpv4(frame, at + 4, header.seq >>> 0);
  writeIpv4(frame, at + 8, header.ack >>> 0);
  frame[at + 12] = (headerLength / 4) << 4;
  frame[at + 13] = header.flags;
  writeU16(frame, at + 14, header.window);
  if (header.mss !== undefined) {
    frame[at + TCP_HEADER_SIZE] = TcpOption.mss;
    frame[at + TCP_HEADER_SIZE + 1] = 4;
    writeU16(frame, at + TCP_HEADER_SIZE + 2, header.mss);
  }
  frame.set(data, at + headerLength);
  writeU16(frame, at + 16, internetChecksum(frame, at, length, pseudoHeaderSum(route.source, route.destination, IpProtocol.tcp, length)));
  return frame;
}
