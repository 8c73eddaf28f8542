#include "guest/vm_spec.h"

#include "guest/loader/memory_map.h"

namespace lantern::guest {
namespace {

constexpr std::string_view kTagKey = "lantern.vm=";
constexpr uint64_t kMiB = 1ull << 20;

bool is_blank(char c) { return c == ' ' || c == '\t'; }

// The next blank-separated word at or after `pos`; empty at the end.
std::string_view next_word(std::string_view s, size_t& pos) {
  while (pos < s.size() && is_blank(s[pos])) ++pos;
  const size_t start = pos;
  while (pos < s.size() && !is_blank(s[pos])) ++pos;
  return s.substr(start, pos - start);
}

bool safe_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == ',' || c == ':' || c == '/' || c == '+' || c == '=' || c == '@' || c == '-';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A decimal number without sign or blanks that fits 32 bits.
Result<uint32_t> parse_u32(std::string_view text) {
  if (text.empty() || text.size() > 10) return make_error(ErrorCode::kMalformed, "VM module string: a number is malformed");
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return make_error(ErrorCode::kMalformed, "VM module string: a number is malformed");
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > 0xffffffffull) return make_error(ErrorCode::kMalformed, "VM module string: a number is too large");
  return static_cast<uint32_t>(v);
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '+' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// One tagged module string, parsed.
struct Tag {
  uint32_t vm = 0;
  VmModuleRole role = VmModuleRole::kModule;
  bool has_name = false, has_cpus = false, has_mem = false, has_append = false;
  std::string name;
  uint32_t cpus = VmDescription::kDefaultCpus;
  uint32_t mem_mib = VmDescription::kDefaultMemMiB;
  std::string append;
  std::string string;
};

Result<Tag> parse_tag(std::string_view s, uint32_t vm) {
  Tag tag;
  tag.vm = vm;
  size_t pos = 0;
  (void)next_word(s, pos);  // lantern.vm=ID, already read
  bool has_role = false, has_string = false;
  bool seen_kernel_key = false;
  for (std::string_view word = next_word(s, pos); !word.empty(); word = next_word(s, pos)) {
    if (word == "--") {
      if (tag.has_append) return make_error(ErrorCode::kMalformed, "VM module string: append= and -- both give a command line");
      std::string_view rest = s.substr(pos);
      while (!rest.empty() && is_blank(rest.front())) rest.remove_prefix(1);
      while (!rest.empty() && is_blank(rest.back())) rest.remove_suffix(1);
      // Join the words with single blanks, as the guest would have seen them.
      std::string joined;
      size_t p = 0;
      for (std::string_view w = next_word(rest, p); !w.empty(); w = next_word(rest, p)) {
        for (char c : w) {
          if (c == '\'' || c == '"' || c == '\\')
            return make_error(ErrorCode::kMalformed, "VM module string: the words after -- hold ' \" or \\, which GRUB re-quotes; use append= with %XX");
        }
        if (!joined.empty()) joined.push_back(' ');
        joined.append(w);
      }
      tag.append = std::move(joined);
      tag.has_append = true;
      seen_kernel_key = true;
      break;
    }
    const size_t eq = word.find('=');
    if (eq == std::string_view::npos || eq == 0) return make_error(ErrorCode::kMalformed, "VM module string: a word is not key=value");
    const std::string_view key = word.substr(0, eq);
    const std::string_view raw = word.substr(eq + 1);
    if (key == "role") {
      if (has_role) return make_error(ErrorCode::kMalformed, "VM module string: role= given twice");
      has_role = true;
      if (raw == "kernel") tag.role = VmModuleRole::kKernel;
      else if (raw == "initrd") tag.role = VmModuleRole::kInitrd;
      else if (raw == "module") tag.role = VmModuleRole::kModule;
      else return make_error(ErrorCode::kMalformed, "VM module string: role must be kernel, initrd or module");
    } else if (key == "name") {
      if (tag.has_name) return make_error(ErrorCode::kMalformed, "VM module string: name= given twice");
      tag.name = TRY(decode_tag_value(raw));
      tag.has_name = true;
      seen_kernel_key = true;
    } else if (key == "cpus") {
      if (tag.has_cpus) return make_error(ErrorCode::kMalformed, "VM module string: cpus= given twice");
      tag.cpus = TRY(parse_u32(raw));
      tag.has_cpus = true;
      seen_kernel_key = true;
    } else if (key == "mem") {
      if (tag.has_mem) return make_error(ErrorCode::kMalformed, "VM module string: mem= given twice");
      tag.mem_mib = TRY(parse_u32(raw));
      tag.has_mem = true;
      seen_kernel_key = true;
    } else if (key == "append") {
      if (tag.has_append) return make_error(ErrorCode::kMalformed, "VM module string: append= given twice");
      tag.append = TRY(decode_tag_value(raw));
      tag.has_append = true;
      seen_kernel_key = true;
    } else if (key == "string") {
      if (has_string) return make_error(ErrorCode::kMalformed, "VM module string: string= given twice");
      tag.string = TRY(decode_tag_value(raw));
      has_string = true;
    } else {
      return make_error(ErrorCode::kMalformed, "VM module string: unknown key (role name cpus mem append string --)");
    }
  }
  if (!has_role) return make_error(ErrorCode::kMalformed, "VM module string: role= is missing");
  if (seen_kernel_key && tag.role != VmModuleRole::kKernel)
    return make_error(ErrorCode::kMalformed, "VM module string: name/cpus/mem/append belong on the role=kernel module");
  if (has_string && tag.role != VmModuleRole::kModule)
    return make_error(ErrorCode::kMalformed, "VM module string: string= belongs on a role=module module");
  return tag;
}

void refuse(VmDescription& vm, Error reason) {
  if (vm.refused) return;  // the first reason is the one reported
  vm.refused = true;
  vm.refusal = reason;
}

}  // namespace

Result<std::string> decode_tag_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c == '%') {
      if (i + 2 >= value.size() || hex_value(value[i + 1]) < 0 || hex_value(value[i + 2]) < 0)
        return make_error(ErrorCode::kMalformed, "VM module string: a %XX escape is malformed", i);
      const int hi = hex_value(value[i + 1]);
      const int lo = hex_value(value[i + 2]);
      const char decoded = static_cast<char>((hi << 4) | lo);
      if (decoded == '\0') return make_error(ErrorCode::kMalformed, "VM module string: %00 (NUL) in a value", i);
      out.push_back(decoded);
      i += 2;
    } else if (safe_char(c)) {
      out.push_back(c);
    } else {
      return make_error(ErrorCode::kMalformed, "VM module string: a value holds a character to write as %XX", static_cast<uint8_t>(c));
    }
  }
  return out;
}

