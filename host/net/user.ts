// The "user" network backend (QEMU's -netdev user, slirp), first version: the guest sees slirp's network
// 10.0.2.0/24 with the host at 10.0.2.2 and a DNS address 10.0.2.3, both answering ARP and ping, and a DHCP
// server handing out 10.0.2.15 onwards. Nothing is forwarded beyond these addresses (no NAT yet), which is
// what QEMU's restrict=on does for outside traffic. Node-free: it runs in a browser as well.
import type { FrameReceiver, NetBackend } from './backend.js';
import {
  DHCP_CLIENT_PORT, DHCP_SERVER_PORT, DhcpLeasePool, DhcpMessageType, answerDhcp, buildDhcpReply, parseDhcpRequest, type DhcpNetwork,
} from './dhcp.js';
import { MAC_LENGTH, formatMacAddress } from './mac.js';
import {
  ARP_PACKET_SIZE, ArpOp, BROADCAST_IPV4, BROADCAST_MAC, ETHERNET_HEADER_SIZE, EtherType, ICMP_HEADER_SIZE, IPV4_PAYLOAD_AT,
  IcmpType, IpProtocol, ethernetFrame, formatIpv4, internetChecksum, ipv4, ipv4Frame, onesComplementSum, parseIpv4, parseUdp, readIpv4,
  readU16, sameBytes, udpFrame, writeIpv4, writeU16, type Ipv4Datagram,
} from './packet.js';

/** slirp's defaults (QEMU's net=, host=, dns=, dhcpstart=). */
export const USER_NET_NETWORK = ipv4(10, 0, 2, 0);
export const USER_NET_NETMASK = ipv4(255, 255, 255, 0);
export const USER_NET_HOST = ipv4(10, 0, 2, 2);
export const USER_NET_DNS = ipv4(10, 0, 2, 3);
export const USER_NET_DHCP_START = ipv4(10, 0, 2, 15);
/** slirp's pool: 16 addresses. */
const DHCP_POOL_SIZE = 16;
const LEASE_SECONDS = 86400;
/** Replies waiting for the microtask that delivers them; a ping flood beyond this loses replies. */
const MAX_OUTBOX = 256;

/** Whether this backend forwards traffic beyond 10.0.2.2/10.0.2.3 (restrict=off asks for that). */
export const USER_NET_PROVIDES_NAT = false;

export interface UserNetOptions {
  /** QEMU's restrict=on: the guest is isolated from the outside. Without NAT it is isolated either way. */
  readonly restrict?: boolean;
  readonly log?: (message: string) => void;
  /** How replies are deferred out of send() (default queueMicrotask). */
  readonly schedule?: (task: () => void) => void;
}

/** slirp's MAC for one of its addresses: 52:55 followed by the address, e.g. 52:55:0a:00:02:02. */
export function userNetMacFor(address: number): Uint8Array {
  const mac = new Uint8Array(MAC_LENGTH);
  mac[0] = 0x52;
  mac[1] = 0x55;
  writeIpv4(mac, 2, address);
  return mac;
}

export class UserNetBackend implements NetBackend {
  readonly restrict: boolean;
  /** False: outside traffic is dropped whatever `restrict` says, so restrict=off deserves a warning. */
  readonly providesNat = USER_NET_PROVIDES_NAT;
  private readonly hostMac = userNetMacFor(USER_NET_HOST);
  private readonly dnsMac = userNetMacFor(USER_NET_DNS);
  private readonly dhcp: DhcpNetwork = {
    server: USER_NET_HOST,
    netmask: USER_NET_NETMASK,
    router: USER_NET_HOST,
    dns: USER_NET_DNS,
    leaseSeconds: LEASE_SECONDS,
  };
  private readonly pool = new DhcpLeasePool(USER_NET_DHCP_START, DHCP_POOL_SIZE);
  private readonly schedule: (task: () => void) => void;
  private readonly log: (message: string) => void;
  private receiver: FrameReceiver | null = null;
  private outbox: Uint8Array[] = [];
  private flushScheduled = false;
  private closed = false;
  private nextIpId = 1;

  constructor(options: UserNetOptions = {}) {
    this.restrict = options.restrict ?? false;
    this.schedule = options.schedule ?? ((task) => queueMicrotask(task));
    this.log = options.log ?? (() => {});
  }

  attach(receive: FrameReceiver): void {
    this.receiver = receive;
  }

  close(): void {
    this.closed = true;
    this.receiver = null;
    this.outbox = [];
  }

  send(frame: Uint8Array): void {
    if (this.closed || frame.length < ETHERNET_HEADER_SIZE) return;
    if (!sameBytes(frame, 0, BROADCAST_MAC) && this.macOwner(frame, 0) === 0) return;
    const etherType = readU16(frame, 12);
    if (etherType === EtherType.arp) this.answerArp(frame);
    else if (etherType === EtherType.ipv4) this.answerIpv4(frame);
  }

  /** Which of our addresses owns the MAC at `at` in `bytes`, or 0. */
  private macOwner(bytes: Uint8Array, at: number): number {
    if (sameBytes(bytes, at, this.hostMac)) return USER_NET_HOST;
    if (sameBytes(bytes, at, this.dnsMac)) return USER_NET_DNS;
    return 0;
  }

