import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runWkvm, SHARED_GUEST } from '../helpers/wkvm_cli.js';
import { parseFdt } from '../../host/vmm/fdt/reader.js';
import { asm, program, li } from '../helpers/asm.js';
import { parseMemory } from '../../host/cli/args.js';

const scratch = mkdtempSync(join(tmpdir(), 'wkvm-cli-'));

function expectOneLineError(result: { status: number | null; stderr: string; stdout: string }, pattern: RegExp) {
  expect(result.status).not.toBe(0);
  const lines = result.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^wkvm: /);
  expect(lines[0]).toMatch(pattern);
}

describe('wkvm run: bad input gets one clear line and a non-zero status', () => {
  it('a missing kernel file', async () => {
    expectOneLineError(await runWkvm(['run', '-M', 'virt', '-kernel', join(scratch, 'nope.elf'), '-nographic']), /nope\.elf: cannot read kernel: no such file/);
  });

  it('a malformed ELF', async () => {
    const path = join(scratch, 'truncated.elf');
    writeFileSync(path, Uint8Array.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]));
    expectOneLineError(await runWkvm(['run', '-kernel', path]), /truncated\.elf: not a loadable RISC-V ELF/);
  });

  it('an ELF for another architecture', async () => {
    const path = join(scratch, 'x86.elf');
    const header = new Uint8Array(64);
    header.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
    header[16] = 2;
    header[18] = 62; // EM_X86_64
    writeFileSync(path, header);
    expectOneLineError(await runWkvm(['run', '-kernel', path]), /e_machine 62 is not RISC-V/);
  });

  it('an x86 kernel image', async () => {
    const path = join(scratch, 'bzImage');
    const image = new Uint8Array(1024);
    image.set([0x48, 0x64, 0x72, 0x53], 0x202);
    writeFileSync(path, image);
    expectOneLineError(await runWkvm(['run', '-kernel', path]), /x86 bzImage, not a RISC-V kernel/);
  });

  it('an empty kernel, a text file, a truncated Linux Image', async () => {
    const empty = join(scratch, 'empty');
    writeFileSync(empty, new Uint8Array(0));
    expectOneLineError(await runWkvm(['run', '-kernel', empty]), /the kernel file is empty/);
    const text = join(scratch, 'notes.txt');
    writeFileSync(text, 'console=ttyS0 root=/dev/vda\nthis is not a kernel\n');
    expectOneLineError(await runWkvm(['run', '-kernel', text]), /text file, not a RISC-V kernel image/);
    const truncated = join(scratch, 'Image.part');
    writeFileSync(truncated, readFileSync(`${SHARED_GUEST}Image`).subarray(0, 64));
    expectOneLineError(await runWkvm(['run', '-kernel', truncated]), /Linux Image header but only 64 bytes/);
  });

  it('an unknown option', async () => {
    expectOneLineError(await runWkvm(['run', '-frobnicate', '1']), /-frobnicate: invalid option/);
  });

  it('an option missing its value', async () => {
    expectOneLineError(await runWkvm(['run', '-kernel']), /-kernel: requires an argument/);
  });

  it('too little or too much memory', async () => {
    expectOneLineError(await runWkvm(['run', '-m', '8M', '-kernel', 'test/guest/hello/hello.elf']), /at least 16 MiB/);
    expectOneLineError(await runWkvm(['run', '-m', '4G', '-kernel', 'test/guest/hello/hello.elf']), /-m 4096M: wkvm gives a guest at most 40\d\dM of RAM/);
  });

  it('takes a fractional -m as QEMU does (Debian\'s wiki gives -m 1.9G), rounded up to 8 KiB', async () => {
    const result = await runWkvm(['run', '-m', '1.9G', '-bios', 'none', '-kernel', 'test/guest/hello/hello.elf', '-nographic']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain('hello: done');
    expect(parseMemory('1.9G')).toBe(2_040_111_104); // 1.9 * 2^30 = 2040109465.6, up to the next 8 KiB
    expect(parseMemory('256')).toBe(256 * 2 ** 20);
  });

  it('a memory size that is not one', async () => {
    expectOneLineError(await runWkvm(['run', '-m', 'lots', '-kernel', 'test/guest/hello/hello.elf']), /not a memory size/);
  });

  it('a machine type other than virt', async () => {
    expectOneLineError(await runWkvm(['run', '-M', 'pc', '-kernel', 'test/guest/hello/hello.elf']), /unsupported machine type/);
  });

  it('a bad -accel option', async () => {
    expectOneLineError(await runWkvm(['run', '-accel', 'hvf', '-kernel', 'test/guest/hello/hello.elf']), /-accel hvf: not supported/);
    expectOneLineError(await runWkvm(['run', '-accel', 'tcg,jit=maybe', '-kernel', 'test/guest/hello/hello.elf']), /jit=maybe: expected on or off/);
    expectOneLineError(await runWkvm(['run', '-accel', 'tcg,jit-threshold=0', '-kernel', 'test/guest/hello/hello.elf']), /jit-threshold=0: expected a whole number from 1 to 65535/);
    expectOneLineError(await runWkvm(['run', '-accel', 'tcg,speed=max', '-kernel', 'test/guest/hello/hello.elf']), /invalid parameter 'speed'/);
  });

  it('-serial file:PATH takes the console\'s output, -serial null drops it; other backends are refused', async () => {
    const log = join(scratch, 'serial.log');
    const toFile = await runWkvm(['run', '-m', '64M', '-kernel', 'test/guest/hello/hello.elf', '-serial', `file:${log}`]);
    expect(toFile.status).toBe(0);
    expect(toFile.stdout).not.toContain('hello: done');
    expect(readFileSync(log, 'utf8')).toContain('hello: done');
    const dropped = await runWkvm(['run', '-m', '64M', '-kernel', 'test/guest/hello/hello.elf', '-serial', 'null']);
    expect(dropped.status).toBe(0);
    expect(dropped.stdout).not.toContain('hello');
    expectOneLineError(await runWkvm(['run', '-serial', 'pty', '-kernel', 'test/guest/hello/hello.elf']), /-serial pty: not supported/);
  });

  it('-S without a debugger to start the hart', async () => {
    expectOneLineError(await runWkvm(['run', '-S', '-kernel', 'test/guest/hello/hello.elf']), /-S: nothing would start the hart without a debugger/);
  });

  it('a bad -rtc option', async () => {
    expectOneLineError(await runWkvm(['run', '-rtc', 'base=2006-02-30', '-kernel', 'test/guest/hello/hello.elf']), /base=2006-02-30: expected utc, localtime or a date/);
    expectOneLineError(await runWkvm(['run', '-rtc', 'base=yesterday', '-kernel', 'test/guest/hello/hello.elf']), /base=yesterday: expected/);
    expectOneLineError(await runWkvm(['run', '-rtc', 'clock=guest', '-kernel', 'test/guest/hello/hello.elf']), /-rtc clock=guest: not supported \(wkvm accepts host, rt, vm\)/);
    expectOneLineError(await runWkvm(['run', '-rtc', 'base=utc,speed=2', '-kernel', 'test/guest/hello/hello.elf']), /-rtc: invalid parameter 'speed'/);
  });

  it('runs the same program with the block translator off, on, and translating everything', async () => {
    for (const accel of ['tcg,jit=off', 'tcg', 'kvm,jit=on,jit-threshold=1']) {
      const result = await runWkvm(['run', '-accel', accel, '-m', '64M', '-kernel', 'test/guest/hello/hello.elf', '-nographic']);
      expect(result.status, accel).toBe(0);
      expect(result.stdout, accel).toContain('hello: done');
    }
  });

  it('accepts QEMU double-dash spellings, and options with nothing to do here (-name, -enable-kvm, -rtc base=utc, -vga none, -nodefaults, -net none, ...)', async () => {
    const result = await runWkvm(['run', '--machine', 'virt', '--m', '64M', '--bios', 'none', '--kernel', 'test/guest/hello/hello.elf', '--nographic',
      '-name', 'guest=vm1,process=vm1', '-enable-kvm', '-rtc', 'base=utc,driftfix=slew', '-vga', 'none', '-parallel', 'none',
      '-nodefaults', '-net', 'none', '-nic', 'none', '-k', 'en-us', '-boot', 'n']);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('hello: done');
  });
});

