#include "vmx/hw/user_vms.h"

#include <atomic>
#include <new>
#include <variant>

#include "guest/loader/guest_memory.h"
#include "guest/loader/memory_map.h"
#include "guest/loader/multiboot1.h"
#include "guest/nested_paging.h"
#include "guest/vm_spec.h"
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/paging.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/core/boot_state.h"
#include "kernel/core/log.h"
#include "kernel/core/memory.h"
#include "kernel/core/spinlock.h"
#include "kernel/lib/string.h"
#include "vmx/hw/core_mailbox.h"
#include "vmx/hw/guest_vm.h"
#include "vmx/hw/vcpu_capture.h"
#include "vmx/hw/vm_registry.h"
#include "vmx/hw/vmx_operation.h"

namespace lantern::vmx {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
// Guest RAM is one host block aligned to 2 MiB, so EPT maps it with 2 MiB pages where it can.
constexpr uint64_t kRamAlignment = 2 * kMiB;

class KernelPageAllocator final : public guest::PageAllocator {
 public:
  Result<uint64_t> alloc_zeroed_page() override {
    const uint64_t phys = TRY(memory::alloc_frame());
    lib::mem_set(paging::phys_to_ptr<void>(phys), 0, paging::kPageSize);
    return phys;
  }
  void* phys_to_virt(uint64_t phys) override { return paging::phys_to_ptr<void>(phys); }
  void free_page(uint64_t phys) override { (void)memory::free_frame(phys); }
};
KernelPageAllocator g_page_allocator;

struct UserGuestVm;

// The VM's port bus hands every port to the guest platform under the VM's lock; a write that
// trips an exit port asks the run loop to end the VM (guest::Vm::request_exit).
class PlatformPorts final : public guest::PortDevice {
 public:
  explicit PlatformPorts(UserGuestVm& vm) : vm_(vm) {}
  uint32_t port_read(uint16_t port, uint8_t width) override;
  void port_write(uint16_t port, uint8_t width, uint32_t value) override;

