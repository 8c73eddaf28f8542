#include "net/kernel/nic_probe.h"

#include <atomic>
#include <optional>
#include <utility>

#include "kernel/arch/x86_64/apic.h"
#include "kernel/arch/x86_64/interrupts.h"
#include "kernel/arch/x86_64/ioapic.h"
#include "kernel/core/log.h"
#include "kernel/core/platform.h"
#include "kernel/core/time.h"
#include "net/e1000/e1000_device.h"
#include "net/kernel/kernel_dma.h"
#include "net/kernel/kernel_mmio.h"
#include "net/kernel/kernel_pci.h"
#include "net/pci/pci_bar.h"
#include "net/pci/pci_capabilities.h"
#include "net/virtio/virtio_net.h"
#include "net/virtio/virtio_pci.h"

namespace lantern::net::kernel {
namespace {

// 82545EM copper shares the 82540EM's programming model (Intel 8254x SDM 1.1, table 1-1).
constexpr uint16_t kDevice82545EMCopper = 0x100F;
// I/O APIC redirection vectors must stay below the exception-free top of the IDT; the LAPIC
// spurious vector is 0xFF (interrupts.h).
constexpr uint8_t kVectorMax = 0xEF;
constexpr uint8_t kInterruptLineUnknown = 0xFF;  // PCI 3.0 6.2.4: "unknown" / not connected
// e1000 causes that wake the stack (Intel 8254x SDM 13.4.20, IMS): RX timer, overrun, descriptor
// minimum threshold, link status change. TXDW is left out: transmit descriptors are reclaimed
// from poll().
constexpr uint32_t kE1000InterruptMask =
    e1000::intr::kRxt0 | e1000::intr::kRxo | e1000::intr::kRxdmt0 | e1000::intr::kLsc;

KernelDmaAllocator g_dma;

// Forwards the NicDriver interface to a portable driver; the subclasses add only what differs
// (the name and how an interrupt is acknowledged).
template <typename Device>
class DeviceNic : public NicDriver {
 public:
  template <typename... Args>
  explicit DeviceNic(Args&&... args) : dev_(std::forward<Args>(args)...) {}
  Device& device() { return dev_; }
  const MacAddress& mac() const override { return dev_.mac(); }
  bool link_up() override { return dev_.link_up(); }
  Result<void> transmit(std::span<const uint8_t> frame) override { return dev_.transmit(frame); }
  size_t reclaim_transmitted() override { return dev_.reclaim_transmitted(); }
  size_t poll_receive(FrameSink sink, size_t max_frames) override {
    return dev_.poll_receive(sink, max_frames);
  }
  const NicCounters& counters() const override { return dev_.counters(); }

 protected:
  Device dev_;
};

class E1000Nic final : public DeviceNic<e1000::E1000Device> {
 public:
  E1000Nic(MmioWindow& regs, DmaAllocator& dma) : DeviceNic(regs, dma) {}
  const char* name() const override { return "e1000"; }
  bool acknowledge_interrupt() override { return dev_.read_and_clear_interrupt_cause() != 0; }
};

class VirtioNic final : public DeviceNic<virtio::VirtioNetDevice> {
 public:
  VirtioNic(const virtio::VirtioPciWindows& windows, DmaAllocator& dma) : DeviceNic(windows, dma) {}
  void set_msix(bool msix) { msix_ = msix; }
  const char* name() const override { return "virtio-net"; }
  // MSI-X messages need no acknowledgement; with INTx, reading the ISR byte deasserts the line
  // (virtio 1.0 4.1.4.5).
  bool acknowledge_interrupt() override { return msix_ || dev_.read_isr() != 0; }

