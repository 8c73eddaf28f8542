#include "guest/hw/user_vms.h"

#include <atomic>
#include <new>
#include <variant>

#include "guest/devices/ioapic.h"
#include "guest/loader/bzimage.h"
#include "guest/loader/guest_memory.h"
#include "guest/loader/memory_map.h"
#include "guest/loader/mp_table.h"
#include "guest/loader/multiboot1.h"
#include "guest/nested_paging.h"
#include "guest/platform_msrs.h"
#include "guest/vm_spec.h"
#include "guest/hw/guest_vm.h"
#include "guest/hw/kernel_services.h"
#include "guest/hw/vm_registry.h"
#include "kernel/arch/x86_64/apic.h"
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/interrupts.h"
#include "kernel/arch/x86_64/paging.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/core/boot_state.h"
#include "kernel/core/log.h"
#include "kernel/core/memory.h"
#include "kernel/core/spinlock.h"
#include "kernel/core/time.h"
#include "kernel/lib/string.h"
#include "kernel/core/core_mailbox.h"

namespace lantern::guest {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
// Guest RAM is one host block aligned to 2 MiB, so EPT maps it with 2 MiB pages where it can.
constexpr uint64_t kRamAlignment = 2 * kMiB;


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

// The I/O APIC's register window on the VM's MMIO bus, under the VM's platform lock.
class IoapicWindow final : public guest::MmioDevice {
 public:
  explicit IoapicWindow(UserGuestVm& vm) : vm_(vm) {}
  uint64_t mmio_read(uint64_t offset, uint8_t width) override;
  void mmio_write(uint64_t offset, uint8_t width, uint64_t value) override;

 private:
  UserGuestVm& vm_;
};

// A vlapic's EOI of a level-triggered vector, to the VM's I/O APIC (its Remote IRR).
class IoapicEoi final : public guest::LevelEoiListener {
 public:
  explicit IoapicEoi(UserGuestVm& vm) : vm_(vm) {}
  void level_eoi(uint8_t vector) override;

