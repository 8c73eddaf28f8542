#include "svm/hw/svm_operation.h"

#include <atomic>

#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/interrupts.h"
#include "kernel/arch/x86_64/paging.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/core/log.h"
#include "kernel/core/memory.h"
#include "kernel/core/spinlock.h"
#include "guest/hw/core_backend.h"
#include "kernel/lib/string.h"
#include "svm/event_injection.h"  // kVectorDebug

namespace lantern::svm {
namespace {

struct CoreState {
  uint64_t host_save_area_phys = 0;
  uint32_t next_asid = 1;
};
CoreState g_cores[kMaxCpus];
std::atomic<uint32_t> g_cores_in_svm{0};
Spinlock g_features_lock;
SvmFeatures g_features;
std::atomic<bool> g_features_valid{false};
std::atomic<const char*> g_unavailable_reason{nullptr};
std::atomic<bool> g_unavailable_logged{false};

Result<void> unavailable(const char* reason) {
  g_unavailable_reason.store(reason);
  if (!g_unavailable_logged.exchange(true)) {
    LOG_INFO("svm: unavailable: %s", reason);
  } else {
    LOG_DEBUG("svm: unavailable on this core: %s", reason);
  }
  return make_error(ErrorCode::kUnsupported, reason);
}

// Bochs 2.7's SVM (CPU model ryzen) hands the host a guest's single-step trap: a guest with
// RFLAGS.TF set at the start of an instruction the vCPU intercepts (CPUID, ...) makes the host
// take #DB right after the #VMEXIT, inside svm_vmrun(). The host sets neither RFLAGS.TF nor a
// breakpoint in DR7, so a #DB in the host is that leak: counted and dropped (a trap: the saved
// RIP is already the next instruction, SDM Vol. 3A Table 6-1); log_dropped_host_debug_traps()
// reports it later. The handler runs before VMLOAD gives the host its GS base back: no per-CPU
// data, no log. The guest's own single-step #DB comes from its vCPU
// (SvmVcpu::complete_emulated_instruction()).
std::atomic<uint64_t> g_host_debug_traps{0};
std::atomic<bool> g_host_debug_traps_logged{false};

void drop_host_debug_trap(interrupts::Frame&) { g_host_debug_traps.fetch_add(1, std::memory_order_relaxed); }

void log_features(const SvmFeatures& f) {
  LOG_INFO("svm: revision %u, %u ASIDs, NPT %s, NRIP %s, flush-by-ASID %s, VMCB clean %s, decode assists %s, "
           "VGIF %s, AVIC %s (CPUID 8000_000AH:EDX 0x%x)",
           f.revision, f.asid_count, f.nested_paging ? "yes" : "no", f.next_rip_save ? "yes" : "no",
           f.flush_by_asid ? "yes" : "no", f.vmcb_clean ? "yes" : "no", f.decode_assists ? "yes" : "no",
           f.vgif ? "yes" : "no", f.avic ? "yes" : "no", f.raw_edx);
}

}  // namespace

Result<void> enable_on_this_cpu() {
  cpu::InterruptsOff irq_off;
  const uint32_t index = this_cpu().index;
  if (index >= kMaxCpus) return make_error(ErrorCode::kInvalidArgument, "CPU index out of range", index);
  CoreState& core = g_cores[index];
  if (guest::this_core_backend() == guest::CoreBackend::kSvm) {
    return make_error(ErrorCode::kAlreadyExists, "this core already has EFER.SVME");
  }

  SvmCpuid c;
  c.max_extended_leaf = cpu::cpuid(kCpuidExtendedMax).eax;
  if (c.max_extended_leaf >= kCpuidExtendedFeatures) c.ext_features_ecx = cpu::cpuid(kCpuidExtendedFeatures).ecx;
  if (c.max_extended_leaf >= kCpuidSvmFeatures) {
    const cpu::CpuidResult l = cpu::cpuid(kCpuidSvmFeatures);
    c.svm_eax = l.eax;
    c.svm_ebx = l.ebx;
    c.svm_edx = l.edx;
  }
  // VM_CR exists only where CPUID reports SVM (APM 15.30.1); elsewhere RDMSR would #GP.
  const bool has_svm = c.max_extended_leaf >= kCpuidExtendedFeatures && (c.ext_features_ecx & kCpuid80000001EcxSvm) != 0;
  const uint64_t vm_cr = has_svm ? cpu::rdmsr(kMsrVmCr) : 0;
  const SvmDetection d = detect_svm(c, vm_cr);
  if (!d.available) return unavailable(d.unavailable_reason);

  g_features_lock.lock();
  if (!g_features_valid.load()) {
    g_features = d.features;
    g_features_valid.store(true);
    log_features(g_features);
  }
  g_features_lock.unlock();

  // APM 15.30.4: VM_HSAVE_PA holds the 4 KiB-aligned physical address of the host save area,
  // where VMRUN stores the host state it restores at #VMEXIT. One page per core.
  if (core.host_save_area_phys == 0) {
    const uint64_t frame = TRY(memory::alloc_frame());
    lib::mem_set(paging::phys_to_ptr<void>(frame), 0, paging::kPageSize);
    core.host_save_area_phys = frame;
  }
  // APM 15.4 "Enabling SVM": EFER.SVME = 1 before any SVM instruction.
  cpu::wrmsr(cpu::kMsrEfer, cpu::rdmsr(cpu::kMsrEfer) | kEferSvme);
  cpu::wrmsr(kMsrVmHsavePa, core.host_save_area_phys);
  guest::set_this_core_backend(guest::CoreBackend::kSvm);
  interrupts::set_handler(kVectorDebug, &drop_host_debug_trap);
  const uint32_t n = g_cores_in_svm.fetch_add(1) + 1;
  LOG_INFO("svm: cpu%u: EFER.SVME set, host save area 0x%llx (%u core(s) so far)", index,
           static_cast<unsigned long long>(core.host_save_area_phys), n);
  return ok();
}

uint32_t cores_in_svm_operation() { return g_cores_in_svm.load(); }

void log_dropped_host_debug_traps() {
  if (g_host_debug_traps.load(std::memory_order_relaxed) == 0 || g_host_debug_traps_logged.load(std::memory_order_relaxed)) {
    return;
  }
  if (!g_host_debug_traps_logged.exchange(true)) {
    LOG_WARN("svm: a guest's single-step trap reached the host after #VMEXIT (the emulator's SVM); dropped, "
             "as every later one");
  }
}

bool this_cpu_in_svm_operation() { return guest::this_core_backend() == guest::CoreBackend::kSvm; }

const SvmFeatures* features() { return g_features_valid.load() ? &g_features : nullptr; }

const char* unavailable_reason() { return g_cores_in_svm.load() > 0 ? nullptr : g_unavailable_reason.load(); }

uint32_t allocate_asid() {
  CoreState& core = g_cores[this_cpu().index % kMaxCpus];
  const uint32_t limit = g_features_valid.load() ? g_features.asid_count : 2;
  if (core.next_asid == 0 || core.next_asid >= limit) core.next_asid = 1;
  return core.next_asid++;
}

}  // namespace lantern::svm
