// The options of QEMU's socket network backends, checked and turned into what to open: `-netdev stream`
// and `-netdev dgram` (QEMU 7.2's QAPI spelling: addr.type=inet|unix, addr.host, addr.port, addr.path;
// local.* and remote.*) and the legacy `-netdev socket` (listen=, connect=, mcast=, udp= with localaddr=).
// The messages are QEMU 7.2's where it has one for the same mistake. Node-free: socket_node.ts opens
// the sockets.

/** A TCP or UDP address. An empty host means every local address (legacy listen=:PORT). */
export interface InetSocketAddress {
  readonly type: 'inet';
  readonly host: string;
  readonly port: number;
}

export interface UnixSocketAddress {
  readonly type: 'unix';
  readonly path: string;
}

export type StreamSocketAddress = InetSocketAddress | UnixSocketAddress;

/** Which option asked: QEMU 7.2 reports some start-up failures of the two spellings differently. */
export type SocketNetdevSpelling = 'stream' | 'dgram' | 'socket';

/** Frames over a stream with 4-byte length prefixes: a listening server (one peer at a time) or a client. */
export interface StreamNetdevSpec {
  readonly type: 'stream';
  readonly server: boolean;
  readonly address: StreamSocketAddress;
  readonly spelling: SocketNetdevSpelling;
}

/**
 * One frame per UDP datagram. Unicast: bound to `local`, sending to `remote`. Multicast: every member of
 * the group `remote` hears every frame (the host's own included, as QEMU loops them back); `local`, if
 * given, names the interface by its address.
 */
export interface DatagramNetdevSpec {
  readonly type: 'dgram';
  readonly multicast: boolean;
  readonly local: InetSocketAddress | null;
  readonly remote: InetSocketAddress;
  readonly spelling: SocketNetdevSpelling;
}

export type SocketNetdevSpec = StreamNetdevSpec | DatagramNetdevSpec;

/** A mistake in a socket -netdev's options (the caller adds which option it was). */
export class NetdevOptionError extends Error {
  override readonly name = 'NetdevOptionError';
}

/** The -netdev types this module reads. */
export const SOCKET_NETDEV_TYPES = ['stream', 'dgram', 'socket'] as const;

export function isSocketNetdevType(type: string): boolean {
  return (SOCKET_NETDEV_TYPES as readonly string[]).includes(type);
}

/** What QEMU 7.2 takes in an address and wkvm does not, with why. */
const UNSUPPORTED_ADDRESS_KEYS: Record<string, string> = {
  numeric: 'wkvm resolves names as the host does', to: 'wkvm binds exactly the port given', ipv4: 'the address picks the family',
  ipv6: 'the address picks the family', 'keep-alive': 'not offered', abstract: 'Node has no abstract Unix sockets', tight: 'Node has no abstract Unix sockets',
  str: 'wkvm does not take file descriptors', cid: 'wkvm has no vsock',
};

/** A -netdev stream, dgram or socket's properties (as parseKeyValues gives them, `type` included), checked. */
export function parseSocketNetdev(options: Readonly<Record<string, string>>): SocketNetdevSpec {
  switch (options.type) {
    case 'stream':
      return parseStream(options);
    case 'dgram':
      return parseDatagram(options);
    case 'socket':
      return parseLegacySocket(options);
    default:
      throw new NetdevOptionError(`'${options.type ?? ''}' is not a socket network backend`);
  }
}

function refuseOthers(options: Readonly<Record<string, string>>, allowed: readonly string[], prefixes: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (allowed.includes(key)) continue;
    const prefix = prefixes.find((p) => key.startsWith(`${p}.`));
    if (prefix === undefined) throw new NetdevOptionError(`Parameter '${key}' is unexpected`);
    const why = UNSUPPORTED_ADDRESS_KEYS[key.slice(prefix.length + 1)];
    throw new NetdevOptionError(why === undefined ? `Parameter '${key}' is unexpected` : `Parameter '${key}' is not supported (${why})`);
  }
}

function parsePort(text: string, what: string): number {
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port <= 0xffff)) throw new NetdevOptionError(`${what}: port number '${text}' is invalid`);
  return port;
}

/** QEMU's boolean on/off (the QAPI parser takes no other spelling for server=). */
function parseOnOff(key: string, text: string): boolean {
  if (text === 'on') return true;
  if (text === 'off') return false;
  throw new NetdevOptionError(`Parameter '${key}' expects 'on' or 'off'`);
}

/** `prefix`.type=inet|unix and its fields; null when no `prefix`.* key is given. */
function parseAddress(options: Readonly<Record<string, string>>, prefix: string): StreamSocketAddress | null {
  const type = options[`${prefix}.type`];
  if (type === undefined) {
    if (Object.keys(options).some((key) => key.startsWith(`${prefix}.`))) throw new NetdevOptionError(`Parameter '${prefix}.type' is missing`);
    return null;
  }
  const required = (field: string): string => {
    const value = options[`${prefix}.${field}`];
    if (value === undefined) throw new NetdevOptionError(`Parameter '${prefix}.${field}' is missing`);
    return value;
  };
  if (type === 'inet') return { type: 'inet', host: required('host'), port: parsePort(required('port'), `${prefix}.port`) };
  if (type === 'unix') {
    const path = required('path');
    if (path === '') throw new NetdevOptionError(`${prefix}.path is empty`);
    return { type: 'unix', path };
  }
  if (type === 'fd' || type === 'vsock') throw new NetdevOptionError(`${prefix}.type=${type} is not supported (wkvm has inet and unix)`);
  throw new NetdevOptionError(`Parameter '${prefix}.type' does not accept value '${type}'`);
}

