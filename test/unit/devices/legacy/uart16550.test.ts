import { describe, expect, it } from 'vitest';
import type { IrqLine } from '../../../../host/devices/device.js';
import { Uart16550 } from '../../../../host/devices/legacy/uart16550.js';
import {
  autoconfig,
  handleReceiveInterrupt,
  hasThreBug,
  Port,
  sizeFifo,
  UART_DLL,
  UART_DLM,
  UART_FCR,
  UART_FCR_CLEAR_RCVR,
  UART_FCR_ENABLE_FIFO,
  UART_FCR_R_TRIG_00,
  UART_FCR_R_TRIG_01,
  UART_FCR_R_TRIG_10,
  UART_FCR_R_TRIG_11,
  UART_IER,
  UART_IER_MSI,
  UART_IER_RDI,
  UART_IER_RLSI,
  UART_IER_THRI,
  UART_IIR,
  UART_IIR_MSI,
  UART_IIR_NO_INT,
  UART_IIR_RDI,
  UART_IIR_RLSI,
  UART_IIR_RX_TIMEOUT,
  UART_IIR_THRI,
  UART_LCR,
  UART_LCR_DLAB,
  UART_LCR_WLEN8,
  UART_LSR,
  UART_LSR_DR,
  UART_LSR_OE,
  UART_LSR_TEMT,
  UART_LSR_THRE,
  UART_MCR,
  UART_MCR_DTR,
  UART_MCR_LOOP,
  UART_MCR_OUT1,
  UART_MCR_OUT2,
  UART_MCR_RTS,
  UART_MSR,
  UART_MSR_CTS,
  UART_MSR_DCD,
  UART_MSR_DCTS,
  UART_MSR_DDCD,
  UART_MSR_DDSR,
  UART_MSR_DSR,
  UART_MSR_RI,
  UART_MSR_TERI,
  UART_RX,
  UART_SCR,
  UART_TX,
} from './linux_8250.js';

/** An IRQ line that remembers its level and every change the device made to it. */
class RecordingIrqLine implements IrqLine {
  level = false;
  readonly changes: boolean[] = [];
  set(level: boolean): void {
    this.level = level;
    this.changes.push(level);
  }
}

function setup() {
  const irq = new RecordingIrqLine();
  const transmitted: number[] = [];
  const guestErrors: string[] = [];
  const uart = new Uart16550({
    irq,
    onTransmit: (byte) => transmitted.push(byte),
    onGuestError: (message) => guestErrors.push(message),
  });
  return { uart, port: new Port(uart), irq, transmitted, guestErrors };
}

function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

function sequence(length: number, seed = 0): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + seed) & 0xff);
}

describe('Uart16550 power-on state', () => {
  it('reads like QEMU after reset: no interrupt, transmitter empty, modem lines up, OUT2 set', () => {
    const { port, irq } = setup();
    expect(port.in(UART_IER)).toBe(0);
    expect(port.in(UART_IIR)).toBe(UART_IIR_NO_INT);
    expect(port.in(UART_LCR)).toBe(0);
    expect(port.in(UART_MCR)).toBe(UART_MCR_OUT2);
    expect(port.in(UART_LSR)).toBe(UART_LSR_THRE | UART_LSR_TEMT);
    expect(port.in(UART_MSR)).toBe(UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS);
    expect(port.in(UART_SCR)).toBe(0);
    expect(irq.level).toBe(false);
  });
});

