// The VMX backend of the user's VMs (guest/hw/user_vms.h): a VmxVcpu per user vCPU with the VM's
// devices attached, its IPIs routed through a per-VM vCPU group, the guest-owned MSRs handed
// over without exits; EPT as the nested paging. Kernel-only.
#pragma once

#include "guest/hw/user_vms.h"

namespace lantern::vmx {

const guest::UserVmBackend& vmx_user_vm_backend();

}  // namespace lantern::vmx
