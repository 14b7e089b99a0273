// Network backends that outlive the guest's reboots. QEMU resets its NICs when the guest reboots but keeps
// each -netdev, so a socket's peer stays connected (and QEMU 7.2 as a client would never connect again),
// while wkvm builds the devices anew for each boot. The CLI keeps the socket backends here, by netdev id,
// and each boot's NIC leases one; the last boot's end closes them.
import type { NetBackend } from './backend.js';

export class PersistentNetBackends {
  private readonly backends = new Map<string, NetBackend>();

  /**
   * The backend for netdev `id`, opened with `open` the first time. The lease's close() only detaches the
   * NIC (frames that come between two boots are dropped, as on a link whose NIC is resetting).
   */
  async lease(id: string, open: () => Promise<NetBackend>): Promise<NetBackend> {
    let backend = this.backends.get(id);
    if (backend === undefined) {
      backend = await open();
      this.backends.set(id, backend);
    }
    const leased = backend;
    return {
      send: (frame) => leased.send(frame),
      attach: (receive) => leased.attach(receive),
      close: () => leased.attach(() => {}),
    };
  }

  closeAll(): void {
    for (const backend of this.backends.values()) backend.close?.();
    this.backends.clear();
  }
}