 private:
  UserGuestVm& vm_;
};

// The I/O APIC's ID: the first one after the vCPUs' APIC IDs (0..cpus-1), as the MP table
// announces it; 4 bits wide (82093AA datasheet 3.2.1).
uint8_t ioapic_id_for(uint32_t cpus) { return static_cast<uint8_t>(cpus < 15 ? cpus : 15); }

// The VM object the vCPU and the console see: GuestVm (console, RAM and nested paging) plus
// the guest platform and its I/O APIC. Allocated once at build and never freed (the registry
// keeps it).
struct UserGuestVm : GuestVm {
  UserGuestVm(const guest::PlatformConfig& config, uint8_t ioapic_id) : platform(config), ioapic(ioapic_id) {}
  guest::GuestPlatform platform;  // guarded by platform_lock
  guest::Ioapic ioapic;           // guarded by platform_lock
  IrqSpinlock platform_lock;
  PlatformPorts forward{*this};
  IoapicWindow ioapic_window{*this};
  IoapicEoi ioapic_eoi{*this};
  // A device asked for a reset (i8042 0xFE, 0xCF9): the run loop hands it to vCPU 0's core.
  std::atomic<bool> guest_reset_requested{false};
  uint64_t ram_bytes = 0;  // with memory_phys: the RAM block while the VM holds one
  // The nested page tables while the VM holds RAM: their PML4 and what the vCPUs load (the
  // backend's EPTP or nCR3).
  uint64_t nested_tables_phys = 0;
  uint64_t nested_root = 0;
  // By vcpu id (= APIC ID): the targets of I/O APIC messages, set as each vCPU is created.
  std::atomic<UserVcpu*> members[kMaxVcpusPerVm] = {};
};

uint64_t IoapicWindow::mmio_read(uint64_t offset, uint8_t width) {
  IrqSpinlockGuard guard(vm_.platform_lock);
  return vm_.ioapic.mmio_read(offset, width);
}

void IoapicWindow::mmio_write(uint64_t offset, uint8_t width, uint64_t value) {
  IrqSpinlockGuard guard(vm_.platform_lock);
  vm_.ioapic.mmio_write(offset, width, value);
}

void IoapicEoi::level_eoi(uint8_t vector) {
  IrqSpinlockGuard guard(vm_.platform_lock);
  vm_.ioapic.end_of_interrupt(vector);
}

// An I/O APIC message to the VM's vCPUs (platform lock held): physical destination = the APIC
// ID (= vcpu id; 0xFF all), logical = the vlapics' LDR/DFR (SDM Vol. 3A 11.6.2.2). Fixed and
// lowest priority (to the first match, SDM 11.6.2.4) go to the vlapic's IRR, NMI to the event
// queue; SMI, INIT and ExtINT have nothing to go to here and are dropped.
void deliver_ioapic_message(void* context, const guest::IoapicMessage& m) {
  auto* vm = static_cast<UserGuestVm*>(context);
  constexpr uint8_t kFixed = 0, kLowestPriority = 1, kNmi = 4;  // 82093AA datasheet 3.2.4
  for (uint32_t id = 0; id < kMaxVcpusPerVm; ++id) {
    UserVcpu* target = vm->members[id].load();
    if (target == nullptr) continue;
    const bool match = m.logical_destination ? target->accepts_logical_destination(m.destination)
                                             : (m.destination == 0xff || m.destination == id);
    if (!match) continue;
    if (m.delivery_mode == kFixed || m.delivery_mode == kLowestPriority) {
      target->post_interrupt(m.vector, m.level_triggered);
    } else if (m.delivery_mode == kNmi) {
      target->post_nmi();
    }
    if (m.delivery_mode == kLowestPriority) break;
  }
}

// The platform's ISA interrupt lines to I/O APIC pins as the MP table routes them
// (guest/loader/mp_table.h): IRQ 0 to pin 2, the others to the pin of the same number.
void platform_irq_to_ioapic(void* context, uint8_t isa_irq, bool asserted) {
  auto* vm = static_cast<UserGuestVm*>(context);
  vm->ioapic.set_irq_level(isa_irq == 0 ? 2 : isa_irq, asserted);
}

uint32_t PlatformPorts::port_read(uint16_t port, uint8_t width) {
  IrqSpinlockGuard guard(vm_.platform_lock);
  return vm_.platform.port_read(port, width);
}

void PlatformPorts::port_write(uint16_t port, uint8_t width, uint32_t value) {
  IrqSpinlockGuard guard(vm_.platform_lock);
  vm_.platform.port_write(port, width, value);
  if (vm_.platform.exit_requested() && !vm_.exit_requested) vm_.request_exit(vm_.platform.exit_latch().value());
  if (vm_.platform.reset_requested()) {
    LOG_INFO("vm%u: the guest asked for a reset through %s", vm_.vm_id, guest::reset_cause_name(vm_.platform.reset_cause()));
    vm_.platform.clear_reset_request();
    vm_.guest_reset_requested.store(true, std::memory_order_release);
    vm_.leave_run.store(true);  // run() returns after this exit: the run loop takes the request
  }
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

// One vCPU of a user VM and the core it runs on.
struct VcpuSlot {
  int32_t cpu = -1;
  UserVcpu* vcpu = nullptr;  // set by its core before it reports online
  uint32_t generation = 0;  // the VM generation this vCPU last (re)started in (its core only)
};

struct UserVmRecord {
  // Fixed once built (the BSP, before the APs start).
  uint32_t id = 0;
  std::string name;
  std::string cmdline;
  uint32_t mem_mib = 0;
  uint32_t cpus = 0;
  ModuleSource kernel;
  ModuleSource initrd;  // a Linux initrd (size 0: none)
  std::vector<ModuleSource> modules;
  UserGuestVm* vm = nullptr;
  std::vector<VcpuSlot> slots;  // by vcpu id; empty when the VM was refused
  // vCPU 0's core writes it (build, reset); the other vCPUs read it after `generation` changes.
  guest::EntryState entry;
  // A run of the VM ends: every vCPU leaves its run loop; the last one out frees guest RAM.
  std::atomic<bool> stopping{false};
  std::atomic<uint32_t> vcpus_running{0};
  // Bumped by vCPU 0's core once a reset rebuilt the VM: the other vCPUs restart then.
  std::atomic<uint32_t> generation{0};
  std::atomic<bool> reset_requested{false};  // set on vCPU 0's core (mailbox work)
  // vCPU 0 waits for this before its first entry: every vCPU has joined the VM's group (a SIPI
  // to a vCPU that does not exist yet would be lost), or the BSP gave up on the missing ones.
  std::atomic<uint32_t> vcpus_prepared{0};
  std::atomic<bool> start_released{false};
  std::atomic<uint32_t> resets{0};
  IrqSpinlock memory_lock;  // guest RAM and nested page tables (vm->memory_phys, vm->nested_*)
  // Guarded by g_status_lock (the owners write, the console reads).
  UserVmState state = UserVmState::kStarting;
  std::string kernel_format;
  std::string failure;
  guest::ExitLatch exit;

  int32_t cpu() const { return slots.empty() ? -1 : slots[0].cpu; }
};

IrqSpinlock g_status_lock;
const UserVmBackend* g_backend = nullptr;  // set before the APs start
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

struct SlotRef {
  UserVmRecord* record = nullptr;
  size_t index = 0;
};

SlotRef slot_on_this_cpu() {
  const int32_t me = static_cast<int32_t>(this_cpu().index);
  for (size_t i = 0; i < g_record_count; ++i) {
    for (size_t k = 0; k < g_records[i].slots.size(); ++k) {
      if (g_records[i].slots[k].cpu == me) return SlotRef{&g_records[i], k};
    }
  }
  return {};
}

// Wakes a core from HLT, or forces its running guest out (external-interrupt exiting, SDM Vol.
// 3C 24.6.1): the run loops then look at the VM's flags.
void kick_core(int32_t cpu_index) {
  if (cpu_index < 0 || static_cast<uint32_t>(cpu_index) == this_cpu().index) return;
  if (PerCpu* target = cpu_by_index(static_cast<uint32_t>(cpu_index)); target != nullptr) {
    apic::send_fixed_ipi(target->apic_id, interrupts::kVectorWakeup);
  }
}

void free_guest_memory(UserVmRecord& r) {
  UserGuestVm* vm = r.vm;
  if (vm == nullptr) return;
  IrqSpinlockGuard guard(r.memory_lock);
  if (vm->nested_tables_phys != 0) {
    (void)guest::NestedPageTableBuilder::release_tables(guest::kernel_page_allocator(), vm->nested_tables_phys);
    vm->nested_tables_phys = 0;
    vm->nested_root = 0;
  }
  if (vm->memory_phys != 0) {
    if (auto f = memory::free_contiguous(vm->memory_phys, vm->ram_bytes / paging::kPageSize); !f) {
      LOG_ERROR("vm%u: guest RAM not freed: %s", r.id, f.error().message);
    }
    vm->memory_phys = 0;
    vm->ram_bytes = 0;
  }
}

// Records that the VM failed with `reason` (logged, shown as `failed`). At boot this is all; a
// running VM also stops its vCPUs (end_run) and frees its memory.
void record_failure(UserVmRecord& r, const char* reason, uint64_t detail = 0) {
  LOG_ERROR("vm%u '%s': failed: %s (detail %llu)", r.id, r.name.c_str(), reason, static_cast<unsigned long long>(detail));
  IrqSpinlockGuard guard(g_status_lock);
  r.state = UserVmState::kFailed;
  r.failure = reason;
}

void fail_at_boot(UserVmRecord& r, const char* reason, uint64_t detail = 0) {
  record_failure(r, reason, detail);
  free_guest_memory(r);
}

struct LoadedImage {
  guest::EntryState entry;
  const char* format = "";
};

std::span<const uint8_t> module_bytes(const ModuleSource& m) {
  return std::span<const uint8_t>(paging::phys_to_ptr<const uint8_t>(m.phys), m.size);
}

// The kernel by its format: a Linux bzImage (boot protocol, with the initrd), otherwise a
// Multiboot v1 kernel with its modules.
Result<LoadedImage> load_kernel(const UserVmRecord& r, const guest::GuestMemoryMap& map, guest::GuestMemory& memory) {
  if (guest::bzimage::looks_like_bzimage(module_bytes(r.kernel))) {
    guest::bzimage::BootRequest request;
    request.kernel = module_bytes(r.kernel);
    if (r.initrd.size != 0) request.initrd = module_bytes(r.initrd);
    std::string cmdline = r.cmdline;
    if (g_backend != nullptr && !g_backend->cpuid_announces_tsc_frequency) {
      cmdline = guest::bzimage::with_tsc_early_khz(r.cmdline, time::tsc_hz() / 1000);
      if (cmdline != r.cmdline) {
        LOG_INFO("vm%u: Linux command line gets \"%s\" appended: this CPU announces no TSC frequency in CPUID",
                 r.id, cmdline.c_str() + r.cmdline.size() + (r.cmdline.empty() ? 0 : 1));
      }
    }
    request.cmdline = cmdline;
    auto image = TRY(guest::bzimage::load(request, map, memory));
    return LoadedImage{image.entry, guest::bzimage::kernel_format_name()};
  }
  if (r.initrd.size != 0) {
    return make_error(ErrorCode::kInvalidArgument, "initrd= is for Linux kernels; this kernel is not a bzImage");
  }
  guest::multiboot1::ModuleInput inputs[guest::multiboot1::kMaxModules];
  const size_t count = r.modules.size() < guest::multiboot1::kMaxModules ? r.modules.size() : guest::multiboot1::kMaxModules;
  for (size_t i = 0; i < count; ++i) {
    inputs[i].bytes = module_bytes(r.modules[i]);
    inputs[i].string = r.modules[i].string;
  }
  guest::multiboot1::BootRequest request;
  request.kernel = module_bytes(r.kernel);
  request.cmdline = r.cmdline;
  request.modules = std::span<const guest::multiboot1::ModuleInput>(inputs, count);
  auto image = TRY(guest::multiboot1::load(request, map, memory));
  return LoadedImage{image.entry, guest::multiboot1::kernel_format_name(image.kernel.format)};
}

// Zeroes guest RAM a step at a time and runs this core's mailbox work in between: while a VM
// of hundreds of MiB is reset, console snapshots of the vCPU bound here are still answered
// (within the 250 ms capture bound even under Bochs). Work that makes another VMCS current is
// harmless here: restart() makes the vCPU's own current again.
void zero_guest_ram(uint8_t* ram, uint64_t bytes) {
  constexpr uint64_t kStep = 4 * kMiB;
  for (uint64_t done = 0; done < bytes; done += kStep) {
    lib::mem_set(ram + done, 0, bytes - done < kStep ? bytes - done : kStep);
    (void)poll_core_mailbox();
  }
}

// What vCPU `index` of the VM starts from (its RAM and nested page tables as they are now).
UserVcpuStart start_of(UserVmRecord& r, size_t index) {
  UserVcpuStart start;
  start.vm = r.vm;
  start.vcpu_id = static_cast<uint32_t>(index);
  start.nested_root = r.vm->nested_root;
  start.ram_phys = r.vm->memory_phys;
  start.ram_bytes = r.vm->ram_bytes;
  start.entry = &r.entry;
  return start;
}

// Guest RAM (zeroed), the kernel, modules and Multiboot information loaded into it, and nested
// page tables in the backend's format mapping it at guest-physical 0. Sets r.entry and
// r.kernel_format.
Result<void> allocate_and_load(UserVmRecord& r) {
  if (g_backend == nullptr) return make_error(ErrorCode::kUnsupported, "no virtualization backend runs user VMs");
  const guest::NestedPagingFeatures features = TRY(g_backend->nested_paging());
  UserGuestVm& vm = *r.vm;
  const uint64_t bytes = uint64_t{r.mem_mib} * kMiB;
  const guest::GuestMemoryMap map = TRY(guest::GuestMemoryMap::for_ram(bytes));
  auto block = memory::alloc_contiguous(bytes / paging::kPageSize, kRamAlignment);
  if (!block) return make_error(ErrorCode::kOutOfMemory, "no contiguous host memory for the guest RAM (lower mem=)", r.mem_mib);
  vm.memory_phys = *block;
  vm.ram_bytes = bytes;
  auto* ram = paging::phys_to_ptr<uint8_t>(vm.memory_phys);
  zero_guest_ram(ram, bytes);
  guest::ByteSpanGuestMemory memory(std::span<uint8_t>(ram, bytes));

  auto loaded = load_kernel(r, map, memory);
  if (!loaded) {
    free_guest_memory(r);
    return loaded.error();
  }
  // The firmware's part of the platform: an MP table (MP spec 1.4) announcing the vCPUs, the I/O
  // APIC and the ISA interrupt routing, in the BIOS area where guests scan for it.
  guest::mp_table::MpConfig mp;
  mp.cpu_count = static_cast<uint16_t>(r.cpus);
  mp.ioapic_id = ioapic_id_for(r.cpus);
  if (auto written = guest::mp_table::write(memory, mp); !written) {
    free_guest_memory(r);
    return written.error();
  }

  auto tables = guest::NestedPageTableBuilder::create(guest::kernel_page_allocator(), features);
  if (!tables) {
    free_guest_memory(r);
    return tables.error();
  }
  if (auto mapped = tables->map(0, vm.memory_phys, bytes, guest::kAccessRwx, guest::MemoryType::kWriteBack); !mapped) {
    (void)guest::NestedPageTableBuilder::release_tables(guest::kernel_page_allocator(), tables->pml4_phys());
    free_guest_memory(r);
    return mapped.error();
  }
  vm.nested_tables_phys = tables->pml4_phys();
  vm.nested_root = g_backend->nested_root(*tables);
  r.entry = loaded->entry;
  IrqSpinlockGuard guard(g_status_lock);
  r.kernel_format = loaded->format;
  return ok();
}

// The host's wall clock (its RTC read at boot, advanced by the TSC), for the guests' CMOS RTCs.
uint64_t host_wall_clock(void*) { return static_cast<uint64_t>(time::wall_clock_seconds()); }

Result<UserGuestVm*> create_vm_object(const UserVmRecord& r) {
  guest::PlatformConfig config;
  config.ram_bytes = uint64_t{r.mem_mib} * kMiB;
  config.cpu_count = static_cast<uint16_t>(r.cpus);
  config.max_cpus = static_cast<uint16_t>(r.cpus);
  // The guest's RTC shows the host's time; without a host RTC reading, its fixed default.
  if (time::wall_clock_seconds() > 0) config.wall_clock_seconds = &host_wall_clock;
  void* mem = kmalloc(sizeof(UserGuestVm), 64);
  if (mem == nullptr) return make_error(ErrorCode::kOutOfMemory, "no memory for a VM");
  auto* vm = new (mem) UserGuestVm(config, ioapic_id_for(r.cpus));
  vm->vm_id = r.id;
  // Every port goes to the platform; unknown MSRs fault as on hardware.
  vm->unknown_msrs = guest::UnknownMsrPolicy::kInjectGp;
  Result<void> attached = vm->platform.attach();
  if (attached) attached = vm->ports.register_range(0, 0x10000, &vm->forward);
  if (attached) attached = vm->mmio.register_window(guest::Ioapic::kDefaultBase, guest::Ioapic::kWindowSize, &vm->ioapic_window);
  if (!attached) {
    vm->~UserGuestVm();
    kfree(vm);
    return attached.error();
  }
  vm->platform.uart().set_output_sink(&uart_to_console, vm);
  vm->platform.set_irq_sink(&platform_irq_to_ioapic, vm);
  vm->ioapic.set_delivery_sink(&deliver_ioapic_message, vm);
  vm->level_eoi_listener = &vm->ioapic_eoi;
  return vm;
}

Result<void> build_one(UserVmRecord& r) {
  if (r.vm == nullptr) r.vm = TRY(create_vm_object(r));
  return allocate_and_load(r);
}


void release_start(UserVmRecord& r) {
  if (r.start_released.exchange(true)) return;
  if (!r.slots.empty()) kick_core(r.slots[0].cpu);
}

const char* state_name(UserVmState state) {
  switch (state) {
    case UserVmState::kStarting: return "starting";
    case UserVmState::kRunning: return "running";
    case UserVmState::kExited: return "exited";
    case UserVmState::kFailed: return "failed";
  }
  return "unknown";
}

// Mailbox work on the core of the VM's vCPU 0: the request reaches its run loop, which restarts
// the VM at its next turn (argument: the record's index).
Result<void> ask_for_reset(uint64_t index) {
  if (index >= g_record_count) return make_error(ErrorCode::kInvalidArgument, "no such VM record", index);
  g_records[index].reset_requested.store(true, std::memory_order_release);
  return ok();
}

// Idles this core (mailbox work runs, wake-ups end the HLT) until `done()`.
template <typename Done>
void idle_until(Done done) {
  for (;;) {
    cpu::disable_interrupts();
    if (poll_core_mailbox()) continue;  // a reset request arrives as mailbox work
    if (done()) break;
    cpu::enable_interrupts_and_halt();  // STI's shadow covers HLT: no wake-up is lost (SDM Vol. 2B STI)
  }
  cpu::enable_interrupts();
}

// Ends this run of the VM (first caller wins): every other vCPU is forced out of its guest.
// Returns true for the first caller.
bool begin_stop(UserVmRecord& r) {
  if (r.stopping.exchange(true)) return false;  // seq_cst: see run_slot()
  r.vm->leave_run.store(true);
  for (const VcpuSlot& slot : r.slots) kick_core(slot.cpu);
  return true;
}

void end_exited(UserVmRecord& r) {
  guest::ExitLatch latch;
  {
    IrqSpinlockGuard guard(r.vm->platform_lock);
    latch = r.vm->platform.exit_latch();
  }
  if (!begin_stop(r)) return;
  {
    IrqSpinlockGuard guard(g_status_lock);
    r.exit = latch;
    r.state = UserVmState::kExited;
  }
  LOG_INFO("vm%u '%s': exited with code %u through %s (status %llu); its memory is freed", r.id, r.name.c_str(),
           latch.value(), guest::exit_cause_name(latch.cause()), static_cast<unsigned long long>(latch.status()));
}

void end_failed(UserVmRecord& r, const char* reason, uint64_t detail = 0) {
  if (begin_stop(r)) record_failure(r, reason, detail);
}

// The guest reset its machine. On vCPU 0's core the request is taken here (the loop below
// ends and run_user_vm_on_this_cpu() resets the VM); another vCPU's core posts it to vCPU 0's.
Result<void> take_guest_reset(UserVmRecord& r) {
  if (static_cast<uint32_t>(r.cpu()) != this_cpu().index) return request_user_vm_reset(r.id);
  r.reset_requested.store(true, std::memory_order_release);
  return ok();
}

// One vCPU's turn: runs it until the VM ends, fails or is reset. The last vCPU out frees the
// guest RAM and EPT.
void run_slot(UserVmRecord& r, size_t index) {
  UserGuestVm& vm = *r.vm;
  UserVcpu& vcpu = *r.slots[index].vcpu;
  // Sequentially consistent with begin_stop() and reset_vm(): either the resetting core sees this
  // vCPU counted, or this vCPU sees `stopping` before it enters the guest.
  r.vcpus_running.fetch_add(1);
  const char* stop_reason = "the VM ended";
  while (!r.stopping.load() && !r.reset_requested.load(std::memory_order_acquire)) {
    auto turn = vcpu.run();
    if (!turn) {
      end_failed(r, turn.error().message, turn.error().detail);
      break;
    }
    if (vm.exit_requested) {
      end_exited(r);
      stop_reason = "the VM ended through its exit port";
      break;
    }
    if (vm.guest_reset_requested.exchange(false, std::memory_order_acq_rel)) {
      // The guest reset its machine (i8042 0xFE, 0xCF9): the whole VM restarts, as the console's
      // reset does (on vCPU 0's core).
      if (auto asked = take_guest_reset(r); !asked) {
        end_failed(r, asked.error().message, asked.error().detail);
        break;
      }
      continue;
    }
    // Host interrupts, HLT and requests to leave the guest: work posted to this core (captures, a
    // reset request) runs here.
    if (*turn == UserVcpu::Turn::kHostWork && poll_core_mailbox()) {
      if (auto resumed = vcpu.after_host_work(); !resumed) {
        end_failed(r, resumed.error().message);
        break;
      }
    }
  }
  if (!vcpu.stopped()) vcpu.stop_outside_run(stop_reason);
  if (r.vcpus_running.fetch_sub(1) == 1 && r.stopping.load()) {
    free_guest_memory(r);
  }
}

// vCPU 0's core: stops the VM if it still runs, rebuilds RAM and EPT from the boot modules,
// restarts vCPU 0 at the entry point and lets the other vCPUs restart (waiting for a SIPI).
void reset_vm(UserVmRecord& r) {
  const uint64_t started_ns = time::now_ns();
  r.reset_requested.store(false, std::memory_order_release);
  (void)begin_stop(r);
  // Every vCPU has left its guest (kicked) before the memory goes.
  while (r.vcpus_running.load() != 0) cpu::pause();
  UserGuestVm& vm = *r.vm;
  vm.leave_run.store(false);
  free_guest_memory(r);
  {
    IrqSpinlockGuard guard(vm.platform_lock);
    vm.platform.reset();
    vm.ioapic.reset();
    vm.exit_requested = false;
    vm.exit_status = 0;
  }
  if (auto loaded = allocate_and_load(r); !loaded) return record_failure(r, loaded.error().message, loaded.error().detail);
  if (auto restarted = r.slots[0].vcpu->restart(start_of(r, 0)); !restarted) {
    free_guest_memory(r);
    return record_failure(r, restarted.error().message, restarted.error().detail);
  }
  {
    IrqSpinlockGuard guard(g_status_lock);
    r.state = UserVmState::kRunning;
    r.failure.clear();
    r.exit = guest::ExitLatch{};
  }
  r.stopping.store(false, std::memory_order_release);
  r.slots[0].generation = r.generation.fetch_add(1, std::memory_order_acq_rel) + 1;
  for (size_t k = 1; k < r.slots.size(); ++k) kick_core(r.slots[k].cpu);
  const uint32_t n = r.resets.fetch_add(1) + 1;
  LOG_INFO("vm%u '%s': reset %u: restarted from its boot modules in %llu ms", r.id, r.name.c_str(), n,
           static_cast<unsigned long long>((time::now_ns() - started_ns) / 1000000));
}

// Another vCPU's core after a reset: the same vCPU, waiting for INIT/SIPI from vCPU 0 again.
bool restart_secondary(UserVmRecord& r, size_t index) {
  VcpuSlot& slot = r.slots[index];
  slot.generation = r.generation.load(std::memory_order_acquire);
  if (auto restarted = slot.vcpu->restart(start_of(r, index)); !restarted) {
    end_failed(r, restarted.error().message, restarted.error().detail);
    return false;
  }
  slot.vcpu->post_init();  // an application processor waits for a SIPI (SDM Vol. 3A 9.4)
  return true;
}

}  // namespace

void build_user_vms(uint32_t physical_cpus, const UserVmBackend& backend) {
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
  g_backend = &backend;
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
      r.initrd = ModuleSource{modules[d.initrd].start, modules[d.initrd].size(), {}};
    }
    if (d.cpus > kMaxVcpusPerVm) {
      d.refused = true;
      d.refusal = make_error(ErrorCode::kInvalidArgument, "more vCPUs than a VM's vCPU group holds (16)", d.cpus);
      continue;
    }
    if (d.cpus > backend.max_vcpus_per_vm) {
      d.refused = true;
      d.refusal = make_error(ErrorCode::kUnsupported, backend.too_many_vcpus, d.cpus);
      continue;
    }
    if (auto built = build_one(r); !built) {
      d.refused = true;
      d.refusal = built.error();
    }
  }
  guest::place_vms(plan, physical_cpus);
  for (size_t i = 0; i < g_record_count; ++i) {
    UserVmRecord& r = g_records[i];
    const guest::VmDescription& d = plan.vms[i];
    if (d.refused) {
      fail_at_boot(r, d.refusal.message, d.refusal.detail);
      continue;
    }
    for (int32_t cpu : d.vcpu_cpus) r.slots.push_back(VcpuSlot{cpu, nullptr, 0});
    // The console finds the VM from now on; its vCPUs join as their cores create them.
    if (auto p = publish_vm(*r.vm, r.name); !p) LOG_ERROR("vm%u: publish VM: %s", r.id, p.error().message);
    LOG_INFO("vm%u '%s': %s, %u MiB, command line \"%s\", %zu module(s); %u vCPU(s) from cpu%d on", r.id,
             r.name.c_str(), r.kernel_format.c_str(), r.mem_mib, r.cmdline.c_str(), r.modules.size(), r.cpus,
             r.cpu());
  }
}

