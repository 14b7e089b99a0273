// The register sequences Linux's 8250 driver (drivers/tty/serial/8250/8250_port.c) runs against a UART,
// re-expressed against the MmioDevice interface so tests can check that the device passes them. Register
// offsets and bits are those of include/uapi/linux/serial_reg.h.

import type { MmioDevice } from '../../../../host/devices/device.js';

export const UART_RX = 0;
export const UART_TX = 0;
export const UART_DLL = 0;
export const UART_IER = 1;
export const UART_DLM = 1;
export const UART_IIR = 2;
export const UART_FCR = 2;
export const UART_EFR = 2;
export const UART_LCR = 3;
export const UART_MCR = 4;
export const UART_LSR = 5;
export const UART_MSR = 6;
export const UART_SCR = 7;

export const UART_IER_RDI = 0x01;
export const UART_IER_THRI = 0x02;
export const UART_IER_RLSI = 0x04;
export const UART_IER_MSI = 0x08;
export const UART_IER_UUE = 0x40;
export const UART_IER_ALL_INTR = 0x0f;

export const UART_IIR_NO_INT = 0x01;
export const UART_IIR_ID = 0x0e;
export const UART_IIR_MSI = 0x00;
export const UART_IIR_THRI = 0x02;
export const UART_IIR_RDI = 0x04;
export const UART_IIR_RLSI = 0x06;
export const UART_IIR_RX_TIMEOUT = 0x0c;
export const UART_IIR_64BYTE_FIFO = 0x20;
export const UART_IIR_FIFO_ENABLED = 0xc0;

export const UART_FCR_ENABLE_FIFO = 0x01;
export const UART_FCR_CLEAR_RCVR = 0x02;
export const UART_FCR_CLEAR_XMIT = 0x04;
export const UART_FCR7_64BYTE = 0x20;
export const UART_FCR_R_TRIG_00 = 0x00;
export const UART_FCR_R_TRIG_01 = 0x40;
export const UART_FCR_R_TRIG_10 = 0x80;
export const UART_FCR_R_TRIG_11 = 0xc0;

export const UART_LCR_WLEN8 = 0x03;
export const UART_LCR_DLAB = 0x80;
export const UART_LCR_CONF_MODE_A = 0x80;
export const UART_LCR_CONF_MODE_B = 0xbf;

export const UART_MCR_DTR = 0x01;
export const UART_MCR_RTS = 0x02;
export const UART_MCR_OUT1 = 0x04;
export const UART_MCR_OUT2 = 0x08;
export const UART_MCR_LOOP = 0x10;

export const UART_LSR_DR = 0x01;
export const UART_LSR_OE = 0x02;
export const UART_LSR_THRE = 0x20;
export const UART_LSR_TEMT = 0x40;

export const UART_MSR_DCTS = 0x01;
export const UART_MSR_DDSR = 0x02;
export const UART_MSR_TERI = 0x04;
export const UART_MSR_DDCD = 0x08;
export const UART_MSR_CTS = 0x10;
export const UART_MSR_DSR = 0x20;
export const UART_MSR_RI = 0x40;
export const UART_MSR_DCD = 0x80;
export const UART_MSR_STATUS_BITS = 0xf0;

/** Byte-wide register access, as Linux does for a UPIO_MEM port with reg-shift 0. */
export class Port {
  constructor(readonly device: MmioDevice) {}
  in(reg: number): number {
    return this.device.read(reg, 1);
  }
  out(reg: number, value: number): void {
    this.device.write(reg, 1, value);
  }
}

export type DetectedType = 'unknown' | '8250' | '16450' | '16550' | '16550A' | '16650' | 'NS16550A' | '16750' | 'XScale' | 'U6_16550A';

export interface AutoconfigResult {
  type: DetectedType;
  /** Why detection stopped early, when it did. */
  failure?: string;
}

