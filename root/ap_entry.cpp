// The composition root, application processors: what each AP runs once the kernel base has set
// up its tables and local APIC (kernel/arch/x86_64/smp.cpp calls ap_entry()).
#include "kernel/arch/x86_64/smp.h"
#include "kernel/core/core_mailbox.h"
#include "kernel/core/kernel_boot.h"
#include "svm/hw/svm_guest_vm.h"
#include "svm/hw/svm_operation.h"
#include "vmx/hw/guest_vm.h"
#include "guest/hw/user_vms.h"
#include "vmx/hw/vmx_operation.h"

namespace lantern::root {

void ap_entry(PerCpu& cpu) {
  (void)vmx::enable_on_this_cpu();             // before "online", so READY counts it
  (void)svm::enable_on_this_cpu();             // likewise
  // likewise the vCPU: of the user's VM placed here (--vm), or else the demo's
  if (guest::user_vms_requested()) (void)guest::prepare_user_vcpu_on_this_cpu();
  else (void)vmx::prepare_demo_vcpu_on_this_cpu();
  (void)svm::prepare_demo_vcpu_on_this_cpu();  // or its SVM twin where SVM runs this core
  smp::mark_this_cpu_online(cpu);
  guest::run_user_vm_on_this_cpu();    // returns at once without a user VM on this core
  vmx::run_vcpu_loop_on_this_cpu();  // returns at once without a demo vCPU on this core
  svm::run_vcpu_loop_on_this_cpu();  // likewise
  idle_loop_on_this_cpu();           // halts; runs work posted to this core (kernel/core/core_mailbox.h)
}

}  // namespace lantern::root