 private:
  UserGuestVm& vm_;
};

// The VM object the vCPU and the console see: GuestVm (console, vCPU group, RAM and EPT) plus
// the guest platform. Allocated once at build and never freed (the registry keeps it).
struct UserGuestVm : GuestVm {
  explicit UserGuestVm(const guest::PlatformConfig& config) : platform(config) {}
  guest::GuestPlatform platform;  // guarded by platform_lock
  IrqSpinlock platform_lock;
  PlatformPorts forward{*this};
  uint64_t ram_bytes = 0;  // with memory_phys: the RAM block while the VM holds one
};

uint32_t PlatformPorts::port_read(uint16_t port, uint8_t width) {
  IrqSpinlockGuard guard(vm_.platform_lock);
  return vm_.platform.port_read(port, width);
}

void PlatformPorts::port_write(uint16_t port, uint8_t width, uint32_t value) {
  IrqSpinlockGuard guard(vm_.platform_lock);
  vm_.platform.port_write(port, width, value);
  if (vm_.platform.exit_requested() && !vm_.exit_requested) vm_.request_exit(vm_.platform.exit_latch().value());
}

void uart_to_console(void* context, uint8_t byte) {
  auto* vm = static_cast<UserGuestVm*>(context);
  vm->console.put(vm->vm_id, static_cast<char>(byte));
}

struct ModuleSource {
  uint64_t phys = 0;
  uint64_t size = 0;
  std::string string;
};

struct UserVmRecord {
  // Fixed once built (the BSP, before the APs start).
  uint32_t id = 0;
  std::string name;
  std::string cmdline;
  uint32_t mem_mib = 0;
  uint32_t cpus = 0;
  int32_t cpu = -1;
  ModuleSource kernel;
  std::vector<ModuleSource> modules;
  UserGuestVm* vm = nullptr;
  // The owning core's, once the VM runs.
  VmxVcpu* vcpu = nullptr;
  guest::EntryState entry;
  std::atomic<bool> reset_requested{false};
  std::atomic<uint32_t> resets{0};
  // Guarded by g_status_lock (the owner writes, the console reads).
  UserVmState state = UserVmState::kStarting;
  std::string kernel_format;
  std::string failure;
  guest::ExitLatch exit;
};

IrqSpinlock g_status_lock;
UserVmRecord g_records[guest::kMaxVms];
size_t g_record_count = 0;  // written before the APs start
bool g_requested = false;

UserVmState state_of(const UserVmRecord& r) {
  IrqSpinlockGuard guard(g_status_lock);
  return r.state;
}

void set_state(UserVmRecord& r, UserVmState state) {
  IrqSpinlockGuard guard(g_status_lock);
  r.state = state;
}

UserVmRecord* find_record(uint32_t vm_id) {
  for (size_t i = 0; i < g_record_count; ++i) {
    if (g_records[i].id == vm_id) return &g_records[i];
  }
  return nullptr;
}

UserVmRecord* record_on_this_cpu() {
  const int32_t me = static_cast<int32_t>(this_cpu().index);
  for (size_t i = 0; i < g_record_count; ++i) {
    if (g_records[i].cpu == me) return &g_records[i];
  }
  return nullptr;
}

void free_guest_memory(UserVmRecord& r) {
  UserGuestVm* vm = r.vm;
  if (vm == nullptr) return;
  if (vm->eptp != 0) {
    (void)guest::NestedPageTableBuilder::release_tables(g_page_allocator, vm->eptp & guest::ept_entry::kAddressMask);
    vm->eptp = 0;
  }
  if (vm->memory_phys != 0) {
    if (auto f = memory::free_contiguous(vm->memory_phys, vm->ram_bytes / paging::kPageSize); !f) {
      LOG_ERROR("vm%u: guest RAM not freed: %s", r.id, f.error().message);
    }
    vm->memory_phys = 0;
    vm->ram_bytes = 0;
  }
}

// Ends the VM for good (until a reset) with `reason`: logged, shown as `failed`, memory freed.
void fail(UserVmRecord& r, const char* reason, uint64_t detail = 0) {
  LOG_ERROR("vm%u '%s': failed: %s (detail %llu)", r.id, r.name.c_str(), reason, static_cast<unsigned long long>(detail));
  if (r.vcpu != nullptr) r.vcpu->stop_outside_run(reason);
  free_guest_memory(r);
  IrqSpinlockGuard guard(g_status_lock);
  r.state = UserVmState::kFailed;
  r.failure = reason;
}

uint8_t max_phys_bits() {
  // CPUID.80000008H:EAX[7:0] = physical-address width (SDM Vol. 2A CPUID).
  if (cpu::cpuid(0x80000000).eax >= 0x80000008) return static_cast<uint8_t>(cpu::cpuid(0x80000008).eax & 0xff);
  return 36;
}

// Guest RAM (zeroed), the kernel, modules and Multiboot information loaded into it, and an EPT
// mapping it at guest-physical 0. Sets r.entry and r.kernel_format.
Result<void> allocate_and_load(UserVmRecord& r) {
  const VmxCapabilities* caps = capabilities();
  if (caps == nullptr) return make_error(ErrorCode::kUnsupported, "VMX is not available");
  if (!caps->ept || !caps->unrestricted_guest || !caps->ept_wb || !caps->ept_walk_length_4) {
    return make_error(ErrorCode::kUnsupported, "EPT with WB 4-level tables and unrestricted guest are needed");
  }
  UserGuestVm& vm = *r.vm;
  const uint64_t bytes = uint64_t{r.mem_mib} * kMiB;
  const guest::GuestMemoryMap map = TRY(guest::GuestMemoryMap::for_ram(bytes));
  auto block = memory::alloc_contiguous(bytes / paging::kPageSize, kRamAlignment);
  if (!block) return make_error(ErrorCode::kOutOfMemory, "no contiguous host memory for the guest RAM (lower mem=)", r.mem_mib);
  vm.memory_phys = *block;
  vm.ram_bytes = bytes;
  auto* ram = paging::phys_to_ptr<uint8_t>(vm.memory_phys);
  lib::mem_set(ram, 0, bytes);
  guest::ByteSpanGuestMemory memory(std::span<uint8_t>(ram, bytes));

  guest::multiboot1::ModuleInput inputs[guest::multiboot1::kMaxModules];
  const size_t count = r.modules.size() < guest::multiboot1::kMaxModules ? r.modules.size() : guest::multiboot1::kMaxModules;
  for (size_t i = 0; i < count; ++i) {
    inputs[i].bytes = std::span<const uint8_t>(paging::phys_to_ptr<const uint8_t>(r.modules[i].phys), r.modules[i].size);
    inputs[i].string = r.modules[i].string;
  }
  guest::multiboot1::BootRequest request;
  request.kernel = std::span<const uint8_t>(paging::phys_to_ptr<const uint8_t>(r.kernel.phys), r.kernel.size);
  request.cmdline = r.cmdline;
  request.modules = std::span<const guest::multiboot1::ModuleInput>(inputs, count);
  auto image = guest::multiboot1::load(request, map, memory);
  if (!image) {
    free_guest_memory(r);
    return image.error();
  }

  guest::NestedPagingFeatures features;
  features.pages_2m = caps->ept_2m_pages;
  features.pages_1g = caps->ept_1g_pages;
  features.execute_only = caps->ept_execute_only;
  features.max_phys_bits = max_phys_bits();
  auto ept = guest::NestedPageTableBuilder::create(g_page_allocator, features);
  if (!ept) {
    free_guest_memory(r);
    return ept.error();
  }
  if (auto mapped = ept->map(0, vm.memory_phys, bytes, guest::kAccessRwx, guest::MemoryType::kWriteBack); !mapped) {
    (void)guest::NestedPageTableBuilder::release_tables(g_page_allocator, ept->pml4_phys());
    free_guest_memory(r);
    return mapped.error();
  }
  vm.eptp = ept->eptp();
  r.entry = image->entry;
  IrqSpinlockGuard guard(g_status_lock);
  r.kernel_format = guest::multiboot1::kernel_format_name(image->kernel.format);
  return ok();
}

Result<UserGuestVm*> create_vm_object(const UserVmRecord& r) {
  guest::PlatformConfig config;
  config.ram_bytes = uint64_t{r.mem_mib} * kMiB;
  config.cpu_count = static_cast<uint16_t>(r.cpus);
  config.max_cpus = static_cast<uint16_t>(r.cpus);
  void* mem = kmalloc(sizeof(UserGuestVm), 64);
  if (mem == nullptr) return make_error(ErrorCode::kOutOfMemory, "no memory for a VM");
  auto* vm = new (mem) UserGuestVm(config);
  vm->vm_id = r.id;
  // Every port goes to the platform; unknown MSRs fault as on hardware.
  vm->unknown_msrs = guest::UnknownMsrPolicy::kInjectGp;
  Result<void> attached = vm->platform.attach();
  if (attached) attached = vm->ports.register_range(0, 0x10000, &vm->forward);
  if (!attached) {
    vm->~UserGuestVm();
    kfree(vm);
    return attached.error();
  }
  vm->platform.uart().set_output_sink(&uart_to_console, vm);
  return vm;
}

Result<void> build_one(UserVmRecord& r) {
  if (r.vm == nullptr) r.vm = TRY(create_vm_object(r));
  return allocate_and_load(r);
}

Result<void> kick(uint64_t) { return ok(); }

// Idles this core (mailbox work runs) until a reset is asked for.
void wait_for_reset(UserVmRecord& r) {
  for (;;) {
    cpu::disable_interrupts();
    if (r.reset_requested.load(std::memory_order_acquire)) break;
    if (poll_core_mailbox()) {
      cpu::enable_interrupts();
      continue;
    }
    cpu::enable_interrupts_and_halt();  // STI's shadow covers HLT: no wake-up is lost (SDM Vol. 2B STI)
  }
  cpu::enable_interrupts();
}

void end_exited(UserVmRecord& r) {
  guest::ExitLatch latch;
  {
    IrqSpinlockGuard guard(r.vm->platform_lock);
    latch = r.vm->platform.exit_latch();
  }
  r.vcpu->stop_outside_run("the VM ended through its exit port");
  free_guest_memory(r);
  {
    IrqSpinlockGuard guard(g_status_lock);
    r.exit = latch;
    r.state = UserVmState::kExited;
  }
  LOG_INFO("vm%u '%s': exited with code %u through %s (status %llu); its memory is freed", r.id, r.name.c_str(),
           latch.value(), guest::exit_cause_name(latch.cause()), static_cast<unsigned long long>(latch.status()));
}

// Runs the VM until it ends, fails or a reset is asked for.
void run_until_stop(UserVmRecord& r) {
  UserGuestVm& vm = *r.vm;
  VmxVcpu& vcpu = *r.vcpu;
  while (!r.reset_requested.load(std::memory_order_acquire)) {
    auto exit = vcpu.run();
    if (!exit) return fail(r, exit.error().message, exit.error().detail);
    if (vm.exit_requested) return end_exited(r);
    auto handled = handle_device_exit(vm, vcpu, *exit);
    if (!handled) return fail(r, handled.error().message, handled.error().detail);
    if (!*handled) {
      if (std::holds_alternative<exits::Hypercall>(*exit)) {
        vcpu.set_hypercall_result(~uint64_t{0});  // no hypercalls for user VMs
        continue;
      }
      if (const auto* npf = std::get_if<exits::NestedPageFault>(&*exit)) {
        return fail(r, "the guest accessed guest-physical memory with neither RAM nor a device", npf->gpa);
      }
      const std::string_view kind = vm_exit_kind_name(*exit);
      LOG_ERROR("vm%u: unhandled exit %.*s", r.id, static_cast<int>(kind.size()), kind.data());
      return fail(r, "the vCPU made an exit Lantern does not handle for this VM");
    }
    // Host interrupts and HLT: work posted to this core (captures, a reset's kick) runs here.
    if (std::holds_alternative<exits::ExternalInterrupt>(*exit) || std::holds_alternative<exits::Halt>(*exit)) {
      if (poll_core_mailbox()) {
        if (auto reloaded = vcpu.reload_on_this_cpu(); !reloaded) return fail(r, reloaded.error().message);
      }
    }
  }
}

void reset_vm(UserVmRecord& r) {
  r.reset_requested.store(false, std::memory_order_release);
  UserGuestVm& vm = *r.vm;
  free_guest_memory(r);
  {
    IrqSpinlockGuard guard(vm.platform_lock);
    vm.platform.reset();
    vm.exit_requested = false;
    vm.exit_status = 0;
  }
  if (auto loaded = allocate_and_load(r); !loaded) return fail(r, loaded.error().message, loaded.error().detail);
  if (auto restarted = r.vcpu->restart(vm.eptp, r.entry); !restarted) {
    return fail(r, restarted.error().message, restarted.error().detail);
  }
  {
    IrqSpinlockGuard guard(g_status_lock);
    r.state = UserVmState::kRunning;
    r.failure.clear();
    r.exit = guest::ExitLatch{};
  }
  const uint32_t n = r.resets.fetch_add(1) + 1;
  LOG_INFO("vm%u '%s': reset %u: restarted from its boot modules", r.id, r.name.c_str(), n);
}

}  // namespace

