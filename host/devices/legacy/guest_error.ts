// A guest that programs a device wrongly (an access of a size the device does not decode, a write to a
// register that does not exist) is not a VMM failure: real hardware ignores such accesses, and so do these
// devices. They report each one through this hook so a user debugging a guest can see it, the way QEMU
// logs LOG_GUEST_ERROR under `-d guest_errors`. The default is to stay silent.

export type GuestErrorReporter = (message: string) => void;

export const ignoreGuestErrors: GuestErrorReporter = () => {};
