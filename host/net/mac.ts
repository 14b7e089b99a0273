// MAC addresses as the -device ...,mac= option spells them ("52:54:00:12:34:56").

export const MAC_LENGTH = 6;

/** QEMU's default NIC address (its first NIC's; QEMU bumps the last byte for further ones). */
export const DEFAULT_MAC: Readonly<Uint8Array> = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);

export class MacAddressError extends Error {
  override readonly name = 'MacAddressError';
  constructor(
    readonly text: string,
    readonly reason: string,
  ) {
    super(`bad MAC address "${text}": ${reason}`);
  }
}

/** Parses six colon-separated hex bytes; multicast addresses are refused, as a NIC must not own one. */
export function parseMacAddress(text: string): Uint8Array {
  const parts = text.split(':');
  if (parts.length !== MAC_LENGTH) throw new MacAddressError(text, `expected ${MAC_LENGTH} bytes separated by ':'`);
  const mac = new Uint8Array(MAC_LENGTH);
  for (let i = 0; i < MAC_LENGTH; i++) {
    if (!/^[0-9a-fA-F]{1,2}$/.test(parts[i]!)) throw new MacAddressError(text, `"${parts[i]}" is not a hex byte`);
    mac[i] = parseInt(parts[i]!, 16);
  }
  if ((mac[0]! & 1) !== 0) throw new MacAddressError(text, 'a multicast address cannot be a NIC address');
  return mac;
}

export function formatMacAddress(mac: Uint8Array): string {
  return Array.from(mac.subarray(0, MAC_LENGTH), (b) => b.toString(16).padStart(2, '0')).join(':');
}
