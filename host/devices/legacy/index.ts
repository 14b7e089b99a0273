// The virt board's legacy (non-virtio) MMIO devices.

export { Uart16550, UART_FIFO_DEPTH, UART_WINDOW_SIZE, type Uart16550Options } from './uart16550.js';
export {
  GoldfishRtc,
  GoldfishRtcReg,
  GOLDFISH_RTC_WINDOW_SIZE,
  monotonicWallClock,
  type GoldfishRtcOptions,
  type NanosecondClock,
} from './goldfish_rtc.js';
export {
  SifiveTest,
  SIFIVE_TEST_WINDOW_SIZE,
  FINISHER_FAIL,
  FINISHER_PASS,
  FINISHER_RESET,
  type SifiveTestOptions,
  type SystemEvent,
} from './sifive_test.js';
export { type GuestErrorReporter } from './guest_error.js';