describe('Uart16550 as probed by Linux 8250 autoconfig', () => {
  it('is detected as a 16550A', () => {
    const { port, transmitted } = setup();
    expect(autoconfig(port)).toEqual({ type: '16550A' });
    // The loopback probes must not leak onto the console.
    expect(transmitted).toEqual([]);
  });

  it('reports a working FIFO in IIR bits 7:6 only after FCR enables it', () => {
    const { port } = setup();
    expect(port.in(UART_IIR) & 0xc0).toBe(0);
    port.out(UART_FCR, UART_FCR_ENABLE_FIFO);
    expect(port.in(UART_IIR) & 0xc0).toBe(0xc0);
    port.out(UART_FCR, 0);
    expect(port.in(UART_IIR) & 0xc0).toBe(0);
  });

  it('has a 16-byte FIFO as measured by size_fifo()', () => {
    const { port } = setup();
    expect(sizeFifo(port)).toBe(16);
  });

  it('keeps the IER interrupt bits writable and ignores the upper nibble', () => {
    const { port } = setup();
    port.out(UART_IER, 0xff);
    expect(port.in(UART_IER)).toBe(0x0f);
    port.out(UART_IER, 0x05);
    expect(port.in(UART_IER)).toBe(0x05);
  });

  it('keeps whatever the guest writes in the scratch register', () => {
    const { port } = setup();
    for (const value of [0xa5, 0x5a, 0x00, 0xff]) {
      port.out(UART_SCR, value);
      expect(port.in(UART_SCR)).toBe(value);
    }
  });

  it('re-asserts THRE when IER.THRI is toggled, so Linux does not flag UART_BUG_THRE', () => {
    const { port } = setup();
    expect(hasThreBug(port)).toBe(false);
  });
});

describe('Uart16550 divisor latch', () => {
  it('maps offsets 0 and 1 to DLL/DLM while LCR.DLAB is set, and back to data/IER when cleared', () => {
    const { port, transmitted } = setup();
    port.out(UART_IER, UART_IER_RDI);
    port.out(UART_LCR, UART_LCR_DLAB | UART_LCR_WLEN8);
    port.out(UART_DLL, 0x34);
    port.out(UART_DLM, 0x12);
    expect(port.in(UART_DLL)).toBe(0x34);
    expect(port.in(UART_DLM)).toBe(0x12);
    expect(transmitted).toEqual([]);

    port.out(UART_LCR, UART_LCR_WLEN8);
    expect(port.in(UART_LCR)).toBe(UART_LCR_WLEN8);
    expect(port.in(UART_IER)).toBe(UART_IER_RDI);
    port.out(UART_TX, 0x41);
    expect(transmitted).toEqual([0x41]);

    port.out(UART_LCR, UART_LCR_DLAB | UART_LCR_WLEN8);
    expect(port.in(UART_DLL) | (port.in(UART_DLM) << 8)).toBe(0x1234);
  });
});

describe('Uart16550 transmit', () => {
  it('hands each byte written to THR to onTransmit, in order, and stays ready to send', () => {
    const { port, transmitted } = setup();
    for (const byte of new TextEncoder().encode('Hello\n')) {
      expect(port.in(UART_LSR) & UART_LSR_THRE).toBe(UART_LSR_THRE); // earlycon polls this before each byte
      port.out(UART_TX, byte);
      expect(port.in(UART_LSR) & (UART_LSR_THRE | UART_LSR_TEMT)).toBe(UART_LSR_THRE | UART_LSR_TEMT);
    }
    expect(new TextDecoder().decode(Uint8Array.from(transmitted))).toBe('Hello\n');
  });

  it('treats wider accesses as byte accesses to the register at that offset', () => {
    const { uart, transmitted } = setup();
    uart.write(UART_TX, 4, 0xdead_be42);
    uart.write(UART_SCR, 2, 0x1277);
    uart.write64(UART_LCR, 0x1122_3344_5566_7703n);
    expect(transmitted).toEqual([0x42]);
    expect(uart.read(UART_SCR, 4)).toBe(0x77);
    expect(uart.read(UART_LCR, 2)).toBe(0x03);
    expect(uart.read64(UART_LSR)).toBe(BigInt(UART_LSR_THRE | UART_LSR_TEMT));
  });

  it('reports accesses beyond the eight registers as guest errors and reads them as 0', () => {
    const { uart, transmitted, guestErrors } = setup();
    uart.write(0x08, 1, 0x41);
    expect(uart.read(0xfc, 4)).toBe(0);
    expect(transmitted).toEqual([]);
    expect(guestErrors).toHaveLength(2);
    expect(guestErrors[0]).toContain('0x8');
  });
});