const ADDRESS_FIELDS = ['type', 'host', 'port', 'path'];
const addressKeys = (prefix: string): string[] => ADDRESS_FIELDS.map((field) => `${prefix}.${field}`);

function parseStream(options: Readonly<Record<string, string>>): StreamNetdevSpec {
  refuseOthers(options, ['type', 'id', 'server', ...addressKeys('addr')], ['addr']);
  const address = parseAddress(options, 'addr');
  if (address === null) throw new NetdevOptionError("Parameter 'addr' is missing");
  return { type: 'stream', server: parseOnOff('server', options.server ?? 'off'), address, spelling: 'stream' };
}

/** 224.0.0.0/4. */
function isMulticastIpv4(host: string): boolean {
  const match = /^(\d{1,3})\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.exec(host);
  return match !== null && Number(match[1]) >= 224 && Number(match[1]) <= 239;
}

function parseDatagram(options: Readonly<Record<string, string>>): DatagramNetdevSpec {
  refuseOthers(options, ['type', 'id', ...addressKeys('local'), ...addressKeys('remote')], ['local', 'remote']);
  const local = parseAddress(options, 'local');
  const remote = parseAddress(options, 'remote');
  if (remote !== null && remote.type === 'inet' && isMulticastIpv4(remote.host)) {
    if (local !== null && local.type !== 'inet') throw new NetdevOptionError('remote and local types must be the same');
    return { type: 'dgram', multicast: true, local, remote, spelling: 'dgram' };
  }
  if (local === null) throw new NetdevOptionError('dgram requires local= parameter');
  if (remote === null) throw new NetdevOptionError('type=inet or type=unix requires remote parameter');
  if (local.type !== remote.type) throw new NetdevOptionError('remote and local types must be the same');
  if (local.type === 'unix' || remote.type === 'unix') {
    throw new NetdevOptionError('local.type=unix is not supported (Node has no Unix datagram sockets; use inet)');
  }
  return { type: 'dgram', multicast: false, local, remote, spelling: 'dgram' };
}

/** The legacy HOST:PORT (the host may be empty, or an IPv6 address in brackets). */
function parseHostPort(text: string, key: string): InetSocketAddress {
  const colon = text.lastIndexOf(':');
  if (colon < 0) throw new NetdevOptionError(`host address '${text}' doesn't contain ':' separating host from port`);
  const host = text.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  return { type: 'inet', host, port: parsePort(text.slice(colon + 1), `${key}=${text}`) };
}

function parseLegacySocket(options: Readonly<Record<string, string>>): SocketNetdevSpec {
  for (const key of Object.keys(options)) {
    if (key === 'fd') throw new NetdevOptionError('fd= is not supported (wkvm does not take file descriptors; use listen= or connect=)');
    if (!['type', 'id', 'listen', 'connect', 'mcast', 'udp', 'localaddr'].includes(key)) throw new NetdevOptionError(`Invalid parameter '${key}'`);
  }
  const modes = (['listen', 'connect', 'mcast', 'udp'] as const).filter((key) => options[key] !== undefined);
  if (modes.length !== 1) throw new NetdevOptionError('exactly one of listen=, connect=, mcast= or udp= is required');
  const mode = modes[0]!;
  const address = parseHostPort(options[mode]!, mode);
  const localText = options.localaddr;
  if (mode === 'listen' || mode === 'connect') {
    if (localText !== undefined) throw new NetdevOptionError('localaddr= is only valid with mcast= or udp=');
    return { type: 'stream', server: mode === 'listen', address, spelling: 'socket' };
  }
  if (mode === 'udp') {
    if (localText === undefined) throw new NetdevOptionError('localaddr= is mandatory with udp=');
    return { type: 'dgram', multicast: false, local: parseHostPort(localText, 'localaddr'), remote: address, spelling: 'socket' };
  }
  if (!isMulticastIpv4(address.host)) throw new NetdevOptionError(`specified mcastaddr ${address.host} does not contain a multicast address`);
  // mcast='s localaddr= is an interface address alone (QEMU reads it with inet_aton).
  const local: InetSocketAddress | null = localText === undefined ? null : { type: 'inet', host: localText, port: 0 };
  return { type: 'dgram', multicast: true, local, remote: address, spelling: 'socket' };
}

/** The address as a person writes it, for messages. */
export function describeSocketAddress(address: StreamSocketAddress): string {
  if (address.type === 'unix') return address.path;
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `${host}:${address.port}`;
}
