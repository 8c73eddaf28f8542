#include "vmx/hw/guest_vm.h"

#include <variant>

#include "guest/hw/kernel_services.h"
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/paging.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/boot/cmdline.h"
#include "kernel/core/boot_state.h"
#include "kernel/core/log.h"
#include "kernel/core/memory.h"
#include "kernel/core/time.h"
#include "kernel/lib/string.h"
#include "kernel/core/core_mailbox.h"
#include "vmx/demo_programs.h"
#include "guest/hw/vm_registry.h"
#include "vmx/hw/vcpu_registry.h"
#include "vmx/hw/vmx_operation.h"

namespace lantern::vmx {
namespace {

// A halted guest without an armed vlapic timer is woken 100 times a second.
constexpr uint64_t kGuestHaltWakeHz = 100;
// The longest exit-free stretch of a console-visible guest (arm_return_backstop): a snapshot
// waits at most this long for the owning core (within the 250 ms capture bound).
constexpr uint64_t kReturnBackstopHz = 100;

// `hz` as VMX-preemption-timer ticks: the timer counts TSC >> rate (SDM Vol. 3C 25.5.1).
uint32_t preemption_ticks_at(uint64_t hz) {
  const uint64_t ticks = (time::tsc_hz() / hz) >> capabilities()->preemption_timer_rate;
  return static_cast<uint32_t>(ticks > 0xffffffffu ? 0xffffffffu : (ticks == 0 ? 1 : ticks));
}

struct DemoSlot {
  VmxVm* vm = nullptr;
  VmxVcpu* vcpu = nullptr;
};
DemoSlot g_demo[kMaxCpus];


bool demo_enabled() {
  const std::string_view cmdline = boot_state().multiboot.cmdline.value_or("");
  if (cmdline_has_flag(cmdline, "selftest") || cmdline_has_flag(cmdline, "bench")) return false;
  if (auto v = cmdline_value(cmdline, "vmx.demo"); v && (*v == "0" || *v == "off" || *v == "no")) return false;
  return true;
}

uint8_t max_phys_bits() {
  // CPUID.80000008H:EAX[7:0] = physical-address width (SDM Vol. 2A CPUID).
  if (cpu::cpuid(0x80000000).eax >= 0x80000008) return static_cast<uint8_t>(cpu::cpuid(0x80000008).eax & 0xff);
  return 36;
}

}  // namespace

Result<VmxVm*> create_guest_vm(uint32_t vm_id, std::string_view program_name) {
  const VmxCapabilities* caps = capabilities();
  if (caps == nullptr) return make_error(ErrorCode::kUnsupported, "VMX is not available");
  if (!caps->ept || !caps->unrestricted_guest || !caps->ept_wb || !caps->ept_walk_length_4) {
    return make_error(ErrorCode::kUnsupported, "EPT with WB 4-level tables and unrestricted guest are needed");
  }
  const std::span<const uint8_t> program = TRY(guest::find_guest_program(program_name));
  if (program.size() > guest::kGuestMemoryBytes - guest::kGuestLoadAddress) {
    return make_error(ErrorCode::kInvalidArgument, "guest program larger than guest memory", program.size());
  }
  void* mem = kmalloc(sizeof(VmxVm), 16);
  if (mem == nullptr) return make_error(ErrorCode::kOutOfMemory, "no memory for a VM");
  auto* vm = new (mem) VmxVm();
  vm->vm_id = vm_id;
  if (auto r = guest::register_demo_devices(*vm, vm->uart, vm->exit_port); !r) {
    vm->~VmxVm();
    kfree(vm);
    return r.error();
  }
  auto block = memory::alloc_contiguous(guest::kGuestMemoryBytes / paging::kPageSize, guest::kGuestMemoryBytes);
  if (!block) {
    kfree(vm);
    return block.error();
  }
  vm->memory_phys = *block;
  auto* guest_ram = paging::phys_to_ptr<uint8_t>(vm->memory_phys);
  lib::mem_set(guest_ram, 0, guest::kGuestMemoryBytes);
  lib::mem_copy(guest_ram + guest::kGuestLoadAddress, program.data(), program.size());

  guest::NestedPagingFeatures features;
  features.pages_2m = caps->ept_2m_pages;
  features.pages_1g = caps->ept_1g_pages;
  features.execute_only = caps->ept_execute_only;
  features.max_phys_bits = max_phys_bits();
  auto ept = guest::NestedPageTableBuilder::create(guest::kernel_page_allocator(), features);
  Result<void> mapped = ept ? ept->map(0, vm->memory_phys, guest::kGuestMemoryBytes, guest::kAccessRwx, guest::MemoryType::kWriteBack)
                            : Result<void>(ept.error());
  if (!mapped) {
    if (ept) (void)guest::NestedPageTableBuilder::release_tables(guest::kernel_page_allocator(), ept->pml4_phys());
    vm->nested_root = 0;
    destroy_guest_vm(vm);
    return mapped.error();
  }
  vm->nested_root = ept->eptp();
  return vm;
}

void destroy_guest_vm(VmxVm* vm) {
  if (vm == nullptr) return;
  if (vm->nested_root != 0) (void)guest::NestedPageTableBuilder::release_tables(guest::kernel_page_allocator(), vm->nested_root & guest::ept_entry::kAddressMask);
  if (vm->memory_phys != 0) {
    if (auto r = memory::free_contiguous(vm->memory_phys, guest::kGuestMemoryBytes / paging::kPageSize); !r) {
      LOG_ERROR("vmx: vm%u: guest memory not freed: %s (detail 0x%llx)", vm->vm_id, r.error().message,
                static_cast<unsigned long long>(r.error().detail));
    }
  }
  vm->~VmxVm();
  kfree(vm);
}

Result<VmxVcpu*> create_bound_vcpu(VmxVm& vm, uint32_t vcpu_id) {
  VmxVcpu* vcpu = TRY(VmxVcpu::create(vm.vm_id, vcpu_id));
  GuestEntry entry;
  entry.mode = GuestMode::kRealMode;
  entry.cs_selector = 0;
  entry.rip = guest::kGuestLoadAddress;
  entry.rsp = guest::kGuestStackTop;
  Result<void> r = vcpu->setup(vm.nested_root, entry);
  if (r) r = vcpu->join_group(&vm.vcpus);
  if (r) r = vcpu->bind_to_current_processor();
  if (!r) {
    VmxVcpu::destroy(vcpu);
    return r.error();
  }
  return vcpu;
}

Result<void> arm_return_backstop(VmxVcpu& vcpu) {
  auto armed = vcpu.set_return_backstop(preemption_ticks_at(kReturnBackstopHz));
  if (!armed && armed.error().code != ErrorCode::kUnsupported) return armed.error();
  return ok();
}

Result<bool> handle_device_exit(guest::GuestVm& vm, VmxVcpu& vcpu, const VmExit& exit) {
  // A vCPU without the VM attached (some self-tests) returns port I/O here: the same bus.
  if (const auto* w = std::get_if<exits::IoWrite>(&exit)) {
    vm.ports.write(w->port, w->width, w->data);
    return true;
  }
  if (const auto* r = std::get_if<exits::IoRead>(&exit)) {
    TRY(vcpu.complete_io_read(vm.ports.read(r->port, r->width)));
    return true;
  }
  if (std::holds_alternative<exits::MsrRead>(exit)) {
    TRY(vcpu.complete_msr_read(0));
    return true;
  }
  if (std::holds_alternative<exits::MsrWrite>(exit) || std::holds_alternative<exits::Nothing>(exit) ||
      std::holds_alternative<exits::ExternalInterrupt>(exit)) {
    return true;
  }
  if (std::holds_alternative<exits::Halt>(exit)) {
    // The guest waits with no vlapic timer armed (or IF = 0): a 100 Hz wake-up, preferably
    // the VMX preemption timer, with the guest in the HLT activity state (the core idles inside
    // VMX non-root); otherwise this core halts until its next host interrupt.
    if (vcpu.can_sleep_in_hlt()) {
      TRY(vcpu.sleep_in_hlt(preemption_ticks_at(kGuestHaltWakeHz)));
      return true;
    }
    const bool were_enabled = cpu::interrupts_enabled();
    cpu::enable_interrupts_and_halt();
    if (!were_enabled) cpu::disable_interrupts();
    return true;
  }
  if (const auto* h = std::get_if<exits::Hypercall>(&exit)) {
    switch (h->nr) {
      case guest::kHypercallNull:
      case guest::kHypercallHeartbeat:
        vcpu.set_hypercall_result(0);
        return true;
      case guest::kHypercallInjectInterrupt: {
        auto queued = vcpu.queue_event(guest::PendingEventType::kExternalInterrupt,
                                                static_cast<uint32_t>(h->args[0]));
        vcpu.set_hypercall_result(queued ? 0 : ~uint64_t{0});
        return true;
      }
      default:
        return false;
    }
  }
  return false;
}

Result<void> prepare_demo_vcpu_on_this_cpu() {
  if (!this_cpu_in_vmx_operation()) return make_error(ErrorCode::kUnsupported, "this core is not in VMX operation");
  if (!demo_enabled()) return make_error(ErrorCode::kInvalidState, "the demo guest is off for this boot mode");
  const uint32_t index = this_cpu().index;
  const auto program = demo_program_for_cpu(
      cmdline_value(boot_state().multiboot.cmdline.value_or(""), kDemoProgramsOption), index);
  if (!program) {
    LOG_ERROR("vmx: cpu%u: vmx.demo.programs: %s; no guest on this core", index, program.error().message);
    return program.error();
  }
  auto created = create_guest_vm(index, *program);
  if (!created) {
    LOG_ERROR("vmx: cpu%u: guest program \"%.*s\": %s", index, static_cast<int>(program->size()), program->data(),
              created.error().message);
    return created.error();
  }
  VmxVm* vm = *created;
  auto vcpu = create_bound_vcpu(*vm, 0);
  if (!vcpu) {
    LOG_ERROR("vmx: cpu%u: demo vCPU: %s (detail %llu)", index, vcpu.error().message,
              static_cast<unsigned long long>(vcpu.error().detail));
    return vcpu.error();
  }
  if (auto armed = arm_return_backstop(**vcpu); !armed) {
    LOG_ERROR("vmx: cpu%u: demo vCPU: return backstop: %s", index, armed.error().message);
    VmxVcpu::destroy(*vcpu);
    destroy_guest_vm(vm);
    return armed.error();
  }
  // The demo's devices and MSR policy live in the core: port I/O and unknown MSRs never leave
  // run() (reads 0, writes dropped, as handle_device_exit() answers them).
  vm->unknown_msrs = guest::UnknownMsrPolicy::kReadZeroIgnoreWrite;
  vm->self_interrupt_hypercall = guest::kHypercallInjectInterrupt;
  (*vcpu)->attach_vm(vm);
  g_demo[index] = DemoSlot{vm, *vcpu};
  // The console (web/kernel/) finds the demo through the registry; the demo lives until reboot.
  if (auto r = guest::publish_vm(*vm, *program); !r) LOG_ERROR("vmx: cpu%u: publish VM: %s", index, r.error().message);
  if (auto r = publish_vcpu(*vm, **vcpu); !r) LOG_ERROR("vmx: cpu%u: publish vCPU: %s", index, r.error().message);
  LOG_INFO("vmx: cpu%u: demo VM %u (%.*s) with vCPU 0 bound here", index, vm->vm_id,
           static_cast<int>(program->size()), program->data());
  return ok();
}

void run_vcpu_loop_on_this_cpu(HostWork host_work) {
  const uint32_t index = this_cpu().index;
  if (index >= kMaxCpus || g_demo[index].vcpu == nullptr) return;
  VmxVm& vm = *g_demo[index].vm;
  VmxVcpu& vcpu = *g_demo[index].vcpu;
  const char* why = "the run loop stopped";  // recorded on the vCPU when the loop ends
  for (;;) {
    auto exit = vcpu.run();
    if (!exit) {
      LOG_ERROR("vmx: vm%u vcpu%u: run failed: %s (%s, detail %llu)", vm.vm_id, vcpu.vcpu_id(),
                exit.error().message, error_code_name(exit.error().code),
                static_cast<unsigned long long>(exit.error().detail));
      why = exit.error().message;  // run()'s static text (the stop reason when it stopped the vCPU)
      break;
    }
    auto handled = handle_device_exit(vm, vcpu, *exit);
    if (!handled) {
      LOG_ERROR("vmx: vm%u: device exit: %s", vm.vm_id, handled.error().message);
      why = handled.error().message;
      break;
    }
    if (!*handled) {
      if (std::holds_alternative<exits::Hypercall>(*exit)) {
        vcpu.set_hypercall_result(~uint64_t{0});  // unknown hypercall
        continue;
      }
      const std::string_view kind = vm_exit_kind_name(*exit);
      LOG_ERROR("vmx: vm%u vcpu%u: %.*s; the vCPU stops", vm.vm_id, vcpu.vcpu_id(), static_cast<int>(kind.size()),
                kind.data());
      why = unhandled_exit_stop_reason(*exit);
      break;
    }
    if (vm.exit_requested) {
      LOG_INFO("vmx: vm%u: guest wrote 0x%x to the exit port", vm.vm_id, vm.exit_status);
      why = "the guest wrote to the exit port";
      break;
    }
    // Host work only after a host interrupt (the NIC's, the timer tick that drives lwIP's
    // timeouts, a mailbox post's wake-up IPI), a HLT, or a return the core asked for (Nothing:
    // request_return() reached through the backstop): handled-inside exits never get here.
    if (std::holds_alternative<exits::ExternalInterrupt>(*exit) ||
        std::holds_alternative<exits::Halt>(*exit) || std::holds_alternative<exits::Nothing>(*exit)) {
      if (host_work != nullptr) host_work();
      // Work posted to this core (core_mailbox.h): it may run guests of its own, so the demo
      // vCPU's VMCS is made current again afterwards.
      if (poll_core_mailbox()) {
        if (auto r = vcpu.reload_on_this_cpu(); !r) {
          LOG_ERROR("vmx: vm%u: cannot reload the VMCS after mailbox work: %s", vm.vm_id, r.error().message);
          why = r.error().message;
          break;
        }
      }
    }
  }
  vcpu.stop_by_owner(why);
  LOG_WARN("vmx: cpu%u: demo vCPU stopped after %llu exits; this core idles", index,
           static_cast<unsigned long long>(vcpu.total_exits()));
}

Result<void> run_benchmarks() {
  if (!this_cpu_in_vmx_operation()) {
    const char* why = unavailable_reason();
    LOG_WARN("bench: skipped: no VMX (%s)", why != nullptr ? why : "this core is not in VMX operation");
    return make_error(ErrorCode::kUnsupported, "bench needs VMX");
  }
  // Ids as in tests/guests/bench.S; id 0 is the baseline (a NOP between the two RDTSCs).
  constexpr const char* kNames[] = {"baseline", "vmcall_roundtrip", "cpuid_exit", "io_exit", "msr_exit",
                                    "inject_interrupt"};
  constexpr size_t kCount = sizeof(kNames) / sizeof(kNames[0]);
  struct Figure {
    bool present = false;
    uint64_t total = 0;
    uint64_t iterations = 0;
    uint64_t minimum = 0;
  } figures[kCount];

  VmxVm* vm = TRY(create_guest_vm(1000, "bench"));
  auto bound = create_bound_vcpu(*vm, 0);
  if (!bound) {
    destroy_guest_vm(vm);
    return bound.error();
  }
  VmxVcpu* vcpu = *bound;
  vm->unknown_msrs = guest::UnknownMsrPolicy::kReadZeroIgnoreWrite;  // as the demo
  vm->self_interrupt_hypercall = guest::kHypercallInjectInterrupt;
  vcpu->attach_vm(vm);
  Result<void> outcome = ok();
  for (;;) {
    auto exit = vcpu->run();
    if (!exit) {
      outcome = exit.error();
      break;
    }
    if (const auto* h = std::get_if<exits::Hypercall>(&*exit); h != nullptr && h->nr == guest::kHypercallBenchResult) {
      if (h->args[0] < kCount) {
        figures[h->args[0]] = Figure{true, h->args[1], h->args[2], h->args[3]};
      }
      vcpu->set_hypercall_result(0);
      continue;
    }
    auto handled = handle_device_exit(*vm, *vcpu, *exit);
    if (!handled) {
      outcome = handled.error();
      break;
    }
    if (!*handled) {
      outcome = make_error(ErrorCode::kInvalidState, "bench guest made an exit the bench does not handle");
      break;
    }
    if (vm->exit_requested) break;
  }
  if (!outcome) {
    LOG_ERROR("bench: the guest failed: %s (detail %llu)", outcome.error().message,
              static_cast<unsigned long long>(outcome.error().detail));
    VmxVcpu::destroy(vcpu);
    destroy_guest_vm(vm);
    return outcome;
  }
  if (!figures[0].present) {
    VmxVcpu::destroy(vcpu);
    destroy_guest_vm(vm);
    return make_error(ErrorCode::kInvalidState, "bench guest reported no baseline");
  }
  const uint64_t baseline = figures[0].minimum;
  for (size_t i = 1; i < kCount; ++i) {
    const Figure& f = figures[i];
    if (!f.present || f.iterations == 0) {
      LOG_ERROR("bench: %s: no result from the guest", kNames[i]);
      continue;
    }
    const uint64_t cost = f.minimum > baseline ? f.minimum - baseline : 0;
    const uint64_t average = f.total / f.iterations;
    LOG_INFO("bench: %s: min %llu, mean %llu, baseline %llu ticks over %llu iterations", kNames[i],
             static_cast<unsigned long long>(f.minimum), static_cast<unsigned long long>(average),
             static_cast<unsigned long long>(baseline), static_cast<unsigned long long>(f.iterations));
    log::contract_line("BENCH %s %llu ticks", kNames[i], static_cast<unsigned long long>(cost));
  }
  VmxVcpu::destroy(vcpu);
  destroy_guest_vm(vm);
  return ok();
}

}  // namespace lantern::vmx
