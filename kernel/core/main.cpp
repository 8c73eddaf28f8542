// Boot sequence of the bootstrap processor. docs/architecture.md walks through it.
#include <atomic>

#include "kernel/arch/x86_64/apic.h"
#include "kernel/arch/x86_64/boot_layout.h"
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/interrupts.h"
#include "kernel/arch/x86_64/ioapic.h"
#include "kernel/arch/x86_64/paging.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/arch/x86_64/serial.h"
#include "kernel/arch/x86_64/smp.h"
#include "kernel/boot/cmdline.h"
#include "kernel/boot/multiboot2.h"
#include "kernel/core/boot_state.h"
#include "kernel/core/log.h"
#include "kernel/core/memory.h"
#include "kernel/core/panic.h"
#include "kernel/core/platform.h"
#include "kernel/core/power.h"
#include "kernel/core/selftest.h"
#include "kernel/core/time.h"
#include "net/stack/net.h"
#include "vmx/hw/guest_vm.h"
#include "vmx/hw/vcpu.h"
#include "vmx/hw/vmx_operation.h"
#include "svm/hw/svm_guest_vm.h"
#include "svm/hw/svm_operation.h"
#include "web/kernel/http_server.h"
#include "web/api/api.h"
#include "web/api/console_options.h"
#include "web/kernel/console_backend.h"
#include "web/site/console_site.h"
#include "vmx/hw/vcpu_capture.h"

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

// `debug.crash=page_fault|invalid_opcode|divide_error` makes the boot fault on purpose, so tests
// can check the panic report (LANTERN PANIC, registers, backtrace) end to end.
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

// The debug console (web/): the browser UI (web/site) and the API v1 over the kernel backend, served by the HTTP server when
// the network runs (console.bind=, console.token=, console.readonly_open=: console_options.h).
// Without it the READY line says console=none.
void start_console(std::string_view cmdline) {
  auto options = web::api::parse_console_options(cmdline);
  if (!options) {
    LOG_ERROR("console: %s; no console this boot", options.error().message);
    return;
  }
  if (!options->enabled) {
    LOG_INFO("console: off (console.bind=off)");
    return;
  }
  if (!net::status().running) return;  // net::start() logged why
  static web::KernelConsoleBackend backend(vmx::kCaptureTimeoutUs);
  static web::api::Api api(backend, web::api::auth_config_from(*options));
  static web::site::ConsoleSite site(api, web::site::ui_assets());  // the browser UI at `/`, then the API
  if (auto started = web::kernel::http_server_start(options->port, &site, options->bind_address); !started) {
    LOG_ERROR("console: HTTP server on port %u failed: %s", static_cast<unsigned>(options->port),
              started.error().message);
    return;
  }
  if (!options->token.empty()) {
    LOG_INFO("console: bearer token required for %s", options->readonly_open ? "POST only" : "every request");
  }
}

}  // namespace

const BootState& boot_state() {
  return g_boot;
}

}  // namespace lantern

extern "C" void kernel_main() {
  using namespace lantern;
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
  (void)vmx::enable_on_this_cpu();  // without VMX it logs why; the boot goes on with vmx=0
  (void)svm::enable_on_this_cpu();  // likewise without SVM: svm=0

  uint32_t apic_ids[kMaxCpus];
  uint32_t candidates = 0;
  for (const auto& c : platform::info().madt.all_cpus()) {
    if (c.enabled() && candidates < kMaxCpus) apic_ids[candidates++] = c.apic_id;
  }
  const uint32_t started = smp::start_application_processors(std::span<const uint32_t>(apic_ids, candidates));
  g_boot.cpus_expected = candidates;
  LOG_INFO("smp: %u of %u CPUs online", 1 + started, candidates);

  // The network never fails the boot: no NIC, no link or no lease leave ip=none (logged).
  auto net_started = net::start(cmdline);
  if (!net_started) LOG_ERROR("net: %s", net_started.error().message);
  start_console(cmdline);
  const net::NetStatus net_status = net::status();
  crash_if_asked(cmdline);
  if (cmdline_has_flag(cmdline, "bench")) {
    // Prints the BENCH lines: VMX where it runs, otherwise SVM.
    auto bench = vmx::cores_in_vmx_operation() > 0 ? vmx::run_benchmarks() : svm::run_benchmarks();
    power::exit_emulator(bench.has_value());
  }
  if (cmdline_has_flag(cmdline, "selftest")) {
    const auto summary = selftest::run_all();
    power::exit_emulator(summary.failed == 0 && summary.passed > 0);
  }

  (void)vmx::prepare_demo_vcpu_on_this_cpu();  // off with selftest/bench/vmx.demo=0
  (void)svm::prepare_demo_vcpu_on_this_cpu();  // the same demo where SVM runs this core
  const char* hv = vmx::cores_in_vmx_operation() > 0 ? "vmx" : (svm::cores_in_svm_operation() > 0 ? "svm" : "none");
  log::contract_line("LANTERN READY cpus=%u vmx=%u vcpus=%u hv=%s svm=%u ip=%s console=%s", cpu_count(),
                     vmx::cores_in_vmx_operation(), vmx::vcpus_started() + svm::svm_vcpus_started(), hv, svm::cores_in_svm_operation(),
                     net_status.ip, net_status.console);
  // With a demo vCPU the BSP runs it and polls the network between exits; returns at once
  // without one.
  vmx::run_vcpu_loop_on_this_cpu(&net::poll);
  svm::run_vcpu_loop_on_this_cpu(&net::poll);
  // The BSP owns lwIP (net/stack/README.md): it polls between interrupts; the timer tick and
  // NIC interrupts wake it.
  for (;;) {
    net::poll();
    // An interrupt that arrived during poll() left work: check with interrupts off, so a new one
    // cannot slip in between the check and HLT (STI's one-instruction shadow covers HLT).
    cpu::disable_interrupts();
    if (net::work_pending()) {
      cpu::enable_interrupts();
    } else {
      cpu::enable_interrupts_and_halt();
    }
  }
}
