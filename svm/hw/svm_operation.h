// Per-core SVM operation: detection and EFER.SVME plus a host save area (VM_HSAVE_PA) on every
// core at boot, and the facts the rest of the kernel reads afterwards. Kernel-only.
//
// The composition root (root/main.cpp, root/ap_entry.cpp) calls enable_on_this_cpu() on the BSP
// next to the VMX enable, and on each AP.
// Without SVM (Intel CPUs, Bochs skylake_x) it records why and returns kUnsupported.
#pragma once

#include <cstdint>

#include "kernel/lib/result.h"
#include "svm/svm_capabilities.h"

namespace lantern::svm {

Result<void> enable_on_this_cpu();

// Cores with EFER.SVME set and a host save area.
uint32_t cores_in_svm_operation();

// Logs, once, that a guest's single-step trap reached the host after #VMEXIT and was dropped
// (Bochs 2.7; svm_operation.cpp). For normal context: run() calls it when it returns.
void log_dropped_host_debug_traps();
bool this_cpu_in_svm_operation();
// The features of the first core that enabled SVM; nullptr when none did.
const SvmFeatures* features();
// Why SVM is unavailable (a static string), or nullptr when at least one core has it.
const char* unavailable_reason();
// A guest ASID for a new vCPU on this core (1 .. NASID-1, APM 15.16; ASID 0 is the host's),
// handed out round-robin. Only one vCPU runs per core at a time, and a reused ASID is flushed
// with TLB_CONTROL = 1 on its first VMRUN.
uint32_t allocate_asid();

}  // namespace lantern::svm
