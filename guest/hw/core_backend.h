// Which hardware-virtualization backend owns each core: set once by the backend that enabled
// itself there (vmx::enable_on_this_cpu() after VMXON, svm::enable_on_this_cpu() after
// EFER.SVME), read by the other backend before it creates a vCPU on that core, so one core
// never runs both. Any core may read; only the core itself writes its entry. Kernel-only.
#pragma once

#include <cstdint>

namespace lantern::guest {

enum class CoreBackend : uint8_t { kNone, kVmx, kSvm };

void set_this_core_backend(CoreBackend backend);
CoreBackend this_core_backend();

}  // namespace lantern::guest