bool user_vms_requested() { return g_requested; }


Result<void> prepare_user_vcpu_on_this_cpu() {
  const SlotRef ref = slot_on_this_cpu();
  if (ref.record == nullptr || ref.record->slots[ref.index].vcpu != nullptr) {
    return make_error(ErrorCode::kNotFound, "no user VM is placed on this core");
  }
  if (state_of(*ref.record) == UserVmState::kFailed) {
    return make_error(ErrorCode::kInvalidState, "the VM placed on this core failed");
  }
  UserVmRecord& r = *ref.record;
  UserGuestVm& vm = *r.vm;
  auto created = g_backend->create_vcpu(start_of(r, ref.index));
  if (!created) {
    if (ref.index == 0) fail_at_boot(r, created.error().message, created.error().detail);
    return created.error();
  }
  r.slots[ref.index].vcpu = *created;
  vm.members[ref.index].store(*created);
  if (ref.index == 0) set_state(r, UserVmState::kRunning);
  if (r.vcpus_prepared.fetch_add(1) + 1 == r.slots.size()) release_start(r);
  return ok();
}

void run_user_vm_on_this_cpu() {
  const SlotRef ref = slot_on_this_cpu();
  if (ref.record == nullptr || ref.record->slots[ref.index].vcpu == nullptr) return;
  UserVmRecord& r = *ref.record;
  const size_t k = ref.index;
  // vCPU 0 enters once every vCPU exists; the others once vCPU 0 runs.
  if (k == 0) idle_until([&] { return r.start_released.load(); });
  else idle_until([&] { return state_of(r) != UserVmState::kStarting; });
  for (;;) {
    if (state_of(r) == UserVmState::kRunning && !r.stopping.load(std::memory_order_acquire)) run_slot(r, k);
    if (k == 0) {
      idle_until([&] { return r.reset_requested.load(std::memory_order_acquire); });
      reset_vm(r);
    } else {
      const uint32_t seen = r.slots[k].generation;
      idle_until([&] { return r.generation.load(std::memory_order_acquire) != seen; });
      (void)restart_secondary(r, k);
    }
  }
}

