#include "kernel/core/kernel_boot.h"

#include <atomic>

#include "kernel/arch/x86_64/apic.h"
#include "kernel/arch/x86_64/cmos_clock.h"
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/interrupts.h"
#include "kernel/arch/x86_64/ioapic.h"
#include "kernel/arch/x86_64/paging.h"
#include "kernel/arch/x86_64/serial.h"
#include "kernel/arch/x86_64/smp.h"
#include "kernel/boot/cmdline.h"
#include "kernel/boot/multiboot2.h"
#include "kernel/core/boot_state.h"
#include "kernel/core/log.h"
#include "kernel/core/memory.h"
#include "kernel/core/panic.h"
#include "kernel/core/platform.h"
#include "kernel/core/time.h"

extern "C" uint32_t boot_multiboot_magic;
extern "C" uint32_t boot_multiboot_info;
extern "C" char boot_stack_top[];
using InitFunction = void (*)();
extern "C" InitFunction __init_array_start[], __init_array_end[];

namespace lantern {
namespace {

constexpr uint32_t kMultiboot2BootloaderMagic = 0x36d76289;  // Multiboot2 spec 3.3
constexpr uint32_t kTimerHz = 100;

PerCpu g_bsp;
alignas(16) uint8_t g_bsp_ist_stacks[kIstStackSize * kIstCount];
BootState g_boot;

void run_global_constructors() {
  for (InitFunction* f = __init_array_start; f != __init_array_end; ++f) (*f)();
}

// A boot step that cannot fail without leaving the machine unusable: its error is a panic.
[[noreturn]] void boot_step_failed(const char* what, const Error& error) {
  panic("%s: %s (%s, detail 0x%llx)", what, error.message, error_code_name(error.code),
        static_cast<unsigned long long>(error.detail));
}

template <typename T>
T check(Result<T> result, const char* what) {
  if (!result) boot_step_failed(what, result.error());
  return std::move(result).value();
}
void check(Result<void> result, const char* what) {
  if (!result) boot_step_failed(what, result.error());
}

void on_timer(interrupts::Frame&) {
  ++this_cpu().timer_ticks;
}

void apply_log_level(std::string_view cmdline) {
  if (auto value = cmdline_value(cmdline, "loglevel")) {
    log::Level level;
    if (log::parse_level(*value, &level)) {
      log::set_level(level);
    } else {
      LOG_WARN("boot: loglevel=%.*s is not error|warn|info|debug|0-3; keeping info",
               static_cast<int>(value->size()), value->data());
    }
  }
}

}  // namespace

const BootState& boot_state() {
  return g_boot;
}

namespace kernel_boot {

std::string_view init_bootstrap_processor() {
  serial::init();
  run_global_constructors();

  // Exceptions from here on print a full panic: per-CPU tables first.
  g_bsp.index = 0;
  interrupts::init_idt();
  smp::setup_cpu_tables(g_bsp, reinterpret_cast<uint64_t>(g_bsp_ist_stacks));
  g_bsp.stack_top = reinterpret_cast<uint64_t>(boot_stack_top);

  if (boot_multiboot_magic != kMultiboot2BootloaderMagic) panic("not booted by a Multiboot2 loader");
  const uint64_t mbi_phys = boot_multiboot_info;
  const auto* mbi = paging::phys_to_ptr<const uint8_t>(mbi_phys);  // boot direct map: first 4 GiB
  const uint32_t mbi_size = *reinterpret_cast<const uint32_t*>(mbi);
  check(multiboot2::parse_into(std::span<const uint8_t>(mbi, mbi_size), g_boot.multiboot), "multiboot2");
  const std::string_view cmdline = g_boot.multiboot.cmdline.value_or("");
  apply_log_level(cmdline);
  LOG_INFO("Lantern %s booting; command line \"%.*s\"", LANTERN_VERSION, static_cast<int>(cmdline.size()),
           cmdline.data());

  const uint64_t direct_map_bytes =
      check(memory::init_frames(g_boot.multiboot, mbi_phys, mbi_size), "memory");
  check(paging::init(direct_map_bytes), "paging");
  memory::init_heap();
  log::init_ring();
  LOG_INFO("paging: direct map of %llu GiB with %s pages; kernel image mapped per section",
           static_cast<unsigned long long>(direct_map_bytes >> 30),
           paging::large_direct_map_pages() ? "1 GiB" : "2 MiB");

  check(time::calibrate(), "TSC calibration");
  LOG_INFO("time: TSC at %llu kHz", static_cast<unsigned long long>(time::tsc_hz() / 1000));
  if (auto now = cmos_clock::read_unix_seconds(); now) {
    time::set_wall_clock(*now, time::now_ns());
    LOG_INFO("time: RTC at %lld s since 1970 (UTC)", static_cast<long long>(*now));
  } else {
    LOG_WARN("time: no wall clock from the RTC: %s", now.error().message);
  }

  check(platform::discover(g_boot.multiboot, direct_map_bytes), "ACPI");
  ioapic::disable_legacy_pic();
  check(apic::init_this_cpu(true), "local APIC");
  g_bsp.apic_id = apic::id();
  register_cpu(&g_bsp);
  g_bsp.online.store(true);
  check(apic::calibrate_timer(), "LAPIC timer calibration");
  LOG_INFO("apic: %s mode, BSP APIC ID %u, timer %llu kHz", apic::x2apic_mode() ? "x2APIC" : "xAPIC",
           g_bsp.apic_id, static_cast<unsigned long long>(apic::timer_hz() / 1000));
  check(ioapic::init(platform::info().madt), "I/O APIC");

  interrupts::set_handler(interrupts::kVectorTimer, &on_timer);
  apic::start_periodic_timer(kTimerHz, interrupts::kVectorTimer);
  cpu::enable_interrupts();
  return cmdline;
}

namespace {

// The APIC IDs of the enabled MADT CPUs, at most kMaxCpus of them.
uint32_t enabled_apic_ids(uint32_t (&apic_ids)[kMaxCpus]) {
  uint32_t count = 0;
  for (const auto& c : platform::info().madt.all_cpus()) {
    if (c.enabled() && count < kMaxCpus) apic_ids[count++] = c.apic_id;
  }
  return count;
}

}  // namespace

uint32_t enabled_cpus() {
  uint32_t apic_ids[kMaxCpus];
  return enabled_apic_ids(apic_ids);
}

uint32_t start_application_processors() {
  uint32_t apic_ids[kMaxCpus];
  const uint32_t candidates = enabled_apic_ids(apic_ids);
  const uint32_t started = smp::start_application_processors(std::span<const uint32_t>(apic_ids, candidates));
  g_boot.cpus_expected = candidates;
  LOG_INFO("smp: %u of %u CPUs online", 1 + started, candidates);
  return started;
}

void crash_if_asked(std::string_view cmdline) {
  const auto what = cmdline_value(cmdline, "debug.crash");
  if (!what) return;
  LOG_WARN("boot: debug.crash=%.*s: faulting on purpose", static_cast<int>(what->size()), what->data());
  if (*what == "page_fault") {
    *reinterpret_cast<volatile uint64_t*>(0xdead000) = 1;  // nothing is mapped below the direct map
  } else if (*what == "invalid_opcode") {
    asm volatile("ud2");
  } else if (*what == "divide_error") {
    volatile uint32_t zero = 0;
    volatile uint32_t r = 1 / zero;
    (void)r;
  }
  LOG_ERROR("boot: debug.crash=%.*s is not page_fault|invalid_opcode|divide_error",
            static_cast<int>(what->size()), what->data());
}

void idle_loop_with(void (*poll)(), bool (*work_pending)()) {
  for (;;) {
    poll();
    // An interrupt that arrived during poll() left work: check with interrupts off, so a new one
    // cannot slip in between the check and HLT (STI's one-instruction shadow covers HLT).
    cpu::disable_interrupts();
    if (work_pending()) {
      cpu::enable_interrupts();
    } else {
      cpu::enable_interrupts_and_halt();
    }
  }
}

}  // namespace kernel_boot
}  // namespace lantern
