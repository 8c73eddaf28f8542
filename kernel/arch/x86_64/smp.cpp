#include "kernel/arch/x86_64/smp.h"

#include "kernel/arch/x86_64/apic.h"
#include "kernel/arch/x86_64/boot_layout.h"
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/gdt.h"
#include "kernel/arch/x86_64/interrupts.h"
#include "kernel/arch/x86_64/paging.h"
#include "kernel/core/log.h"
#include "kernel/core/memory.h"
#include "kernel/core/panic.h"
#include "kernel/core/time.h"
#include "kernel/lib/string.h"
#include "vmx/hw/core_mailbox.h"
#include "vmx/hw/guest_vm.h"
#include "vmx/hw/vmx_operation.h"
#include "svm/hw/svm_guest_vm.h"
#include "svm/hw/svm_operation.h"

extern "C" char ap_trampoline_start[], ap_trampoline_end[];
extern "C" char ap_long_mode_entry[];
extern "C" char boot_pml4[];
extern "C" void ap_main(lantern::PerCpu* cpu);

namespace lantern::smp {
namespace {

constexpr uint64_t kEferLme = 1ull << 8;  // SDM Vol. 4 Table 2-2, IA32_EFER
constexpr uint64_t kEferNxe = 1ull << 11;
constexpr uint64_t kInitDelayUs = 10'000;  // SDM Vol. 3 9.4.4.1: 10 ms after INIT
constexpr uint64_t kSipiDelayUs = 200;     // 200 us between the two SIPIs
constexpr uint64_t kOnlineTimeoutUs = 500'000;

void write_trampoline_u64(uint64_t offset, uint64_t value) {
  *paging::phys_to_ptr<uint64_t>(AP_TRAMPOLINE_PHYS + AP_TRAMPOLINE_DATA_OFFSET + offset) = value;
}

bool wait_online(PerCpu& cpu, uint64_t timeout_us) {
  const uint64_t deadline = time::now_ns() + timeout_us * 1000;
  while (time::now_ns() < deadline) {
    if (cpu.online.load(std::memory_order_acquire)) return true;
    cpu::pause();
  }
  return cpu.online.load(std::memory_order_acquire);
}

Result<PerCpu*> prepare_cpu(uint32_t index, uint32_t apic_id) {
  void* mem = kmalloc(sizeof(PerCpu), 64);
  void* stack = kmalloc(kKernelStackSize, 16);
  void* ist = kmalloc(kIstStackSize * kIstCount, 16);
  if (!mem || !stack || !ist) return make_error(ErrorCode::kOutOfMemory, "no memory for an AP's stacks");
  lib::mem_set(mem, 0, sizeof(PerCpu));
  auto* cpu = new (mem) PerCpu();
  cpu->index = index;
  cpu->apic_id = apic_id;
  cpu->stack_top = reinterpret_cast<uint64_t>(stack) + kKernelStackSize;
  cpu->tss.ist[kIstCount - 1] = reinterpret_cast<uint64_t>(ist);  // used by setup_cpu_tables
  return cpu;
}

}  // namespace

void setup_cpu_tables(PerCpu& cpu, uint64_t ist_stacks_base) {
  for (int i = 0; i < kIstCount; ++i) {
    cpu.tss.ist[i] = ist_stacks_base + (i + 1) * kIstStackSize;  // stacks grow down
  }
  gdt::load_for_cpu(cpu);
  install_percpu(&cpu);
  interrupts::load_idt();
}

uint32_t start_application_processors(std::span<const uint32_t> apic_ids) {
  const size_t size = ap_trampoline_end - ap_trampoline_start;
  LANTERN_ASSERT(size <= AP_TRAMPOLINE_DATA_OFFSET);
  lib::mem_copy(paging::phys_to_ptr<void>(AP_TRAMPOLINE_PHYS), ap_trampoline_start, size);
  const bool nx = (cpu::rdmsr(cpu::kMsrEfer) & kEferNxe) != 0;
  write_trampoline_u64(AP_DATA_BOOT_CR3, reinterpret_cast<uint64_t>(boot_pml4) - KERNEL_VMA);
  write_trampoline_u64(AP_DATA_FINAL_CR3, paging::kernel_cr3());
  write_trampoline_u64(AP_DATA_ENTRY, reinterpret_cast<uint64_t>(ap_long_mode_entry));
  write_trampoline_u64(AP_DATA_EFER, kEferLme | (nx ? kEferNxe : 0));

  const uint32_t my_apic_id = this_cpu().apic_id;
  uint32_t next_index = 1;
  uint32_t started = 0;
  for (uint32_t apic_id : apic_ids) {
    if (apic_id == my_apic_id) continue;
    if (next_index >= kMaxCpus) {
      LOG_WARN("smp: more than %u CPUs; APIC ID %u and later stay offline", kMaxCpus, apic_id);
      break;
    }
    auto prepared = prepare_cpu(next_index, apic_id);
    if (!prepared) {
      LOG_ERROR("smp: cannot start APIC ID %u: %s", apic_id, prepared.error().message);
      continue;
    }
    PerCpu* cpu = *prepared;
    write_trampoline_u64(AP_DATA_STACK_TOP, cpu->stack_top);
    write_trampoline_u64(AP_DATA_PERCPU, reinterpret_cast<uint64_t>(cpu));
    // The BIOS already started and parked the APs: INIT first (emulators.md), then two SIPIs.
    apic::send_init(apic_id);
    time::delay_us(kInitDelayUs);
    apic::send_startup(apic_id, AP_TRAMPOLINE_PHYS >> 12);
    time::delay_us(kSipiDelayUs);
    if (!cpu->online.load(std::memory_order_acquire)) apic::send_startup(apic_id, AP_TRAMPOLINE_PHYS >> 12);
    if (wait_online(*cpu, kOnlineTimeoutUs)) {
      ++started;
      ++next_index;
    } else {
      // The half-started CPU may still touch this PerCpu: leak it rather than reuse it.
      LOG_ERROR("smp: APIC ID %u did not come online within %llu ms", apic_id,
                static_cast<unsigned long long>(kOnlineTimeoutUs / 1000));
    }
  }
  return started;
}

}  // namespace lantern::smp

extern "C" void ap_main(lantern::PerCpu* cpu) {
  using namespace lantern;
  smp::setup_cpu_tables(*cpu, cpu->tss.ist[kIstCount - 1]);
  if (auto r = apic::init_this_cpu(false); !r) {
    panic("cpu%u: local APIC: %s", cpu->index, r.error().message);
  }
  if (apic::id() != cpu->apic_id) {
    LOG_WARN("cpu%u: APIC ID %u, MADT said %u", cpu->index, apic::id(), cpu->apic_id);
    cpu->apic_id = apic::id();
  }
  (void)vmx::enable_on_this_cpu();             // before "online", so READY counts it
  (void)svm::enable_on_this_cpu();             // likewise
  (void)vmx::prepare_demo_vcpu_on_this_cpu();  // likewise the demo vCPU
  (void)svm::prepare_demo_vcpu_on_this_cpu();  // or its SVM twin where SVM runs this core
  register_cpu(cpu);
  cpu->online_tsc = cpu::rdtsc();
  cpu->online.store(true, std::memory_order_release);
  LOG_INFO("cpu%u online (APIC ID %u)", cpu->index, cpu->apic_id);
  vmx::run_vcpu_loop_on_this_cpu();  // returns at once without a demo vCPU on this core
  svm::run_vcpu_loop_on_this_cpu();  // likewise
  vmx::idle_loop_on_this_cpu();      // halts; runs work posted to this core (vmx/hw/core_mailbox.h)
}
