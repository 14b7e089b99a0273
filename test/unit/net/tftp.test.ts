// The user network's TFTP server: the protocol against an in-memory file source, then through the user
// network's frames, then the host-directory source's containment.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_BLOCK_SIZE, MAX_TFTP_SESSIONS, TftpServer, type TftpFile, type TftpFileSource } from '../../../host/net/tftp.js';
import { TftpDirectory } from '../../../host/net/tftp_node.js';
import { UserNetBackend } from '../../../host/net/user.js';
import { GUEST_IP, GUEST_MAC, HOST_IP, HOST_MAC, checksumOf, guestUdp, u16 } from './frames.js';

/** Files held in memory; `opened` counts files still open. */
class MemoryFiles implements TftpFileSource {
  opened = 0;
  constructor(private readonly files: Record<string, Uint8Array>) {}
  async open(name: string): Promise<TftpFile | null> {
    const bytes = this.files[name];
    if (bytes === undefined) return null;
    this.opened++;
    return {
      size: bytes.length,
      read: async (offset, length) => bytes.slice(offset, offset + length),
      close: () => void this.opened--,
    };
  }
}

const encoder = new TextEncoder();
const request = (opcode: number, ...strings: string[]): Uint8Array =>
  Uint8Array.from([0, opcode, ...strings.flatMap((s) => [...encoder.encode(s), 0])]);
const ack = (block: number): Uint8Array => Uint8Array.of(0, 4, ...u16(block & 0xffff));
const opcodeOf = (packet: Uint8Array): number => (packet[0]! << 8) | packet[1]!;
const blockOf = (packet: Uint8Array): number => (packet[2]! << 8) | packet[3]!;
/** Lets the server's file reads complete. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
/** The same for in-memory reads, which complete within a few microtasks: 65 k blocks in well under a second. */
const settleMemory = async (): Promise<void> => {
  for (let i = 0; i < 8; i++) await Promise.resolve();
};

function patterned(length: number, seed = 7): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

interface Harness {
  server: TftpServer;
  files: MemoryFiles;
  sent: Array<{ address: number; port: number; packet: Uint8Array }>;
  timers: Array<() => void>;
}

function harness(files: Record<string, Uint8Array>): Harness {
  const h: Harness = { server: null!, files: new MemoryFiles(files), sent: [], timers: [] };
  h.server = new TftpServer({
    files: h.files,
    send: (address, port, packet) => h.sent.push({ address, port, packet }),
    setTimer: (task) => {
      h.timers.push(task);
      return h.timers.length as unknown as ReturnType<typeof setTimeout>;
    },
    clearTimer: (timer) => {
      h.timers[(timer as unknown as number) - 1] = () => {};
    },
  });
  return h;
}

/** Acknowledges every DATA until the short one; returns the bytes and the packets seen. */
async function download(h: Harness, port: number, first: Uint8Array, blockSize: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let packet = first;
  for (;;) {
    expect(opcodeOf(packet)).toBe(3);
    expect(blockOf(packet)).toBe((chunks.length + 1) & 0xffff);
    chunks.push(packet.subarray(4));
    const before = h.sent.length;
    h.server.receive(1, port, ack(chunks.length));
    await settleMemory();
    if (packet.length - 4 < blockSize) {
      expect(h.sent.length).toBe(before); // the last block's ACK ends the transfer
      break;
    }
    expect(h.sent.length).toBe(before + 1);
    packet = h.sent.at(-1)!.packet;
  }
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}

