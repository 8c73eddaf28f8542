#include "kernel/arch/x86_64/ioapic.h"

#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/interrupts.h"
#include "kernel/arch/x86_64/paging.h"
#include "kernel/core/log.h"

namespace lantern::ioapic {
namespace {

// 82093AA datasheet 3.0: IOREGSEL at +0x00, IOWIN at +0x10; registers 0x01 (version, bits
// 23:16 = maximum redirection entry) and 0x10 + 2n (redirection entry n, 64 bits).
constexpr uint32_t kRegSelect = 0x00;
constexpr uint32_t kRegWindow = 0x10;
constexpr uint32_t kRegVersion = 0x01;
constexpr uint32_t kRegRedirectionBase = 0x10;
constexpr uint64_t kRedirMasked = 1ull << 16;
constexpr uint64_t kRedirLevel = 1ull << 15;
constexpr uint64_t kRedirActiveLow = 1ull << 13;

struct IoApic {
  volatile uint32_t* mmio;
  uint32_t gsi_base;
  uint32_t entries;
};

IoApic g_ioapics[acpi::MadtInfo::kMaxIoApics];
size_t g_count = 0;

uint32_t read_reg(const IoApic& io, uint32_t reg) {
  io.mmio[kRegSelect / 4] = reg;
  return io.mmio[kRegWindow / 4];
}
void write_reg(const IoApic& io, uint32_t reg, uint32_t value) {
  io.mmio[kRegSelect / 4] = reg;
  io.mmio[kRegWindow / 4] = value;
}

Result<IoApic*> find(uint32_t gsi) {
  for (size_t i = 0; i < g_count; ++i) {
    if (gsi >= g_ioapics[i].gsi_base && gsi < g_ioapics[i].gsi_base + g_ioapics[i].entries)
      return &g_ioapics[i];
  }
  return make_error(ErrorCode::kNotFound, "no I/O APIC serves this GSI", gsi);
}

void write_entry(const IoApic& io, uint32_t index, uint64_t value) {
  // Mask first (low word), then the destination, then the low word for real.
  write_reg(io, kRegRedirectionBase + 2 * index, static_cast<uint32_t>(kRedirMasked));
  write_reg(io, kRegRedirectionBase + 2 * index + 1, static_cast<uint32_t>(value >> 32));
  write_reg(io, kRegRedirectionBase + 2 * index, static_cast<uint32_t>(value));
}

}  // namespace

void disable_legacy_pic() {
  // 8259A ICW1-ICW4 (8259A datasheet): remap to 0x20/0x28 so a stray IRQ cannot look like
  // an exception, then mask every line.
  constexpr uint16_t kPic1Cmd = 0x20, kPic1Data = 0x21, kPic2Cmd = 0xa0, kPic2Data = 0xa1;
  cpu::outb(kPic1Cmd, 0x11);  // ICW1: init, ICW4 needed
  cpu::outb(kPic2Cmd, 0x11);
  cpu::outb(kPic1Data, interrupts::kVectorLegacyPicBase);  // ICW2: vector base
  cpu::outb(kPic2Data, interrupts::kVectorLegacyPicBase + 8);
  cpu::outb(kPic1Data, 0x04);  // ICW3: slave on IRQ2
  cpu::outb(kPic2Data, 0x02);
  cpu::outb(kPic1Data, 0x01);  // ICW4: 8086 mode
  cpu::outb(kPic2Data, 0x01);
  cpu::outb(kPic1Data, 0xff);  // OCW1: mask all
  cpu::outb(kPic2Data, 0xff);
}

Result<void> init(const acpi::MadtInfo& madt) {
  for (const auto& entry : madt.io_apic_list()) {
    const uintptr_t mmio = TRY(paging::map_mmio(entry.address, paging::kPageSize));
    IoApic io{reinterpret_cast<volatile uint32_t*>(mmio), entry.gsi_base, 0};
    io.entries = ((read_reg(io, kRegVersion) >> 16) & 0xff) + 1;
    for (uint32_t i = 0; i < io.entries; ++i) write_entry(io, i, kRedirMasked);
    g_ioapics[g_count++] = io;
    LOG_INFO("ioapic: id %u at 0x%x, GSIs %u-%u", entry.id, entry.address, io.gsi_base,
             io.gsi_base + io.entries - 1);
  }
  if (g_count == 0) return make_error(ErrorCode::kNotFound, "the MADT lists no I/O APIC");
  return ok();
}

uint32_t gsi_count() {
  uint32_t n = 0;
  for (size_t i = 0; i < g_count; ++i) n += g_ioapics[i].entries;
  return n;
}

Result<void> route(uint32_t gsi, uint8_t vector, uint32_t apic_id, bool level_triggered, bool active_low) {
  IoApic* io = TRY(find(gsi));
  uint64_t entry = vector | (static_cast<uint64_t>(apic_id & 0xff) << 56);
  if (level_triggered) entry |= kRedirLevel;
  if (active_low) entry |= kRedirActiveLow;
  write_entry(*io, gsi - io->gsi_base, entry);
  return ok();
}

Result<void> mask(uint32_t gsi, bool masked) {
  IoApic* io = TRY(find(gsi));
  const uint32_t reg = kRegRedirectionBase + 2 * (gsi - io->gsi_base);
  uint32_t low = read_reg(*io, reg);
  low = masked ? (low | static_cast<uint32_t>(kRedirMasked)) : (low & ~static_cast<uint32_t>(kRedirMasked));
  write_reg(*io, reg, low);
  return ok();
}

}  // namespace lantern::ioapic
