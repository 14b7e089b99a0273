// The DHCP server of the user network (RFC 2131, options from RFC 2132): DISCOVER gets an OFFER, REQUEST an
// ACK (or a NAK for an address that is not the client's). Addresses come from a small pool keyed by the
// client's hardware address, so a guest that reboots gets the same address again.
import { MAC_LENGTH } from './mac.js';
import { readIpv4, readU16, sameBytes, writeIpv4, writeU16 } from './packet.js';

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;

export const DhcpMessageType = {
  discover: 1,
  offer: 2,
  request: 3,
  decline: 4,
  ack: 5,
  nak: 6,
  release: 7,
  inform: 8,
} as const;

const DhcpOption = {
  pad: 0,
  subnetMask: 1,
  router: 3,
  dns: 6,
  requestedAddress: 50,
  leaseTime: 51,
  messageType: 53,
  serverId: 54,
  end: 255,
} as const;

const BOOT_REQUEST = 1;
const BOOT_REPLY = 2;
const HTYPE_ETHERNET = 1;
/** op .. file: the fixed BOOTP part before the magic cookie. */
const FIXED_SIZE = 236;
const CHADDR_AT = 28;
const CHADDR_SIZE = 16;
/** BOOTP's boot file name: 128 bytes, NUL-terminated. */
const FILE_AT = 108;
export const BOOT_FILE_MAX = 127;
const COOKIE_AT = FIXED_SIZE;
const OPTIONS_AT = FIXED_SIZE + 4;
const MAGIC_COOKIE = Uint8Array.of(99, 130, 83, 99);
/** BOOTP's minimum message; some clients drop shorter replies. */
const MIN_MESSAGE_SIZE = 300;

/** What the server takes from a client message. */
export interface DhcpRequest {
  readonly type: number;
  readonly xid: Uint8Array;
  readonly flags: number;
  readonly clientAddress: number;
  readonly relayAddress: number;
  readonly clientHardware: Uint8Array;
  /** Option 50, or 0. */
  readonly requestedAddress: number;
  /** Option 54, or 0. */
  readonly serverId: number;
}

/** A BOOTREQUEST from an Ethernet client with a message type, or null. */
export function parseDhcpRequest(data: Uint8Array): DhcpRequest | null {
  if (data.length < OPTIONS_AT || data[0] !== BOOT_REQUEST || data[1] !== HTYPE_ETHERNET || data[2] !== MAC_LENGTH) return null;
  if (!sameBytes(data, COOKIE_AT, MAGIC_COOKIE)) return null;
  let type = 0;
  let requestedAddress = 0;
  let serverId = 0;
  for (let at = OPTIONS_AT; at < data.length; ) {
    const code = data[at]!;
    if (code === DhcpOption.end) break;
    if (code === DhcpOption.pad) {
      at++;
      continue;
    }
    if (at + 2 > data.length) return null;
    const length = data[at + 1]!;
    const value = at + 2;
    if (value + length > data.length) return null;
    if (code === DhcpOption.messageType && length === 1) type = data[value]!;
    else if (code === DhcpOption.requestedAddress && length === 4) requestedAddress = readIpv4(data, value);
    else if (code === DhcpOption.serverId && length === 4) serverId = readIpv4(data, value);
    at = value + length;
  }
  if (type === 0) return null; // plain BOOTP is not served
  return {
    type,
    xid: data.slice(4, 8),
    flags: readU16(data, 10),
    clientAddress: readIpv4(data, 12),
    relayAddress: readIpv4(data, 24),
    clientHardware: data.slice(CHADDR_AT, CHADDR_AT + MAC_LENGTH),
    requestedAddress,
    serverId,
  };
}

export interface DhcpNetwork {
  readonly server: number;
  readonly netmask: number;
  readonly router: number;
  readonly dns: number;
  readonly leaseSeconds: number;
  /** The boot file a network boot loads from the server (BOOTP's file field), if any. */
  readonly bootFile?: string;
}