describe('TFTP server (RFC 1350 read requests, blksize and tsize)', () => {
  it('sends a file in 512-byte blocks, each after the previous one is acknowledged, and closes it at the end', async () => {
    const file = patterned(512 * 3 + 100);
    const h = harness({ 'boot/Image': file });
    h.server.receive(1, 2000, request(1, 'boot/Image', 'octet'));
    await settle();
    expect(h.sent).toHaveLength(1);
    expect(h.sent[0]!.port).toBe(2000);
    expect(await download(h, 2000, h.sent[0]!.packet, 512)).toEqual(file);
    expect(h.server.sessionCount).toBe(0);
    expect(h.files.opened).toBe(0);
  });

  it('ends a file of whole blocks with an empty block', async () => {
    const file = patterned(1024);
    const h = harness({ f: file });
    h.server.receive(1, 2001, request(1, 'f', 'OCTET'));
    await settle();
    const bytes = await download(h, 2001, h.sent[0]!.packet, 512);
    expect(bytes).toEqual(file);
    expect(h.sent.at(-1)!.packet.length).toBe(4); // block 3, no data
  });

  it('acknowledges blksize (clamped to one Ethernet frame) and tsize in an OACK, then sends from ACK 0', async () => {
    const file = patterned(5000);
    const h = harness({ f: file });
    h.server.receive(1, 2002, request(1, 'f', 'octet', 'blksize', '65464', 'tsize', '0', 'windowsize', '4'));
    await settle();
    expect(h.sent).toHaveLength(1);
    const oack = h.sent[0]!.packet;
    expect(opcodeOf(oack)).toBe(6);
    expect(new TextDecoder().decode(oack.subarray(2))).toBe(`blksize\0${MAX_BLOCK_SIZE}\0tsize\x005000\0`);
    h.server.receive(1, 2002, ack(0));
    await settle();
    expect(h.sent[1]!.packet.length).toBe(4 + MAX_BLOCK_SIZE);
    expect(await download(h, 2002, h.sent[1]!.packet, MAX_BLOCK_SIZE)).toEqual(file);
  });

  it('sends a block again when the client repeats the acknowledgement before it', async () => {
    const h = harness({ f: patterned(2000) });
    h.server.receive(1, 2003, request(1, 'f', 'octet'));
    await settle();
    h.server.receive(1, 2003, ack(1));
    await settle();
    const block2 = h.sent.at(-1)!.packet;
    expect(blockOf(block2)).toBe(2);
    h.server.receive(1, 2003, ack(1)); // block 2 was lost
    await settle();
    expect(h.sent.at(-1)!.packet).toEqual(block2);
    h.server.receive(1, 2003, ack(7)); // nonsense: ignored
    await settle();
    expect(h.sent).toHaveLength(3);
  });

  it('counts blocks past 65535 (block numbers wrap to 0)', async () => {
    const file = patterned(8 * 65_540 + 3);
    const h = harness({ big: file });
    h.server.receive(1, 2004, request(1, 'big', 'octet', 'blksize', '8'));
    await settle();
    h.server.receive(1, 2004, ack(0));
    await settle();
    expect(await download(h, 2004, h.sent[1]!.packet, 8)).toEqual(file);
  });

  it.each([
    ['a write request', request(2, 'f', 'octet'), 2],
    ['a missing file', request(1, 'nothing', 'octet'), 1],
    ['netascii mode', request(1, 'f', 'netascii'), 4],
    ['a request without its terminating NUL', Uint8Array.of(0, 1, 0x66, 0, 0x6f), 4],
    ['an unknown opcode', Uint8Array.of(0, 9, 0, 0), 4],
    ['an ACK outside any transfer', ack(1), 5],
  ])('answers %s with TFTP error %i', async (_what, packet, code) => {
    const h = harness({ f: patterned(10) });
    h.server.receive(1, 2005, packet);
    await settle();
    expect(h.sent).toHaveLength(1);
    expect(opcodeOf(h.sent[0]!.packet)).toBe(5);
    expect(blockOf(h.sent[0]!.packet)).toBe(code);
    expect(h.sent[0]!.packet.at(-1)).toBe(0);
    expect(h.server.sessionCount).toBe(0);
  });

  it('keeps at most MAX_TFTP_SESSIONS transfers, drops idle ones, and stops on the client\'s ERROR', async () => {
    const h = harness({ f: patterned(4096) });
    for (let port = 0; port < MAX_TFTP_SESSIONS + 1; port++) h.server.receive(1, 3000 + port, request(1, 'f', 'octet'));
    await settle();
    expect(h.server.sessionCount).toBe(MAX_TFTP_SESSIONS);
    const refused = h.sent.filter((s) => s.port === 3000 + MAX_TFTP_SESSIONS);
    expect(refused.map((s) => opcodeOf(s.packet))).toEqual([5]);
    expect(h.files.opened).toBe(MAX_TFTP_SESSIONS);
    h.server.receive(1, 3000, Uint8Array.of(0, 5, 0, 0, 0)); // the client gives up
    expect(h.server.sessionCount).toBe(MAX_TFTP_SESSIONS - 1);
    for (const fire of [...h.timers]) fire(); // five idle seconds
    expect(h.server.sessionCount).toBe(0);
    expect(h.files.opened).toBe(0);
  });
});

