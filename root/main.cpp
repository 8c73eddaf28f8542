// The composition root, bootstrap processor: boots the layers in order (docs/architecture.md,
// "Boot sequence"). kernel/ first, then the backends (vmx/, svm/), the application processors
// (root/ap_entry.cpp), net/, web/, and the guests.
#include "kernel/arch/x86_64/smp.h"
#include "kernel/boot/cmdline.h"
#include "kernel/core/kernel_boot.h"
#include "kernel/core/log.h"
#include "kernel/core/power.h"
#include "kernel/core/selftest.h"
#include "kernel/lib/format.h"
#include "net/stack/net.h"
#include "svm/hw/svm_guest_vm.h"
#include "svm/hw/svm_operation.h"
#include "vmx/hw/guest_vm.h"
#include "svm/hw/svm_user_vms.h"
#include "guest/hw/user_vms.h"
#include "vmx/hw/vcpu.h"
#include "vmx/hw/vcpu_capture.h"
#include "vmx/hw/vmx_operation.h"
#include "vmx/hw/vmx_user_vcpu.h"
#include "web/api/api.h"
#include "web/api/console_options.h"
#include "web/kernel/console_backend.h"
#include "web/kernel/http_server.h"
#include "web/site/console_site.h"

namespace lantern::root {
namespace {

// The debug console (web/): the browser UI (web/site) and the API v1 over the kernel backend,
// served by the HTTP server when the network runs (console.bind=, console.token=,
// console.readonly_open=: console_options.h). Without it the READY line says console=none.
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
}  // namespace lantern::root

extern "C" void kernel_main() {
  using namespace lantern;
  const std::string_view cmdline = kernel_boot::init_bootstrap_processor();
  (void)vmx::enable_on_this_cpu();  // without VMX it logs why; the boot goes on with vmx=0
  (void)svm::enable_on_this_cpu();  // likewise without SVM: svm=0
  // --vm: before the APs start, which each bind one; on SVM where VMX does not run
  const guest::UserVmBackend& user_vm_backend = vmx::cores_in_vmx_operation() == 0 && svm::cores_in_svm_operation() > 0
                                                  ? svm::svm_user_vm_backend()
                                                  : vmx::vmx_user_vm_backend();
  guest::build_user_vms(kernel_boot::enabled_cpus(), user_vm_backend);
  kernel_boot::start_application_processors();       // each AP runs root::ap_entry()

  // The network never fails the boot: no NIC, no link or no lease leave ip=none (logged).
  auto net_started = net::start(cmdline);
  if (!net_started) LOG_ERROR("net: %s", net_started.error().message);
  root::start_console(cmdline);
  const net::NetStatus net_status = net::status();
  kernel_boot::crash_if_asked(cmdline);
  if (cmdline_has_flag(cmdline, "bench")) {
    // Prints the BENCH lines: VMX where it runs, otherwise SVM.
    auto bench = vmx::cores_in_vmx_operation() > 0 ? vmx::run_benchmarks() : svm::run_benchmarks();
    power::exit_emulator(bench.has_value());
  }
  if (cmdline_has_flag(cmdline, "selftest")) {
    const auto summary = selftest::run_all();
    power::exit_emulator(summary.failed == 0 && summary.passed > 0);
  }

  if (guest::user_vms_requested()) guest::check_user_vms_started();
  else (void)vmx::prepare_demo_vcpu_on_this_cpu();  // off with selftest/bench/vmx.demo=0
  (void)svm::prepare_demo_vcpu_on_this_cpu();        // the same demo where SVM runs this core
  char console_port[6] = "none";  // the READY line's console=: the port, or none
  if (const uint16_t port = web::kernel::http_server_status().port; port != 0) {
    lib::format(console_port, sizeof(console_port), "%u", static_cast<unsigned>(port));
  }
  const char* hv = vmx::cores_in_vmx_operation() > 0 ? "vmx" : (svm::cores_in_svm_operation() > 0 ? "svm" : "none");
  log::contract_line("LANTERN READY cpus=%u vmx=%u vcpus=%u hv=%s svm=%u ip=%s console=%s", cpu_count(),
                     vmx::cores_in_vmx_operation(), vmx::vcpus_started() + svm::svm_vcpus_started(), hv, svm::cores_in_svm_operation(),
                     net_status.ip, console_port);
  // With a demo vCPU the BSP runs it and polls the network between exits; returns at once
  // without one.
  vmx::run_vcpu_loop_on_this_cpu(&net::poll);
  svm::run_vcpu_loop_on_this_cpu(&net::poll);
  // The BSP owns lwIP (net/stack/README.md): it polls between interrupts; the timer tick and
  // NIC interrupts wake it.
  kernel_boot::idle_loop_with(&net::poll, &net::work_pending);
}