void check_user_vms_started() {
  for (size_t i = 0; i < g_record_count; ++i) {
    UserVmRecord& r = g_records[i];
    for (size_t k = 0; k < r.slots.size(); ++k) {
      if (r.slots[k].vcpu != nullptr) continue;
      if (k == 0 && state_of(r) == UserVmState::kStarting) {
        fail_at_boot(r, "the physical CPU of vCPU 0 did not come online or could not run it",
                     static_cast<uint64_t>(r.slots[k].cpu));
      } else if (k != 0) {
        LOG_WARN("vm%u '%s': vCPU %zu has no core (cpu%d did not come online or could not run it)", r.id,
                 r.name.c_str(), k, r.slots[k].cpu);
      }
    }
  }
  for (size_t i = 0; i < g_record_count; ++i) {
    UserVmRecord& r = g_records[i];
    release_start(r);  // every AP has had its turn: vCPU 0 goes on without a missing vCPU
    IrqSpinlockGuard guard(g_status_lock);
    if (r.state == UserVmState::kFailed) {
      LOG_WARN("vm%u '%s': failed: %s", r.id, r.name.c_str(), r.failure.c_str());
    } else {
      LOG_INFO("vm%u '%s': %s, vCPU 0 on cpu%d", r.id, r.name.c_str(), state_name(r.state), r.cpu());
    }
  }
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
    s.cpu = r.cpu();
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

UserVcpu* user_vm_vcpu(uint32_t vm_id, uint32_t vcpu_id) {
  const UserVmRecord* r = find_record(vm_id);
  if (r == nullptr || r->vm == nullptr || vcpu_id >= kMaxVcpusPerVm) return nullptr;
  return r->vm->members[vcpu_id].load();
}

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
  return r->vm->platform.push_console_input(bytes);
}

Result<void> request_user_vm_reset(uint32_t vm_id) {
  UserVmRecord* r = find_record(vm_id);
  if (r == nullptr) return make_error(ErrorCode::kNotFound, "no such VM", vm_id);
  if (r->slots.empty() || r->slots[0].vcpu == nullptr) {
    return make_error(ErrorCode::kInvalidState, "the VM was refused at boot and has no vCPU to restart", vm_id);
  }
  // leave_run and the wake-up IPI bring the run loop out of the guest (or the core out of HLT);
  // the loop runs the work, which hands it the request. Not waited for: a core busy with its
  // guest's I/O (a guest flooding its UART, whose lines go to the serial log) may take longer
  // than a console request should wait, and the mailbox collects the finished work's slot at the
  // next post.
  r->vm->leave_run.store(true);
  return post_core_work(static_cast<uint32_t>(r->cpu()), &ask_for_reset, static_cast<uint64_t>(r - g_records));
}

}  // namespace lantern::guest
