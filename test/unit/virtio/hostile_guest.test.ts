// What a hostile or broken guest can send the newer devices' host sides, at random: the 9P server and the
// user network backend must answer or drop every message, never throw, and never touch the host outside
// what they serve. Seeds are fixed, so a failure names a reproducible input.
import { describe, it, expect } from 'vitest';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NinePServer } from '../../../host/devices/virtio/p9_server.js';
import { LocalBackend } from '../../../host/devices/virtio/p9_local.js';
import { NOFID, P9Type, P9Writer, readHeader } from '../../../host/devices/virtio/p9_protocol.js';
import { UserNetBackend } from '../../../host/net/user.js';
import { xorshift32 } from '../../helpers/xorshift.js';

const random = xorshift32;

const T_TYPES = Object.entries(P9Type).filter(([name]) => name.startsWith('T')).map(([, type]) => type);

describe('a hostile guest', () => {
  it('gets an answer from the 9P server for every random message, and the export\'s neighbours stay as they were', async () => {
    const base = await mkdtemp(join(tmpdir(), 'wkvm-9p-fuzz-'));
    const root = join(base, 'export');
    try {
      await writeFile(join(base, 'outside.txt'), 'keep');
      await (await import('node:fs/promises')).mkdir(root);
      await writeFile(join(root, 'inside.txt'), 'data');
      const server = new NinePServer({ backend: await LocalBackend.open({ root }), maxMessageSize: 8192, log: () => {} });
      const next = random(0x9e3779b9);
      const attach = new P9Writer(P9Type.Tattach, 1, 64).u32(0).u32(NOFID).string('').string('').finish();
      expect(readHeader((await server.handle(attach, 8192))!)!.type).toBe(P9Type.Tattach + 1);
      for (let i = 0; i < 3000; i++) {
        // A header with a real T-type (most of the time) and a random body: small fids, short strings.
        const type = next() % 8 === 0 ? next() & 0xff : T_TYPES[next() % T_TYPES.length]!;
        const body = Uint8Array.from({ length: next() % 48 }, (_, at) => (at % 4 === 0 ? next() % 6 : next() % 3 === 0 ? 0x2e : next() & 0xff));
        const message = new Uint8Array(7 + body.length);
        const view = new DataView(message.buffer);
        view.setUint32(0, next() % 16 === 0 ? next() : message.length, true); // sometimes a lying size
        message[4] = type;
        view.setUint16(5, i & 0xffff, true);
        message.set(body, 7);
        const reply = await server.handle(message, 8192);
        if (reply !== null) expect(readHeader(reply), `message ${i}`).not.toBeNull();
      }
      await server.clunkAll();
      expect((await readdir(base)).sort()).toEqual(['export', 'outside.txt']);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });

  it('gets nothing but well-formed frames from the user network for random frames, and no exception', async () => {
    const backend = new UserNetBackend({ restrict: true });
    const frames: Uint8Array[] = [];
    backend.attach((frame) => frames.push(frame));
    const next = random(12345);
    const guestMac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    // One proper ARP request among the garbage, so there is a reply to check.
    backend.send(Uint8Array.from([
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, ...guestMac, 8, 6, 0, 1, 8, 0, 6, 4, 0, 1, ...guestMac, 10, 0, 2, 15, 0, 0, 0, 0, 0, 0, 10, 0, 2, 2,
    ]));
    for (let i = 0; i < 5000; i++) {
      // Ethernet to the gateway or broadcast, IPv4/ARP types mostly, random contents after that.
      const length = next() % 400;
      const frame = Uint8Array.from({ length }, () => next() & 0xff);
      if (length >= 14) {
        frame.set(next() % 2 ? [0xff, 0xff, 0xff, 0xff, 0xff, 0xff] : [0x52, 0x55, 10, 0, 2, 2], 0);
        frame.set(guestMac, 6);
        frame.set(next() % 2 ? [0x08, 0x00] : [0x08, 0x06], 12);
        if (length >= 34 && frame[13] === 0) frame[14] = 0x45; // an IPv4 header of 20 bytes
      }
      backend.send(frame);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(frames.length).toBeGreaterThan(0);
    for (const frame of frames) {
      expect(frame.length).toBeGreaterThanOrEqual(60);
      expect([...frame.subarray(0, 6)]).toEqual(guestMac);
    }
    backend.close?.();
  });
});
