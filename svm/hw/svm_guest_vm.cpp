#include "svm/hw/svm_guest_vm.h"

#include <new>

#include "guest/nested_paging.h"
#include "guest/hw/kernel_services.h"
#include "kernel/arch/x86_64/apic.h"
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/interrupts.h"
#include "kernel/arch/x86_64/paging.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/boot/cmdline.h"
#include "kernel/core/boot_state.h"
#include "kernel/core/log.h"
#include "kernel/core/memory.h"
#include "kernel/core/spinlock.h"
#include "kernel/lib/string.h"
#include "svm/hw/svm_operation.h"
#include "svm/hypercall_sites.h"
#include "kernel/core/core_mailbox.h"
#include "guest/hw/user_vms.h"
#include "guest/hw/core_backend.h"

namespace lantern::svm {
namespace {

// SVM has no preemption timer: a halted guest's vlapic timer is noticed at the core's next host
// interrupt. The BSP's periodic tick runs from boot (kernel/core/kernel_boot.cpp); an AP running a
// guest starts the same tick.
constexpr uint32_t kHostTickHz = 100;



IrqSpinlock g_registry_lock;
PublishedSvmVm g_published[kMaxPublishedSvmVms];  // guarded by g_registry_lock
size_t g_published_count = 0;                     // guarded by g_registry_lock

PublishedSvmVm g_demo[kMaxCpus];  // this core's demo, written before the core is online

bool demo_enabled() {
  const std::string_view cmdline = boot_state().multiboot.cmdline.value_or("");
  if (cmdline_has_flag(cmdline, "selftest") || cmdline_has_flag(cmdline, "bench")) return false;
  if (guest::user_vms_requested()) return false;  // the user's VMs (--vm) take the cores
  for (std::string_view key : {"vmx.demo", "svm.demo"}) {
    if (auto v = cmdline_value(cmdline, key); v && (*v == "0" || *v == "off" || *v == "no")) return false;
  }
  return true;
}

uint8_t max_phys_bits() {
  // CPUID 8000_0008H:EAX[7:0] physical-address size (APM Vol. 3 E.4.7).
  if (cpu::cpuid(0x80000000).eax >= 0x80000008) return static_cast<uint8_t>(cpu::cpuid(0x80000008).eax & 0xff);
  return 40;
}

Result<void> publish(SvmGuestVm* vm, SvmVcpu* vcpu) {
  IrqSpinlockGuard guard(g_registry_lock);
  for (size_t i = 0; i < g_published_count; ++i) {
    if (g_published[i].vcpu->vm_id() == vm->vm_id) return make_error(ErrorCode::kAlreadyExists, "VM already published", vm->vm_id);
  }
  if (g_published_count == kMaxPublishedSvmVms) return make_error(ErrorCode::kFull, "the VM table is full");
  g_published[g_published_count++] = PublishedSvmVm{vm, vcpu};
  return ok();
}

// One capture buffer per target core, written by that core (as vmx/hw/vcpu_capture.cpp: a
// capture that timed out still lands here later, and the busy mailbox slot keeps it unshared).
SvmCapture g_remote_capture[kMaxCpus];

Result<void> capture_on_owner(uint64_t vcpu_address) {
  const uint32_t me = this_cpu().index;
  auto* vcpu = reinterpret_cast<SvmVcpu*>(vcpu_address);
  if (me >= kMaxCpus || vcpu->bound_cpu() != static_cast<int32_t>(me)) {
    return make_error(ErrorCode::kInvalidState, "the vCPU is not bound to this core", me);
  }
  vcpu->capture(g_remote_capture[me]);
  return ok();
}

}  // namespace

Result<void> SvmVcpuGroup::join(SvmVcpu& vcpu) {
  if (vcpu.vcpu_id() >= kMaxVcpus) return make_error(ErrorCode::kInvalidArgument, "vCPU id past the group", vcpu.vcpu_id());
  SvmVcpu* expected = nullptr;
  if (!members_[vcpu.vcpu_id()].compare_exchange_strong(expected, &vcpu, std::memory_order_acq_rel)) {
    return make_error(ErrorCode::kAlreadyExists, "a vCPU with this id is in the group", vcpu.vcpu_id());
  }
  vcpu.set_ipi_sink(&deliver, this);
  return ok();
}

void SvmVcpuGroup::leave(SvmVcpu& vcpu) {
  if (vcpu.vcpu_id() >= kMaxVcpus) return;
  SvmVcpu* expected = &vcpu;
  (void)members_[vcpu.vcpu_id()].compare_exchange_strong(expected, nullptr, std::memory_order_acq_rel);
  vcpu.set_ipi_sink(nullptr, nullptr);
}

void SvmVcpuGroup::deliver(void* context, const guest::IpiRequest& ipi, bool x2apic) {
  auto* group = static_cast<SvmVcpuGroup*>(context);
  guest::deliver_ipi(ipi, ipi.source_apic_id, x2apic,
                     [group](uint32_t id) { return group->members_[id].load(std::memory_order_acquire); });
}

void destroy_svm_guest_vm(SvmGuestVm* vm) {
  if (vm == nullptr) return;
  if (vm->npt_pml4_phys != 0) (void)guest::NestedPageTableBuilder::release_tables(guest::kernel_page_allocator(), vm->npt_pml4_phys);
  if (vm->memory_phys != 0) {
    (void)memory::free_contiguous(vm->memory_phys, guest::kGuestMemoryBytes / paging::kPageSize);
  }
  vm->~SvmGuestVm();
  kfree(vm);
}

Result<SvmGuestVm*> create_svm_guest_vm(uint32_t vm_id, std::string_view program_name) {
  const std::span<const uint8_t> program = TRY(guest::find_guest_program(program_name));
  if (program.size() > guest::kGuestMemoryBytes - guest::kGuestLoadAddress) {
    return make_error(ErrorCode::kInvalidArgument, "guest program larger than guest memory", program.size());
  }
  void* mem = kmalloc(sizeof(SvmGuestVm), 16);
  if (mem == nullptr) return make_error(ErrorCode::kOutOfMemory, "no memory for a VM");
  auto* vm = new (mem) SvmGuestVm();
  vm->vm_id = vm_id;
  for (size_t i = 0; i < program_name.size() && i < sizeof(vm->program) - 1; ++i) vm->program[i] = program_name[i];
  vm->unknown_msrs = guest::UnknownMsrPolicy::kReadZeroIgnoreWrite;
  Result<void> r = guest::register_demo_devices(*vm, vm->uart, vm->exit_port);
  if (r) {
    auto block = memory::alloc_contiguous(guest::kGuestMemoryBytes / paging::kPageSize, guest::kGuestMemoryBytes);
    if (block) {
      vm->memory_phys = *block;
    } else {
      r = block.error();
    }
  }
  if (r) {
    auto* ram = paging::phys_to_ptr<uint8_t>(vm->memory_phys);
    lib::mem_set(ram, 0, guest::kGuestMemoryBytes);
    lib::mem_copy(ram + guest::kGuestLoadAddress, program.data(), program.size());
    // The program's listed VMCALLs become VMMCALL (svm/hypercall_sites.h).
    auto rewritten = rewrite_hypercalls_to_vmmcall(
        std::span<uint8_t>(ram + guest::kGuestLoadAddress, program.size()), guest::kGuestLoadAddress);
    if (!rewritten) r = rewritten.error();
  }
  if (r) {
    guest::NestedPagingFeatures npt;
    npt.format = guest::PageTableFormat::kNpt;
    npt.pages_2m = true;  // NPT has the host's long-mode page sizes (APM 15.25.1)
    npt.max_phys_bits = max_phys_bits();
    npt.no_execute = (cpu::rdmsr(cpu::kMsrEfer) & (1u << 11)) != 0;  // EFER.NXE (APM 3.1.7)
    auto tables = guest::NestedPageTableBuilder::create(guest::kernel_page_allocator(), npt);
    if (tables) {
      vm->npt_pml4_phys = tables->pml4_phys();
      vm->nested_root = tables->ncr3();
      r = tables->map(0, vm->memory_phys, guest::kGuestMemoryBytes, guest::kAccessRwx, guest::MemoryType::kWriteBack);
    } else {
      r = tables.error();
    }
  }
  if (!r) {
    destroy_svm_guest_vm(vm);
    return r.error();
  }
  return vm;
}


size_t published_svm_vms(PublishedSvmVm* out, size_t capacity) {
  IrqSpinlockGuard guard(g_registry_lock);
  const size_t n = g_published_count < capacity ? g_published_count : capacity;
  for (size_t i = 0; i < n; ++i) out[i] = g_published[i];
  return n;
}

SvmGuestVm* find_published_svm_vm(uint32_t vm_id) {
  IrqSpinlockGuard guard(g_registry_lock);
  for (size_t i = 0; i < g_published_count; ++i) {
    if (g_published[i].vm != nullptr && g_published[i].vm->vm_id == vm_id) return g_published[i].vm;
  }
  return nullptr;
}

Result<void> publish_user_vcpu(SvmVcpu* vcpu) {
  IrqSpinlockGuard guard(g_registry_lock);
  if (g_published_count == kMaxPublishedSvmVms) return make_error(ErrorCode::kFull, "the VM table is full");
  g_published[g_published_count++] = PublishedSvmVm{nullptr, vcpu};
  return ok();
}

SvmVcpu* find_published_svm_vcpu(uint32_t vm_id, uint32_t vcpu_id) {
  IrqSpinlockGuard guard(g_registry_lock);
  for (size_t i = 0; i < g_published_count; ++i) {
    if (g_published[i].vcpu->vm_id() == vm_id && g_published[i].vcpu->vcpu_id() == vcpu_id) return g_published[i].vcpu;
  }
  return nullptr;
}

Result<void> capture_svm_vcpu(SvmVcpu& vcpu, SvmCapture& out, uint64_t timeout_us) {
  const int32_t owner = vcpu.bound_cpu();
  if (owner < 0 || static_cast<uint32_t>(owner) >= kMaxCpus) {
    return make_error(ErrorCode::kInvalidState, "the vCPU is bound to no known core");
  }
  const auto core = static_cast<uint32_t>(owner);
  if (core == this_cpu().index) {
    vcpu.capture(out);
    return ok();
  }
  TRY(post_core_work(core, &capture_on_owner, reinterpret_cast<uint64_t>(&vcpu)));
  TRY(wait_core_work(core, timeout_us));
  out = g_remote_capture[core];
  return ok();
}

Result<void> prepare_demo_vcpu_on_this_cpu() {
  if (!this_cpu_in_svm_operation()) return make_error(ErrorCode::kUnsupported, "this core is not in SVM operation");
  if (guest::this_core_backend() == guest::CoreBackend::kVmx) return make_error(ErrorCode::kInvalidState, "the VMX backend runs this core");
  if (!demo_enabled()) return make_error(ErrorCode::kInvalidState, "the demo guest is off for this boot mode");
  const SvmFeatures* f = features();
  if (f == nullptr || !f->nested_paging) return make_error(ErrorCode::kUnsupported, "SVM without nested paging");
  const uint32_t index = this_cpu().index;
  SvmGuestVm* vm = TRY(create_svm_guest_vm(index, "demo"));
  auto vcpu = SvmVcpu::create(*vm, 0, vm->nested_root, guest::kGuestLoadAddress, guest::kGuestStackTop);
  if (!vcpu) {
    LOG_ERROR("svm: cpu%u: demo vCPU: %s (detail %llu)", index, vcpu.error().message,
              static_cast<unsigned long long>(vcpu.error().detail));
    destroy_svm_guest_vm(vm);
    return vcpu.error();
  }
  if (auto joined = vm->vcpus.join(**vcpu); !joined) {
    SvmVcpu::destroy(*vcpu);
    destroy_svm_guest_vm(vm);
    return joined.error();
  }
  g_demo[index] = PublishedSvmVm{vm, *vcpu};
  // The console (web/kernel/) finds the demo through the table; it lives until reboot.
  if (auto r = publish(vm, *vcpu); !r) LOG_ERROR("svm: cpu%u: publish VM: %s", index, r.error().message);
  LOG_INFO("svm: cpu%u: demo VM %u with vCPU 0 bound here", index, vm->vm_id);
  return ok();
}

void run_vcpu_loop_on_this_cpu(HostWork host_work) {
  const uint32_t index = this_cpu().index;
  if (index >= kMaxCpus || g_demo[index].vcpu == nullptr) return;
  SvmGuestVm& vm = *g_demo[index].vm;
  SvmVcpu& vcpu = *g_demo[index].vcpu;
  if (index != 0) apic::start_periodic_timer(kHostTickHz, interrupts::kVectorTimer);
  // The loop runs with interrupts on (APs arrive with IF = 0): VMRUN's INTR exits leave the host
  // interrupt pending until run() restores IF, and it is taken there.
  cpu::enable_interrupts();
  for (;;) {
    auto outcome = vcpu.run();
    if (!outcome) {
      LOG_ERROR("svm: vm%u vcpu%u: run failed: %s (%s, detail %llu)", vm.vm_id, vcpu.vcpu_id(),
                outcome.error().message, error_code_name(outcome.error().code),
                static_cast<unsigned long long>(outcome.error().detail));
      break;
    }
    if (*outcome == SvmRunOutcome::kStopped) break;
    if (vm.exit_requested) {
      LOG_INFO("svm: vm%u: guest wrote 0x%x to the exit port", vm.vm_id, vm.exit_status);
      break;
    }
    // Host work at every return: after a host interrupt (the NIC's, the timer tick, a mailbox
    // wake-up IPI), while the guest halts, or after a run of exits handled inside.
    if (host_work != nullptr) host_work();
    (void)poll_core_mailbox();
  }
  LOG_WARN("svm: cpu%u: demo vCPU stopped after %llu exits; this core idles", index,
           static_cast<unsigned long long>(vcpu.total_exits()));
}

namespace {

// Ids as in tests/guests/bench.S; id 0 is the baseline (a NOP between the two RDTSCs).
constexpr const char* kBenchNames[] = {"baseline", "svm_vmmcall_roundtrip", "svm_cpuid_exit", "svm_io_exit",
                                       "svm_msr_exit", "svm_inject_interrupt"};
constexpr size_t kBenchCount = sizeof(kBenchNames) / sizeof(kBenchNames[0]);
struct BenchFigure {
  bool present = false;
  uint64_t total = 0;
  uint64_t iterations = 0;
  uint64_t minimum = 0;
};

bool record_bench_result(void* context, uint64_t nr, const uint64_t (&args)[SvmVcpu::kHypercallArgs],
                         uint64_t& result) {
  if (nr != guest::kHypercallBenchResult) return false;
  auto* figures = static_cast<BenchFigure*>(context);
  if (args[0] < kBenchCount) figures[args[0]] = BenchFigure{true, args[1], args[2], args[3]};
  result = 0;
  return true;
}

}  // namespace

Result<void> run_benchmarks() {
  if (!this_cpu_in_svm_operation()) {
    const char* why = unavailable_reason();
    LOG_WARN("bench: skipped: no VMX or SVM (%s)", why != nullptr ? why : "this core is not in SVM operation");
    return make_error(ErrorCode::kUnsupported, "bench needs VMX or SVM");
  }
  BenchFigure figures[kBenchCount];
  SvmGuestVm* vm = TRY(create_svm_guest_vm(1000, "bench"));
  auto created = SvmVcpu::create(*vm, 0, vm->nested_root, guest::kGuestLoadAddress, guest::kGuestStackTop);
  if (!created) {
    destroy_svm_guest_vm(vm);
    return created.error();
  }
  SvmVcpu* vcpu = *created;
  vcpu->set_hypercall_handler(&record_bench_result, figures);
  cpu::enable_interrupts();
  Result<void> outcome = ok();
  while (!vm->exit_requested) {
    auto step = vcpu->run();
    if (!step) {
      outcome = step.error();
      break;
    }
    if (*step == SvmRunOutcome::kStopped) {
      outcome = make_error(ErrorCode::kInvalidState, "the bench guest stopped", 0);
      break;
    }
  }
  const char* stop_message = vcpu->stop_message();
  SvmVcpu::destroy(vcpu);
  destroy_svm_guest_vm(vm);
  if (!outcome) {
    LOG_ERROR("bench: the guest failed: %s (%s)", outcome.error().message,
              stop_message != nullptr ? stop_message : "no stop reason");
    return outcome;
  }
  if (!figures[0].present) return make_error(ErrorCode::kInvalidState, "bench guest reported no baseline");
  const uint64_t baseline = figures[0].minimum;
  for (size_t i = 1; i < kBenchCount; ++i) {
    const BenchFigure& f = figures[i];
    if (!f.present || f.iterations == 0) {
      LOG_ERROR("bench: %s: no result from the guest", kBenchNames[i]);
      continue;
    }
    const uint64_t cost = f.minimum > baseline ? f.minimum - baseline : 0;
    LOG_INFO("bench: %s: min %llu, mean %llu, baseline %llu ticks over %llu iterations", kBenchNames[i],
             static_cast<unsigned long long>(f.minimum), static_cast<unsigned long long>(f.total / f.iterations),
             static_cast<unsigned long long>(baseline), static_cast<unsigned long long>(f.iterations));
    log::contract_line("BENCH %s %llu ticks", kBenchNames[i], static_cast<unsigned long long>(cost));
  }
  return ok();
}

}  // namespace lantern::svm
