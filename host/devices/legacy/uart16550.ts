// The virt board's NS16550A UART (device tree: compatible "ns16550a", no reg-shift, so registers are one
// byte apart). It is modelled on the register behaviour of QEMU's hw/char/serial.c, which is what Linux's
// 8250 driver, OpenSBI and earlycon are used to on this board.
//
// Choices that differ from silicon, and why:
// - Transmission is instantaneous: a byte written to THR reaches `onTransmit` during the write, so LSR
//   always shows THRE|TEMT and the THRE interrupt is due again as soon as the write returns. The console
//   backend batches output, so there is no reason to pace the guest at a baud rate.
// - Character timeout is not timed. With the FIFO on, received data below the trigger level is reported
//   as a character timeout (IIR 0xC) at once instead of after four character times; data at or above the
//   trigger level is reported as "received data available" (IIR 0x4). Either way the guest learns of every
//   byte without the device needing a timer.
// - Host input never overruns. Bytes handed to `receive()` wait in an unbounded host-side queue and move
//   into the 16-byte FIFO (or the single holding register when the FIFO is off) as the guest reads them.
//   Only the guest itself can lose received data: by resetting the FIFO, or by overflowing it in loopback.
// - In loopback mode the receiver hears only the transmitter, as on a real 16550: host input stays queued
//   until loopback ends (Linux's FIFO-size probe runs in loopback and must not eat console input).
// - The modem inputs read DCD|DSR|CTS, as QEMU reports for a connected character device. In loopback
//   they follow MCR, and, as on a real 16550 but not in QEMU, each change sets the MSR delta bits, which
//   can raise the modem-status interrupt (the only way the guest can ever see one here). Linux masks the
//   delta bits in its loopback probe and clears them by reading MSR before enabling interrupts.
// - Every access is a byte access to the register at its offset: a 2-, 4- or 8-byte load returns that
//   register zero-extended, and a wider store writes its low byte to it (QEMU accepts 1..8-byte accesses
//   and does the same). Offsets 8 and up in the 256-byte window hold no register: they read 0, ignore
//   writes, and are reported as guest errors.

import { type AccessSize, type IrqLine, type MmioDevice, NullIrqLine } from '../device.js';
import { ByteQueue } from './byte_queue.js';
import { type GuestErrorReporter, ignoreGuestErrors } from './guest_error.js';

/** Depth of the receive FIFO of a 16550A. */
export const UART_FIFO_DEPTH = 16;

/** Size of the UART's MMIO window on the virt board. */
export const UART_WINDOW_SIZE = 0x100;

const REGISTER_COUNT = 8;

const Reg = {
  /** RBR on read, THR on write; DLL while LCR.DLAB is set. */
  Data: 0,
  /** IER; DLM while LCR.DLAB is set. */
  InterruptEnable: 1,
  /** IIR on read, FCR on write. */
  InterruptIdFifoControl: 2,
  LineControl: 3,
  ModemControl: 4,
  LineStatus: 5,
  ModemStatus: 6,
  Scratch: 7,
} as const;
type Reg = (typeof Reg)[keyof typeof Reg];

const IER_RECEIVED_DATA = 0x01;
const IER_TRANSMIT_EMPTY = 0x02;
const IER_RECEIVER_LINE_STATUS = 0x04;
const IER_MODEM_STATUS = 0x08;
const IER_WRITABLE = 0x0f;

const IIR_NO_INTERRUPT = 0x01;
const IIR_MODEM_STATUS = 0x00;
const IIR_TRANSMIT_EMPTY = 0x02;
const IIR_RECEIVED_DATA = 0x04;
const IIR_RECEIVER_LINE_STATUS = 0x06;
const IIR_CHARACTER_TIMEOUT = 0x0c;
/** IIR bits 7:6 both set is how a 16550A (working FIFO) tells itself apart from an 8250/16450/16550. */
const IIR_FIFOS_ENABLED = 0xc0;

const FCR_ENABLE = 0x01;
const FCR_CLEAR_RECEIVE = 0x02;
const FCR_CLEAR_TRANSMIT = 0x04;
/** The FCR bits that stick: enable, DMA mode and the trigger level. */
const FCR_RETAINED = 0xc9;

const LCR_DLAB = 0x80;

const MCR_DTR = 0x01;
const MCR_RTS = 0x02;
const MCR_OUT1 = 0x04;
const MCR_OUT2 = 0x08;
const MCR_LOOPBACK = 0x10;
const MCR_WRITABLE = 0x1f;

