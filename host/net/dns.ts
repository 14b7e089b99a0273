// The user network's DNS at 10.0.2.3 answers address (A) queries itself from the host's own name lookup
// (RFC 1035 messages), so the guest resolves what the host resolves, /etc/hosts names such as localhost
// included; other queries are forwarded to the host's nameserver by the backend. Node-free.
import { readU16, writeIpv4, writeU16 } from './packet.js';

/** A standard query with one question. */
export interface DnsQuery {
  readonly id: number;
  readonly flags: number;
  /** The name, without the final dot, in the case the guest sent. */
  readonly name: string;
  readonly type: number;
  readonly class: number;
  /** The question as sent (header excluded), copied into the answer. */
  readonly question: Uint8Array;
}

const HEADER_SIZE = 12;
const TYPE_A = 1;
const TYPE_AAAA = 28;
const CLASS_IN = 1;
const FLAG_RESPONSE = 0x8000;
const FLAG_RECURSION_DESIRED = 0x0100;
const FLAG_RECURSION_AVAILABLE = 0x0080;
export const DnsRcode = { noError: 0, serverFailure: 2, nameError: 3 } as const;
const ANSWER_TTL = 60;
const MAX_LABEL = 63;

/** A standard query (QR 0, opcode 0) with exactly one question, or null. */
export function parseDnsQuery(message: Uint8Array): DnsQuery | null {
  if (message.length < HEADER_SIZE) return null;
  const flags = readU16(message, 2);
  if ((flags & 0xf800) !== 0 || readU16(message, 4) !== 1 || readU16(message, 6) !== 0 || readU16(message, 8) !== 0) return null;
  const labels: string[] = [];
  let at = HEADER_SIZE;
  for (;;) {
    const length = message[at];
    if (length === undefined || length > MAX_LABEL) return null; // compression has no place in a question
    at++;
    if (length === 0) break;
    if (at + length > message.length) return null;
    labels.push(String.fromCharCode(...message.subarray(at, at + length)));
    at += length;
  }
  if (at + 4 > message.length) return null;
  return {
    id: readU16(message, 0), flags, name: labels.join('.'), type: readU16(message, at), class: readU16(message, at + 2),
    question: message.slice(HEADER_SIZE, at + 4),
  };
}

/** Whether this server answers `query` itself: A and AAAA questions of class IN. */
export function answersItself(query: DnsQuery): boolean {
  return query.class === CLASS_IN && (query.type === TYPE_A || query.type === TYPE_AAAA) && query.name !== '';
}

/**
 * The response to `query`: `addresses` as A records for an A question (AAAA questions get none: the user
 * network is IPv4), or just `rcode`.
 */
export function buildDnsAnswer(query: DnsQuery, rcode: number, addresses: readonly number[]): Uint8Array {
  const answers = rcode === DnsRcode.noError && query.type === TYPE_A ? addresses : [];
  const RECORD_SIZE = 16; // name pointer, type, class, TTL, length, address
  const message = new Uint8Array(HEADER_SIZE + query.question.length + answers.length * RECORD_SIZE);
  writeU16(message, 0, query.id);
  writeU16(message, 2, FLAG_RESPONSE | (query.flags & FLAG_RECURSION_DESIRED) | FLAG_RECURSION_AVAILABLE | rcode);
  writeU16(message, 4, 1);
  writeU16(message, 6, answers.length);
  message.set(query.question, HEADER_SIZE);
  let at = HEADER_SIZE + query.question.length;
  for (const address of answers) {
    writeU16(message, at, 0xc000 | HEADER_SIZE); // the name: a pointer to the question's
    writeU16(message, at + 2, TYPE_A);
    writeU16(message, at + 4, CLASS_IN);
    writeU16(message, at + 6, 0);
    writeU16(message, at + 8, ANSWER_TTL);
    writeU16(message, at + 10, 4);
    writeIpv4(message, at + 12, address);
    at += RECORD_SIZE;
  }
  return message;
}
