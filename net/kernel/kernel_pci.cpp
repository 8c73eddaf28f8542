#include "net/kernel/kernel_pci.h"

#include <optional>

#include "kernel/arch/x86_64/cpu.h"
#include "kernel/core/log.h"
#include "kernel/core/platform.h"
#include "kernel/core/spinlock.h"
#include "net/kernel/kernel_mmio.h"
#include "net/pci/config_mechanisms.h"

namespace lantern::net::kernel {
namespace {

class X86PortIo final : public pci::PortIo {
 public:
  uint32_t in32(uint16_t port) override { return cpu::inl(port); }
  void out32(uint16_t port, uint32_t value) override { cpu::outl(port, value); }
};

// Serialises whole accesses of an inner mechanism (the 0xCF8 write and the 0xCFC access must
// not interleave with another core's).
class LockedConfigAccess final : public pci::PciConfigAccess {
 public:
  explicit LockedConfigAccess(pci::PciConfigAccess& inner) : inner_(inner) {}
  uint32_t read32(pci::PciAddress address, uint16_t offset) override {
    IrqSpinlockGuard guard(lock_);
    return inner_.read32(address, offset);
  }
  void write32(pci::PciAddress address, uint16_t offset, uint32_t value) override {
    IrqSpinlockGuard guard(lock_);
    inner_.write32(address, offset, value);
  }

 private:
  pci::PciConfigAccess& inner_;
  IrqSpinlock lock_;
};

X86PortIo g_ports;
pci::Cf8ConfigAccess g_cf8(g_ports);
LockedConfigAccess g_locked_cf8(g_cf8);
KernelMmioWindow g_ecam_window;
std::optional<pci::EcamConfigAccess> g_ecam;
std::optional<PciAccessInfo> g_info;

Result<PciAccessInfo> try_ecam() {
  const auto& info = platform::info();
  for (const auto& a : info.mcfg.list()) {
    if (a.segment != 0) continue;
    const pci::McfgAllocation alloc{a.base_address, a.segment, a.start_bus, a.end_bus};
    // The window starts at the allocation's first bus (net/pci/config_mechanisms.h): bus N's
    // 1 MiB lies at base + (N << 20) (PCIe Base 3.0 table 7-1).
    const uint64_t window_base = a.base_address + (uint64_t{a.start_bus} << 20);
    const uint64_t window_size = (uint64_t{a.end_bus} - a.start_bus + 1) << 20;
    TRY(g_ecam_window.map(window_base, window_size));
    g_ecam.emplace(g_ecam_window, alloc);
    return PciAccessInfo{&*g_ecam, g_ecam->bus_range(), true};
  }
  return make_error(ErrorCode::kNotFound, "MCFG has no segment-0 allocation");
}

}  // namespace

Result<PciAccessInfo> pci_config_access() {
  if (g_info) return *g_info;
  if (platform::info().has_mcfg) {
    auto ecam = try_ecam();
    if (ecam) {
      LOG_INFO("pci: ECAM at 0x%llx, buses %u-%u (ACPI MCFG)",
               static_cast<unsigned long long>(g_ecam_window.phys()), ecam->buses.first, ecam->buses.last);
      g_info = *ecam;
      return *g_info;
    }
    LOG_WARN("pci: MCFG present but unusable (%s); using ports 0xCF8/0xCFC", ecam.error().message);
  }
  g_info = PciAccessInfo{&g_locked_cf8, pci::PciBusRange{}, false};
  return *g_info;
}

}  // namespace lantern::net::kernel
