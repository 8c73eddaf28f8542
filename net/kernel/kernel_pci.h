// PCI configuration access for the kernel (net/pci's seams made real). Kernel-only.
//
//  * Mechanism #1 through ports 0xCF8/0xCFC (PCI 3.0 3.2.2.3.2) on every PC; the address/data
//    pair is not atomic, so each access holds an IrqSpinlock (any core may call).
//  * ECAM (PCIe Base 3.0 7.2.2) when ACPI has an MCFG (platform::info().has_mcfg, e.g. QEMU
//    -M q35): the first segment-0 allocation's buses are mapped uncached with map_mmio. Bochs's
//    i440FX and QEMU's -M pc have no MCFG and use the ports.
#pragma once

#include "kernel/lib/result.h"
#include "net/pci/pci.h"

namespace lantern::net::kernel {

struct PciAccessInfo {
  pci::PciConfigAccess* access = nullptr;
  pci::PciBusRange buses{};
  bool ecam = false;
};

// Chooses and initialises the mechanism once; later calls return the same answer.
Result<PciAccessInfo> pci_config_access();

}  // namespace lantern::net::kernel
