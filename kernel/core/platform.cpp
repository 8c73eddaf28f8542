#include "kernel/core/platform.h"

#include "kernel/arch/x86_64/paging.h"
#include "kernel/core/log.h"

namespace lantern::platform {
namespace {

Info g_info;

// ACPI tables live in RAM the direct map covers; anything beyond it is rejected, never read.
class DirectMapReader final : public acpi::PhysicalMemoryReader {
 public:
  explicit DirectMapReader(uint64_t limit) : limit_(limit) {}
  Result<std::span<const uint8_t>> read(uint64_t phys, size_t length) override {
    if (phys >= limit_ || length > limit_ - phys) {
      return make_error(ErrorCode::kInvalidArgument, "ACPI table outside the direct map", phys);
    }
    return std::span<const uint8_t>(paging::phys_to_ptr<const uint8_t>(phys), length);
  }

 private:
  uint64_t limit_;
};

}  // namespace

Result<void> discover(const multiboot2::BootInfo& boot, uint64_t direct_map_bytes) {
  DirectMapReader reader(direct_map_bytes);
  acpi::Rsdp rsdp;
  if (boot.acpi_rsdp) {
    rsdp = TRY(acpi::parse_rsdp(boot.acpi_rsdp->bytes()));
  } else {
    rsdp = TRY(acpi::find_rsdp_in_bios_area(reader));
  }
  const auto directory = TRY(acpi::read_root_table(reader, rsdp));
  const auto madt_bytes = TRY(acpi::find_table(reader, directory, "APIC"));
  g_info.madt = TRY(acpi::parse_madt(madt_bytes));
  if (auto mcfg_bytes = acpi::find_table(reader, directory, "MCFG")) {
    if (auto mcfg = acpi::parse_mcfg(*mcfg_bytes)) {
      g_info.mcfg = *mcfg;
      g_info.has_mcfg = true;
    } else {
      LOG_WARN("acpi: MCFG ignored: %s", mcfg.error().message);
    }
  }
  LOG_INFO("acpi: revision %u, %zu CPUs in the MADT (%zu enabled), %zu I/O APIC(s), MCFG %s",
           static_cast<unsigned>(rsdp.revision), g_info.madt.cpu_count, g_info.madt.enabled_cpu_count(),
           g_info.madt.io_apic_count, g_info.has_mcfg ? "present" : "absent");
  return ok();
}

const Info& info() {
  return g_info;
}

}  // namespace lantern::platform