const LSR_DATA_READY = 0x01;
const LSR_OVERRUN = 0x02;
const LSR_TRANSMIT_EMPTY = 0x20;
const LSR_TRANSMITTER_IDLE = 0x40;

const MSR_DELTA_CTS = 0x01;
const MSR_DELTA_DSR = 0x02;
const MSR_TRAILING_EDGE_RI = 0x04;
const MSR_DELTA_DCD = 0x08;
const MSR_CTS = 0x10;
const MSR_DSR = 0x20;
const MSR_RI = 0x40;
const MSR_DCD = 0x80;

/** Receive trigger level for each value of FCR bits 7:6. */
const TRIGGER_LEVELS = [1, 4, 8, 14] as const;

/** QEMU's reset divisor: 9600 baud from the 1.8432 MHz clock QEMU assumes for a PC UART. */
const RESET_DIVISOR = 0x0c;

export interface Uart16550Options {
  /** Name used in logs and guest-error reports; default "uart0". */
  name?: string;
  /** The UART's interrupt line (PLIC source 10 on virt). Default: not connected. */
  irq?: IrqLine;
  /** Receives each byte the guest transmits, in order. Can also be set later through `onTransmit`. */
  onTransmit?: (byte: number) => void;
  onGuestError?: GuestErrorReporter;
}

export class Uart16550 implements MmioDevice {
  readonly name: string;
  readonly size = UART_WINDOW_SIZE;
  /** Called synchronously, once per byte, while the guest's THR write is being handled. */
  onTransmit: (byte: number) => void;

  private readonly irq: IrqLine;
  private readonly reportGuestError: GuestErrorReporter;
  private irqLevel = false;

  private interruptEnable = 0;
  private lineControl = 0;
  private modemControl = MCR_OUT2;
  private fifoControl = 0;
  private scratch = 0;
  private divisor = RESET_DIVISOR;
  /** LSR.OE, latched until LSR is read. */
  private overrun = false;
  private modemStatusDeltas = 0;
  /**
   * The THRE interrupt condition. It is not simply LSR.THRE: reading IIR while it is the reported source
   * acknowledges it, and it comes back only when THR empties again or IER.THRI is switched on.
   */
  private transmitEmptyPending = false;

  /** The receive FIFO as a ring; with the FIFO off only one slot (the holding register) is used. */
  private readonly receiveFifo = new Uint8Array(UART_FIFO_DEPTH);
  private receiveHead = 0;
  private receiveCount = 0;
  /** Host input the FIFO has no room for yet. */
  private readonly hostInput = new ByteQueue();

  constructor(options: Uart16550Options = {}) {
    this.name = options.name ?? 'uart0';
    this.irq = options.irq ?? new NullIrqLine();
    this.onTransmit = options.onTransmit ?? (() => {});
    this.reportGuestError = options.onGuestError ?? ignoreGuestErrors;
  }

  /** Queues bytes from the outside world (the console) for the guest to receive. Nothing is dropped. */
  receive(bytes: Uint8Array): void {
    this.hostInput.push(bytes);
    this.refillReceiveFifo();
    this.updateIrq();
  }

  /** Received bytes the guest has not read yet: those in the FIFO plus those queued behind it. */
  get unreadInputBytes(): number {
    return this.receiveCount + this.hostInput.length;
  }

  read(offset: number, size: AccessSize): number {
    if (!this.decodes(offset, size, 'read')) return 0;
    return this.readRegister(offset as Reg);
  }

  write(offset: number, size: AccessSize, value: number): void {
    if (!this.decodes(offset, size, 'write')) return;
    this.writeRegister(offset as Reg, value & 0xff);
  }

  read64(offset: number): bigint {
    if (!this.decodes(offset, 8, 'read')) return 0n;
    return BigInt(this.readRegister(offset as Reg));
  }

  write64(offset: number, value: bigint): void {
    if (!this.decodes(offset, 8, 'write')) return;
    this.writeRegister(offset as Reg, Number(value & 0xffn));
  }

  /** Power-on state. Queued host input survives: it is still waiting on the wire. */
  reset(): void {
    this.interruptEnable = 0;
    this.lineControl = 0;
    this.modemControl = MCR_OUT2;
    this.fifoControl = 0;
    this.scratch = 0;
    this.divisor = RESET_DIVISOR;
    this.overrun = false;
    this.modemStatusDeltas = 0;
    this.transmitEmptyPending = false;
    this.clearReceiveFifo();
    this.refillReceiveFifo();
    this.irqLevel = false;
    this.irq.set(false);
  }

