// Frames as a guest would build them, for the user network tests, with RFC 1071 checksums written out
// independently of host/net/packet.ts.
export const GUEST_MAC = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
export const HOST_MAC = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];
export const DNS_MAC = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x03];
export const BROADCAST = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
export const GUEST_IP = [10, 0, 2, 15];
export const HOST_IP = [10, 0, 2, 2];
export const DNS_IP = [10, 0, 2, 3];

/** RFC 1071, written out again here so that a wrong checksum in the backend cannot hide. */
export function checksumOf(bytes: number[] | Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i]! << 8) + (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

export const u16 = (v: number): number[] => [(v >> 8) & 0xff, v & 0xff];

export function ethernet(dst: number[], etherType: number, payload: number[]): Uint8Array {
  return Uint8Array.from([...dst, ...GUEST_MAC, ...u16(etherType), ...payload]);
}

export function ipv4Packet(src: number[], dst: number[], protocol: number, payload: number[], fragment = 0): number[] {
  const header = [0x45, 0, ...u16(20 + payload.length), 0x12, 0x34, ...u16(fragment), 64, protocol, 0, 0, ...src, ...dst];
  const sum = checksumOf(header);
  header[10] = sum >> 8;
  header[11] = sum & 0xff;
  return [...header, ...payload];
}

/** The sum a UDP or TCP checksum covers besides the segment: addresses, protocol, length. */
export function pseudoHeader(src: number[], dst: number[], protocol: number, length: number): number[] {
  return [...src, ...dst, 0, protocol, ...u16(length)];
}

/** A UDP datagram from GUEST_IP:srcPort in a frame to `dstMac`, with its checksum. */
export function guestUdp(dstMac: number[], dst: number[], srcPort: number, dstPort: number, data: number[]): Uint8Array {
  const udp = [...u16(srcPort), ...u16(dstPort), ...u16(8 + data.length), 0, 0, ...data];
  const sum = checksumOf([...pseudoHeader(GUEST_IP, dst, 17, udp.length), ...udp]);
  udp.splice(6, 2, ...u16(sum === 0 ? 0xffff : sum));
  return ethernet(dstMac, 0x0800, ipv4Packet(GUEST_IP, dst, 17, udp));
}

export interface GuestTcp {
  readonly dst: number[];
  readonly srcPort: number;
  readonly dstPort: number;
  readonly seq: number;
  readonly ack: number;
  /** FIN 1, SYN 2, RST 4, PSH 8, ACK 16. */
  readonly flags: number;
  readonly window?: number;
  readonly mss?: number;
  readonly data?: number[];
}

const u32 = (v: number): number[] => [...u16(v >>> 16), ...u16(v & 0xffff)];

/** A TCP segment from GUEST_IP to the host's MAC, with its checksum. */
export function guestTcp(s: GuestTcp): Uint8Array {
  const options = s.mss === undefined ? [] : [2, 4, ...u16(s.mss)];
  const tcp = [
    ...u16(s.srcPort), ...u16(s.dstPort), ...u32(s.seq >>> 0), ...u32(s.ack >>> 0), ((20 + options.length) / 4) << 4, s.flags,
    ...u16(s.window ?? 65535), 0, 0, 0, 0, ...options, ...(s.data ?? []),
  ];
  tcp.splice(16, 2, ...u16(checksumOf([...pseudoHeader(GUEST_IP, s.dst, 6, tcp.length), ...tcp])));
  return ethernet(HOST_MAC, 0x0800, ipv4Packet(GUEST_IP, s.dst, 6, tcp));
}
