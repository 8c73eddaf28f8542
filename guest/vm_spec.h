// VM descriptions from tagged boot modules (portable, host-tested): the kernel-side reader of
// the `module2` lines that `./lantern --vm` writes (tools/vm_spec.py) or that people write by
// hand (docs/lab-guide.md, "Your own kernel").
//
// A boot module belongs to a VM when its string (what GRUB hands over: the words after the
// module's path, joined by one blank) starts with the word `lantern.vm=ID`. Words are split on
// blanks; each other word is key=value:
//   role=kernel|initrd|module   required
//   name=NAME                   kernel only; default "vm<ID>"; 1-32 of [A-Za-z0-9._+-]
//   cpus=N                      kernel only; default 1
//   mem=MiB                     kernel only; default 128
//   append=ARGS                 kernel only; the guest command line, percent-encoded (%XX)
//   --                          kernel only; the remaining words, joined by one blank, are the
//                               command line (for hand-written grub.cfg; no ' " or \)
//   string=STR                  module only; the module's string for the guest (percent-encoded)
// Values are percent-decoded; only the characters [A-Za-z0-9._,:/+=@-] and %XX escapes are
// accepted in them, since those are the characters every GRUB 2 version passes unchanged
// (grub_create_loader_cmdline() quotes words with blanks and escapes ' " \).
// A VM's modules are handed to its guest in the order of their boot modules.
//
// Anything wrong with one VM refuses that VM alone, with a reason; the other VMs still build.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/lib/result.h"

namespace lantern::guest {

// One boot module as the kernel found it (multiboot2 module tag).
struct BootModuleInfo {
  std::string_view string;
  uint64_t size = 0;
};

enum class VmModuleRole : uint8_t { kKernel, kInitrd, kModule };

struct VmModuleRef {
  size_t boot_module = 0;  // index into the boot modules
  std::string string;      // the module's string for the guest
};

struct VmDescription {
  static constexpr uint32_t kDefaultCpus = 1;
  static constexpr uint32_t kDefaultMemMiB = 128;
  static constexpr uint32_t kMaxCpus = 64;
  static constexpr size_t kMaxModules = 16;  // guest/loader/multiboot1.h kMaxModules
  static constexpr size_t kMaxAppend = 4096;
  static constexpr size_t kNoModule = ~size_t{0};

  uint32_t id = 0;
  std::string name;
  uint32_t cpus = kDefaultCpus;
  uint32_t mem_mib = kDefaultMemMiB;
  std::string append;
  size_t kernel = kNoModule;  // boot module index
  size_t initrd = kNoModule;
  std::vector<VmModuleRef> modules;

  // Set when the VM is refused; `refusal.message` is the reason the log and /vms show.
  bool refused = false;
  Error refusal;

  // Set by place_vms(): the physical CPU (core index) of each vCPU, vCPU 0 first; empty when
  // unplaced.
  std::vector<int32_t> vcpu_cpus;
};

// A tagged module string that names no usable VM (a bad lantern.vm= value): reported, skipped.
struct StrayModule {
  size_t boot_module = 0;
  Error reason;
};

struct VmPlan {
  std::vector<VmDescription> vms;  // in order of first appearance
  std::vector<StrayModule> stray;
};

struct VmLimits {
  uint32_t physical_cpus = 1;  // a VM with more vCPUs is refused
};

inline constexpr size_t kMaxVms = 16;

// Groups the tagged boot modules into VMs and checks each (see vm_spec.cpp for every reason).
// Untagged modules (the build's own guest programs) are ignored.
VmPlan plan_vms(std::span<const BootModuleInfo> modules, const VmLimits& limits);

// Gives each vCPU of each VM that is not refused a physical CPU of its own: the application
// processors 1 .. physical_cpus - 1 in plan order, a VM's vCPUs on consecutive ones (core 0, the
// bootstrap processor, owns the network and the console). Refuses a VM that finds too few free
// cores; later, smaller VMs may still fit.
void place_vms(VmPlan& plan, uint32_t physical_cpus);

// Percent-decoding of one value: kMalformed for a bad escape or a character outside the set
// listed above.
Result<std::string> decode_tag_value(std::string_view value);

}  // namespace lantern::guest
