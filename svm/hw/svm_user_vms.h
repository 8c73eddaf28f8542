// The user's own VMs (`./lantern --vm`, vmx/hw/user_vms.h) on the SVM backend: an SvmVcpu per
// vCPU under nested paging in NPT format, driven by the shared user-VM loop. Kernel-only.
#pragma once

#include "vmx/hw/user_vms.h"

namespace lantern::svm {

// For vmx::build_user_vms() on a boot whose cores run SVM. One vCPU per VM for now: INIT/SIPI
// to an application processor is not emulated yet, so a VM with cpus > 1 is refused.
const vmx::UserVmBackend& svm_user_vm_backend();

}  // namespace lantern::svm