describe('TFTP on the user network (tftp=, bootfile=)', () => {
  it('serves 10.0.2.2:69 in UDP frames from port 69, with restrict=on too, and DHCP names the boot file', async () => {
    const file = patterned(700);
    const backend = new UserNetBackend({ restrict: true, tftp: new MemoryFiles({ 'pxe/boot.bin': file }), bootFile: 'pxe/boot.bin' });
    const received: Uint8Array[] = [];
    backend.attach((frame) => received.push(frame));
    const rrq = Array.from(request(1, 'pxe/boot.bin', 'octet'));
    backend.send(guestUdp(HOST_MAC, HOST_IP, 1069, 69, rrq));
    await settle();
    await settle();
    expect(received).toHaveLength(1);
    const frame = Array.from(received[0]!);
    expect(frame.slice(0, 6)).toEqual(GUEST_MAC);
    expect(frame.slice(6, 12)).toEqual(HOST_MAC);
    const ip = frame.slice(14, 34);
    expect(checksumOf(ip)).toBe(0);
    expect(ip.slice(12, 16)).toEqual(HOST_IP);
    expect(ip.slice(16, 20)).toEqual(GUEST_IP);
    const udp = frame.slice(34);
    expect(udp.slice(0, 4)).toEqual([...u16(69), ...u16(1069)]);
    expect(checksumOf([...HOST_IP, ...GUEST_IP, 0, 17, ...u16(udp.length), ...udp])).toBe(0);
    expect(udp.slice(8, 12)).toEqual([0, 3, 0, 1]);
    expect(udp.slice(12)).toEqual(Array.from(file.subarray(0, 512)));

    // DHCP DISCOVER: the OFFER's BOOTP file field names the boot file, siaddr the TFTP server.
    const bootp = new Array<number>(236).fill(0);
    bootp.splice(0, 4, 1, 1, 6, 0);
    bootp.splice(28, 6, ...GUEST_MAC);
    const dhcp = [...bootp, 99, 130, 83, 99, 53, 1, 1, 255];
    backend.send(guestUdp([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [255, 255, 255, 255], 68, 67, dhcp));
    await settle();
    const offer = received[1]!.subarray(42);
    expect(Array.from(offer.subarray(20, 24))).toEqual(HOST_IP);
    expect(new TextDecoder().decode(offer.subarray(108, 108 + 'pxe/boot.bin'.length + 1))).toBe('pxe/boot.bin\0');
    backend.close();
  });

  it('does not answer port 69 without tftp=', async () => {
    const backend = new UserNetBackend({ restrict: true });
    const received: Uint8Array[] = [];
    backend.attach((frame) => received.push(frame));
    backend.send(guestUdp(HOST_MAC, HOST_IP, 1069, 69, Array.from(request(1, 'f', 'octet'))));
    await settle();
    expect(received).toHaveLength(0);
  });
});

describe('TftpDirectory (the host directory tftp= names)', () => {
  let root: string;
  let outside: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'wkvm-tftp-'));
    outside = mkdtempSync(join(tmpdir(), 'wkvm-tftp-outside-'));
    mkdirSync(join(root, 'sub'));
    writeFileSync(join(root, 'sub', 'kernel'), patterned(3000));
    writeFileSync(join(outside, 'secret'), 'not for the guest');
    symlinkSync(join(outside, 'secret'), join(root, 'link-out'));
    symlinkSync(join(root, 'sub', 'kernel'), join(root, 'link-in'));
  });
  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  it('reads files inside the directory, through symlinks that stay inside, whatever the leading slashes', async () => {
    const files = await TftpDirectory.open(root);
    for (const name of ['sub/kernel', '/sub/kernel', '//sub/kernel', 'link-in']) {
      const file = await files.open(name);
      expect(file, name).not.toBeNull();
      expect(file!.size).toBe(3000);
      expect(await file!.read(2990, 512)).toEqual(patterned(3000).subarray(2990));
      file!.close();
    }
  });

  it('never serves anything outside it, a directory or a missing file', async () => {
    const files = await TftpDirectory.open(root);
    const escapes = ['link-out', '../' + outside.split('/').at(-1) + '/secret', 'sub/../../etc/passwd', join(outside, 'secret'), 'sub', 'missing', 'sub/kernel\0x'];
    for (const name of escapes) expect(await files.open(name), name).toBeNull();
  });

  it('refuses a tftp= that is not a directory', async () => {
    await expect(TftpDirectory.open(join(root, 'sub', 'kernel'))).rejects.toThrow(/not a directory/);
    await expect(TftpDirectory.open(join(root, 'absent'))).rejects.toThrow();
  });
});