describe('Uart16550 THRE interrupt', () => {
  it('becomes pending when IER.THRI is enabled with THR empty', () => {
    const { port, irq } = setup();
    port.out(UART_IER, UART_IER_THRI);
    expect(irq.level).toBe(true);
    expect(port.in(UART_IIR)).toBe(UART_IIR_THRI);
  });

  it('is acknowledged by reading IIR while it is the reported source', () => {
    const { port, irq } = setup();
    port.out(UART_FCR, UART_FCR_ENABLE_FIFO);
    port.out(UART_IER, UART_IER_THRI);
    expect(port.in(UART_IIR)).toBe(0xc0 | UART_IIR_THRI);
    expect(irq.level).toBe(false);
    expect(port.in(UART_IIR)).toBe(0xc0 | UART_IIR_NO_INT);
    // Re-writing IER with THRI still set is not a new enable and must not re-raise it.
    port.out(UART_IER, UART_IER_THRI | UART_IER_RDI);
    expect(irq.level).toBe(false);
  });

  it('is not acknowledged by reading IIR while a higher-priority source is reported', () => {
    const { uart, port } = setup();
    port.out(UART_IER, UART_IER_THRI | UART_IER_RDI);
    uart.receive(bytes(0x61));
    expect(port.in(UART_IIR)).toBe(UART_IIR_RDI);
    port.in(UART_RX);
    expect(port.in(UART_IIR)).toBe(UART_IIR_THRI);
    expect(port.in(UART_IIR)).toBe(UART_IIR_NO_INT);
  });

  it('is pending again after every THR write, because the byte leaves at once', () => {
    const { port, irq, transmitted } = setup();
    port.out(UART_IER, UART_IER_THRI);
    port.in(UART_IIR);
    expect(irq.level).toBe(false);
    port.out(UART_TX, 0x21);
    expect(transmitted).toEqual([0x21]);
    expect(irq.level).toBe(true);
    expect(port.in(UART_IIR)).toBe(UART_IIR_THRI);
  });

  it('drops the line when the driver stops transmitting by clearing IER.THRI', () => {
    const { port, irq } = setup();
    port.out(UART_IER, UART_IER_THRI);
    expect(irq.level).toBe(true);
    port.out(UART_IER, 0);
    expect(irq.level).toBe(false);
    expect(port.in(UART_IIR)).toBe(UART_IIR_NO_INT);
  });

  it('only drives the IRQ line on changes of level', () => {
    const { port, irq } = setup();
    port.out(UART_IER, UART_IER_THRI);
    port.out(UART_TX, 1); // pending stays pending across the write
    port.out(UART_TX, 2);
    port.in(UART_IIR);
    expect(irq.changes).toEqual([true, false]);
  });
});

