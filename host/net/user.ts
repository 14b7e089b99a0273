// The "user" network backend (QEMU's -netdev user, slirp): the guest sees slirp's network 10.0.2.0/24 with
// the host at 10.0.2.2 and a DNS address 10.0.2.3, both answering ARP and ping, and a DHCP server handing
// out 10.0.2.15 onwards. Given host sockets (NatSockets, e.g. nat_node.ts) and restrict=off, it is a NAT as
// slirp's: the guest's UDP datagrams and TCP connections to any address go out through host sockets
// (10.0.2.2 being the host's 127.0.0.1, 10.0.2.3:53 the host's DNS server), TCP terminated here (tcp.ts);
// the DNS server at 10.0.2.3 answers address queries from the host's own lookup when it can (dns.ts).
// hostfwd rules forward host TCP and UDP ports to the guest, with restrict=on too, as in QEMU. Without sockets
// nothing goes beyond 10.0.2.2/10.0.2.3. Given files (tftp=), 10.0.2.2:69 serves them over TFTP (tftp.ts),
// and DHCP names the boot file (bootfile=). Node-free: it runs in a browser as well.
import type { FrameReceiver, NetBackend } from './backend.js';
import { DnsRcode, answersItself, buildDnsAnswer, parseDnsQuery, type DnsQuery } from './dns.js';
import type { HostForward, NatDatagramSocket, NatListener, NatSockets, NatStream, NatStreamEvents } from './nat.js';
import { TcpConnection, resetFor, type TcpConnectionHooks, type TcpOutput } from './tcp.js';
import { TFTP_PORT, TftpServer, type TftpFileSource } from './tftp.js';
import {
  DHCP_CLIENT_PORT, DHCP_SERVER_PORT, DhcpLeasePool, answerDhcp, buildDhcpReply, parseDhcpRequest, type DhcpNetwork,
} from './dhcp.js';
import { MAC_LENGTH } from './mac.js';
import {
  ARP_PACKET_SIZE, ArpOp, BROADCAST_IPV4, BROADCAST_MAC, ETHERNET_HEADER_SIZE, EtherType, ICMP_HEADER_SIZE, IPV4_PAYLOAD_AT,
  IcmpType, IpProtocol, TcpFlag, ethernetFrame, formatIpv4, internetChecksum, ipv4, ipv4Frame, onesComplementSum, parseIpv4, parseUdp, readIpv4,
  parseTcp, readU16, sameBytes, tcpFrame, udpFrame, writeIpv4, writeU16, type Ipv4Datagram, type TcpSegment, type UdpDatagram,
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
/**
 * Host sockets the guest may hold open at once through the NAT. Each is a host file descriptor; past
 * these a new UDP flow is dropped and a new TCP connection reset, as a host out of descriptors would.
 */
export const MAX_UDP_FLOWS = 256;
export const MAX_TCP_CONNECTIONS = 512;

/** Whether this backend can forward traffic beyond 10.0.2.2/10.0.2.3: yes, given host sockets. */
export const USER_NET_PROVIDES_NAT = true;
/** A UDP flow's socket closes after this long without traffic (DNS sooner). */
const UDP_IDLE_MS = 60_000;
const DNS_IDLE_MS = 10_000;
const DNS_PORT = 53;
/** Source ports on 10.0.2.2 for connections hostfwd opens to the guest. */
const FORWARD_PORT_FIRST = 0xc000;
const LOOPBACK = '127.0.0.1';

interface UdpFlow {
  readonly socket: NatDatagramSocket;
  readonly guest: number;
  readonly guestPort: number;
  /** The address and port the guest sent to, and where that is on the host. */
  readonly remote: number;
  readonly remotePort: number;
  readonly host: string;
  readonly hostPort: number;
  timer: ReturnType<typeof setTimeout> | null;
}

/** A host client of a UDP hostfwd, and the source port on 10.0.2.2 the guest sees it at. */
interface UdpForward {
  readonly socket: NatDatagramSocket;
  readonly host: string;
  readonly port: number;
  readonly guest: number;
  readonly guestPort: number;
  readonly sourcePort: number;
}

function udpForwardKey(forward: Pick<UdpForward, 'guest' | 'guestPort' | 'sourcePort'>): string {
  return `${forward.guest}:${forward.guestPort}<${forward.sourcePort}`;
}

export interface UserNetOptions {
  /** QEMU's restrict=on: the guest is isolated from the outside. Without NAT it is isolated either way. */
  readonly restrict?: boolean;
  /** Problems the user should hear of (a hostfwd port that cannot be bound). */
  readonly log?: (message: string) => void;
  /** Host sockets for NAT and hostfwd; without them the guest reaches only 10.0.2.2 and 10.0.2.3. */
  readonly sockets?: NatSockets;
  /** hostfwd rules: host TCP and UDP ports forwarded to the guest (needs `sockets`). */
  readonly hostForwards?: readonly HostForward[];
  /** How replies are deferred out of send() (default queueMicrotask). */
  readonly schedule?: (task: () => void) => void;
  /** QEMU's tftp=: files the TFTP server at 10.0.2.2 serves (restrict=on too: it is the network's own service). */
  readonly tftp?: TftpFileSource;
  /** QEMU's bootfile=: the file DHCP replies name for a network boot (BOOTP's file field). */
  readonly bootFile?: string;
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
  /** Whether outside traffic is forwarded: host sockets were given and restrict is off. */
  readonly providesNat: boolean;
  private readonly hostMac = userNetMacFor(USER_NET_HOST);
  private readonly dnsMac = userNetMacFor(USER_NET_DNS);
  private readonly dhcp: DhcpNetwork;
  private readonly pool = new DhcpLeasePool(USER_NET_DHCP_START, DHCP_POOL_SIZE);
  private readonly schedule: (task: () => void) => void;
  private readonly log: (message: string) => void;
  private receiver: FrameReceiver | null = null;
  private outbox: Uint8Array[] = [];
  private flushScheduled = false;
  private closed = false;
  private nextIpId = 1;
  private readonly sockets: NatSockets | null;
  /** The guest's MAC, learnt from its frames: where NAT replies and hostfwd connections go. */
  private guestMac: Uint8Array | null = null;
  private readonly udpFlows = new Map<string, UdpFlow>();
  /** UDP hostfwd clients, by the guest's address and port and their source port on 10.0.2.2. */
  private readonly udpForwards = new Map<string, UdpForward>();
  private readonly tcpConnections = new Map<string, TcpConnection>();
  private readonly listeners: NatListener[] = [];
  private nextForwardPort = FORWARD_PORT_FIRST;
  private readonly tftp: TftpServer | null;

  constructor(options: UserNetOptions = {}) {
    this.dhcp = {
      server: USER_NET_HOST,
      netmask: USER_NET_NETMASK,
      router: USER_NET_HOST,
      dns: USER_NET_DNS,
      leaseSeconds: LEASE_SECONDS,
      ...(options.bootFile === undefined ? {} : { bootFile: options.bootFile }),
    };
    this.tftp = options.tftp === undefined ? null : new TftpServer({
      files: options.tftp,
      send: (guest, guestPort, payload) => {
        if (this.closed || this.guestMac === null) return;
        const route = { destinationMac: this.guestMac, sourceMac: this.hostMac, source: USER_NET_HOST, destination: guest };
        this.reply(udpFrame(route, TFTP_PORT, guestPort, payload, this.ipId()));
      },
    });
    this.restrict = options.restrict ?? false;
    this.schedule = options.schedule ?? ((task) => queueMicrotask(task));
    this.log = options.log ?? (() => {});
    this.sockets = options.sockets ?? null;
    this.providesNat = this.sockets !== null && !this.restrict;
    if (this.sockets !== null) for (const rule of options.hostForwards ?? []) this.listenFor(this.sockets, rule);
  }

  /** The host ports the hostfwd rules listen on, once bound (rejects if one could not be). */
  hostForwardPorts(): Promise<number[]> {
    return Promise.all(this.listeners.map((listener) => listener.ready));
  }

  attach(receive: FrameReceiver): void {
    this.receiver = receive;
  }

  close(): void {
    this.closed = true;
    this.receiver = null;
    this.outbox = [];
    this.tftp?.close();
    for (const listener of this.listeners.splice(0)) listener.close();
    for (const connection of [...this.tcpConnections.values()]) connection.abort();
    this.tcpConnections.clear();
    for (const flow of this.udpFlows.values()) this.closeFlow(flow);
    this.udpFlows.clear();
    this.udpForwards.clear();
  }

  send(frame: Uint8Array): void {
    if (this.closed || frame.length < ETHERNET_HEADER_SIZE) return;
    // Any frame tells the guest's MAC (IPv6 or multicast chatter included), for NAT and hostfwd to reach it.
    if ((frame[6]! & 1) === 0) this.guestMac = frame.slice(6, 12);
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
    else if (ip.protocol === IpProtocol.tcp) this.answerTcp(frame, ip);
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
    if (udp === null) return;
    if (udp.destinationPort === DHCP_SERVER_PORT && udp.sourcePort === DHCP_CLIENT_PORT) this.answerDhcp(frame, ip, udp);
    else if (ip.destination === USER_NET_HOST && this.udpForwards.size > 0 && this.answerUdpForward(frame, ip, udp)) {
      // the guest answered a host client of a UDP hostfwd
    } else if (this.tftp !== null && ip.destination === USER_NET_HOST && udp.destinationPort === TFTP_PORT) {
      if (this.fromGuest(ip)) this.tftp.receive(ip.source, udp.sourcePort, frame.slice(udp.dataAt, udp.dataAt + udp.dataLength));
    } else if (this.providesNat) this.forwardUdp(frame, ip, udp);
  }

  /** A datagram from the guest to a UDP hostfwd's source port on 10.0.2.2 goes to that host client; false if it is none. */
  private answerUdpForward(frame: Uint8Array, ip: Ipv4Datagram, udp: UdpDatagram): boolean {
    const forward = this.udpForwards.get(udpForwardKey({ guest: ip.source, guestPort: udp.sourcePort, sourcePort: udp.destinationPort }));
    if (forward === undefined) return false;
    forward.socket.send(frame.slice(udp.dataAt, udp.dataAt + udp.dataLength), forward.host, forward.port);
    return true;
  }

  private answerDhcp(frame: Uint8Array, ip: Ipv4Datagram, udp: UdpDatagram): void {
    if (ip.destination !== BROADCAST_IPV4 && ip.destination !== USER_NET_HOST) return;
    const request = parseDhcpRequest(frame.subarray(udp.dataAt, udp.dataAt + udp.dataLength));
    if (request === null) return;
    const answer = answerDhcp(request, this.pool, USER_NET_HOST);
    if (answer === null) return;
    const message = buildDhcpReply(request, answer, this.dhcp);
    // A configured client (renewing) is answered at its address, one still without an address by broadcast;
    // at the Ethernet level the reply goes to the client's own MAC either way.
    const destination = answer.yourAddress !== 0 && request.clientAddress !== 0 ? request.clientAddress : BROADCAST_IPV4;
    const route = { destinationMac: request.clientHardware, sourceMac: this.hostMac, source: USER_NET_HOST, destination };
    this.reply(udpFrame(route, DHCP_SERVER_PORT, DHCP_CLIENT_PORT, message, this.ipId()));
  }

  /**
   * Where a guest's packet to `address`:`port` goes on the host, or null if nowhere: 10.0.2.2 is the host
   * itself, 10.0.2.3:53 its DNS server; the rest of 10.0.2.0/24, loopback, broadcast and multicast stay put.
   */
  private hostTarget(address: number, port: number): string | null {
    if (address === USER_NET_HOST) return LOOPBACK;
    if (address === USER_NET_DNS) return port === DNS_PORT ? this.sockets!.dnsServer : null;
    if (((address & USER_NET_NETMASK) >>> 0) === USER_NET_NETWORK || address >>> 24 === 127 || address >>> 24 === 0) return null;
    return isUnicastSource(address) ? formatIpv4(address) : null;
  }

  /** A packet from the guest that NAT may forward: from a unicast address in 10.0.2.0/24. */
  private fromGuest(ip: Ipv4Datagram): boolean {
    return this.guestMac !== null && ((ip.source & USER_NET_NETMASK) >>> 0) === USER_NET_NETWORK && isUnicastSource(ip.source);
  }

  private forwardUdp(frame: Uint8Array, ip: Ipv4Datagram, udp: UdpDatagram): void {
    if (!this.fromGuest(ip)) return;
    if (ip.destination === USER_NET_DNS && udp.destinationPort === DNS_PORT && this.sockets!.lookup !== undefined) {
      const query = parseDnsQuery(frame.subarray(udp.dataAt, udp.dataAt + udp.dataLength));
      if (query !== null && answersItself(query)) {
        this.answerDns(query, ip.source, udp.sourcePort, this.sockets!.lookup(query.name));
        return;
      }
    }
    const key = `${ip.source}:${udp.sourcePort}>${ip.destination}:${udp.destinationPort}`;
    let flow = this.udpFlows.get(key);
    if (flow === undefined) {
      const host = this.hostTarget(ip.destination, udp.destinationPort);
      if (host === null || this.udpFlows.size >= MAX_UDP_FLOWS) return;
      const created: UdpFlow = {
        socket: this.sockets!.udp((data, from, fromPort) => this.udpFromHost(created, data, from, fromPort)),
        guest: ip.source, guestPort: udp.sourcePort, remote: ip.destination, remotePort: udp.destinationPort, host, hostPort: udp.destinationPort, timer: null,
      };
      flow = created;
      this.udpFlows.set(key, flow);
    }
    this.touchFlow(key, flow);
    flow.socket.send(frame.slice(udp.dataAt, udp.dataAt + udp.dataLength), flow.host, flow.hostPort);
  }

  /** Answers an address query from 10.0.2.3:53 once the host's lookup is done. */
  private answerDns(query: DnsQuery, guest: number, guestPort: number, lookup: Promise<number[]>): void {
    const send = (rcode: number, addresses: readonly number[]): void => {
      if (this.closed || this.guestMac === null) return;
      const route = { destinationMac: this.guestMac, sourceMac: this.dnsMac, source: USER_NET_DNS, destination: guest };
      this.reply(udpFrame(route, DNS_PORT, guestPort, buildDnsAnswer(query, rcode, addresses), this.ipId()));
    };
    lookup.then(
      (addresses) => send(addresses.length === 0 ? DnsRcode.nameError : DnsRcode.noError, addresses),
      () => send(DnsRcode.serverFailure, []),
    );
  }

  private udpFromHost(flow: UdpFlow, data: Uint8Array, from: string, fromPort: number): void {
    if (this.closed || this.guestMac === null) return;
    let source = flow.remote;
    let sourcePort = flow.remotePort;
    if (from !== flow.host || fromPort !== flow.hostPort) {
      // Someone else answered (slirp passes that on): from their address, the host's loopback being 10.0.2.2.
      const parts = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(from)?.slice(1).map(Number);
      if (parts === undefined) return;
      source = from === LOOPBACK ? USER_NET_HOST : ipv4(parts[0]!, parts[1]!, parts[2]!, parts[3]!);
      sourcePort = fromPort;
    }
    const key = `${flow.guest}:${flow.guestPort}>${flow.remote}:${flow.remotePort}`;
    this.touchFlow(key, flow);
    const route = { destinationMac: this.guestMac, sourceMac: this.macOf(source) ?? this.hostMac, source, destination: flow.guest };
    this.reply(udpFrame(route, sourcePort, flow.guestPort, data, this.ipId()));
  }

  /** Restarts a flow's idle timer. */
  private touchFlow(key: string, flow: UdpFlow): void {
    if (flow.timer !== null) clearTimeout(flow.timer);
    const idle = flow.remotePort === DNS_PORT ? DNS_IDLE_MS : UDP_IDLE_MS;
    const timer = setTimeout(() => {
      this.udpFlows.delete(key);
      this.closeFlow(flow);
    }, idle);
    (timer as { unref?: () => void }).unref?.();
    flow.timer = timer;
  }

  private closeFlow(flow: UdpFlow): void {
    if (flow.timer !== null) clearTimeout(flow.timer);
    flow.timer = null;
    flow.socket.close();
  }

  private answerTcp(frame: Uint8Array, ip: Ipv4Datagram): void {
    if (this.sockets === null) return;
    const segment = parseTcp(frame, ip);
    if (segment === null || !this.fromGuest(ip)) return;
    const data = frame.subarray(segment.dataAt, segment.dataAt + segment.dataLength);
    const key = tcpKey(ip.source, segment.sourcePort, ip.destination, segment.destinationPort);
    const existing = this.tcpConnections.get(key);
    if (existing !== undefined) {
      existing.segment(segment, data);
      return;
    }
    const hooks = this.tcpHooks(key, ip.source, segment.sourcePort, ip.destination, segment.destinationPort);
    const host = this.providesNat ? this.hostTarget(ip.destination, segment.destinationPort) : null;
    const full = this.tcpConnections.size >= MAX_TCP_CONNECTIONS;
    if ((segment.flags & (TcpFlag.syn | TcpFlag.ack | TcpFlag.rst)) !== TcpFlag.syn || host === null || full) {
      const reset = resetFor(segment);
      if (reset !== null) hooks.output(reset);
      return;
    }
    const connection = TcpConnection.fromGuest(hooks, segment, randomIss());
    this.tcpConnections.set(key, connection);
    connection.bind(this.sockets.connect(host, segment.destinationPort, connection));
  }

  /** How a connection between the guest's `guest`:`guestPort` and `remote`:`remotePort` reaches the guest. */
  private tcpHooks(key: string, guest: number, guestPort: number, remote: number, remotePort: number): TcpConnectionHooks {
    return {
      output: (segment: TcpOutput) => {
        if (this.closed) return;
        if (this.guestMac === null) {
          // A guest silent so far (hostfwd): ask for its MAC; the SYN goes again once the reply taught it.
          this.askMac(guest);
          return;
        }
        const route = { destinationMac: this.guestMac, sourceMac: this.macOf(remote) ?? this.hostMac, source: remote, destination: guest };
        const header = { ...segment, sourcePort: remotePort, destinationPort: guestPort };
        this.reply(tcpFrame(route, header, segment.data ?? new Uint8Array(0), this.ipId()));
      },
      closed: () => {
        this.tcpConnections.delete(key);
      },
    };
  }

  /** An ARP request from 10.0.2.2 for `address`. */
  private askMac(address: number): void {
    const at = ETHERNET_HEADER_SIZE;
    const request = ethernetFrame(BROADCAST_MAC, this.hostMac, EtherType.arp, at + ARP_PACKET_SIZE);
    writeU16(request, at, 1); // Ethernet
    writeU16(request, at + 2, EtherType.ipv4);
    request[at + 4] = MAC_LENGTH;
    request[at + 5] = 4;
    writeU16(request, at + 6, ArpOp.request);
    request.set(this.hostMac, at + 8);
    writeIpv4(request, at + 14, USER_NET_HOST);
    writeIpv4(request, at + 24, address);
    this.reply(request);
  }

  /** hostfwd: each connection to the host port becomes one from 10.0.2.2 to the guest's port. */
  private listenFor(sockets: NatSockets, rule: HostForward): void {
    const guest = rule.guestAddress === 0 ? USER_NET_DHCP_START : rule.guestAddress;
    if (rule.protocol === 'udp') {
      this.forwardUdpPort(sockets, rule, guest);
      return;
    }
    const accept = (stream: NatStream): NatStreamEvents | null => {
      if (this.closed) return null;
      const port = this.forwardPort((source) => this.tcpConnections.has(tcpKey(guest, rule.guestPort, USER_NET_HOST, source)));
      const key = tcpKey(guest, rule.guestPort, USER_NET_HOST, port);
      const connection = TcpConnection.toGuest(this.tcpHooks(key, guest, rule.guestPort, USER_NET_HOST, port), stream, randomIss());
      this.tcpConnections.set(key, connection);
      return connection;
    };
    const listener = sockets.listen(rule.hostAddress, rule.hostPort, accept);
    listener.ready.catch((error: unknown) => this.log(`user net: hostfwd tcp:${rule.hostAddress}:${rule.hostPort}: ${String(error)}`));
    this.listeners.push(listener);
  }

  /**
   * UDP hostfwd: each host client (address and port) becomes a source port on 10.0.2.2 its datagrams reach
   * the guest's port from, and the guest's datagrams back to that port go out to the client from the
   * forwarded host port. At most MAX_UDP_FLOWS clients are remembered, the oldest forgotten first.
   */
  private forwardUdpPort(sockets: NatSockets, rule: HostForward, guest: number): void {
    const byClient = new Map<string, UdpForward>();
    const socket = sockets.bindUdp(rule.hostAddress, rule.hostPort, (data, host, port) => {
      if (this.closed) return;
      const client = `${host}:${port}`;
      let forward = byClient.get(client);
      if (forward === undefined) {
        forward = { socket, host, port, guest, guestPort: rule.guestPort, sourcePort: this.forwardPort((source) => this.udpForwards.has(udpForwardKey({ guest, guestPort: rule.guestPort, sourcePort: source }))) };
        if (byClient.size >= MAX_UDP_FLOWS) {
          const [oldest, dropped] = byClient.entries().next().value as [string, UdpForward];
          byClient.delete(oldest);
          this.udpForwards.delete(udpForwardKey(dropped));
        }
        byClient.set(client, forward);
        this.udpForwards.set(udpForwardKey(forward), forward);
      }
      if (this.guestMac === null) return; // not heard from yet: nowhere to send it
      const route = { destinationMac: this.guestMac, sourceMac: this.hostMac, source: USER_NET_HOST, destination: guest };
      this.reply(udpFrame(route, forward.sourcePort, rule.guestPort, data, this.ipId()));
    });
    socket.ready.catch((error: unknown) => this.log(`user net: hostfwd udp:${rule.hostAddress}:${rule.hostPort}: ${String(error)}`));
    this.listeners.push(socket);
  }

  /** The next source port on 10.0.2.2 for a hostfwd to the guest (TCP or UDP) that `taken` does not refuse. */
  private forwardPort(taken: (port: number) => boolean): number {
    for (;;) {
      const port = this.nextForwardPort;
      this.nextForwardPort = port === 0xffff ? FORWARD_PORT_FIRST : port + 1;
      if (!taken(port)) return port;
    }
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

function tcpKey(guest: number, guestPort: number, remote: number, remotePort: number): string {
  return `${guest}:${guestPort}>${remote}:${remotePort}`;
}

function randomIss(): number {
  return Math.floor(Math.random() * 0x1_0000_0000) >>> 0;
}

/** A source a reply can go back to: not 0.0.0.0, not multicast or broadcast. */
function isUnicastSource(address: number): boolean {
  return address !== 0 && address >>> 28 !== 0xe && address !== BROADCAST_IPV4;
}
