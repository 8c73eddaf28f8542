#include "web/kernel/console_backend.h"

#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/core/boot_state.h"
#include "kernel/core/log.h"
#include "kernel/core/memory.h"
#include "kernel/core/time.h"
#include "net/stack/net.h"
#include "svm/exit_code.h"
#include "svm/hw/svm_guest_vm.h"
#include "svm/hw/svm_operation.h"
#include "svm/svm_capabilities.h"
#include "guest/hw/user_vms.h"
#include "vmx/hw/vcpu_capture.h"
#include "guest/hw/vm_registry.h"
#include "vmx/hw/vcpu_registry.h"
#include "vmx/hw/vmx_operation.h"
#include "web/kernel/http_server.h"
#include "web/kernel/net_pools.h"

namespace lantern::web {
namespace {

using api::VcpuState;

VcpuState state_of(bool stopped, bool parked, bool launched) {
  if (stopped) return VcpuState::kStopped;
  if (parked) return VcpuState::kHalted;
  return launched ? VcpuState::kRunning : VcpuState::kCreated;
}

// A published VM's VMX vCPUs (vmx/hw/vcpu_registry.h), in publication order.
struct VmxVcpusOf {
  explicit VmxVcpusOf(uint32_t vm_id) : count(vmx::published_vcpus(vm_id, at, guest::kMaxVcpusPerVm)) {}
  vmx::VmxVcpu* const* begin() const { return at; }
  vmx::VmxVcpu* const* end() const { return at + count; }
  vmx::VmxVcpu* at[guest::kMaxVcpusPerVm] = {};
  size_t count;
};

// Runs on any core: only what the owner published (guest/published_vcpu_state.h), the ids fixed
// at creation, the atomic binding and the locked event queue; the same for both backends.
template <typename Vcpu>
api::VcpuSummary published_summary(const Vcpu& vcpu) {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  const guest::PublishedVcpuState& p = vcpu.published();
  api::VcpuSummary s;
  s.vm = vcpu.vm_id();
  s.vcpu = vcpu.vcpu_id();
  s.cpu = vcpu.bound_cpu();
  const bool launched = p.launched.load(kRelaxed);
  const char* stop_message = p.stop_message.load(kRelaxed);
  s.launched = launched;
  s.state = state_of(stop_message != nullptr, p.parked.load(kRelaxed), launched);
  s.in_hlt = p.halted.load(kRelaxed);
  s.exits = p.total_exits.load(kRelaxed);
  if (stop_message != nullptr) s.stop_reason = stop_message;
  s.pending_events = vcpu.pending_event_count();
  s.events_injected = p.events_injected.load(kRelaxed);
  return s;
}

api::VcpuSummary summary_of(const vmx::VmxVcpu& vcpu) {
  api::VcpuSummary s = published_summary(vcpu);
  // SDM Vol. 3C 24.9.1: bits 15:0 of VM_EXIT_REASON are the basic exit reason.
  if (s.exits > 0) s.last_exit_reason = vcpu.published().last_exit_code.load(std::memory_order_relaxed) & 0xffff;
  for (uint32_t reason = 0; reason < vmx::kExitReasonTableSize; ++reason) {
    if (const uint64_t n = vcpu.exit_count_relaxed(reason); n != 0) s.exit_counts.push_back({reason, n});
  }
  return s;
}

// A captured field by its SDM name; 0 when this CPU lacks it or nothing was captured.
uint64_t field_value(const vmx::VcpuCapture& c, std::string_view name) {
  const Result<vmx::VmcsFieldRef> ref = vmx::find_field_by_name(name);
  if (!ref) return 0;
  const auto i = static_cast<size_t>(ref->info - vmx::kVmcsFields);
  return c.vmcs_supported[i] ? c.vmcs_values[i] : 0;
}

api::VcpuSnapshot snapshot_of(const vmx::VcpuCapture& c, const vmx::VmxVcpu& vcpu) {
  api::VcpuSnapshot s;
  s.summary.vm = c.vm;
  s.summary.vcpu = c.vcpu;
  s.summary.cpu = c.cpu;
  s.summary.launched = c.launched;
  s.summary.state = state_of(c.stopped, c.parked, c.launched);
  s.summary.in_hlt = c.halted;
  s.summary.exits = c.total_exits;
  if (c.recent_count > 0) s.summary.last_exit_reason = c.recent[0].reason & 0xffff;
  if (c.stopped && c.stop_message != nullptr) s.summary.stop_reason = c.stop_message;
  s.summary.pending_events = vcpu.pending_event_count();
  s.summary.events_injected = c.events_injected;
  s.regs = c.regs;
  s.rsp = field_value(c, "GUEST_RSP");
  s.rip = field_value(c, "GUEST_RIP");
  s.rflags = field_value(c, "GUEST_RFLAGS");
  s.cr0 = field_value(c, "GUEST_CR0");
  s.cr2 = c.cr2;
  s.cr3 = field_value(c, "GUEST_CR3");
  s.cr4 = field_value(c, "GUEST_CR4");
  s.efer = field_value(c, "GUEST_IA32_EFER");
  // Segment fields by name (SDM Vol. 3C 24.4.1): selector, base, limit, access rights.
  static constexpr std::string_view kSegments[8] = {"ES", "CS", "SS", "DS", "FS", "GS", "LDTR", "TR"};
  for (size_t i = 0; i < 8; ++i) {
    auto field = [&](std::string_view suffix) {
      return field_value(c, "GUEST_" + std::string(kSegments[i]) + "_" + std::string(suffix));
    };
    s.segments[i].selector = static_cast<uint16_t>(field("SELECTOR"));
    s.segments[i].base = field("BASE");
    s.segments[i].limit = static_cast<uint32_t>(field("LIMIT"));
    s.segments[i].access_rights = static_cast<uint32_t>(field("AR_BYTES"));
  }
  if (c.vmcs_valid) {
    for (size_t i = 0; i < vmx::kVmcsFieldCount; ++i) {
      if (c.vmcs_supported[i]) s.vmcs.push_back(api::VmcsValue{static_cast<uint16_t>(i), c.vmcs_values[i]});
    }
  }
  for (size_t r = 0; r < s.exit_counts.size() && r < c.exit_counts.size(); ++r)
    s.exit_counts[r] = c.exit_counts[r];
  for (size_t i = 0; i < c.recent_count; ++i) {
    const vmx::ExitRecord& e = c.recent[i];
    s.recent_exits.push_back(api::ExitRecordView{e.reason, e.qualification, e.rip, e.tsc});
  }
  s.tsc = c.tsc;
  return s;
}

api::VmSummary user_vm_summary(const guest::UserVmStatus& u) {
  api::VmSummary s;
  s.vm = u.vm;
  s.kind = api::VmKind::kUser;
  s.name = u.name;
  s.program = u.name;
  s.kernel_format = u.kernel_format;
  s.cmdline = u.cmdline;
  s.memory_bytes = u.memory_bytes;
  s.vcpu_count = u.vcpu_count;
  if (u.cpu >= 0) s.cpu = u.cpu;
  s.console_bytes = u.console_bytes;
  s.resets = u.resets;
  switch (u.state) {
    case guest::UserVmState::kStarting:
    case guest::UserVmState::kRunning: s.state = api::VmState::kRunning; break;
    case guest::UserVmState::kExited:
      s.state = api::VmState::kExited;
      s.exit_code = u.exit_code;
      s.exit_status = static_cast<uint32_t>(u.exit_status > 0xffffffffu ? 0xffffffffu : u.exit_status);
      s.exit_cause = u.exit_cause;
      break;
    case guest::UserVmState::kFailed:
      s.state = api::VmState::kFailed;
      s.failure = u.failure;
      break;
  }
  api::VmDeviceCounters d;
  d.uart_bytes_in = u.devices.uart_bytes_in;
  d.uart_bytes_out = u.devices.uart_bytes_out;
  d.uart_bytes_read = u.devices.uart_bytes_read;
  d.uart_input_refused = u.devices.uart_input_refused;
  d.unclaimed_port_reads = u.devices.unclaimed_port_reads;
  d.unclaimed_port_writes = u.devices.unclaimed_port_writes;
  d.unclaimed_accesses_unlisted = u.devices.unclaimed_accesses_unlisted;
  for (const auto& p : u.unclaimed_ports)
    d.unclaimed_ports.push_back(api::PortCount{p.port, p.reads, p.writes});
  s.devices = std::move(d);
  return s;
}

// ---- SVM vCPUs ----

api::VcpuSummary svm_summary_of(const svm::SvmVcpu& vcpu) {
  api::VcpuSummary s = published_summary(vcpu);
  s.backend = api::Backend::kSvm;
  if (s.exits > 0) s.last_exit_reason = static_cast<uint32_t>(vcpu.published().last_exit_code.load(std::memory_order_relaxed));
  for (size_t slot = 0; slot < svm::kExitCountSlots; ++slot) {
    if (const uint64_t n = vcpu.exit_count_slot_relaxed(slot); n != 0) {
      s.exit_counts.push_back({svm::exit_code_of_slot(slot), n});
    }
  }
  return s;
}

// VMCB segment attributes (APM 15.5.1 Figure 15-4: descriptor bits 47:40 in 7:0, 55:52 in 11:8)
// in the VMCS access-rights layout the console reports (SDM Vol. 3C 24.4.1: 7:0, then 15:12).
uint32_t access_rights_of(uint16_t attrib) {
  return static_cast<uint32_t>(attrib & 0xffu) | (static_cast<uint32_t>(attrib & 0xf00u) << 4);
}

api::VcpuSnapshot svm_snapshot_of(const svm::SvmCapture& c, const svm::SvmVcpu& vcpu) {
  api::VcpuSnapshot s;
  s.summary.backend = api::Backend::kSvm;
  s.summary.vm = c.vm;
  s.summary.vcpu = c.vcpu;
  s.summary.cpu = c.cpu;
  s.summary.launched = c.launched;
  s.summary.state = state_of(c.stopped, c.parked, c.launched);
  s.summary.in_hlt = c.halted;
  s.summary.exits = c.total_exits;
  if (c.recent_count > 0) s.summary.last_exit_reason = static_cast<uint32_t>(c.recent[0].exitcode);
  if (c.stopped && c.stop_message != nullptr) s.summary.stop_reason = c.stop_message;
  s.summary.pending_events = vcpu.pending_event_count();
  s.summary.events_injected = c.events_injected;
  s.regs = c.regs;
  const svm::VmcbSaveArea& save = c.vmcb.save;
  s.rsp = save.rsp;
  s.rip = save.rip;
  s.rflags = save.rflags;
  s.cr0 = save.cr0;
  s.cr2 = save.cr2;
  s.cr3 = save.cr3;
  s.cr4 = save.cr4;
  s.efer = save.efer;
  const svm::VmcbSegment* segments[8] = {&save.es, &save.cs, &save.ss,   &save.ds,
                                         &save.fs, &save.gs, &save.ldtr, &save.tr};
  for (size_t i = 0; i < 8; ++i) {
    s.segments[i].selector = segments[i]->selector;
    s.segments[i].base = segments[i]->base;
    s.segments[i].limit = segments[i]->limit;
    s.segments[i].access_rights = access_rights_of(segments[i]->attrib);
  }
  s.vmcb.reserve(svm::kVmcbFieldCount);
  for (size_t i = 0; i < svm::kVmcbFieldCount; ++i) {
    s.vmcb.push_back(
        api::VmcbValue{static_cast<uint16_t>(i), svm::read_vmcb_field(c.vmcb, svm::kVmcbFields[i])});
  }
  for (size_t slot = 0; slot < c.exit_counts.size(); ++slot) {
    if (c.exit_counts[slot] != 0)
      s.svm_exit_counts.push_back(api::SvmExitCount{svm::exit_code_of_slot(slot), c.exit_counts[slot]});
  }
  for (size_t i = 0; i < c.recent_count; ++i) {
    const svm::SvmExitRecord& e = c.recent[i];
    api::ExitRecordView v;
    v.reason = static_cast<uint32_t>(e.exitcode);
    v.exitcode = e.exitcode;
    v.qualification = e.exitinfo1;
    v.exitinfo2 = e.exitinfo2;
    v.rip = e.rip;
    v.tsc = e.tsc;
    s.recent_exits.push_back(v);
  }
  s.tsc = c.tsc;
  return s;
}

}  // namespace

Result<void> KernelConsoleBackend::console_input(uint32_t vm, std::string_view bytes) {
  if (guest::is_user_vm(vm)) {
    return guest::push_user_vm_input(
        vm, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  }
  if (guest::find_published_vm(vm) != nullptr) {
    return make_error(ErrorCode::kUnsupported, "the demo guest's UART has no receive side", vm);
  }
  return make_error(ErrorCode::kNotFound, "no such VM", vm);
}

Result<void> KernelConsoleBackend::reset_vm(uint32_t vm) {
  if (guest::is_user_vm(vm)) return guest::request_user_vm_reset(vm);
  if (guest::find_published_vm(vm) != nullptr) {
    return make_error(ErrorCode::kUnsupported, "demo guests are not reset (only --vm VMs)", vm);
  }
  return make_error(ErrorCode::kNotFound, "no such VM", vm);
}

api::SystemSummary KernelConsoleBackend::system() {
  api::SystemSummary s;
  s.version = LANTERN_VERSION;
  s.uptime_ms = time::now_ns() / 1'000'000;
  s.cpus_online = cpu_count();
  s.vmx_cores = vmx::cores_in_vmx_operation();
  s.vmx_available = s.vmx_cores > 0;
  s.vmx_cpuid = (cpu::cpuid(1).ecx & (1u << 5)) != 0;  // CPUID.01H:ECX.VMX[bit 5] (SDM Vol. 3C 23.6)
  if (const char* why = vmx::unavailable_reason(); why != nullptr) s.vmx_reason = why;
  if (const vmx::VmxCapabilities* caps = vmx::capabilities(); caps != nullptr) {
    s.vmx_caps.ept = caps->ept;
    s.vmx_caps.ept_large_pages = caps->ept_2m_pages;
    s.vmx_caps.ept_1g_pages = caps->ept_1g_pages;
    s.vmx_caps.vpid = caps->vpid;
    s.vmx_caps.unrestricted_guest = caps->unrestricted_guest;
    s.vmx_caps.preemption_timer = caps->preemption_timer;
    s.vmx_caps.nmi_window = caps->nmi_window_exiting;
    s.vmx_caps.activity_hlt = caps->activity_hlt;
    s.vmx_caps.true_controls = caps->true_controls;
    s.vmx_caps.xsaves = caps->xsaves;
    s.vmx_caps.vmcs_revision = caps->vmcs_revision_id;
  }
  s.svm_cores = svm::cores_in_svm_operation();
  s.svm_available = s.svm_cores > 0;
  {
    // CPUID 8000_0001H:ECX.SVM[bit 2] (APM Vol. 3 E.4.2).
    const uint32_t max_extended = cpu::cpuid(svm::kCpuidExtendedMax).eax;
    s.svm_cpuid = max_extended >= svm::kCpuidExtendedFeatures &&
                  (cpu::cpuid(svm::kCpuidExtendedFeatures).ecx & svm::kCpuid80000001EcxSvm) != 0;
  }
  if (const char* why = svm::unavailable_reason(); why != nullptr) s.svm_reason = why;
  if (const svm::SvmFeatures* f = svm::features(); f != nullptr) {
    s.svm_caps.nested_paging = f->nested_paging;
    s.svm_caps.next_rip_save = f->next_rip_save;
    s.svm_caps.vmcb_clean = f->vmcb_clean;
    s.svm_caps.flush_by_asid = f->flush_by_asid;
    s.svm_caps.decode_assists = f->decode_assists;
    s.svm_caps.pause_filter = f->pause_filter;
    s.svm_caps.avic = f->avic;
    s.svm_caps.vgif = f->vgif;
    s.svm_caps.lbr_virtualization = f->lbr_virtualization;
    s.svm_caps.revision = f->revision;
    s.svm_caps.asids = f->asid_count;
  }
  s.hv = s.vmx_cores > 0 ? "vmx" : (s.svm_cores > 0 ? "svm" : "none");
  s.vcpus = static_cast<uint32_t>(vcpus().size());
  s.cmdline = std::string(boot_state().multiboot.cmdline.value_or(""));
  const net::NetStatus n = net::status();
  s.ip = n.ip;
  s.nic = n.nic;
  const kernel::HttpServerStatus server = kernel::http_server_status();
  s.http_connections_open = server.open;
  s.http_connections_total = server.connections;
  s.http_refused = server.refused;
  s.http_requests = server.requests;
  s.http_framing_errors = server.framing_errors;
  s.http_timeouts = server.timeouts;
  s.http_aborted = server.aborted;
  s.net_pools = kernel::net_pool_levels();
  const memory::Stats m = memory::stats();
  s.memory.heap_bytes_in_use = m.heap_bytes_in_use;
  s.memory.heap_bytes_reserved = m.heap_bytes_reserved;
  s.memory.heap_live_allocations = m.heap_live_allocations;
  s.memory.frames_total = m.total_frames;
  s.memory.frames_free = m.free_frames;
  return s;
}

std::vector<api::CpuSummary> KernelConsoleBackend::cpus() {
  std::vector<api::CpuSummary> out;
  guest::PublishedVm vms[guest::kMaxPublishedVms];
  const size_t vm_count = guest::published_vms(vms, guest::kMaxPublishedVms);
  const bool any_vmx = vmx::cores_in_vmx_operation() > 0;
  const bool any_svm = svm::cores_in_svm_operation() > 0;
  svm::PublishedSvmVm svm_vms[svm::kMaxPublishedSvmVms];
  const size_t svm_count = svm::published_svm_vms(svm_vms, svm::kMaxPublishedSvmVms);
  for (uint32_t i = 0; i < kMaxCpus; ++i) {
    PerCpu* cpu = cpu_by_index(i);
    if (cpu == nullptr || !cpu->online.load(std::memory_order_acquire)) continue;
    api::CpuSummary c;
    c.index = cpu->index;
    c.apic_id = cpu->apic_id;
    c.bsp = cpu->index == 0;
    // Cores either all run VMX or none (enable_on_this_cpu() on each; a core that failed while
    // others succeeded logs why and has no vCPU bound).
    c.vmx = any_vmx ? api::CpuVmxState::kOn : api::CpuVmxState::kUnsupported;
    // Likewise SVM; a core where VMX runs leaves SVM off (never both at once).
    c.svm =
        any_svm ? (any_vmx ? api::CpuVmxState::kOff : api::CpuVmxState::kOn) : api::CpuVmxState::kUnsupported;
    for (size_t v = 0; v < svm_count; ++v) {
      if (svm_vms[v].vcpu->bound_cpu() == static_cast<int32_t>(i))
        c.vcpus.emplace_back(svm_vms[v].vcpu->vm_id(), svm_vms[v].vcpu->vcpu_id());
    }
    for (size_t v = 0; v < vm_count; ++v) {
      for (const vmx::VmxVcpu* vcpu : VmxVcpusOf(vms[v].vm->vm_id)) {
        if (vcpu->bound_cpu() == static_cast<int32_t>(i)) c.vcpus.emplace_back(vms[v].vm->vm_id, vcpu->vcpu_id());
      }
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<api::VmSummary> KernelConsoleBackend::vms() {
  std::vector<api::VmSummary> out;
  guest::PublishedVm vms[guest::kMaxPublishedVms];
  const size_t n = guest::published_vms(vms, guest::kMaxPublishedVms);
  for (size_t i = 0; i < n; ++i) {
    const guest::GuestVm& vm = *vms[i].vm;
    if (guest::is_user_vm(vm.vm_id)) continue;  // listed below, with what the registry lacks
    api::VmSummary s;
    s.vm = vm.vm_id;
    s.name = vms[i].program;
    s.program = vms[i].program;
    s.memory_bytes = guest::kGuestMemoryBytes;
    const VmxVcpusOf vmx_vcpus(vm.vm_id);
    s.vcpu_count = static_cast<uint32_t>(vmx_vcpus.count);
    s.console_bytes = vm.console.total_bytes();
    bool all_stopped = vmx_vcpus.count > 0;
    for (const vmx::VmxVcpu* vcpu : vmx_vcpus) {
      const auto& published = vcpu->published();
      all_stopped = all_stopped && published.stop_message.load(std::memory_order_relaxed) != nullptr;
    }
    if (vm.exit_requested) {
      s.state = api::VmState::kExited;
      s.exit_status = vm.exit_status;
    } else {
      s.state = all_stopped ? api::VmState::kStopped : api::VmState::kRunning;
    }
    out.push_back(std::move(s));
  }
  for (const guest::UserVmStatus& u : guest::user_vm_statuses()) out.push_back(user_vm_summary(u));
  svm::PublishedSvmVm svm_vms[svm::kMaxPublishedSvmVms];
  const size_t svm_count = svm::published_svm_vms(svm_vms, svm::kMaxPublishedSvmVms);
  for (size_t i = 0; i < svm_count; ++i) {
    if (svm_vms[i].vm == nullptr) continue;  // a user VM's vCPU: the VM is listed above
    const svm::SvmGuestVm& vm = *svm_vms[i].vm;
    api::VmSummary s;
    s.vm = vm.vm_id;
    s.name = vm.program;
    s.program = vm.program;
    s.memory_bytes = guest::kGuestMemoryBytes;
    s.vcpu_count = 1;
    s.console_bytes = vm.console.total_bytes();
    if (vm.exit_requested) {
      s.state = api::VmState::kExited;
      s.exit_status = vm.exit_status;
    } else {
      const bool stopped =
          svm_vms[i].vcpu->published().stop_message.load(std::memory_order_relaxed) != nullptr;
      s.state = stopped ? api::VmState::kStopped : api::VmState::kRunning;
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<api::VcpuSummary> KernelConsoleBackend::vcpus() {
  std::vector<api::VcpuSummary> out;
  guest::PublishedVm vms[guest::kMaxPublishedVms];
  const size_t n = guest::published_vms(vms, guest::kMaxPublishedVms);
  for (size_t i = 0; i < n; ++i) {
    for (const vmx::VmxVcpu* vcpu : VmxVcpusOf(vms[i].vm->vm_id)) out.push_back(summary_of(*vcpu));
  }
  svm::PublishedSvmVm svm_vms[svm::kMaxPublishedSvmVms];
  const size_t svm_count = svm::published_svm_vms(svm_vms, svm::kMaxPublishedSvmVms);
  for (size_t i = 0; i < svm_count; ++i) out.push_back(svm_summary_of(*svm_vms[i].vcpu));
  return out;
}

Result<api::VcpuSnapshot> KernelConsoleBackend::snapshot(uint32_t vm, uint32_t vcpu) {
  vmx::VmxVcpu* target = vmx::find_published_vcpu(vm, vcpu);
  if (target == nullptr) {
    svm::SvmVcpu* svm_target = svm::find_published_svm_vcpu(vm, vcpu);
    if (svm_target == nullptr) return make_error(ErrorCode::kNotFound, "no such vCPU", vcpu);
    static svm::SvmCapture svm_capture;  // ~9 KiB: off the stack; only the BSP calls this
    const uint64_t asked_ns = time::now_ns();
    if (auto r = svm::capture_svm_vcpu(*svm_target, svm_capture, capture_timeout_us_); !r) {
      if (r.error().code == ErrorCode::kTimeout || r.error().code == ErrorCode::kBusy) {
        return make_error(ErrorCode::kTimeout, "the vCPU's core did not answer in time", r.error().detail);
      }
      return r.error();
    }
    api::VcpuSnapshot snapshot = svm_snapshot_of(svm_capture, *svm_target);
    snapshot.capture_ns = time::now_ns() - asked_ns;
    return snapshot;
  }
  static vmx::VcpuCapture capture;  // ~5 KiB: off the stack; only the BSP calls this
  const uint64_t asked_ns = time::now_ns();
  if (auto r = vmx::capture_vcpu(*target, capture, capture_timeout_us_); !r) {
    if (r.error().code == ErrorCode::kTimeout || r.error().code == ErrorCode::kBusy) {
      return make_error(ErrorCode::kTimeout, "the vCPU's core did not answer in time", r.error().detail);
    }
    return r.error();
  }
  api::VcpuSnapshot snapshot = snapshot_of(capture, *target);
  snapshot.capture_ns = time::now_ns() - asked_ns;
  return snapshot;
}

Result<guest::PendingEventSnapshot> KernelConsoleBackend::pending_events(uint32_t vm, uint32_t vcpu) {
  vmx::VmxVcpu* target = vmx::find_published_vcpu(vm, vcpu);
  if (target == nullptr) {
    if (svm::SvmVcpu* svm_target = svm::find_published_svm_vcpu(vm, vcpu); svm_target != nullptr) {
      return svm_target->pending_events();
    }
    return make_error(ErrorCode::kNotFound, "no such vCPU", vcpu);
  }
  return target->pending_events();
}

Result<size_t> KernelConsoleBackend::queue_event(uint32_t vm, uint32_t vcpu, guest::PendingEventType type,
                                                 uint32_t vector, std::optional<uint32_t> error_code) {
  vmx::VmxVcpu* target = vmx::find_published_vcpu(vm, vcpu);
  if (target == nullptr) {
    svm::SvmVcpu* svm_target = svm::find_published_svm_vcpu(vm, vcpu);
    if (svm_target == nullptr) return make_error(ErrorCode::kNotFound, "no such vCPU", vcpu);
    if (svm_target->published().stop_message.load(std::memory_order_relaxed) != nullptr) {
      return make_error(ErrorCode::kInvalidState, "the vCPU has stopped", vcpu);
    }
    return svm_target->queue_event(type, vector, error_code);
  }
  if (target->published().stop_message.load(std::memory_order_relaxed) != nullptr) {
    return make_error(ErrorCode::kInvalidState, "the vCPU has stopped", vcpu);
  }
  return target->queue_event(type, vector, error_code);
}

Result<api::ConsoleText> KernelConsoleBackend::console(uint32_t vm, uint64_t since, size_t max_bytes) {
  const guest::GuestConsole* console = nullptr;
  if (guest::GuestVm* target = guest::find_published_vm(vm); target != nullptr) {
    console = &target->console;
  } else if (svm::SvmGuestVm* svm_target = svm::find_published_svm_vm(vm); svm_target != nullptr) {
    console = &svm_target->console;
  }
  if (console == nullptr) return make_error(ErrorCode::kNotFound, "no such VM", vm);
  api::ConsoleText out;
  const size_t capacity =
      max_bytes < guest::GuestConsole::kBufferBytes ? max_bytes : guest::GuestConsole::kBufferBytes;
  out.text.resize(capacity);
  const guest::OutputRing::Slice slice = console->read_since(since, out.text.data(), capacity);
  out.text.resize(slice.length);
  out.start = slice.start;
  out.next = slice.next;
  out.missed = slice.start > since ? slice.start - since : 0;
  return out;
}

api::LogChunk KernelConsoleBackend::log(uint64_t since, size_t max_lines) {
  api::LogChunk out;
  constexpr size_t kBatch = 32;
  static lib::LogRecord records[kBatch];  // 7 KiB: off the stack; only the BSP calls this
  uint64_t cursor = since;
  bool first = true;
  // A message split over several records (kLogContinues) becomes one line, even past max_lines.
  auto room_for = [&](const lib::LogRecord& rec) {
    return out.lines.size() < max_lines || ((rec.flags & lib::kLogContinuation) != 0 && !out.lines.empty());
  };
  for (;;) {
    const lib::LogRing::ReadResult r =
        log::read_ring_since(cursor, std::span<lib::LogRecord>(records, kBatch));
    if (first) {
      out.missed = r.missed;
      first = false;
    }
    if (r.count == 0) {
      out.next = r.next_seq;
      break;
    }
    size_t i = 0;
    for (; i < r.count && room_for(records[i]); ++i) {
      const lib::LogRecord& rec = records[i];
      if ((rec.flags & lib::kLogContinuation) != 0 && !out.lines.empty()) {
        out.lines.back().text.append(rec.text_view());
      } else {
        api::LogLine line;
        line.seq = rec.seq;
        line.timestamp_ns = rec.timestamp;
        line.cpu = rec.cpu;
        line.level = lib::log_level_name(rec.level);
        line.text = std::string(rec.text_view());
        out.lines.push_back(std::move(line));
      }
      if ((rec.flags & lib::kLogTruncated) != 0) out.lines.back().truncated = true;
      cursor = rec.seq + 1;
    }
    out.next = cursor;
    if (i < r.count || r.count < kBatch) break;
  }
  return out;
}

}  // namespace lantern::web