describe('Uart16550 receive', () => {
  it('without FIFO holds one byte in RBR and raises "received data" until every byte is read', () => {
    const { uart, port, irq } = setup();
    port.out(UART_IER, UART_IER_RDI);
    uart.receive(bytes(0x61, 0x62, 0x63));
    expect(irq.level).toBe(true);
    expect(port.in(UART_IIR)).toBe(UART_IIR_RDI);
    const read: number[] = [];
    while (port.in(UART_LSR) & UART_LSR_DR) read.push(port.in(UART_RX));
    expect(read).toEqual([0x61, 0x62, 0x63]);
    expect(irq.level).toBe(false);
    expect(port.in(UART_IIR)).toBe(UART_IIR_NO_INT);
  });

  it('with FIFO reports a character timeout below the trigger level and data available at it', () => {
    const { uart, port, irq } = setup();
    port.out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_R_TRIG_10); // 8 bytes, as Linux sets for a 16550A
    port.out(UART_IER, UART_IER_RDI);
    uart.receive(sequence(5));
    expect(irq.level).toBe(true);
    expect(port.in(UART_IIR)).toBe(0xc0 | UART_IIR_RX_TIMEOUT);
    uart.receive(sequence(3, 5));
    expect(port.in(UART_IIR)).toBe(0xc0 | UART_IIR_RDI);
    port.in(UART_RX);
    expect(port.in(UART_IIR)).toBe(0xc0 | UART_IIR_RX_TIMEOUT);
  });

  it.each([
    [UART_FCR_R_TRIG_00, 1],
    [UART_FCR_R_TRIG_01, 4],
    [UART_FCR_R_TRIG_10, 8],
    [UART_FCR_R_TRIG_11, 14],
  ])('honours trigger-level bits 0x%s as %i bytes', (triggerBits, level) => {
    const { uart, port } = setup();
    port.out(UART_FCR, UART_FCR_ENABLE_FIFO | triggerBits);
    port.out(UART_IER, UART_IER_RDI);
    if (level > 1) {
      uart.receive(sequence(level - 1));
      expect(port.in(UART_IIR) & 0x0f).toBe(UART_IIR_RX_TIMEOUT);
    }
    uart.receive(sequence(1));
    expect(port.in(UART_IIR) & 0x0f).toBe(UART_IIR_RDI);
  });

  it('raises no receive interrupt while IER.RDI is clear, but still shows LSR.DR', () => {
    const { uart, port, irq } = setup();
    uart.receive(bytes(0x0d));
    expect(irq.level).toBe(false);
    expect(port.in(UART_LSR) & UART_LSR_DR).toBe(UART_LSR_DR);
    port.out(UART_IER, UART_IER_RDI);
    expect(irq.level).toBe(true);
  });

  it('discards the FIFO on FCR receive reset and refills it from queued host input', () => {
    const { uart, port } = setup();
    port.out(UART_FCR, UART_FCR_ENABLE_FIFO);
    uart.receive(sequence(20));
    expect(uart.unreadInputBytes).toBe(20);
    port.out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR);
    expect(uart.unreadInputBytes).toBe(4);
    const read: number[] = [];
    while (port.in(UART_LSR) & UART_LSR_DR) read.push(port.in(UART_RX));
    expect(read).toEqual(Array.from(sequence(20).subarray(16)));
  });

  it('copies the bytes it is given, so the caller may reuse its buffer', () => {
    const { uart, port } = setup();
    const buffer = bytes(1, 2);
    uart.receive(buffer);
    buffer.fill(9);
    expect([port.in(UART_RX), port.in(UART_RX)]).toEqual([1, 2]);
  });

  it.each([
    ['with the FIFO at trigger 8', UART_FCR_ENABLE_FIFO | UART_FCR_R_TRIG_10],
    ['with the FIFO at trigger 14', UART_FCR_ENABLE_FIFO | UART_FCR_R_TRIG_11],
    ['without the FIFO', 0],
  ])('loses no byte of a 1000-byte burst read by the interrupt handler %s', (_label, fcr) => {
    const { uart, port, irq } = setup();
    port.out(UART_FCR, fcr);
    port.out(UART_IER, UART_IER_RDI | UART_IER_RLSI);
    const burst = sequence(1000, 3);
    uart.receive(burst);
    const received: number[] = [];
    let interrupts = 0;
    while (irq.level && interrupts < 100) {
      interrupts++;
      const chunk = handleReceiveInterrupt(port);
      expect(chunk).toBeDefined();
      received.push(...chunk!);
    }
    expect(received).toEqual(Array.from(burst));
    expect(interrupts).toBe(4); // the handler takes at most 256 bytes per interrupt
    expect(port.in(UART_LSR) & (UART_LSR_DR | UART_LSR_OE)).toBe(0);
    expect(uart.unreadInputBytes).toBe(0);
  });

  it('loses no byte when input keeps arriving while the guest is reading', () => {
    const { uart, port, irq } = setup();
    port.out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_R_TRIG_10);
    port.out(UART_IER, UART_IER_RDI);
    const sent: number[] = [];
    const received: number[] = [];
    for (let round = 0; round < 50; round++) {
      const chunk = sequence(1 + ((round * 37) % 60), round);
      sent.push(...chunk);
      uart.receive(chunk);
      // Read a few bytes only, leaving the rest for later rounds.
      for (let i = 0; i < 11 && port.in(UART_LSR) & UART_LSR_DR; i++) received.push(port.in(UART_RX));
    }
    while (irq.level) received.push(...(handleReceiveInterrupt(port) ?? []));
    expect(received).toEqual(sent);
  });
});

