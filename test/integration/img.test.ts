// `wkvm img` against the real qemu-img (Debian's qemu-utils, which CI installs), both ways round:
// images wkvm makes must satisfy qemu-img check and info; images qemu-img (and qemu-io) make and write
// must be reported by wkvm img info/check exactly as qemu-img reports them; both tools must find the
// same leak and the same corruption planted in an image, with the same exit status; convert and resize
// must leave images qemu-img finds clean and equal to what they came from.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runWkvm, type CliResult } from '../helpers/wkvm_cli.js';

const haveQemuImg = spawnSync('qemu-img', ['--version'], { stdio: 'ignore' }).status === 0;
const haveQemuIo = spawnSync('qemu-io', ['--version'], { stdio: 'ignore' }).status === 0;

const MiB = 1024 * 1024;
const CLUSTER = 65536;

interface ToolRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

function qemuImg(...args: string[]): ToolRun {
  const run = spawnSync('qemu-img', args, { encoding: 'utf8' });
  if (run.error) throw run.error;
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** qemu-img for setting up a test: any failure is a broken setup. */
function qemuImgOk(...args: string[]): string {
  const run = qemuImg(...args);
  if (run.status !== 0) throw new Error(`qemu-img ${args.join(' ')} exited ${run.status}:\n${run.stdout}${run.stderr}`);
  return run.stdout;
}

function wkvmImg(...args: string[]): Promise<CliResult> {
  return runWkvm(['img', ...args]);
}

/** Bytes with a recognisable, position-dependent pattern, zero in every third 64 KiB block (so sparseness shows). */
function patterned(size: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) {
    if (Math.floor(i / CLUSTER) % 3 === 2) continue;
    bytes[i] = (i * 7 + (i >> 12)) & 0xff;
  }
  return bytes;
}

/** Writes `value` as a big-endian integer of `width` bytes at `offset` of a file. */
function poke(path: string, offset: number, width: 2 | 8, value: bigint): void {
  const bytes = Buffer.alloc(width);
  if (width === 2) bytes.writeUInt16BE(Number(value));
  else bytes.writeBigUInt64BE(value);
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, bytes, 0, width, offset);
  } finally {
    closeSync(fd);
  }
}