void build_user_vms(uint32_t physical_cpus) {
  const auto modules = boot_state().multiboot.modules();
  std::vector<guest::BootModuleInfo> infos;
  infos.reserve(modules.size());
  for (const auto& m : modules) infos.push_back(guest::BootModuleInfo{m.cmdline, m.size()});
  guest::VmPlan plan = guest::plan_vms(infos, guest::VmLimits{physical_cpus});
  for (const guest::StrayModule& stray : plan.stray) {
    LOG_ERROR("vms: boot module %zu ignored: %s", stray.boot_module, stray.reason.message);
  }
  if (plan.vms.empty() && plan.stray.empty()) return;
  g_requested = true;
  // Build every VM the plan accepts, then give cores to those that built: a VM that cannot be
  // built never takes a core from one that can.
  for (guest::VmDescription& d : plan.vms) {
    if (g_record_count == guest::kMaxVms) break;
    UserVmRecord& r = g_records[g_record_count++];
    r.id = d.id;
    r.name = d.name;
    r.cmdline = d.append;
    r.mem_mib = d.mem_mib;
    r.cpus = d.cpus;
    if (d.kernel != guest::VmDescription::kNoModule) {
      r.kernel = ModuleSource{modules[d.kernel].start, modules[d.kernel].size(), {}};
    }
    for (const guest::VmModuleRef& m : d.modules) {
      r.modules.push_back(ModuleSource{modules[m.boot_module].start, modules[m.boot_module].size(), m.string});
    }
    if (d.refused) continue;
    if (d.initrd != guest::VmDescription::kNoModule) {
      d.refused = true;
      d.refusal = make_error(ErrorCode::kUnsupported, "Linux kernels (initrd=) are not run yet: only Multiboot v1 kernels");
      continue;
    }
    if (d.cpus == 0 || d.cpus > 1) continue;  // place_vms() refuses it with the reason
    if (auto built = build_one(r); !built) {
      d.refused = true;
      d.refusal = built.error();
    }
  }
  guest::place_vms(plan, physical_cpus);
  for (size_t i = 0; i < g_record_count; ++i) {
    UserVmRecord& r = g_records[i];
    const guest::VmDescription& d = plan.vms[i];
    r.cpu = d.cpu;
    if (d.refused) {
      fail(r, d.refusal.message, d.refusal.detail);
      continue;
    }
    LOG_INFO("vm%u '%s': %s, %u MiB, command line \"%s\", %zu module(s); vCPU 0 on cpu%d", r.id, r.name.c_str(),
             r.kernel_format.c_str(), r.mem_mib, r.cmdline.c_str(), r.modules.size(), r.cpu);
  }
}

