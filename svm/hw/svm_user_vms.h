// The user's own VMs (`./lantern --vm`, guest/hw/user_vms.h) on the SVM backend: an SvmVcpu per
// vCPU under nested paging in NPT format, driven by the shared user-VM loop. Kernel-only.
#pragma once

#include "guest/hw/user_vms.h"

namespace lantern::svm {

// For guest::build_user_vms() on a boot whose cores run SVM: vCPU 0 in the loader's entry state,
// the others waiting for INIT/SIPI, which their VM's vCPUs send through the vlapic (physical
// and logical destinations, shorthands) and the I/O APIC sends as messages.
const guest::UserVmBackend& svm_user_vm_backend();

}  // namespace lantern::svm
