// Per-core VMX operation: VMXON on every core at boot, and the facts the rest of the kernel
// reads afterwards (how many cores are in VMX operation, the capabilities). Kernel-only.
//
// The composition root calls enable_on_this_cpu() on the BSP before starting the APs, and on
// each AP before it reports online. Without VMX (QEMU TCG) it logs why and returns the
// error; nothing else depends on it.
#pragma once

#include <cstdint>

#include "kernel/lib/result.h"
#include "vmx/vmx_capabilities.h"

namespace lantern::vmx {

// CPUID.1:ECX[5], IA32_FEATURE_CONTROL, CR0/CR4 fixed bits, CR4.VMXE, VMXON region, VMXON.
// Reads and logs the capabilities on the first core that succeeds; later cores check that
// theirs report the same VMCS revision. kUnsupported when the CPU has no VMX (or the firmware
// locked it off); kVmxInstructionFailed when VMXON fails.
Result<void> enable_on_this_cpu();

// Cores that executed VMXON successfully.
uint32_t cores_in_vmx_operation();
// Whether this core is in VMX root operation.
bool this_cpu_in_vmx_operation();
// The capabilities read by the first core in VMX operation; nullptr when none is.
const VmxCapabilities* capabilities();
// Why VMX is unavailable (a static string), or nullptr when at least one core has it.
const char* unavailable_reason();

}  // namespace lantern::vmx