bool user_vms_requested() { return g_requested; }

Result<void> prepare_user_vcpu_on_this_cpu() {
  UserVmRecord* found = record_on_this_cpu();
  if (found == nullptr || state_of(*found) != UserVmState::kStarting) {
    return make_error(ErrorCode::kNotFound, "no user VM is placed on this core");
  }
  UserVmRecord& r = *found;
  UserGuestVm& vm = *r.vm;
  auto created = VmxVcpu::create(r.id, 0);
  if (!created) {
    fail(r, created.error().message, created.error().detail);
    return created.error();
  }
  VmxVcpu* vcpu = *created;
  Result<void> step = vcpu->setup(vm.eptp, GuestEntry{});
  if (step) step = vcpu->join_group(&vm.vcpus);
  if (step) step = vcpu->bind_to_current_processor();
  if (step) step = vcpu->apply_entry_state(r.entry);
  if (!step) {
    VmxVcpu::destroy(vcpu);
    fail(r, step.error().message, step.error().detail);
    return step.error();
  }
  vcpu->attach_vm(&vm);
  r.vcpu = vcpu;
  if (auto p = publish_vm(vm, r.name); !p) LOG_ERROR("vm%u: publish VM: %s", r.id, p.error().message);
  if (auto p = publish_vcpu(vm, *vcpu); !p) LOG_ERROR("vm%u: publish vCPU: %s", r.id, p.error().message);
  set_state(r, UserVmState::kRunning);
  return ok();
}

