// Fuzz target: the VM-spec parser (guest/vm_spec.h), as the kernel reads the boot modules' strings
// that GRUB hands over (`module2 ... lantern.vm=0 role=kernel cpus=2 ...`) or that people write by
// hand in a grub.cfg.
//
// The input is the module strings, one per line ('\n'); each module's size and the machine's CPU
// count are derived from the input (InputDerivedChoices). Invariants:
//   - plan_vms() never crashes; VM ids are unique and below kMaxVms; every index it returns names
//     a boot module, and each boot module belongs to at most one VM slot (kernel, initrd, module);
//   - a module whose first word is not `lantern.vm=` is never used; a stray carries a reason;
//   - a VM that is not refused satisfies every documented limit: a kernel, 1 <= cpus <= the CPU
//     count and 64, 2 <= mem <= 3072 MiB, at most 16 modules, not initrd and modules together,
//     append within 4096 bytes, a valid name unique among the VMs; a refused VM has a message;
//   - plan_vms() is deterministic;
//   - decode_tag_value() of each line either fails or gives no NUL and at most the input's
//     length, and encoding its result again (%XX for everything outside the safe set) decodes
//     back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "guest/vm_spec.h"
#include "tests/fuzz/fuzz_check.h"

namespace lantern::guest {
namespace {

constexpr std::string_view kTagKey = "lantern.vm=";

bool safe_value_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         std::string_view("._,:/+=@-").find(c) != std::string_view::npos;
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 32) return false;
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '+' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string first_word(std::string_view s) {
  size_t b = 0;
  while (b < s.size() && (s[b] == ' ' || s[b] == '\t')) ++b;
  size_t e = b;
  while (e < s.size() && s[e] != ' ' && s[e] != '\t') ++e;
  return std::string(s.substr(b, e - b));
}

std::string encode(const std::string& raw) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : raw) {
    if (safe_value_char(static_cast<char>(c))) {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

void check_plan(const VmPlan& plan, const std::vector<BootModuleInfo>& modules, const VmLimits& limits,
                const std::string& all) {
  std::set<uint32_t> ids;
  std::set<size_t> used;
  auto use = [&](size_t index) {
    FUZZ_CHECK(index < modules.size(), all);
    FUZZ_CHECK(used.insert(index).second, all);  // one slot per boot module
    FUZZ_CHECK(first_word(modules[index].string).rfind(kTagKey, 0) == 0, all);
  };
  std::set<std::string> names;
  for (const VmDescription& vm : plan.vms) {
    FUZZ_CHECK(vm.id < kMaxVms, all);
    FUZZ_CHECK(ids.insert(vm.id).second, all);
    if (vm.kernel != VmDescription::kNoModule) use(vm.kernel);
    if (vm.initrd != VmDescription::kNoModule) use(vm.initrd);
    for (const VmModuleRef& m : vm.modules) use(m.boot_module);
    if (vm.refused) {
      FUZZ_CHECK(vm.refusal.message != nullptr && vm.refusal.message[0] != '\0', all);
      continue;
    }
    FUZZ_CHECK(vm.kernel != VmDescription::kNoModule, all);
    FUZZ_CHECK(vm.cpus >= 1 && vm.cpus <= VmDescription::kMaxCpus && vm.cpus <= limits.physical_cpus, all);
    FUZZ_CHECK(vm.mem_mib >= 2 && vm.mem_mib <= 3072, all);
    FUZZ_CHECK(vm.modules.size() <= VmDescription::kMaxModules, all);
    FUZZ_CHECK(vm.initrd == VmDescription::kNoModule || vm.modules.empty(), all);
    FUZZ_CHECK(vm.append.size() <= VmDescription::kMaxAppend, all);
    FUZZ_CHECK(valid_name(vm.name), vm.name);
    FUZZ_CHECK(names.insert(vm.name).second, vm.name);  // unique among the VMs that run
  }
  for (const StrayModule& s : plan.stray) {
    FUZZ_CHECK(s.boot_module < modules.size(), all);
    FUZZ_CHECK(s.reason.message != nullptr && s.reason.message[0] != '\0', all);
    FUZZ_CHECK(used.count(s.boot_module) == 0, all);
  }
}

void run(const uint8_t* data, size_t size) {
  const std::string all(reinterpret_cast<const char*>(data), size);
  fuzz::InputDerivedChoices choices(data, size);
  std::vector<std::string> lines;
  size_t start = 0;
  for (;;) {
    const size_t nl = all.find('\n', start);
    lines.push_back(all.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  std::vector<BootModuleInfo> modules;
  for (const std::string& line : lines) {
    // Module sizes from tiny to a few GiB: the "mem too small" check sums them.
    const uint64_t size_bytes =
        choices.one_in(8) ? choices.next() >> choices.in_range(0, 63) : choices.in_range(0, 64ull << 20);
    modules.push_back(BootModuleInfo{line, size_bytes});
  }
  VmLimits limits;
  limits.physical_cpus = static_cast<uint32_t>(choices.in_range(1, 70));

  const VmPlan plan = plan_vms(modules, limits);
  check_plan(plan, modules, limits, all);
  const VmPlan again = plan_vms(modules, limits);
  FUZZ_CHECK(again.vms.size() == plan.vms.size() && again.stray.size() == plan.stray.size(), all);
  for (size_t i = 0; i < plan.vms.size(); ++i) {
    FUZZ_CHECK(again.vms[i].id == plan.vms[i].id && again.vms[i].refused == plan.vms[i].refused &&
                   again.vms[i].name == plan.vms[i].name && again.vms[i].append == plan.vms[i].append,
               all);
  }

  for (const std::string& line : lines) {
    const Result<std::string> decoded = decode_tag_value(line);
    if (!decoded) {
      FUZZ_CHECK(decoded.error().code == ErrorCode::kMalformed, line);
      continue;
    }
    FUZZ_CHECK(decoded->find('\0') == std::string::npos, line);
    FUZZ_CHECK(decoded->size() <= line.size(), line);
    const Result<std::string> round = decode_tag_value(encode(*decoded));
    FUZZ_CHECK(round && *round == *decoded, line);
  }
}

}  // namespace
}  // namespace lantern::guest

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lantern::guest::run(data, size);
  return 0;
}