VmPlan plan_vms(std::span<const BootModuleInfo> modules, const VmLimits& limits) {
  VmPlan plan;
  struct Parsed {
    size_t index;
    Tag tag;
  };
  for (size_t i = 0; i < modules.size(); ++i) {
    const std::string_view s = modules[i].string;
    size_t pos = 0;
    const std::string_view first = next_word(s, pos);
    if (first.substr(0, kTagKey.size()) != kTagKey) continue;  // not a VM's module
    auto id = parse_u32(first.substr(kTagKey.size()));
    if (!id || *id >= kMaxVms) {
      plan.stray.push_back({i, make_error(ErrorCode::kMalformed, "VM module string: lantern.vm= needs a VM number 0-15", i)});
      continue;
    }
    VmDescription* vm = nullptr;
    for (VmDescription& v : plan.vms)
      if (v.id == *id) vm = &v;
    if (vm == nullptr) {
      plan.vms.emplace_back();
      vm = &plan.vms.back();
      vm->id = *id;
    }
    auto tag = parse_tag(s, *id);
    if (!tag) {
      refuse(*vm, tag.error());
      continue;
    }
    switch (tag->role) {
      case VmModuleRole::kKernel:
        if (vm->kernel != VmDescription::kNoModule) {
          refuse(*vm, make_error(ErrorCode::kMalformed, "two kernel modules (role=kernel) for one VM", i));
          break;
        }
        vm->kernel = i;
        vm->name = tag->has_name ? tag->name : std::string();
        vm->cpus = tag->cpus;
        vm->mem_mib = tag->mem_mib;
        vm->append = std::move(tag->append);
        if (tag->has_name && !valid_name(vm->name))
          refuse(*vm, make_error(ErrorCode::kInvalidArgument, "VM name must be 1-32 characters of A-Z a-z 0-9 . _ + -"));
        break;
      case VmModuleRole::kInitrd:
        if (vm->initrd != VmDescription::kNoModule)
          refuse(*vm, make_error(ErrorCode::kMalformed, "two initrd modules (role=initrd) for one VM", i));
        vm->initrd = i;
        break;
      case VmModuleRole::kModule:
        vm->modules.push_back({i, std::move(tag->string)});
        break;
    }
  }

  for (VmDescription& vm : plan.vms) {
    if (vm.name.empty()) vm.name = "vm" + std::to_string(vm.id);
    if (vm.kernel == VmDescription::kNoModule) {
      refuse(vm, make_error(ErrorCode::kNotFound, "no kernel module (role=kernel) for this VM"));
      continue;
    }
    if (vm.cpus == 0) refuse(vm, make_error(ErrorCode::kInvalidArgument, "cpus=0: a VM needs at least one vCPU"));
    if (vm.cpus > VmDescription::kMaxCpus)
      refuse(vm, make_error(ErrorCode::kInvalidArgument, "cpus above the 64-vCPU maximum", vm.cpus));
    if (vm.cpus > limits.physical_cpus)
      refuse(vm, make_error(ErrorCode::kInvalidArgument, "more vCPUs than physical CPUs (each vCPU needs a CPU of its own)", vm.cpus));
    const uint64_t ram = uint64_t{vm.mem_mib} * kMiB;
    if (ram < GuestMemoryMap::kMinRamBytes)
      refuse(vm, make_error(ErrorCode::kInvalidArgument, "mem below the 2 MiB minimum", vm.mem_mib));
    if (ram > GuestMemoryMap::kMaxRamBytes)
      refuse(vm, make_error(ErrorCode::kInvalidArgument, "mem above the 3072 MiB maximum", vm.mem_mib));
    if (vm.modules.size() > VmDescription::kMaxModules)
      refuse(vm, make_error(ErrorCode::kInvalidArgument, "more than 16 multiboot modules for one VM", vm.modules.size()));
    if (vm.initrd != VmDescription::kNoModule && !vm.modules.empty())
      refuse(vm, make_error(ErrorCode::kInvalidArgument, "initrd (Linux) and modules (multiboot) do not mix in one VM"));
    if (vm.append.size() > VmDescription::kMaxAppend)
      refuse(vm, make_error(ErrorCode::kInvalidArgument, "append longer than 4096 bytes", vm.append.size()));
    // Everything must at least fit above 1 MiB; the loader checks the exact placement.
    uint64_t payload = modules[vm.kernel].size;
    if (vm.initrd != VmDescription::kNoModule) payload += modules[vm.initrd].size;
    for (const VmModuleRef& m : vm.modules) payload += modules[m.boot_module].size;
    if (ram >= GuestMemoryMap::kMinRamBytes && payload > ram - GuestMemoryMap::kHighRamStart)
      refuse(vm, make_error(ErrorCode::kInvalidArgument, "mem too small for the kernel and its modules", payload));
  }
  // Names must be unique: the console addresses VMs by name. The later VM is refused.
  for (size_t i = 0; i < plan.vms.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (plan.vms[j].name == plan.vms[i].name) {
        refuse(plan.vms[i], make_error(ErrorCode::kAlreadyExists, "another VM already has this name", j));
        break;
      }
    }
  }
  return plan;
}

void place_vms(VmPlan& plan, uint32_t physical_cpus) {
  uint32_t next_cpu = 1;  // core 0 (the BSP) runs the network and the console
  for (VmDescription& vm : plan.vms) {
    vm.vcpu_cpus.clear();
    if (vm.refused) continue;
    const uint32_t free_cpus = physical_cpus > next_cpu ? physical_cpus - next_cpu : 0;
    if (vm.cpus > free_cpus) {
      refuse(vm, make_error(ErrorCode::kFull,
                            "not enough free physical CPUs: each vCPU needs an application processor of its own (core 0 runs the console)",
                            vm.cpus));
      continue;
    }
    for (uint32_t i = 0; i < vm.cpus; ++i) vm.vcpu_cpus.push_back(static_cast<int32_t>(next_cpu++));
  }
}

}  // namespace lantern::guest