void run_user_vm_on_this_cpu() {
  UserVmRecord* found = record_on_this_cpu();
  if (found == nullptr || found->vcpu == nullptr) return;
  UserVmRecord& r = *found;
  for (;;) {
    if (state_of(r) == UserVmState::kRunning) run_until_stop(r);
    wait_for_reset(r);
    reset_vm(r);
  }
}

void check_user_vms_started() {
  for (size_t i = 0; i < g_record_count; ++i) {
    UserVmRecord& r = g_records[i];
    if (state_of(r) != UserVmState::kStarting) continue;
    const PerCpu* cpu = r.cpu >= 0 ? cpu_by_index(static_cast<uint32_t>(r.cpu)) : nullptr;
    if (cpu == nullptr || !cpu->online.load(std::memory_order_acquire)) {
      fail(r, "the physical CPU this VM was placed on did not come online", static_cast<uint64_t>(r.cpu));
    }
  }
  for (size_t i = 0; i < g_record_count; ++i) {
    const UserVmRecord& r = g_records[i];
    IrqSpinlockGuard guard(g_status_lock);
    if (r.state == UserVmState::kFailed) {
      LOG_WARN("vm%u '%s': failed: %s", r.id, r.name.c_str(), r.failure.c_str());
    } else {
      LOG_INFO("vm%u '%s': running on cpu%d", r.id, r.name.c_str(), r.cpu);
    }
  }
}

