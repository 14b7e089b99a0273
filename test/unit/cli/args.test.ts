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
