// The virt board's PCIe host: bus 0 behind the ECAM, MMIO and PIO windows, and its host bridge.
export { PciRootBus, PciSlotError, PCI_SLOTS, PCI_INTX_LINES, PCIE_ECAM_WINDOW_SIZE, type PciFunction, type PciInterruptPin, type PciRootBusOptions, type PciHostWindows } from './bus.js';
export {
  PciConfigSpace, PciConfigError, PciConfig, PciCommand, PciStatus, PCI_CONFIG_SIZE, PCI_BAR_COUNT,
  type PciBarKind, type PciBarSpec, type PciIdentity,
} from './config_space.js';
export { PciHostBridge } from './host_bridge.js';