function expectOneLineError(result: CliResult, status: number, pattern: RegExp): void {
  expect(result.status).toBe(status);
  const lines = result.stderr.trim().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^wkvm img: /);
  expect(lines[0]).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'wkvm-img-'));
});
afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('wkvm --help', () => {
  it('names wkvm img, and wkvm img --help lists its commands', async () => {
    expect((await runWkvm(['--help'])).stdout).toMatch(/wkvm img create\|info\|check\|convert\|resize/);
    const help = await wkvmImg('--help');
    expect(help.status).toBe(0);
    for (const command of ['create', 'info', 'check', 'convert', 'resize']) expect(help.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
  });
});

describe.skipIf(!haveQemuImg)('wkvm img create: images qemu-img accepts', () => {
  const cases: Array<{ name: string; args: string[]; size?: string }> = [
    { name: 'default qcow2', args: ['-f', 'qcow2'], size: '10M' },
    { name: 'fractional size', args: ['-f', 'qcow2'], size: '1.5G' },
    { name: '4 KiB clusters, compat=0.10', args: ['-f', 'qcow2', '-o', 'cluster_size=4k,compat=0.10'], size: '512' },
    { name: '512-byte clusters', args: ['-f', 'qcow2', '-o', 'cluster_size=512'], size: '3M' },
    { name: 'lazy refcounts, 8-bit refcounts', args: ['-f', 'qcow2', '-o', 'lazy_refcounts=on,refcount_bits=8'], size: '1G' },
    { name: 'raw', args: ['-f', 'raw'], size: '1000' },
    { name: 'raw by default', args: [], size: '0x10' },
  ];

  it.each(cases)('$name: the same Formatting line as qemu-img, and qemu-img check and info agree', async ({ args, size }) => {
    const ours = join(dir, `create-ours-${args.join('').replace(/\W/g, '')}-${size}`);
    const theirs = join(dir, `create-theirs-${args.join('').replace(/\W/g, '')}-${size}`);
    const created = await wkvmImg('create', ...args, ours, size!);
    expect(created.stderr).toBe('');
    expect(created.status).toBe(0);
    const reference = qemuImgOk('create', ...args, theirs, size!);
    expect(created.stdout.replace(ours, 'IMAGE')).toBe(reference.replace(theirs, 'IMAGE'));

    const ourInfo = JSON.parse(qemuImgOk('info', '--output=json', ours));
    const theirInfo = JSON.parse(qemuImgOk('info', '--output=json', theirs));
    for (const key of ['virtual-size', 'format', 'cluster-size', 'format-specific', 'dirty-flag']) expect(ourInfo[key], key).toEqual(theirInfo[key]);
    expect(statSync(ours).size, 'a raw image is its size rounded up to whole sectors').toBe(ourInfo.format === 'raw' ? statSync(theirs).size : statSync(ours).size);
    if (ourInfo.format === 'qcow2') {
      const check = qemuImg('check', ours);
      expect(check.stdout).toContain('No errors were found on the image.');
      expect(check.status).toBe(0);
    }
  });

  it('takes the size and format of a backing file, and qemu-img follows the chain', async () => {
    const base = join(dir, 'backing-base.qcow2');
    qemuImgOk('create', '-f', 'qcow2', base, '24M');
    const overlay = join(dir, 'backing-overlay.qcow2');
    const created = await wkvmImg('create', '-f', 'qcow2', '-b', 'backing-base.qcow2', '-F', 'qcow2', overlay);
    expect(created.status).toBe(0);
    expect(created.stdout).toBe(`Formatting '${overlay}', fmt=qcow2 cluster_size=65536 extended_l2=off compression_type=zlib size=25165824 ` +
      'backing_file=backing-base.qcow2 backing_fmt=qcow2 lazy_refcounts=off refcount_bits=16\n');
    const info = JSON.parse(qemuImgOk('info', '--output=json', overlay));
    expect(info['virtual-size']).toBe(24 * MiB);
    expect(info['backing-filename']).toBe('backing-base.qcow2');
    expect(info['backing-filename-format']).toBe('qcow2');
    expect(JSON.parse(qemuImgOk('info', '--backing-chain', '--output=json', overlay))).toHaveLength(2);
    expect(qemuImg('check', overlay).status).toBe(0);

    const rawBase = join(dir, 'backing-base.raw');
    writeFileSync(rawBase, patterned(2 * MiB));
    const rawOverlay = join(dir, 'backing-raw-overlay.qcow2');
    expect((await wkvmImg('create', '-f', 'qcow2', '-o', `backing_file=${rawBase},backing_fmt=raw`, rawOverlay, '4M')).status).toBe(0);
    // The overlay reads through to its backing file: qemu-img sees the raw data in its first 2 MiB.
    expect(qemuImg('compare', '-f', 'qcow2', '-F', 'raw', rawOverlay, rawBase).status).toBe(0);
  });

  it('refuses what qemu-img refuses, with its message and status', async () => {
    const path = join(dir, 'refused.qcow2');
    const refusals: Array<[string[], RegExp]> = [
      [['-f', 'qcow2', path], /Image creation needs a size parameter/],
      [['-f', 'qcow2', path, '10Q'], /Invalid image size specified/],
      [['-f', 'qcow2', path, '1.5'], /Invalid image size specified/],
      [['-f', 'qcow2', path, '-1'], /unrecognized option '-1'/],
      [['-f', 'vhd', path, '1M'], /Unknown file format 'vhd'/],
      [['-f', 'qcow2', '-o', 'cluster_size=1000', path, '1M'], /Cluster size must be a power of two between 512 and 2048k/],
      [['-f', 'qcow2', '-o', 'compat=0.9', path, '1M'], /Parameter 'version' does not accept value '0.9'/],
      [['-f', 'qcow2', '-o', 'foo=1', path, '1M'], /Invalid parameter 'foo'/],
      [['-f', 'raw', '-o', 'cluster_size=4096', path, '1M'], /Invalid parameter 'cluster_size'/],
      [['-f', 'qcow2', '-o', 'compat=0.10,lazy_refcounts=on', path, '1M'], /Lazy refcounts only supported with compatibility level 1.1/],
      [['-f', 'qcow2', '-b', join(dir, 'no-such-base.qcow2'), '-F', 'qcow2', path], /Could not open backing image: .*No such file or directory/],
      [['-f', 'qcow2', '-b', join(dir, 'backing-base.qcow2'), path], /Backing file specified without backing format/],
    ];
    for (const [args, pattern] of refusals) {
      expectOneLineError(await wkvmImg('create', ...args), 1, pattern);
      expect(qemuImg('create', ...args).status, `qemu-img create ${args.join(' ')}`).toBe(1);
    }
  });
});

describe.skipIf(!haveQemuImg)('wkvm img info and check: images qemu-img made, reported as qemu-img reports them', () => {
  const images: Record<string, string> = {};

  beforeAll(() => {
    const raw = join(dir, 'source.raw');
    writeFileSync(raw, patterned(3 * MiB));
    images.empty = join(dir, 'qemu-empty.qcow2');
    qemuImgOk('create', '-f', 'qcow2', images.empty, '10M');
    images.v2 = join(dir, 'qemu-v2.qcow2');
    qemuImgOk('convert', '-f', 'raw', '-O', 'qcow2', '-o', 'compat=0.10,cluster_size=4096', raw, images.v2);
    images.compressed = join(dir, 'qemu-compressed.qcow2');
    qemuImgOk('convert', '-c', '-f', 'raw', '-O', 'qcow2', raw, images.compressed);
    images.raw = raw;
    images.written = join(dir, 'qemu-written.qcow2');
    qemuImgOk('create', '-f', 'qcow2', images.written, '64M');
    if (haveQemuIo) {
      // Out of order, across L2 tables, so fragmentation and allocation counts mean something.
      for (const command of ['write -P 0xab 0 1M', 'write -P 0xcd 40M 128k', 'write -P 0x11 2M 64k', 'write -P 0x12 1536k 64k']) {
        const run = spawnSync('qemu-io', ['-f', 'qcow2', '-c', command, images.written], { encoding: 'utf8' });
        if (run.status !== 0) throw new Error(`qemu-io ${command}: ${run.stderr}`);
      }
    } else {
      qemuImgOk('convert', '-f', 'raw', '-O', 'qcow2', raw, images.written);
    }
    images.snapshots = join(dir, 'qemu-snapshots.qcow2');
    copyFileSync(images.written, images.snapshots);
    qemuImgOk('snapshot', '-c', 'first', images.snapshots);
    qemuImgOk('snapshot', '-c', 'second', images.snapshots);
    images.bitmaps = join(dir, 'qemu-bitmaps.qcow2');
    copyFileSync(images.written, images.bitmaps);
    qemuImgOk('bitmap', '--add', images.bitmaps, 'b0');
    qemuImgOk('bitmap', '--add', '-g', '4096', '--disable', images.bitmaps, 'b1');
    if (haveQemuIo) spawnSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x33 8M 1M', images.bitmaps]);
    images.overlay = join(dir, 'qemu-overlay.qcow2');
    qemuImgOk('create', '-f', 'qcow2', '-b', 'qemu-written.qcow2', '-F', 'qcow2', images.overlay);
  });

  const names = ['empty', 'v2', 'compressed', 'raw', 'written', 'snapshots', 'bitmaps', 'overlay'];

  it.each(names)('info of the %s image: the same JSON and the same text', async (name) => {
    const path = images[name]!;
    for (const extra of [[], ['--backing-chain']]) {
      const ours = await wkvmImg('info', ...extra, '--output=json', path);
      expect(ours.stderr).toBe('');
      expect(ours.status).toBe(0);
      const theirs = qemuImgOk('info', ...extra, '--output=json', path);
      expect(JSON.parse(ours.stdout)).toEqual(JSON.parse(theirs));
      expect(ours.stdout).toBe(theirs);
      const human = await wkvmImg('info', ...extra, path);
      expect(human.stdout).toBe(qemuImgOk('info', ...extra, path));
    }
  });

  it.each(names.filter((name) => name !== 'raw'))('check of the %s image: clean, with the same statistics', async (name) => {
    const path = images[name]!;
    const ours = await wkvmImg('check', '--output=json', path);
    const theirs = qemuImg('check', '--output=json', path);
    expect(ours.status).toBe(0);
    expect(theirs.status).toBe(0);
    expect(JSON.parse(ours.stdout)).toEqual(JSON.parse(theirs.stdout));
    const human = await wkvmImg('check', path);
    expect(human.stdout).toBe(qemuImg('check', path).stdout);
    expect(human.stdout).toMatch(/^No errors were found on the image\.\n/);
    expect(human.stdout).toMatch(/Image end offset: \d+\n$/);
  });

  it('check of a raw image: nothing to check, status 63 as qemu-img', async () => {
    expectOneLineError(await wkvmImg('check', images.raw!), 63, /This image format does not support checks/);
    expect(qemuImg('check', images.raw!).status).toBe(63);
  });
});

describe.skipIf(!haveQemuImg)('wkvm img check: damage planted in an image', () => {
  // qemu-img create's layout for a 10M image: header, refcount table, refcount block (cluster 2, 16-bit
  // entries), L1 table; then the first write adds the L2 table (cluster 4) and data from cluster 5 on.
  const REFCOUNT_BLOCK = 2 * CLUSTER;
  const L2_TABLE = 4 * CLUSTER;
  let pristine: string;

  beforeAll(() => {
    pristine = join(dir, 'plant-pristine.qcow2');
    const raw = join(dir, 'plant.raw');
    writeFileSync(raw, patterned(MiB).fill(0xab, 0, MiB));
    qemuImgOk('create', '-f', 'qcow2', pristine, '10M');
    if (haveQemuIo) {
      const run = spawnSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xab 0 1M', pristine], { encoding: 'utf8' });
      if (run.status !== 0) throw new Error(run.stderr);
    } else {
      rmSync(pristine);
      qemuImgOk('convert', '-f', 'raw', '-O', 'qcow2', raw, pristine);
    }
    // The layout the offsets above assume.
    expect(readFileSync(pristine).readBigUInt64BE(3 * CLUSTER)).toBe(0x8000000000000000n | BigInt(L2_TABLE));
    expect(readFileSync(pristine).readBigUInt64BE(L2_TABLE)).toBe(0x8000000000000000n | BigInt(5 * CLUSTER));
  });

  /** A copy of the pristine image with some damage done to it. */
  function planted(name: string, damage: (path: string) => void): string {
    const path = join(dir, `plant-${name}.qcow2`);
    copyFileSync(pristine, path);
    damage(path);
    return path;
  }

  async function expectSameVerdict(path: string, status: number): Promise<CliResult> {
    const ours = await wkvmImg('check', path);
    const theirs = qemuImg('check', path);
    expect(theirs.status).toBe(status);
    expect(ours.status).toBe(status);
    expect(ours.stderr).toBe(theirs.stderr);
    expect(ours.stdout).toBe(theirs.stdout);
    const json = await wkvmImg('check', '--output=json', path);
    expect(json.status).toBe(status);
    expect(JSON.parse(json.stdout)).toEqual(JSON.parse(qemuImg('check', '--output=json', path).stdout));
    return ours;
  }

  it('a leak: a cluster past the data with a refcount and no reference (status 3)', async () => {
    const path = planted('leak', (file) => {
      const end = statSync(file).size;
      const cluster = Math.ceil(end / CLUSTER);
      poke(file, REFCOUNT_BLOCK + cluster * 2, 2, 1n);
      const fd = openSync(file, 'r+');
      writeSync(fd, Buffer.alloc(CLUSTER), 0, CLUSTER, cluster * CLUSTER);
      closeSync(fd);
    });
    const ours = await expectSameVerdict(path, 3);
    expect(ours.stderr).toMatch(/^Leaked cluster 21 refcount=1 reference=0$/m);
    expect(ours.stdout).toContain('1 leaked clusters were found on the image.');
  });

  it('a corruption: a data cluster whose refcount is 0 (status 2)', async () => {
    const path = planted('refcount-zero', (file) => poke(file, REFCOUNT_BLOCK + 6 * 2, 2, 0n));
    const ours = await expectSameVerdict(path, 2);
    expect(ours.stderr).toContain('ERROR cluster 6 refcount=0 reference=1');
    expect(ours.stderr).toContain('ERROR OFLAG_COPIED data cluster: l2_entry=8000000000060000 refcount=0');
    expect(ours.stdout).toContain('2 errors were found on the image.');
  });

  it('a refcount above the references: a leak, and a COPIED flag that no longer holds', async () => {
    await expectSameVerdict(planted('refcount-two', (file) => poke(file, REFCOUNT_BLOCK + 5 * 2, 2, 2n)), 2);
  });

  it('an L2 entry with reserved bits set, one misaligned, one past the end of the file', async () => {
    await expectSameVerdict(planted('reserved-bits', (file) => poke(file, L2_TABLE + 8, 8, 0x8100000000060000n)), 2);
    await expectSameVerdict(planted('misaligned', (file) => poke(file, L2_TABLE + 8, 8, 0x8000000000050200n)), 2);
    await expectSameVerdict(planted('past-end', (file) => poke(file, L2_TABLE + 8, 8, 0x8000000000f00000n)), 2);
  });

  it('a misaligned L1 entry and a refcount table entry outside the image', async () => {
    await expectSameVerdict(planted('l1-misaligned', (file) => poke(file, 3 * CLUSTER, 8, 0x8000000000040200n)), 2);
    await expectSameVerdict(planted('refblock-outside', (file) => poke(file, CLUSTER + 8, 8, 0x7770000n)), 2);
  });

  it('a refcount table entry with reserved bits set, and a data cluster on top of the refcount block', async () => {
    await expectSameVerdict(planted('reftable-reserved', (file) => poke(file, CLUSTER, 8, BigInt(REFCOUNT_BLOCK) | 1n)), 2);
    const shared = await expectSameVerdict(planted('on-refblock', (file) => poke(file, L2_TABLE + 8, 8, 0x8000000000000000n | BigInt(REFCOUNT_BLOCK))), 2);
    expect(shared.stderr).toContain('ERROR refcount block 0 refcount=2');
  });

  it('a header it cannot read: one line and status 1, as qemu-img', async () => {
    const path = planted('bad-header', (file) => poke(file, 16, 8, 40n)); // cluster_bits 40
    expectOneLineError(await wkvmImg('check', path), 1, /Could not open '.*plant-bad-header\.qcow2': cluster_bits 40/);
    expect(qemuImg('check', path).status).toBe(1);
    expectOneLineError(await wkvmImg('info', path), 1, /cluster_bits 40/);
  });
});

describe.skipIf(!haveQemuImg)('wkvm img convert and resize', () => {
  let raw: string;
  beforeAll(() => {
    raw = join(dir, 'convert-source.raw');
    const bytes = patterned(5 * MiB + 512 * 3);
    // A stretch that repeats 8 KiB apart: deflate with QEMU's 4 KiB window must not refer back that far.
    const block = Buffer.from(Array.from({ length: 8192 }, (_, i) => (i * 131 + (i >> 5)) & 0xff));
    for (let at = 3 * MiB; at < 3 * MiB + 4 * CLUSTER; at += block.length) block.copy(bytes, at);
    writeFileSync(raw, bytes);
  });

  it.each([[[] as string[]], [['-c']], [['-o', 'cluster_size=4096,compat=0.10']]])('raw -> qcow2 %j -> raw round-trips a patterned file', async (options) => {
    const qcow2 = join(dir, `convert-${options.join('')}.qcow2`.replace(/[=,]/g, ''));
    const back = `${qcow2}.raw`;
    const toQcow2 = await wkvmImg('convert', ...options, '-f', 'raw', '-O', 'qcow2', raw, qcow2);
    expect(toQcow2.stderr).toBe('');
    expect(toQcow2.status).toBe(0);
    const check = qemuImg('check', '--output=json', qcow2);
    expect(check.status).toBe(0);
    const report = JSON.parse(check.stdout);
    // Only non-zero clusters are allocated: a third of the patterned file is zero.
    expect(report['allocated-clusters']).toBeLessThan(report['total-clusters']);
    if (options.includes('-c')) expect(report['compressed-clusters']).toBeGreaterThan(0);
    const compare = qemuImg('compare', '-f', 'raw', '-F', 'qcow2', raw, qcow2);
    expect(compare.stdout).toContain('Images are identical.');
    expect(compare.status).toBe(0);

    const toRaw = await wkvmImg('convert', '-O', 'raw', qcow2, back);
    expect(toRaw.status).toBe(0);
    expect(readFileSync(back).equals(readFileSync(raw))).toBe(true);
    expect(qemuImg('compare', '-f', 'raw', '-F', 'raw', raw, back).status).toBe(0);
    expect((await wkvmImg('check', qcow2)).status).toBe(0);
  });

  it('reads what qemu-img convert -c wrote', async () => {
    const theirs = join(dir, 'convert-qemu-compressed.qcow2');
    qemuImgOk('convert', '-c', '-f', 'raw', '-O', 'qcow2', raw, theirs);
    const back = join(dir, 'convert-qemu-compressed.raw');
    expect((await wkvmImg('convert', '-O', 'raw', theirs, back)).status).toBe(0);
    expect(readFileSync(back).equals(readFileSync(raw))).toBe(true);
  });

  it('refuses -c for raw output and a missing input, in one line', async () => {
    expectOneLineError(await wkvmImg('convert', '-c', '-O', 'raw', raw, join(dir, 'x.raw')), 1, /Compression not supported for this file format/);
    expectOneLineError(await wkvmImg('convert', '-O', 'qcow2', join(dir, 'missing.raw'), join(dir, 'x.qcow2')), 1, /Could not open '.*missing\.raw': No such file or directory/);
    expectOneLineError(await wkvmImg('convert', '-O', 'qcow2', raw), 1, /Must specify image file name/);
  });

  it.each([[65536, '+1G'], [512, '1G']])('resize grows a qcow2 image with %i-byte clusters (%s) that qemu-img check finds clean', async (clusterSize, size) => {
    const image = join(dir, `resize-${clusterSize}.qcow2`);
    expect((await wkvmImg('convert', '-O', 'qcow2', '-o', `cluster_size=${clusterSize}`, raw, image)).status).toBe(0);
    const grown = await wkvmImg('resize', image, size);
    expect(grown.stderr).toBe('');
    expect(grown.stdout).toBe('Image resized.\n');
    const check = qemuImg('check', image);
    expect(check.stdout + check.stderr).toContain('No errors were found on the image.');
    expect(check.status).toBe(0);
    const expected = size === '+1G' ? statSync(raw).size + 1024 * MiB : 1024 * MiB;
    expect(JSON.parse(qemuImgOk('info', '--output=json', image))['virtual-size']).toBe(expected);
    // The data stays, and the new space reads as zeros (qemu-img compare checks the longer image's tail).
    const compare = qemuImg('compare', '-f', 'raw', '-F', 'qcow2', raw, image);
    expect(compare.stdout).toContain('Images are identical.');
    // qemu-img can still write there.
    if (haveQemuIo) {
      expect(spawnSync('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x5a ${expected - CLUSTER} 64k`, image]).status).toBe(0);
      expect(qemuImg('check', image).status).toBe(0);
    }
  });

  it('resize: raw grows and, with --shrink, shrinks; qcow2 shrinking is refused as qemu-img does without --shrink', async () => {
    const file = join(dir, 'resize.raw');
    writeFileSync(file, Buffer.alloc(1024, 1));
    expect((await wkvmImg('resize', '-f', 'raw', file, '+1.5M')).status).toBe(0);
    expect(statSync(file).size).toBe(1024 + 1.5 * MiB);
    expectOneLineError(await wkvmImg('resize', '-f', 'raw', file, '100'), 1, /Use the --shrink option to perform a shrink operation/);
    expect((await wkvmImg('resize', '-f', 'raw', '--shrink', file, '100')).status).toBe(0);
    expect(statSync(file).size).toBe(100);

    const image = join(dir, 'resize-shrink.qcow2');
    qemuImgOk('create', '-f', 'qcow2', image, '4M');
    expectOneLineError(await wkvmImg('resize', image, '-1M'), 1, /Use the --shrink option to perform a shrink operation/);
    expect(qemuImg('resize', image, '-1M').status).toBe(1);
    expectOneLineError(await wkvmImg('resize', image, '+100'), 1, /The new size must be a multiple of 512/);
    expectOneLineError(await wkvmImg('resize', image, 'ten'), 1, /Invalid image size specified/);
    expect(JSON.parse(qemuImgOk('info', '--output=json', image))['virtual-size']).toBe(4 * MiB);
  });
});

describe('wkvm img: bad input is one line and qemu-img\'s status', () => {
  it('a missing file, an unknown format, an unknown command, a text file read as qcow2', async () => {
    expectOneLineError(await wkvmImg('info', join(tmpdir(), 'wkvm-img-no-such-file.qcow2')), 1, /Could not open '.*': No such file or directory/);
    expectOneLineError(await wkvmImg('info', '-f', 'foo', join(tmpdir(), 'x')), 1, /Unknown file format 'foo'/);
    expectOneLineError(await wkvmImg('frobnicate'), 1, /Command not found: frobnicate/);
    expectOneLineError(await wkvmImg(), 1, /Not enough arguments/);
    const text = join(mkdtempSync(join(tmpdir(), 'wkvm-img-text-')), 'notes.txt');
    writeFileSync(text, 'not an image\n');
    expectOneLineError(await wkvmImg('check', '-f', 'qcow2', text), 1, /not a qcow2 image|too short/);
    expectOneLineError(await wkvmImg('info', '--output=yaml', text), 1, /--output must be used with human or json/);
  });
});