/** Linux's size_fifo(): count how many bytes sent in loopback can be read back. */
export function sizeFifo(port: Port): number {
  const oldLcr = port.in(UART_LCR);
  port.out(UART_LCR, 0);
  const oldFcr = port.in(UART_FCR); // reads IIR, as the driver does
  const oldMcr = port.in(UART_MCR);
  port.out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT);
  port.out(UART_MCR, UART_MCR_LOOP);
  port.out(UART_LCR, UART_LCR_CONF_MODE_A);
  const oldDivisor = port.in(UART_DLL) | (port.in(UART_DLM) << 8);
  port.out(UART_DLL, 1);
  port.out(UART_DLM, 0);
  port.out(UART_LCR, UART_LCR_WLEN8);
  for (let byte = 0; byte < 256; byte++) port.out(UART_TX, byte);
  let count = 0;
  while (port.in(UART_LSR) & UART_LSR_DR && count < 256) {
    port.in(UART_RX);
    count++;
  }
  port.out(UART_FCR, oldFcr);
  port.out(UART_MCR, oldMcr);
  port.out(UART_LCR, UART_LCR_CONF_MODE_A);
  port.out(UART_DLL, oldDivisor & 0xff);
  port.out(UART_DLM, oldDivisor >> 8);
  port.out(UART_LCR, oldLcr);
  return count;
}

/** Linux's autoconfig() followed by autoconfig_16550a() (with the 16550A variant probes enabled). */
export function autoconfig(port: Port): AutoconfigResult {
  const scratch = port.in(UART_IER);
  port.out(UART_IER, 0);
  const scratch2 = port.in(UART_IER) & UART_IER_ALL_INTR;
  port.out(UART_IER, UART_IER_ALL_INTR);
  const scratch3 = port.in(UART_IER) & UART_IER_ALL_INTR;
  port.out(UART_IER, scratch);
  if (scratch2 !== 0 || scratch3 !== UART_IER_ALL_INTR) {
    return { type: 'unknown', failure: `IER test failed (${scratch2}, ${scratch3})` };
  }

  const saveMcr = port.in(UART_MCR);
  const saveLcr = port.in(UART_LCR);
  port.out(UART_MCR, UART_MCR_LOOP | UART_MCR_OUT2 | UART_MCR_RTS);
  const status1 = port.in(UART_MSR) & UART_MSR_STATUS_BITS;
  port.out(UART_MCR, saveMcr);
  if (status1 !== (UART_MSR_DCD | UART_MSR_CTS)) {
    return { type: 'unknown', failure: `LOOP test failed (${status1.toString(16)})` };
  }

  port.out(UART_LCR, UART_LCR_CONF_MODE_B);
  port.out(UART_EFR, 0);
  port.out(UART_LCR, 0);
  port.out(UART_FCR, UART_FCR_ENABLE_FIFO);

  let type: DetectedType;
  switch (port.in(UART_IIR) & UART_IIR_FIFO_ENABLED) {
    case 0x00:
      type = autoconfig8250(port);
      break;
    case 0x80:
      type = '16550';
      break;
    case 0xc0:
      type = autoconfig16550a(port);
      break;
    default:
      type = 'unknown';
  }

  port.out(UART_LCR, saveLcr);
  port.out(UART_MCR, saveMcr);
  // serial8250_clear_fifos(), then a dummy read and clearing IER, as the driver does.
  port.out(UART_FCR, UART_FCR_ENABLE_FIFO);
  port.out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT);
  port.out(UART_FCR, 0);
  port.in(UART_RX);
  port.out(UART_IER, 0);
  return { type };
}

function autoconfig8250(port: Port): DetectedType {
  const scratch = port.in(UART_SCR);
  port.out(UART_SCR, 0xa5);
  const status1 = port.in(UART_SCR);
  port.out(UART_SCR, 0x5a);
  const status2 = port.in(UART_SCR);
  port.out(UART_SCR, scratch);
  return status1 === 0xa5 && status2 === 0x5a ? '16450' : '8250';
}