describe('wkvm run -machine', () => {
  it('dumpdtb=FILE writes the board\'s device tree and exits, as QEMU does', async () => {
    const path = join(scratch, 'virt.dtb');
    const result = await runWkvm(['run', '-M', 'virt,dumpdtb=' + path, '-m', '512M', '-smp', '3', '-append', 'console=ttyS0 quiet']);
    expect(result.status).toBe(0);
    const { root } = parseFdt(readFileSync(path));
    expect(root.find('/cpus')!.children.filter((node) => node.name.startsWith('cpu@'))).toHaveLength(3);
    expect(root.find('/memory@80000000')!.u32s('reg')).toEqual([0, 0x8000_0000, 0, 512 << 20]);
    expect(root.find('/chosen')!.string('bootargs')).toBe('console=ttyS0 quiet');
    expect(root.find('/chosen')!.has('linux,initrd-start')).toBe(false);
    // QEMU's 32 bytes of entropy for the guest's RNG, new for each machine.
    const seed = root.find('/chosen')!.bytes('rng-seed')!;
    expect(seed).toHaveLength(32);
    const again = join(scratch, 'virt-again.dtb');
    expect((await runWkvm(['run', '-M', 'virt,dumpdtb=' + again])).status).toBe(0);
    expect(parseFdt(readFileSync(again)).root.find('/chosen')!.bytes('rng-seed')).not.toEqual(seed);
  });

  it('with a kernel and an initrd, the dumped tree is the one the guest gets: it says where the initrd is', async () => {
    const path = join(scratch, 'linux.dtb');
    const initrd = join(SHARED_GUEST, 'initramfs.cpio.gz');
    const result = await runWkvm(['run', '-machine', 'virt,aclint=off,aia=none,dumpdtb=' + path, '-m', '256M',
      '-kernel', join(SHARED_GUEST, 'Image'), '-initrd', initrd]);
    expect(result.status).toBe(0);
    const chosen = parseFdt(readFileSync(path)).root.find('/chosen')!;
    const [startHigh, start] = chosen.u32s('linux,initrd-start')!;
    const [endHigh, end] = chosen.u32s('linux,initrd-end')!;
    expect([startHigh, endHigh]).toEqual([0, 0]);
    expect(end! - start!).toBe(readFileSync(initrd).length);
  });

  it('-cpu shapes the ISA the device tree advertises, as the shared guest README\'s lines use it', async () => {
    const path = join(scratch, 'cpu.dtb');
    const result = await runWkvm(['run', '-M', 'virt,dumpdtb=' + path, '-cpu', 'rv64,h=false,sstc=false,Zihintpause=false']);
    expect(result.status).toBe(0);
    expect(parseFdt(readFileSync(path)).root.find('/cpus/cpu@0')!.string('riscv,isa')).toBe('rv64imafdc_zicsr_zifencei_zba_zbb_zbc_zbs');
    expectOneLineError(await runWkvm(['run', '-cpu', 'rv64,v=on', '-kernel', 'test/guest/hello/hello.elf']), /-cpu v=on: wkvm's CPU does not implement v/);
  });

  it('refuses what the board does not have, and properties it does not know', async () => {
    expectOneLineError(await runWkvm(['run', '-M', 'virt,aia=aplic-imsic', '-kernel', 'test/guest/hello/hello.elf']), /-machine aia=aplic-imsic: not supported \(wkvm's virt machine has aia=none\)/);
    expectOneLineError(await runWkvm(['run', '-M', 'virt,aclint=on', '-kernel', 'test/guest/hello/hello.elf']), /aclint=on: not supported/);
    expectOneLineError(await runWkvm(['run', '-M', 'virt,highmem=on', '-kernel', 'test/guest/hello/hello.elf']), /-machine highmem=on: unsupported property of the virt machine/);
    expectOneLineError(await runWkvm(['run', '-M', 'virt,dumpdtb=' + join(scratch, 'no-such-dir', 'x.dtb')]), /dumpdtb=.*x\.dtb: cannot write/);
  });
});

describe('wkvm run: diagnostics', () => {
  it('reports a guest stuck in a fault loop instead of spinning silently', async () => {
    // A raw image at 0x80000000: mtvec = 0x80000000, then jump to 0x1000, where nothing is mapped.
    const path = join(scratch, 'fault-loop.bin');
    writeFileSync(path, program([asm.addi(5, 0, 1), asm.slli(5, 5, 31), asm.csrrw(0, 0x305, 5), ...li(6, 0x1000), 0x00030067]));
    const result = await runWkvm(['run', '-bios', 'none', '-kernel', path, '-nographic'], { stopWhenStderr: /stuck/ });
    expect(result.stderr).toMatch(/vcpu 0 appears stuck in a fault loop: instruction access fault at pc 0x1000/);
  });

  it('reports it too when the harts run on their own threads (-smp 2)', async () => {
    const path = join(scratch, 'fault-loop-smp.bin');
    writeFileSync(path, program([asm.addi(5, 0, 1), asm.slli(5, 5, 31), asm.csrrw(0, 0x305, 5), ...li(6, 0x1000), 0x00030067]));
    const result = await runWkvm(['run', '-smp', '2', '-bios', 'none', '-kernel', path, '-nographic'], { stopWhenStderr: /stuck/ });
    expect(result.stderr).toMatch(/vcpu [01] appears stuck in a fault loop: instruction access fault at pc 0x1000/);
  });

  it('logs a guest\'s wrong device accesses with -d guest_errors, and stays quiet without it', async () => {
    // Writes 0x1234 to the finisher (not a command), then 0x5555 (power off, status 0).
    const path = join(scratch, 'guest-error.bin');
    writeFileSync(path, program([...li(5, 0x100000), ...li(6, 0x1234), asm.sw(6, 5, 0), ...li(6, 0x5555), asm.sw(6, 5, 0), 0x0000006f]));
    const logged = await runWkvm(['run', '-bios', 'none', '-kernel', path, '-nographic', '-d', 'guest_errors']);
    expect(logged.status).toBe(0);
    expect(logged.stderr).toMatch(/guest error: test: 4-byte write of 0x1234 at offset 0x0 is not a finisher command/);
    const quiet = await runWkvm(['run', '-bios', 'none', '-kernel', path, '-nographic']);
    expect(quiet.status).toBe(0);
    expect(quiet.stderr).not.toMatch(/guest error/);
  });

  it('traces exits with -d exits', async () => {
    const log = join(scratch, 'exits.log');
    const result = await runWkvm(['run', '-kernel', 'test/guest/hello/hello.elf', '-d', 'exits', '-D', log, '-nographic']);
    expect(result.status).toBe(0);
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    expect(lines.some((l) => /^vcpu 0 pc=0x8[0-9a-f]+ M mmio write 0x10000000\/1 = 0x48$/.test(l))).toBe(true); // 'H'
  });

  it('refuses an unknown -d item', async () => {
    expectOneLineError(await runWkvm(['run', '-d', 'everything', '-kernel', 'test/guest/hello/hello.elf']), /unknown log item/);
  });
});

describe('wkvm run -device loader (QEMU\'s generic loader)', () => {
  /** Loads the 32-bit word at 0x80001000 and writes it to the SiFive test finisher: 0x3333 | status << 16 exits with status. */
  const finisherProgram = program([...li(5, 0x8_0001), asm.slli(5, 5, 12), asm.lw(6, 5, 0), ...li(7, 0x10_0000), asm.sw(6, 7, 0), asm.jal(0, 0)]);

  it('runs an ELF it loads, from its entry, when cpu-num= is given (no -kernel, -bios none)', async () => {
    const result = await runWkvm(['run', '-M', 'virt', '-bios', 'none', '-nographic', '-device', 'loader,file=test/guest/hello/hello.elf,cpu-num=0']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain('hello: done');
  });

  it('puts raw bytes and data= values into RAM; the hart starts at DRAM as QEMU\'s reset vector jumps there', async () => {
    const file = join(scratch, 'finisher.bin');
    writeFileSync(file, finisherProgram);
    // As QEMU writes data=: the first data-len bytes of the 64-bit value in memory order, so its low bytes,
    // or with data-be=on its high bytes (the guest's lw then reads 0x00053333).
    for (const [loader, status] of [['data=0x1200073333,data-len=4', 7], ['data=0x3333050000000000,data-len=4,data-be=on', 5]] as const) {
      const result = await runWkvm(['run', '-M', 'virt', '-bios', 'none', '-nographic', '-device', `loader,file=${file},addr=0x80000000`,
        '-device', `loader,addr=0x80001000,${loader}`]);
      expect(result.status, result.stderr).toBe(status);
    }
  });

  it('sets a hart\'s pc with addr= and cpu-num=, and a later loader overwrites an earlier one', async () => {
    const file = join(scratch, 'finisher-high.bin');
    writeFileSync(file, finisherProgram);
    const result = await runWkvm(['run', '-M', 'virt', '-bios', 'none', '-nographic', '-device', `loader,file=${file},addr=0x80400000`,
      '-device', 'loader,addr=0x80001000,data=0x00013333,data-len=4', '-device', 'loader,addr=0x80001002,data=9,data-len=1',
      '-device', 'loader,addr=0x80400000,cpu-num=0']);
    expect(result.status, result.stderr).toBe(9);
  });

  it.each([
    [['loader'], /please include valid arguments/],
    [['loader,addr=0x80000000'], /needs data= and data-len=, or cpu-num=/],
    [['loader,addr=0x80000000,data=0x1,data-len=1,force-raw=on'], /force-raw goes with file=/],
    [['loader,addr=0x80000000,data=1,data-len=3'], /data-len=3: must be 1, 2, 4 or 8/],
    [['loader,file=x.bin,data=1'], /data can not be specified when loading an image/],
    [['loader,addr=zz,cpu-num=0'], /addr=zz: not a number/],
    [['loader,file=test/guest/hello/hello.elf,speed=2'], /property 'speed' not found/],
    [['loader,addr=0x80000000,cpu-num=3'], /cpu-num=3, but the machine has 1 hart/],
    [['loader,file=test/guest/hello/hello.elf,force-raw=on,cpu-num=0'], /needs addr=/],
    [['loader,addr=0x1000,data=1,data-len=4'], /do not fit in guest RAM/],
  ])('refuses %j with one clear line', async (devices, pattern) => {
    expectOneLineError(await runWkvm(['run', '-M', 'virt', '-bios', 'none', '-nographic', ...devices.flatMap((d) => ['-device', d])]), pattern);
  });
});

describe('wkvm --help', () => {
  it('exits 0 and names the options a user needs: machine, boot files, disks, devices, logging, accelerator', async () => {
    const result = await runWkvm(['--help']);
    expect(result.status).toBe(0);
    for (const option of ['-M virt', '-m SIZE', '-smp', '-bios', '-kernel', '-initrd', '-append', '-dtb', '-nographic', '-no-reboot',
      '-snapshot', '-drive file=', 'format=raw|qcow2', 'cache=', 'readonly=on', '-device virtio-blk-device,drive=ID', 'queue-size=N', 'virtio-rng-device',
      '-d exits,jit', '-D LOGFILE', '-accel tcg', '-netdev stream,id=ID', '-netdev dgram,id=ID', '-netdev socket,id=ID,listen=']) {
      expect(result.stdout, option).toContain(option);
    }
  });
});
