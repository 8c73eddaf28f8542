#include "kernel/arch/x86_64/apic.h"

#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/interrupts.h"
#include "kernel/arch/x86_64/paging.h"
#include "kernel/core/log.h"
#include "kernel/core/time.h"

namespace lantern::apic {
namespace {

// IA32_APIC_BASE bits (SDM Vol. 3 11.4.4, Figure 11-5; 11.12.1 for EXTD).
constexpr uint64_t kApicBaseEnable = 1ull << 11;
constexpr uint64_t kApicBaseX2apic = 1ull << 10;
constexpr uint64_t kApicBaseAddressMask = 0x000ffffffffff000ull;

// Register offsets in the xAPIC page (SDM Vol. 3 Table 11-1). In x2APIC mode the MSR is
// 0x800 + offset / 16 (SDM Vol. 3 Table 11-6).
constexpr uint32_t kRegId = 0x20;
constexpr uint32_t kRegTpr = 0x80;
constexpr uint32_t kRegEoi = 0xb0;
constexpr uint32_t kRegSpurious = 0xf0;
constexpr uint32_t kRegIcrLow = 0x300;
constexpr uint32_t kRegIcrHigh = 0x310;
constexpr uint32_t kRegLvtTimer = 0x320;
constexpr uint32_t kRegLvtLint0 = 0x350;
constexpr uint32_t kRegLvtLint1 = 0x360;
constexpr uint32_t kRegLvtError = 0x370;
constexpr uint32_t kRegTimerInitial = 0x380;
constexpr uint32_t kRegTimerCurrent = 0x390;
constexpr uint32_t kRegTimerDivide = 0x3e0;

constexpr uint32_t kSpuriousEnable = 1u << 8;  // SVR bit 8: APIC software enable
constexpr uint32_t kLvtMasked = 1u << 16;
constexpr uint32_t kLvtTimerPeriodic = 1u << 17;  // SDM Vol. 3 Figure 11-8
constexpr uint32_t kLvtDeliveryNmi = 0x4u << 8;
constexpr uint32_t kTimerDivideBy16 = 0x3;  // SDM Vol. 3 Figure 11-10

// ICR (SDM Vol. 3 Figure 11-12).
constexpr uint32_t kIcrDeliveryFixed = 0x0u << 8;
constexpr uint32_t kIcrDeliveryNmi = 0x4u << 8;
constexpr uint32_t kIcrDeliveryInit = 0x5u << 8;
constexpr uint32_t kIcrDeliveryStartup = 0x6u << 8;
constexpr uint32_t kIcrLevelAssert = 1u << 14;
constexpr uint32_t kIcrDeliveryPending = 1u << 12;

bool g_x2apic = false;
volatile uint32_t* g_xapic = nullptr;
uint64_t g_timer_hz = 0;

uint32_t read(uint32_t reg) {
  if (g_x2apic) return static_cast<uint32_t>(cpu::rdmsr(0x800 + reg / 16));
  return g_xapic[reg / 4];
}

void write(uint32_t reg, uint32_t value) {
  if (g_x2apic) {
    cpu::wrmsr(0x800 + reg / 16, value);
  } else {
    g_xapic[reg / 4] = value;
  }
}

void write_icr(uint32_t apic_id, uint32_t low) {
  if (g_x2apic) {
    // x2APIC: one 64-bit write, destination in bits 63:32 (SDM Vol. 3 11.12.9).
    cpu::wrmsr(0x830, (static_cast<uint64_t>(apic_id) << 32) | low);
    return;
  }
  for (int i = 0; i < 1'000'000 && (read(kRegIcrLow) & kIcrDeliveryPending); ++i) cpu::pause();
  write(kRegIcrHigh, apic_id << 24);
  write(kRegIcrLow, low);
  for (int i = 0; i < 1'000'000 && (read(kRegIcrLow) & kIcrDeliveryPending); ++i) cpu::pause();
}

}  // namespace

bool x2apic_mode() {
  return g_x2apic;
}

Result<void> init_this_cpu(bool bsp) {
  const auto leaf1 = cpu::cpuid(1);
  if (!((leaf1.edx >> 9) & 1)) {  // CPUID.01H:EDX[9]: APIC on chip
    return make_error(ErrorCode::kUnsupported, "no local APIC");
  }
  uint64_t base = cpu::rdmsr(cpu::kMsrApicBase);
  if (bsp) {
    g_x2apic = (leaf1.ecx >> 21) & 1;  // CPUID.01H:ECX[21]: x2APIC
    if (!g_x2apic) {
      const uintptr_t mmio = TRY(paging::map_mmio(base & kApicBaseAddressMask, paging::kPageSize));
      g_xapic = reinterpret_cast<volatile uint32_t*>(mmio);
    }
  }
  // Never clear the enable bit: Bochs ignores later writes once it is off (emulators.md).
  base |= kApicBaseEnable;
  cpu::wrmsr(cpu::kMsrApicBase, base);
  if (g_x2apic) cpu::wrmsr(cpu::kMsrApicBase, base | kApicBaseX2apic);

  write(kRegTpr, 0);
  write(kRegLvtTimer, kLvtMasked);
  write(kRegLvtLint0, kLvtMasked);  // the legacy PIC is masked; the IOAPIC delivers IRQs
  write(kRegLvtLint1, bsp ? kLvtDeliveryNmi : kLvtMasked);
  write(kRegLvtError, kLvtMasked);
  write(kRegSpurious, kSpuriousEnable | interrupts::kVectorSpurious);
  end_of_interrupt();
  return ok();
}

uint32_t id() {
  const uint32_t raw = read(kRegId);
  return g_x2apic ? raw : raw >> 24;  // xAPIC: ID in bits 31:24 (SDM Vol. 3 Figure 11-6)
}

void end_of_interrupt() {
  write(kRegEoi, 0);
}

void send_fixed_ipi(uint32_t apic_id, uint8_t vector) {
  write_icr(apic_id, kIcrDeliveryFixed | kIcrLevelAssert | vector);
}
void send_init(uint32_t apic_id) {
  write_icr(apic_id, kIcrDeliveryInit | kIcrLevelAssert);
}
void send_startup(uint32_t apic_id, uint8_t page) {
  write_icr(apic_id, kIcrDeliveryStartup | kIcrLevelAssert | page);
}
void send_nmi(uint32_t apic_id) {
  write_icr(apic_id, kIcrDeliveryNmi | kIcrLevelAssert);
}

Result<void> calibrate_timer() {
  write(kRegTimerDivide, kTimerDivideBy16);
  write(kRegLvtTimer, kLvtMasked);
  write(kRegTimerInitial, 0xffffffffu);
  const uint64_t start = time::now_ns();
  constexpr uint64_t kWindowNs = 10'000'000;
  while (time::now_ns() - start < kWindowNs) cpu::pause();
  const uint32_t elapsed_ticks = 0xffffffffu - read(kRegTimerCurrent);
  const uint64_t elapsed_ns = time::now_ns() - start;
  write(kRegTimerInitial, 0);
  if (elapsed_ticks == 0) return make_error(ErrorCode::kIoError, "LAPIC timer does not count");
  g_timer_hz = static_cast<uint64_t>(elapsed_ticks) * 1'000'000'000ull / elapsed_ns;
  return ok();
}

uint64_t timer_hz() {
  return g_timer_hz;
}

void start_periodic_timer(uint32_t hz, uint8_t vector) {
  if (g_timer_hz == 0 || hz == 0) return;
  write(kRegTimerDivide, kTimerDivideBy16);
  write(kRegLvtTimer, kLvtTimerPeriodic | vector);
  const uint64_t count = g_timer_hz / hz;
  write(kRegTimerInitial, static_cast<uint32_t>(count > 0xffffffffu ? 0xffffffffu : (count ? count : 1)));
}

}  // namespace lantern::apic