  private decodes(offset: number, size: number, access: 'read' | 'write'): boolean {
    if (offset >= 0 && offset < REGISTER_COUNT) return true;
    this.reportGuestError(`${this.name}: ${size}-byte ${access} at offset 0x${offset.toString(16)}, which holds no register`);
    return false;
  }

  private get divisorLatchSelected(): boolean {
    return (this.lineControl & LCR_DLAB) !== 0;
  }

  private get fifoEnabled(): boolean {
    return (this.fifoControl & FCR_ENABLE) !== 0;
  }

  private get loopback(): boolean {
    return (this.modemControl & MCR_LOOPBACK) !== 0;
  }

  private readRegister(reg: Reg): number {
    switch (reg) {
      case Reg.Data:
        return this.divisorLatchSelected ? this.divisor & 0xff : this.readReceiveBuffer();
      case Reg.InterruptEnable:
        return this.divisorLatchSelected ? this.divisor >> 8 : this.interruptEnable;
      case Reg.InterruptIdFifoControl:
        return this.readInterruptId();
      case Reg.LineControl:
        return this.lineControl;
      case Reg.ModemControl:
        return this.modemControl;
      case Reg.LineStatus:
        return this.readLineStatus();
      case Reg.ModemStatus:
        return this.readModemStatus();
      case Reg.Scratch:
        return this.scratch;
    }
  }

  private writeRegister(reg: Reg, byte: number): void {
    switch (reg) {
      case Reg.Data:
        if (this.divisorLatchSelected) this.divisor = (this.divisor & 0xff00) | byte;
        else this.transmit(byte);
        return;
      case Reg.InterruptEnable:
        if (this.divisorLatchSelected) this.divisor = (this.divisor & 0x00ff) | (byte << 8);
        else this.writeInterruptEnable(byte);
        return;
      case Reg.InterruptIdFifoControl:
        this.writeFifoControl(byte);
        return;
      case Reg.LineControl:
        this.lineControl = byte;
        return;
      case Reg.ModemControl:
        this.writeModemControl(byte);
        return;
      case Reg.LineStatus:
      case Reg.ModemStatus:
        // Read-only status registers; QEMU ignores writes to them as well.
        return;
      case Reg.Scratch:
        this.scratch = byte;
        return;
    }
  }

  private transmit(byte: number): void {
    if (this.loopback) this.loopbackReceive(byte);
    else this.onTransmit(byte);
    // The byte has left at once, so THR is empty again and a THRE interrupt is due (if enabled).
    this.transmitEmptyPending = true;
    this.updateIrq();
  }

  private loopbackReceive(byte: number): void {
    const capacity = this.fifoEnabled ? UART_FIFO_DEPTH : 1;
    if (this.receiveCount < capacity) {
      this.pushReceived(byte);
    } else if (this.fifoEnabled) {
      // A full FIFO keeps its contents; the new byte is lost.
      this.overrun = true;
    } else {
      // Without a FIFO the new byte overwrites the unread one in the holding register.
      this.overrun = true;
      this.receiveFifo[this.receiveHead] = byte;
    }
  }

  private writeInterruptEnable(byte: number): void {
    const enabled = byte & IER_WRITABLE;
    const changed = this.interruptEnable ^ enabled;
    this.interruptEnable = enabled;
    // Switching THRI on while THR is empty (always, here) makes the THRE interrupt pending even if it was
    // acknowledged before; Linux's startup test for UART_BUG_THRE depends on this re-assertion.
    if (changed & IER_TRANSMIT_EMPTY) this.transmitEmptyPending = (enabled & IER_TRANSMIT_EMPTY) !== 0;
    this.updateIrq();
  }

  private writeFifoControl(byte: number): void {
    let control = byte;
    // Turning the FIFOs on or off empties them.
    if ((control ^ this.fifoControl) & FCR_ENABLE) control |= FCR_CLEAR_RECEIVE | FCR_CLEAR_TRANSMIT;
    if (control & FCR_CLEAR_RECEIVE) this.clearReceiveFifo();
    if (control & FCR_CLEAR_TRANSMIT) this.transmitEmptyPending = true;
    this.fifoControl = control & FCR_RETAINED;
    this.refillReceiveFifo();
    this.updateIrq();
  }

  private writeModemControl(byte: number): void {
    const inputsBefore = this.modemInputs();
    const wasLoopback = this.loopback;
    this.modemControl = byte & MCR_WRITABLE;
    this.recordModemInputChange(inputsBefore, this.modemInputs());
    if (wasLoopback && !this.loopback) this.refillReceiveFifo();
    this.updateIrq();
  }