describe('Uart16550 loopback', () => {
  it('wires the modem outputs to the inputs as the 8250 loop test expects', () => {
    const { port } = setup();
    port.out(UART_MCR, UART_MCR_LOOP | UART_MCR_OUT2 | UART_MCR_RTS);
    expect(port.in(UART_MSR) & 0xf0).toBe(UART_MSR_DCD | UART_MSR_CTS);
    port.out(UART_MCR, UART_MCR_LOOP | UART_MCR_DTR | UART_MCR_OUT1);
    expect(port.in(UART_MSR) & 0xf0).toBe(UART_MSR_DSR | UART_MSR_RI);
    port.out(UART_MCR, UART_MCR_OUT2);
    expect(port.in(UART_MSR) & 0xf0).toBe(UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS);
  });

  it('returns transmitted bytes to the receiver instead of the console', () => {
    const { port, transmitted } = setup();
    port.out(UART_FCR, UART_FCR_ENABLE_FIFO);
    port.out(UART_MCR, UART_MCR_LOOP);
    port.out(UART_TX, 0x55);
    port.out(UART_TX, 0xaa);
    expect(transmitted).toEqual([]);
    expect(port.in(UART_LSR) & UART_LSR_DR).toBe(UART_LSR_DR);
    expect([port.in(UART_RX), port.in(UART_RX)]).toEqual([0x55, 0xaa]);
    expect(port.in(UART_LSR) & UART_LSR_DR).toBe(0);
  });

  it('signals overrun with a line-status interrupt when the FIFO overflows, keeping the first 16 bytes', () => {
    const { port, irq } = setup();
    port.out(UART_FCR, UART_FCR_ENABLE_FIFO);
    port.out(UART_MCR, UART_MCR_LOOP);
    port.out(UART_IER, UART_IER_RLSI);
    for (let byte = 0; byte < 17; byte++) port.out(UART_TX, byte);
    expect(irq.level).toBe(true);
    expect(port.in(UART_IIR)).toBe(0xc0 | UART_IIR_RLSI);
    expect(port.in(UART_LSR) & (UART_LSR_OE | UART_LSR_DR)).toBe(UART_LSR_OE | UART_LSR_DR);
    // Reading LSR clears the overrun and with it the interrupt.
    expect(irq.level).toBe(false);
    expect(port.in(UART_LSR) & UART_LSR_OE).toBe(0);
    const read: number[] = [];
    while (port.in(UART_LSR) & UART_LSR_DR) read.push(port.in(UART_RX));
    expect(read).toEqual(Array.from({ length: 16 }, (_, i) => i));
  });

  it('without FIFO overwrites the unread byte and flags overrun', () => {
    const { port } = setup();
    port.out(UART_MCR, UART_MCR_LOOP);
    port.out(UART_TX, 1);
    port.out(UART_TX, 2);
    expect(port.in(UART_LSR) & UART_LSR_OE).toBe(UART_LSR_OE);
    expect(port.in(UART_RX)).toBe(2);
    expect(port.in(UART_LSR) & UART_LSR_DR).toBe(0);
  });

  it('keeps host input queued while in loopback and delivers it afterwards', () => {
    const { uart, port } = setup();
    port.out(UART_FCR, UART_FCR_ENABLE_FIFO);
    port.out(UART_MCR, UART_MCR_LOOP);
    uart.receive(bytes(0x68, 0x69));
    expect(port.in(UART_LSR) & UART_LSR_DR).toBe(0);
    port.out(UART_MCR, UART_MCR_OUT2);
    expect([port.in(UART_RX), port.in(UART_RX)]).toEqual([0x68, 0x69]);
  });

  it('measures 16 bytes in size_fifo() even with host input queued, and takes no input while looped back', () => {
    const { uart, port } = setup();
    uart.receive(sequence(40));
    expect(sizeFifo(port)).toBe(16);
    // What the probe costs, as on hardware: enabling the FIFO flushed the byte in the holding register,
    // and the 16 bytes that then filled the FIFO were read back by the probe. The rest, which arrived
    // while the line was looped back, is delivered afterwards.
    const read: number[] = [];
    while (port.in(UART_LSR) & UART_LSR_DR) read.push(port.in(UART_RX));
    expect(read).toEqual(Array.from(sequence(40).subarray(17)));
  });

  it('sets MSR delta bits on modem-line changes and raises the modem-status interrupt for them', () => {
    const { port, irq } = setup();
    port.out(UART_MCR, UART_MCR_LOOP | UART_MCR_OUT1);
    port.in(UART_MSR); // clear the deltas from entering loopback
    port.out(UART_IER, UART_IER_MSI);
    expect(irq.level).toBe(false);

    port.out(UART_MCR, UART_MCR_LOOP | UART_MCR_RTS | UART_MCR_DTR | UART_MCR_OUT2);
    expect(irq.level).toBe(true);
    expect(port.in(UART_IIR)).toBe(UART_IIR_MSI);
    const msr = port.in(UART_MSR);
    expect(msr & 0x0f).toBe(UART_MSR_DCTS | UART_MSR_DDSR | UART_MSR_DDCD | UART_MSR_TERI);
    expect(irq.level).toBe(false);
    expect(port.in(UART_MSR) & 0x0f).toBe(0);

    // RI reports only its trailing edge.
    port.out(UART_MCR, UART_MCR_LOOP | UART_MCR_OUT1);
    expect(port.in(UART_MSR) & UART_MSR_TERI).toBe(0);
  });
});