 private:
  bool msix_ = false;
};

KernelMmioWindow g_bar_windows[6];
KernelMmioWindow g_virtio_regions[4];  // common, notify, isr, device
std::optional<E1000Nic> g_e1000;
std::optional<VirtioNic> g_virtio;
NicDriver* g_nic = nullptr;
void (*g_on_interrupt)() = nullptr;
std::atomic<uint64_t> g_interrupts{0};
std::atomic<uint64_t> g_unclaimed{0};

void on_nic_interrupt(interrupts::Frame&) {
  g_interrupts.fetch_add(1, std::memory_order_relaxed);
  if (g_nic == nullptr) return;
  if (!g_nic->acknowledge_interrupt()) {
    g_unclaimed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (g_on_interrupt) g_on_interrupt();
}

void delay_us(uint32_t microseconds) {
  time::delay_us(microseconds);
}

Result<KernelMmioWindow*> map_bar(pci::PciConfigAccess& access, const pci::PciHeader& header, uint8_t index) {
  if (index >= 6) return make_error(ErrorCode::kInvalidArgument, "BAR index above 5", index);
  KernelMmioWindow& window = g_bar_windows[index];
  if (window.mapped()) return &window;
  const pci::PciBar bar = TRY(pci::probe_bar(access, header.address, index, header.bar_count()));
  if (!bar.is_memory() || bar.size == 0 || bar.base == 0) {
    return make_error(ErrorCode::kUnsupported, "BAR is not an assigned memory BAR", index);
  }
  TRY(window.map(bar.base, bar.size));
  return &window;
}

Result<void> region_window(pci::PciConfigAccess& access, const pci::PciHeader& header,
                           const pci::VirtioPciRegion& region, KernelMmioWindow& out) {
  KernelMmioWindow* bar = TRY(map_bar(access, header, region.bar));
  return out.subwindow(*bar, region.offset, region.length);
}

// MSI (PCI 3.0 6.8.1) to the BSP. Masks INTx first (Command bit 10).
Result<void> wire_msi(pci::PciConfigAccess& access, const pci::PciHeader& header, uint8_t offset,
                      uint8_t vector) {
  const pci::MsiCapability msi = TRY(pci::decode_msi(access, header.address, offset));
  pci::set_command_bits(access, header.address, pci::command::kInterruptDisable, 0);
  return pci::program_msi(access, header.address, msi, pci::x86_msi_address(static_cast<uint8_t>(apic::id())),
                          pci::x86_msi_data(vector));
}

// INTx through the I/O APIC (see nic_probe.h for the GSI and polarity rules).
Result<uint32_t> wire_intx(pci::PciConfigAccess& access, const pci::PciHeader& header) {
  if (header.interrupt_pin == 0) return make_error(ErrorCode::kUnsupported, "function has no INTx pin");
  if (header.interrupt_line == kInterruptLineUnknown) {
    return make_error(ErrorCode::kUnsupported, "firmware left the interrupt line unassigned (0xFF)");
  }
  uint16_t flags = 0;
  const uint32_t gsi = platform::info().madt.isa_irq_to_gsi(header.interrupt_line, &flags);
  const uint32_t vector = uint32_t{interrupts::kVectorIoApicBase} + gsi;
  if (vector > kVectorMax) return make_error(ErrorCode::kUnsupported, "GSI too high for a vector", gsi);
  bool level = true;
  bool active_low = true;
  if (flags != 0) {  // an override: its MPS INTI flags win (ACPI 6.5 5.2.12.5)
    if (acpi::inti_trigger(flags) == acpi::TriggerMode::kEdge) level = false;
    if (acpi::inti_polarity(flags) == acpi::Polarity::kActiveHigh) active_low = false;
  }
  interrupts::set_handler(static_cast<uint8_t>(vector), &on_nic_interrupt);
  pci::set_command_bits(access, header.address, 0, pci::command::kInterruptDisable);
  TRY(ioapic::route(gsi, static_cast<uint8_t>(vector), apic::id(), level, active_low));
  LOG_INFO("net: INTx pin %c, line %u -> GSI %u, vector 0x%x, %s/%s%s", 'A' + header.interrupt_pin - 1,
           header.interrupt_line, gsi, vector, level ? "level" : "edge",
           active_low ? "active-low" : "active-high", flags != 0 ? " (MADT override)" : "");
  return gsi;
}

Result<void> init_e1000(pci::PciConfigAccess& access, const pci::PciHeader& header,
                        const pci::PciCapabilityList& caps, IrqPreference preference, ProbedNic& out) {
  KernelMmioWindow* regs = TRY(map_bar(access, header, 0));
  pci::set_command_bits(access, header.address, pci::command::kMemorySpace | pci::command::kBusMaster, 0);
  g_e1000.emplace(*regs, g_dma);
  e1000::E1000Config config;
  config.delay_us = &delay_us;
  TRY(g_e1000->device().init(config));
  g_nic = &*g_e1000;
  out.driver = g_nic;

  const pci::PciCapability* msi = caps.find(pci::cap_id::kMsi);
  if (preference == IrqPreference::kAuto && msi != nullptr) {
    interrupts::set_handler(kVectorNetMsi, &on_nic_interrupt);
    auto wired = wire_msi(access, header, msi->offset, kVectorNetMsi);
    if (wired) {
      out.irq = IrqMode::kMsi;
      out.vector = kVectorNetMsi;
    } else {
      LOG_WARN("net: e1000 MSI setup failed (%s); trying INTx", wired.error().message);
    }
  }
  if (out.irq == IrqMode::kNone && preference != IrqPreference::kPoll) {
    auto gsi = wire_intx(access, header);
    if (gsi) {
      out.irq = IrqMode::kIntx;
      out.gsi = *gsi;
      out.vector = static_cast<uint8_t>(interrupts::kVectorIoApicBase + *gsi);
    } else {
      LOG_WARN("net: e1000 has no usable interrupt (%s)", gsi.error().message);
    }
  }
  if (out.irq != IrqMode::kNone) {
    g_e1000->device().read_and_clear_interrupt_cause();
    g_e1000->device().enable_interrupts(kE1000InterruptMask);
  } else {
    out.irq = IrqMode::kPolled;
  }
  return ok();
}

Result<void> init_virtio(pci::PciConfigAccess& access, const pci::PciHeader& header,
                         const pci::PciCapabilityList& caps, IrqPreference preference, ProbedNic& out) {
  const pci::VirtioPciLayout layout = TRY(pci::read_virtio_layout(access, header.address, caps));
  TRY(region_window(access, header, *layout.common, g_virtio_regions[0]));
  TRY(region_window(access, header, *layout.notify, g_virtio_regions[1]));
  TRY(region_window(access, header, *layout.isr, g_virtio_regions[2]));
  virtio::VirtioPciWindows windows;
  windows.common = &g_virtio_regions[0];
  windows.notify = &g_virtio_regions[1];
  windows.notify_length = layout.notify->length;
  windows.notify_off_multiplier = layout.notify->notify_off_multiplier;
  windows.isr = &g_virtio_regions[2];
  if (layout.device && region_window(access, header, *layout.device, g_virtio_regions[3])) {
    windows.device = &g_virtio_regions[3];
  }
  pci::set_command_bits(access, header.address, pci::command::kMemorySpace | pci::command::kBusMaster, 0);
  g_virtio.emplace(windows, g_dma);

  virtio::VirtioNetConfig config;
  // MSI-X before the device is initialised: the queue vectors are written during init and the
  // device answers NO_VECTOR for a vector it cannot use (virtio 1.0 4.1.5.1.2.1).
  const pci::PciCapability* msix_cap = caps.find(pci::cap_id::kMsiX);
  const pci::PciCapability* msi_cap = caps.find(pci::cap_id::kMsi);
  std::optional<pci::MsixCapability> msix;
  if (preference == IrqPreference::kAuto && msi_cap == nullptr && msix_cap != nullptr) {
    auto decoded = pci::decode_msix(access, header.address, msix_cap->offset);
    auto table =
        decoded ? map_bar(access, header, decoded->table_bar) : Result<KernelMmioWindow*>(decoded.error());
    if (table) {
      interrupts::set_handler(kVectorNetMsi, &on_nic_interrupt);
      auto programmed = pci::program_msix_entry(**table, *decoded, 0,
                                                pci::x86_msi_address(static_cast<uint8_t>(apic::id())),
                                                pci::x86_msi_data(kVectorNetMsi), false);
      if (programmed) {
        pci::set_command_bits(access, header.address, pci::command::kInterruptDisable, 0);
        pci::set_msix_control(access, header.address, *decoded, true, false);
        msix = *decoded;
        config.config_vector = 0;
        config.rx_vector = 0;
        config.tx_vector = 0;
      }
    }
    if (!msix) LOG_WARN("net: virtio-net MSI-X setup failed; trying INTx");
  }
  g_virtio->set_msix(msix.has_value());
  auto initialised = g_virtio->device().init(config);
  if (!initialised) {
    if (msix) pci::set_msix_control(access, header.address, *msix, false, false);
    return initialised.error();
  }
  g_nic = &*g_virtio;
  out.driver = g_nic;
  if (msix) {
    out.irq = IrqMode::kMsix;
    out.vector = kVectorNetMsi;
    return ok();
  }
  if (preference == IrqPreference::kAuto && msi_cap != nullptr) {
    interrupts::set_handler(kVectorNetMsi, &on_nic_interrupt);
    if (wire_msi(access, header, msi_cap->offset, kVectorNetMsi)) {
      out.irq = IrqMode::kMsi;
      out.vector = kVectorNetMsi;
      return ok();
    }
  }
  if (preference != IrqPreference::kPoll) {
    auto gsi = wire_intx(access, header);
    if (gsi) {
      out.irq = IrqMode::kIntx;
      out.gsi = *gsi;
      out.vector = static_cast<uint8_t>(interrupts::kVectorIoApicBase + *gsi);
      return ok();
    }
    LOG_WARN("net: virtio-net has no usable interrupt (%s)", gsi.error().message);
  }
  out.irq = IrqMode::kPolled;
  return ok();
}

}  // namespace

const char* irq_mode_name(IrqMode mode) {
  switch (mode) {
    case IrqMode::kNone: return "none";
    case IrqMode::kMsi: return "msi";
    case IrqMode::kMsix: return "msix";
    case IrqMode::kIntx: return "intx";
    case IrqMode::kPolled: return "polled";
  }
  return "unknown";
}

uint64_t nic_interrupts() {
  return g_interrupts.load(std::memory_order_relaxed);
}
uint64_t nic_interrupts_unclaimed() {
  return g_unclaimed.load(std::memory_order_relaxed);
}

Result<ProbedNic> probe_nic(IrqPreference preference, void (*on_interrupt)()) {
  if (g_nic != nullptr) return make_error(ErrorCode::kInvalidState, "NIC already probed");
  g_on_interrupt = on_interrupt;
  const PciAccessInfo pci_info = TRY(pci_config_access());
  static pci::PciDeviceList devices;  // 64 headers: too big for the stack
  auto found = pci::enumerate(*pci_info.access, devices, pci_info.buses);
  if (!found && found.error().code != ErrorCode::kFull) return found.error();
  LOG_INFO("pci: %zu functions (%s)", devices.count, pci_info.ecam ? "ECAM" : "ports 0xCF8/0xCFC");

  for (const pci::PciHeader& header : devices) {
    const bool e1000 =
        header.vendor_id == e1000::kVendorIntel &&
        (header.device_id == e1000::kDevice82540EM || header.device_id == kDevice82545EMCopper);
    const bool virtio_net = virtio::is_virtio_net(header);
    if (!e1000 && !virtio_net) continue;
    ProbedNic out;
    out.address = header.address;
    out.vendor_id = header.vendor_id;
    out.device_id = header.device_id;
    LOG_INFO("net: %s %04x:%04x at %02x:%02x.%u", e1000 ? "e1000" : "virtio-net", header.vendor_id,
             header.device_id, header.address.bus, header.address.device, header.address.function);
    const pci::PciCapabilityList caps = TRY(pci::read_capabilities(*pci_info.access, header));
    Result<void> initialised = e1000 ? init_e1000(*pci_info.access, header, caps, preference, out)
                                     : init_virtio(*pci_info.access, header, caps, preference, out);
    if (!initialised) return initialised.error();
    return out;
  }
  return make_error(ErrorCode::kNotFound,
                    "no supported NIC (e1000 8086:100e/100f, virtio-net 1af4:1041/1000)");
}

}  // namespace lantern::net::kernel