  private macOf(address: number): Uint8Array | null {
    if (address === USER_NET_HOST) return this.hostMac;
    if (address === USER_NET_DNS) return this.dnsMac;
    return null;
  }

  private answerArp(frame: Uint8Array): void {
    const at = ETHERNET_HEADER_SIZE;
    if (frame.length < at + ARP_PACKET_SIZE) return;
    // Ethernet hardware, IPv4 protocol, 6- and 4-byte addresses, a request.
    if (readU16(frame, at) !== 1 || readU16(frame, at + 2) !== EtherType.ipv4 || frame[at + 4] !== MAC_LENGTH || frame[at + 5] !== 4) return;
    if (readU16(frame, at + 6) !== ArpOp.request) return;
    const target = readIpv4(frame, at + 24);
    const ourMac = this.macOf(target);
    if (ourMac === null) return;
    const senderMac = frame.subarray(at + 8, at + 14);
    const reply = ethernetFrame(senderMac, ourMac, EtherType.arp, at + ARP_PACKET_SIZE);
    reply.set(frame.subarray(at, at + 6), at); // htype, ptype, hlen, plen as asked
    writeU16(reply, at + 6, ArpOp.reply);
    reply.set(ourMac, at + 8);
    writeIpv4(reply, at + 14, target);
    reply.set(senderMac, at + 18);
    reply.set(frame.subarray(at + 14, at + 18), at + 24);
    this.reply(reply);
  }

  private answerIpv4(frame: Uint8Array): void {
    const ip = parseIpv4(frame);
    if (ip === null) return;
    if (ip.protocol === IpProtocol.icmp) this.answerPing(frame, ip);
    else if (ip.protocol === IpProtocol.udp) this.answerUdp(frame, ip);
    // TCP and the rest would need NAT.
  }

  private answerPing(frame: Uint8Array, ip: Ipv4Datagram): void {
    const ourMac = this.macOf(ip.destination);
    if (ourMac === null || !isUnicastSource(ip.source) || ip.payloadLength < ICMP_HEADER_SIZE) return;
    if (frame[ip.payloadAt] !== IcmpType.echoRequest || frame[ip.payloadAt + 1] !== 0) return;
    if (onesComplementSum(frame, ip.payloadAt, ip.payloadLength) !== 0xffff) return;
    const route = { destinationMac: frame.subarray(6, 12), sourceMac: ourMac, source: ip.destination, destination: ip.source };
    const reply = ipv4Frame(route, IpProtocol.icmp, ip.payloadLength, this.ipId());
    reply.set(frame.subarray(ip.payloadAt, ip.payloadAt + ip.payloadLength), IPV4_PAYLOAD_AT);
    reply[IPV4_PAYLOAD_AT] = IcmpType.echoReply;
    writeU16(reply, IPV4_PAYLOAD_AT + 2, 0);
    writeU16(reply, IPV4_PAYLOAD_AT + 2, internetChecksum(reply, IPV4_PAYLOAD_AT, ip.payloadLength));
    this.reply(reply);
  }

  private answerUdp(frame: Uint8Array, ip: Ipv4Datagram): void {
    const udp = parseUdp(frame, ip);
    if (udp === null || udp.destinationPort !== DHCP_SERVER_PORT || udp.sourcePort !== DHCP_CLIENT_PORT) return;
    if (ip.destination !== BROADCAST_IPV4 && ip.destination !== USER_NET_HOST) return;
    const request = parseDhcpRequest(frame.subarray(udp.dataAt, udp.dataAt + udp.dataLength));
    if (request === null) return;
    const answer = answerDhcp(request, this.pool, USER_NET_HOST);
    if (answer === null) return;
    if (answer.type === DhcpMessageType.ack) this.log(`user net: DHCP lease ${formatIpv4(answer.yourAddress)} to ${formatMacAddress(request.clientHardware)}`);
    const message = buildDhcpReply(request, answer, this.dhcp);
    // A configured client (renewing) is answered at its address, one still without an address by broadcast;
    // at the Ethernet level the reply goes to the client's own MAC either way.
    const destination = answer.yourAddress !== 0 && request.clientAddress !== 0 ? request.clientAddress : BROADCAST_IPV4;
    const route = { destinationMac: request.clientHardware, sourceMac: this.hostMac, source: USER_NET_HOST, destination };
    this.reply(udpFrame(route, DHCP_SERVER_PORT, DHCP_CLIENT_PORT, message, this.ipId()));
  }

  private ipId(): number {
    const id = this.nextIpId;
    this.nextIpId = (id + 1) & 0xffff;
    return id;
  }

  /** Queues a frame for the guest; delivered from a microtask, never from inside the NIC's send(). */
  private reply(frame: Uint8Array): void {
    if (this.outbox.length >= MAX_OUTBOX) return;
    this.outbox.push(frame);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.schedule(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    const frames = this.outbox;
    this.outbox = [];
    for (const frame of frames) this.receiver?.(frame);
  }
}

/** A source a reply can go back to: not 0.0.0.0, not multicast or broadcast. */
function isUnicastSource(address: number): boolean {
  return address !== 0 && address >>> 28 !== 0xe && address !== BROADCAST_IPV4;
}