uint32_t user_vms_running() {
  uint32_t n = 0;
  for (size_t i = 0; i < g_record_count; ++i) n += state_of(g_records[i]) == UserVmState::kRunning ? 1 : 0;
  return n;
}

std::vector<UserVmStatus> user_vm_statuses() {
  std::vector<UserVmStatus> out;
  for (size_t i = 0; i < g_record_count; ++i) {
    const UserVmRecord& r = g_records[i];
    UserVmStatus s;
    s.vm = r.id;
    s.name = r.name;
    s.cmdline = r.cmdline;
    s.memory_bytes = uint64_t{r.mem_mib} * kMiB;
    s.vcpu_count = r.cpus;
    s.cpu = r.cpu;
    s.resets = r.resets.load(std::memory_order_relaxed);
    {
      IrqSpinlockGuard guard(g_status_lock);
      s.state = r.state;
      s.kernel_format = r.kernel_format;
      s.failure = r.failure;
      s.exit_code = r.exit.value();
      s.exit_status = r.exit.status();
      s.exit_cause = guest::exit_cause_name(r.exit.cause());
    }
    if (r.vm != nullptr) {
      s.console_bytes = r.vm->console.total_bytes();
      IrqSpinlockGuard guard(r.vm->platform_lock);
      s.devices = r.vm->platform.counters();
      const guest::PortBus& bus = r.vm->platform.bus();
      for (size_t p = 0; p < bus.unclaimed_port_count(); ++p) {
        const auto& u = bus.unclaimed_ports()[p];
        s.unclaimed_ports.push_back(UserVmStatus::Port{u.port, u.reads, u.writes});
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

bool is_user_vm(uint32_t vm_id) { return find_record(vm_id) != nullptr; }

Result<void> push_user_vm_input(uint32_t vm_id, std::span<const uint8_t> bytes) {
  UserVmRecord* r = find_record(vm_id);
  if (r == nullptr) return make_error(ErrorCode::kNotFound, "no such VM", vm_id);
  if (bytes.size() > guest::Uart16550::kInputCapacity) {
    return make_error(ErrorCode::kInvalidArgument, "more bytes than the UART's input buffer holds",
                      guest::Uart16550::kInputCapacity);
  }
  if (state_of(*r) != UserVmState::kRunning || r->vm == nullptr) {
    return make_error(ErrorCode::kInvalidState, "the VM is not running", vm_id);
  }
  IrqSpinlockGuard guard(r->vm->platform_lock);
  return r->vm->platform.uart().push_input(bytes);
}

Result<void> request_user_vm_reset(uint32_t vm_id) {
  UserVmRecord* r = find_record(vm_id);
  if (r == nullptr) return make_error(ErrorCode::kNotFound, "no such VM", vm_id);
  if (r->vcpu == nullptr) {
    return make_error(ErrorCode::kInvalidState, "the VM was refused at boot and has no vCPU to restart", vm_id);
  }
  r->reset_requested.store(true, std::memory_order_release);
  // The wake-up IPI forces the VM exit (or ends the core's HLT); the loop then sees the request.
  return run_on_core(static_cast<uint32_t>(r->cpu), &kick, 0, kCaptureTimeoutUs);
}

}  // namespace lantern::vmx