describe('Uart16550 interrupt priority', () => {
  it('reports line status, then received data, then THRE, then modem status', () => {
    const { port, irq } = setup();
    port.out(UART_FCR, UART_FCR_ENABLE_FIFO);
    port.out(UART_MCR, UART_MCR_LOOP);
    for (let byte = 0; byte < 17; byte++) port.out(UART_TX, byte); // overrun and data
    port.out(UART_MCR, UART_MCR_LOOP | UART_MCR_RTS); // modem-status delta
    port.out(UART_IER, UART_IER_RLSI | UART_IER_RDI | UART_IER_THRI | UART_IER_MSI);

    expect(port.in(UART_IIR) & 0x0f).toBe(UART_IIR_RLSI);
    port.in(UART_LSR);
    expect(port.in(UART_IIR) & 0x0f).toBe(UART_IIR_RDI);
    while (port.in(UART_LSR) & UART_LSR_DR) port.in(UART_RX);
    expect(port.in(UART_IIR) & 0x0f).toBe(UART_IIR_THRI); // this read acknowledges THRE
    expect(port.in(UART_IIR) & 0x0f).toBe(UART_IIR_MSI);
    port.in(UART_MSR);
    expect(port.in(UART_IIR) & 0x0f).toBe(UART_IIR_NO_INT);
    expect(irq.level).toBe(false);
  });
});

describe('Uart16550 reset', () => {
  it('returns the registers to power-on state and lowers the line, keeping unread host input', () => {
    const { uart, port, irq } = setup();
    port.out(UART_FCR, UART_FCR_ENABLE_FIFO);
    port.out(UART_LCR, UART_LCR_WLEN8);
    port.out(UART_SCR, 0x99);
    port.out(UART_IER, UART_IER_THRI | UART_IER_RDI);
    uart.receive(sequence(30));
    port.in(UART_RX);
    expect(irq.level).toBe(true);

    uart.reset();
    expect(irq.level).toBe(false);
    expect(port.in(UART_IER)).toBe(0);
    expect(port.in(UART_IIR)).toBe(UART_IIR_NO_INT);
    expect(port.in(UART_LCR)).toBe(0);
    expect(port.in(UART_SCR)).toBe(0);
    expect(port.in(UART_MCR)).toBe(UART_MCR_OUT2);
    // One byte was read and the FIFO refilled behind it; the 16 then in the FIFO go with it, the 13 still
    // queued on the host side remain.
    expect(uart.unreadInputBytes).toBe(13);
    const read: number[] = [];
    while (port.in(UART_LSR) & UART_LSR_DR) read.push(port.in(UART_RX));
    expect(read).toEqual(Array.from(sequence(30).subarray(17)));
  });
});