function autoconfig16550a(port: Port): DetectedType {
  // An EFR readable as 0 in configuration mode A or B would mean a 16650-class part.
  port.out(UART_LCR, UART_LCR_CONF_MODE_A);
  if (port.in(UART_EFR) === 0) return '16650';
  port.out(UART_LCR, UART_LCR_CONF_MODE_B);
  if (port.in(UART_EFR) === 0) return '16650';

  // National Semiconductor parts expose MCR.LOOP through register 2 when LCR is 0xE0.
  port.out(UART_LCR, 0);
  let status1 = port.in(UART_MCR);
  port.out(UART_LCR, 0xe0);
  let status2 = port.in(0x02);
  if (!((status2 ^ status1) & UART_MCR_LOOP)) {
    port.out(UART_LCR, 0);
    port.out(UART_MCR, status1 ^ UART_MCR_LOOP);
    port.out(UART_LCR, 0xe0);
    status2 = port.in(0x02);
    port.out(UART_LCR, 0);
    port.out(UART_MCR, status1);
    if ((status2 ^ status1) & UART_MCR_LOOP) return 'NS16550A';
  }

  // A 16750 reports a 64-byte FIFO in IIR bit 5 when FCR bit 5 is set with DLAB on.
  port.out(UART_LCR, 0);
  port.out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR7_64BYTE);
  status1 = port.in(UART_IIR) & (UART_IIR_64BYTE_FIFO | UART_IIR_FIFO_ENABLED);
  port.out(UART_FCR, UART_FCR_ENABLE_FIFO);
  port.out(UART_LCR, UART_LCR_CONF_MODE_A);
  port.out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR7_64BYTE);
  status2 = port.in(UART_IIR) & (UART_IIR_64BYTE_FIFO | UART_IIR_FIFO_ENABLED);
  port.out(UART_FCR, UART_FCR_ENABLE_FIFO);
  port.out(UART_LCR, 0);
  if (status1 === UART_IIR_FIFO_ENABLED && status2 === (UART_IIR_64BYTE_FIFO | UART_IIR_FIFO_ENABLED)) {
    return '16750';
  }

  // XScale UARTs let IER bit 6 (UUE) be written.
  const ierSave = port.in(UART_IER);
  port.out(UART_IER, ierSave & ~UART_IER_UUE);
  if (!(port.in(UART_IER) & UART_IER_UUE)) {
    port.out(UART_IER, ierSave | UART_IER_UUE);
    if (port.in(UART_IER) & UART_IER_UUE) return 'XScale';
  }
  port.out(UART_IER, ierSave);

  return sizeFifo(port) === 64 ? 'U6_16550A' : '16550A';
}

/**
 * The THRE re-assertion test of serial8250_do_startup(): true when the UART does NOT raise THRE again
 * after IER.THRI is toggled (Linux then sets UART_BUG_THRE and falls back to polling with a timer).
 */
export function hasThreBug(port: Port): boolean {
  port.out(UART_IER, UART_IER_THRI);
  const iir1 = port.in(UART_IIR);
  port.out(UART_IER, 0);
  port.out(UART_IER, UART_IER_THRI);
  const iir = port.in(UART_IIR);
  port.out(UART_IER, 0);
  return !(iir1 & UART_IIR_NO_INT) && (iir & UART_IIR_NO_INT) !== 0;
}

/**
 * One run of serial8250_handle_irq() for the receive side: if IIR shows an interrupt, read while LSR.DR
 * is set, at most 256 characters (the driver's per-interrupt budget). Returns what was read, or
 * undefined when IIR said no interrupt was pending.
 */
export function handleReceiveInterrupt(port: Port): number[] | undefined {
  const iir = port.in(UART_IIR);
  if (iir & UART_IIR_NO_INT) return undefined;
  const received: number[] = [];
  while (port.in(UART_LSR) & UART_LSR_DR && received.length < 256) received.push(port.in(UART_RX));
  return received;
}
