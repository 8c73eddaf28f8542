// The VMs the console can see, whichever backend runs them. A core publishes its VM once it
// exists (the demos in prepare_demo_vcpu_on_this_cpu, the user VMs as they are built); the
// console (web/kernel/) looks them up by id. Published entries stay until reboot: nothing
// published is ever freed, so a pointer handed out here stays valid. Transient guests (the
// self-test and bench VMs) are not published. Each backend keeps its own table of published
// vCPUs (vmx/hw/vcpu_registry.h, svm/hw/svm_guest_vm.h). Any core may publish or look up (a
// spinlock guards the table). Kernel-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "guest/hw/guest_vm.h"
#include "kernel/lib/result.h"

namespace lantern::guest {

inline constexpr size_t kMaxPublishedVms = 64;

struct PublishedVm {
  GuestVm* vm = nullptr;
  char program[17] = {};  // the guest program's name (a user VM's name), NUL-terminated
};

// kAlreadyExists for a VM id published before; kFull when the table is full.
Result<void> publish_vm(GuestVm& vm, std::string_view program);
// Copies of the table's entries in publication order; returns how many (at most capacity).
size_t published_vms(PublishedVm* out, size_t capacity);
// nullptr when not published.
GuestVm* find_published_vm(uint32_t vm_id);

}  // namespace lantern::guest