  private readReceiveBuffer(): number {
    if (this.receiveCount === 0) return 0;
    const byte = this.receiveFifo[this.receiveHead]!;
    this.receiveHead = (this.receiveHead + 1) % UART_FIFO_DEPTH;
    this.receiveCount--;
    this.refillReceiveFifo();
    this.updateIrq();
    return byte;
  }

  private readInterruptId(): number {
    const source = this.pendingInterrupt();
    if (source === IIR_TRANSMIT_EMPTY) {
      // Reading IIR while THRE is the reported source acknowledges it.
      this.transmitEmptyPending = false;
      this.updateIrq();
    }
    return source | (this.fifoEnabled ? IIR_FIFOS_ENABLED : 0);
  }

  private readLineStatus(): number {
    let status = LSR_TRANSMIT_EMPTY | LSR_TRANSMITTER_IDLE;
    if (this.receiveCount > 0) status |= LSR_DATA_READY;
    if (this.overrun) {
      status |= LSR_OVERRUN;
      this.overrun = false;
      this.updateIrq();
    }
    return status;
  }

  private readModemStatus(): number {
    const status = this.modemInputs() | this.modemStatusDeltas;
    if (this.modemStatusDeltas !== 0) {
      this.modemStatusDeltas = 0;
      this.updateIrq();
    }
    return status;
  }

  /** MSR bits 7:4: the modem input lines, which in loopback are wired to the MCR outputs. */
  private modemInputs(): number {
    if (!this.loopback) return MSR_DCD | MSR_DSR | MSR_CTS;
    const mcr = this.modemControl;
    return (
      (mcr & MCR_DTR ? MSR_DSR : 0) |
      (mcr & MCR_RTS ? MSR_CTS : 0) |
      (mcr & MCR_OUT1 ? MSR_RI : 0) |
      (mcr & MCR_OUT2 ? MSR_DCD : 0)
    );
  }

  private recordModemInputChange(before: number, after: number): void {
    const changed = before ^ after;
    if (changed & MSR_CTS) this.modemStatusDeltas |= MSR_DELTA_CTS;
    if (changed & MSR_DSR) this.modemStatusDeltas |= MSR_DELTA_DSR;
    if (changed & MSR_DCD) this.modemStatusDeltas |= MSR_DELTA_DCD;
    // Ring indicator reports only its trailing (1 to 0) edge.
    if (before & MSR_RI && !(after & MSR_RI)) this.modemStatusDeltas |= MSR_TRAILING_EDGE_RI;
  }

  /** The IIR interrupt ID of the highest-priority pending, enabled condition. */
  private pendingInterrupt(): number {
    const enabled = this.interruptEnable;
    if (enabled & IER_RECEIVER_LINE_STATUS && this.overrun) return IIR_RECEIVER_LINE_STATUS;
    if (enabled & IER_RECEIVED_DATA && this.receiveCount > 0) {
      const belowTrigger = this.fifoEnabled && this.receiveCount < this.triggerLevel();
      return belowTrigger ? IIR_CHARACTER_TIMEOUT : IIR_RECEIVED_DATA;
    }
    if (enabled & IER_TRANSMIT_EMPTY && this.transmitEmptyPending) return IIR_TRANSMIT_EMPTY;
    if (enabled & IER_MODEM_STATUS && this.modemStatusDeltas !== 0) return IIR_MODEM_STATUS;
    return IIR_NO_INTERRUPT;
  }

  private triggerLevel(): number {
    return TRIGGER_LEVELS[this.fifoControl >> 6]!;
  }

  private updateIrq(): void {
    const level = this.pendingInterrupt() !== IIR_NO_INTERRUPT;
    if (level === this.irqLevel) return;
    this.irqLevel = level;
    this.irq.set(level);
  }

  private pushReceived(byte: number): void {
    this.receiveFifo[(this.receiveHead + this.receiveCount) % UART_FIFO_DEPTH] = byte;
    this.receiveCount++;
  }

  private clearReceiveFifo(): void {
    this.receiveHead = 0;
    this.receiveCount = 0;
  }

  /** Moves queued host input into the FIFO as far as it has room (none in loopback: the line is cut). */
  private refillReceiveFifo(): void {
    if (this.loopback) return;
    const capacity = this.fifoEnabled ? UART_FIFO_DEPTH : 1;
    while (this.receiveCount < capacity && this.hostInput.length > 0) {
      this.pushReceived(this.hostInput.shift());
    }
  }
}
