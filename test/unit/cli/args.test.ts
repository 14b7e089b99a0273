// The QEMU-style command line: what -drive takes beyond the disk's own settings.
import { describe, it, expect } from 'vitest';
import { parseRunArgs, UsageError } from '../../../host/cli/args.js';
import { planVirtioDevices } from '../../../host/devices/virtio/attach.js';

describe('-drive', () => {
  it('takes QEMU\'s host-side I/O parameters with the values wkvm has, and serial= for GET_ID', () => {
    const options = parseRunArgs(['-drive', 'file=d.img,format=raw,if=virtio,aio=io_uring,discard=unmap,detect-zeroes=on,werror=report,rerror=report,serial=SN-1']);
    expect(options.drives).toEqual([expect.objectContaining({ file: 'd.img', if: 'virtio', serial: 'SN-1' })]);
    expect(planVirtioDevices(options)).toEqual([expect.objectContaining({ kind: 'blk', serial: 'SN-1' })]);
    // A -device's own serial= wins over the drive's.
    const paired = parseRunArgs(['-drive', 'file=d.img,if=none,id=d0,serial=FROM-DRIVE', '-device', 'virtio-blk-device,drive=d0,serial=FROM-DEVICE']);
    expect(planVirtioDevices(paired)).toEqual([expect.objectContaining({ serial: 'FROM-DEVICE' })]);
  });

  it('refuses error policies and parameters it does not have', () => {
    expect(() => parseRunArgs(['-drive', 'file=d.img,if=virtio,werror=stop'])).toThrow(/werror=stop: not supported \(wkvm takes report\)/);
    expect(() => parseRunArgs(['-drive', 'file=d.img,if=virtio,aio=posix'])).toThrow(UsageError);
    expect(() => parseRunArgs(['-drive', 'file=d.img,if=virtio,bps=1000'])).toThrow(/invalid parameter 'bps'/);
  });
});

describe('-smp', () => {
  it('counts harts as QEMU does: N, or the product of the topology without it', () => {
    expect(parseRunArgs(['-smp', '3']).smp).toBe(3);
    expect(parseRunArgs(['-smp', 'cpus=2,maxcpus=4']).smp).toBe(2);
    expect(parseRunArgs(['-smp', 'sockets=2,cores=2,threads=1']).smp).toBe(4);
  });

  it('refuses counts that are not positive integers, maxcpus below the count, and unknown parameters', () => {
    expect(() => parseRunArgs(['-smp', '0'])).toThrow(/cpus=0: expected a positive integer/);
    expect(() => parseRunArgs(['-smp', '2,maxcpus=1'])).toThrow(/maxcpus is below the CPU count 2/);
    expect(() => parseRunArgs(['-smp', '2,books=1'])).toThrow(/invalid parameter 'books'/);
  });
});

describe('-virtfs', () => {
  it('is an -fsdev and its virtio-9p-device in one, as in QEMU', () => {
    const options = parseRunArgs(['-virtfs', 'local,path=/srv/share,mount_tag=host0,security_model=none,readonly=on']);
    expect(planVirtioDevices(options)).toEqual([{ kind: '9p', id: 'virtfs0', path: '/srv/share', readOnly: true, mountTag: 'host0', securityModel: 'none' }]);
    expect(() => parseRunArgs(['-virtfs', 'local,path=/srv/share,security_model=none'])).toThrow(/mount_tag=TAG is required/);
    expect(() => planVirtioDevices(parseRunArgs(['-virtfs', 'local,path=/srv,mount_tag=t,security_model=mapped-xattr']))).toThrow(/security_model=mapped-xattr: not supported/);
  });
});

describe('-global', () => {
  it('takes virtio-mmio.force-legacy=false (xv6\'s line), in both of QEMU\'s spellings, since wkvm\'s virtio-mmio is version 2', () => {
    expect(() => parseRunArgs(['-global', 'virtio-mmio.force-legacy=false'])).not.toThrow();
    expect(() => parseRunArgs(['-global', 'driver=virtio-mmio,property=force-legacy,value=off'])).not.toThrow();
  });

  it('takes virtio-mmio.force-legacy=true for the legacy interface (QEMU\'s default; wkvm\'s is version 2)', () => {
    expect(parseRunArgs(['-global', 'virtio-mmio.force-legacy=true']).virtioMmioLegacy).toBe(true);
    expect(parseRunArgs(['-global', 'virtio-mmio.force-legacy=false']).virtioMmioLegacy).toBe(false);
    expect(parseRunArgs([]).virtioMmioLegacy).toBeUndefined();
  });

  it('refuses properties it does not have', () => {
    expect(() => parseRunArgs(['-global', 'virtio-mmio.force-legacy=maybe'])).toThrow(/expected on or off/);
    expect(() => parseRunArgs(['-global', 'virtio-blk-device.scsi=off'])).toThrow(/not a property wkvm has/);
    expect(() => parseRunArgs(['-global', 'nonsense'])).toThrow(/expected DRIVER.PROPERTY=VALUE/);
  });
});
