// QEMU's spellings of a boolean property (on/off, true/false, yes/no), for every option that takes one.

/** true, false, or null when `text` is none of QEMU's boolean spellings. */
export function parseQemuBool(text: string): boolean | null {
  if (text === 'on' || text === 'true' || text === 'yes') return true;
  if (text === 'off' || text === 'false' || text === 'no') return false;
  return null;
}
