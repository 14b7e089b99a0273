// What the user network's NAT needs from the host: UDP sockets, outgoing TCP connections and listening
// TCP ports, behind an interface so that user.ts stays free of Node (a browser runs it without NAT).
// host/net/nat_node.ts implements it with node:dgram and node:net. Also QEMU's hostfwd rule syntax.
import { ipv4 } from './packet.js';

/** Events of a host TCP connection, as the backend's TCP endpoint takes them. */
export interface NatStreamEvents {
  /** An outgoing connection is established. */
  connected(): void;
  data(bytes: Uint8Array): void;
  /** The host side finished sending (FIN). */
  end(): void;
  /** Refused, reset or failed: the guest's side is reset too. */
  failed(reason: string): void;
  /** What was written has gone out (the host socket's buffer emptied): the guest may send again. */
  drained(): void;
}

/** A host TCP connection. Node sockets must be half-open capable (allowHalfOpen). */
export interface NatStream {
  write(bytes: Uint8Array): void;
  /** Bytes written and not yet handed to the host's network (Node's writableLength). */
  readonly bufferedBytes: number;
  /** Sends FIN once written data has gone. */
  end(): void;
  /** Drops the connection (a reset). */
  destroy(): void;
  pause(): void;
  resume(): void;
}

export interface NatDatagramSocket {
  send(data: Uint8Array, host: string, port: number): void;
  close(): void;
}

export interface NatListener {
  /** The port bound (useful with port 0); rejects if the port could not be bound. */
  readonly ready: Promise<number>;
  close(): void;
}

export interface NatSockets {
  /** A UDP socket on an ephemeral port; `receive` gets each datagram with its sender. */
  udp(receive: (data: Uint8Array, host: string, port: number) => void): NatDatagramSocket;
  /** An outgoing TCP connection; `events` hears how it goes. */
  connect(host: string, port: number, events: NatStreamEvents): NatStream;
  /**
   * Listens on a host TCP port. For each accepted connection `accept` gets the stream, paused, and returns
   * the events it wants, or null to refuse it.
   */
  listen(address: string, port: number, accept: (stream: NatStream) => NatStreamEvents | null): NatListener;
  /**
   * A UDP socket bound to a host port (UDP hostfwd); `receive` gets each datagram with its sender, and
   * `send` answers them from that port.
   */
  bindUdp(address: string, port: number, receive: (data: Uint8Array, host: string, port: number) => void): NatDatagramSocket & NatListener;
  /** The host's DNS server, where datagrams to 10.0.2.3:53 go that the backend does not answer itself. */
  readonly dnsServer: string;
  /**
   * The host's own name lookup (hosts file included): the IPv4 addresses of `name`, none if it has none.
   * Rejects when the lookup itself fails. Without it every DNS query is forwarded to `dnsServer`.
   */
  lookup?(name: string): Promise<number[]>;
}

/** hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT (an empty protocol is TCP, as in QEMU) */
export interface HostForward {
  readonly protocol: 'tcp' | 'udp';
  /** '' for all addresses, as QEMU's empty HOSTADDR. */
  readonly hostAddress: string;
  readonly hostPort: number;
  /** 0 for the default (the first DHCP address). */
  readonly guestAddress: number;
  readonly guestPort: number;
}

export class HostForwardError extends Error {}

const IPV4_TEXT = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function parsePort(text: string, what: string, rule: string, allowZero: boolean): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port <= 0xffff) || (port === 0 && !allowZero)) throw new HostForwardError(`hostfwd=${rule}: bad ${what} port '${text}'`);
  return port;
}

/** QEMU's hostfwd rule, checked; only TCP is forwarded. */
export function parseHostForward(rule: string): HostForward {
  const match = /^([a-z]*):([^:-]*):([^-]*)-([^:]*):(.*)$/.exec(rule);
  if (match === null) throw new HostForwardError(`hostfwd=${rule}: expected tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT`);
  const [, protocol = '', hostAddress = '', hostPort = '', guestAddress = '', guestPort = ''] = match;
  if (protocol !== 'tcp' && protocol !== 'udp' && protocol !== '') throw new HostForwardError(`hostfwd=${rule}: the protocol is tcp or udp`);
  let guest = 0;
  if (guestAddress !== '') {
    const parts = IPV4_TEXT.exec(guestAddress)?.slice(1).map(Number);
    if (parts === undefined || parts.some((part) => part > 255)) throw new HostForwardError(`hostfwd=${rule}: bad guest address '${guestAddress}'`);
    guest = ipv4(parts[0]!, parts[1]!, parts[2]!, parts[3]!);
  }
  return {
    protocol: protocol === 'udp' ? 'udp' : 'tcp', hostAddress, hostPort: parsePort(hostPort, 'host', rule, true), guestAddress: guest, guestPort: parsePort(guestPort, 'guest', rule, false),
  };
}
