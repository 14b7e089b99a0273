// The boundary between a NIC model and the network behind it, like QEMU's -netdev: the NIC hands the
// guest's Ethernet frames to send(), and the backend hands frames for the guest to the receiver the NIC
// attached. Frames are whole Ethernet frames (destination MAC first), without FCS.

/** Takes a frame for the guest. The backend gives up ownership of the bytes. */
export type FrameReceiver = (frame: Uint8Array) => void;

export interface NetBackend {
  /** A frame the guest transmitted. The backend may keep the bytes: the NIC passes a copy. */
  send(frame: Uint8Array): void;
  /**
   * The NIC's way in. Backends call `receive` asynchronously, never from inside send(), so a NIC is never
   * re-entered while it walks its transmit queue.
   */
  attach(receive: FrameReceiver): void;
  /** Releases host resources; no frames are delivered afterwards. */
  close?(): void;
}