/** A reply's type and the address it gives (0 for a NAK). */
export interface DhcpAnswer {
  readonly type: number;
  readonly yourAddress: number;
}

/** The BOOTREPLY message for `request`. */
export function buildDhcpReply(request: DhcpRequest, answer: DhcpAnswer, network: DhcpNetwork): Uint8Array {
  const message = new Uint8Array(MIN_MESSAGE_SIZE);
  message[0] = BOOT_REPLY;
  message[1] = HTYPE_ETHERNET;
  message[2] = MAC_LENGTH;
  message.set(request.xid, 4);
  writeU16(message, 10, request.flags);
  if (answer.type !== DhcpMessageType.nak) {
    writeIpv4(message, 12, request.clientAddress);
    writeIpv4(message, 16, answer.yourAddress);
    writeIpv4(message, 20, network.server);
  }
  writeIpv4(message, 24, request.relayAddress);
  message.set(request.clientHardware.subarray(0, CHADDR_SIZE), CHADDR_AT);
  if (network.bootFile !== undefined && answer.type !== DhcpMessageType.nak) {
    message.set(new TextEncoder().encode(network.bootFile).subarray(0, BOOT_FILE_MAX), FILE_AT);
  }
  message.set(MAGIC_COOKIE, COOKIE_AT);
  let at = OPTIONS_AT;
  const option = (code: number, length: number): number => {
    message[at] = code;
    message[at + 1] = length;
    const value = at + 2;
    at = value + length;
    return value;
  };
  message[option(DhcpOption.messageType, 1)] = answer.type;
  writeIpv4(message, option(DhcpOption.serverId, 4), network.server);
  if (answer.type !== DhcpMessageType.nak) {
    const lease = option(DhcpOption.leaseTime, 4);
    writeU16(message, lease, network.leaseSeconds >>> 16);
    writeU16(message, lease + 2, network.leaseSeconds & 0xffff);
    writeIpv4(message, option(DhcpOption.subnetMask, 4), network.netmask);
    writeIpv4(message, option(DhcpOption.router, 4), network.router);
    writeIpv4(message, option(DhcpOption.dns, 4), network.dns);
  }
  message[at] = DhcpOption.end;
  return message;
}

/** Addresses first .. first + size - 1, each bound to one client hardware address once handed out. */
export class DhcpLeasePool {
  private readonly leases = new Map<string, number>();

  constructor(
    readonly first: number,
    readonly size: number,
  ) {}

  /** The client's address, a new one if it has none; 0 when the pool is exhausted. */
  leaseFor(clientHardware: Uint8Array): number {
    const key = clientHardware.join(':');
    const existing = this.leases.get(key);
    if (existing !== undefined) return existing;
    const taken = new Set(this.leases.values());
    for (let i = 0; i < this.size; i++) {
      const address = (this.first + i) >>> 0;
      if (taken.has(address)) continue;
      this.leases.set(key, address);
      return address;
    }
    return 0;
  }
}

/** The server's answer to a client message, or null when it should stay silent. */
export function answerDhcp(request: DhcpRequest, pool: DhcpLeasePool, server: number): DhcpAnswer | null {
  switch (request.type) {
    case DhcpMessageType.discover: {
      const address = pool.leaseFor(request.clientHardware);
      return address === 0 ? null : { type: DhcpMessageType.offer, yourAddress: address };
    }
    case DhcpMessageType.request: {
      // A server id of another server: the client took that server's offer.
      if (request.serverId !== 0 && request.serverId !== server) return null;
      const wanted = request.requestedAddress !== 0 ? request.requestedAddress : request.clientAddress;
      const address = pool.leaseFor(request.clientHardware);
      if (address !== 0 && wanted === address) return { type: DhcpMessageType.ack, yourAddress: address };
      return { type: DhcpMessageType.nak, yourAddress: 0 };
    }
    default:
      return null; // DECLINE, RELEASE and INFORM change nothing here: the pool outlasts any guest
  }
}
