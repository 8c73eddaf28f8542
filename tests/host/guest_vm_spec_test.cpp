#include "guest/vm_spec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace lantern::guest {
namespace {

std::string reason(const VmDescription& vm) { return vm.refused ? vm.refusal.message : ""; }

VmPlan plan(const std::vector<BootModuleInfo>& modules, uint32_t cpus = 4) {
  return plan_vms(modules, VmLimits{cpus});
}

TEST(GuestVmSpec, TheLinesLanternWritesBecomeVms) {
  // What tools/vm_spec.py writes (after GRUB joined the words with single blanks).
  const std::vector<BootModuleInfo> mods = {
      {"", 4096},  // a demo guest program: untagged, ignored
      {"lantern.vm=0 role=kernel name=apic.flat cpus=2 mem=64 append=apic.flat%20a,b%20%20%27c%27", 200000},
      {"lantern.vm=0 role=module string=env.txt", 30},
      {"lantern.vm=1 role=kernel name=echo cpus=1 mem=16 append=", 5000},
      {"lantern.vm=0 role=module string=two%25", 10},
  };
  const VmPlan p = plan(mods);
  EXPECT_TRUE(p.stray.empty());
  ASSERT_EQ(p.vms.size(), 2u);
  const VmDescription& a = p.vms[0];
  EXPECT_FALSE(a.refused) << reason(a);
  EXPECT_EQ(a.id, 0u);
  EXPECT_EQ(a.name, "apic.flat");
  EXPECT_EQ(a.cpus, 2u);
  EXPECT_EQ(a.mem_mib, 64u);
  EXPECT_EQ(a.append, "apic.flat a,b  'c'");  // commas, doubled blanks and quotes survive
  EXPECT_EQ(a.kernel, 1u);
  ASSERT_EQ(a.modules.size(), 2u);
  EXPECT_EQ(a.modules[0].boot_module, 2u);
  EXPECT_EQ(a.modules[0].string, "env.txt");
  EXPECT_EQ(a.modules[1].string, "two%");
  const VmDescription& b = p.vms[1];
  EXPECT_FALSE(b.refused) << reason(b);
  EXPECT_EQ(b.name, "echo");
  EXPECT_EQ(b.append, "");
}

TEST(GuestVmSpec, HandWrittenDefaultsAndTheDoubleDashForm) {
  const VmPlan p = plan({{"lantern.vm=3 role=kernel --  console=ttyS0   exit=5 a,b ", 100}});
  ASSERT_EQ(p.vms.size(), 1u);
  EXPECT_FALSE(p.vms[0].refused) << reason(p.vms[0]);
  EXPECT_EQ(p.vms[0].name, "vm3");
  EXPECT_EQ(p.vms[0].cpus, 1u);
  EXPECT_EQ(p.vms[0].mem_mib, 128u);
  EXPECT_EQ(p.vms[0].append, "console=ttyS0 exit=5 a,b");
}

TEST(GuestVmSpec, EachProblemRefusesItsVmAloneWithAReason) {
  const std::vector<BootModuleInfo> mods = {
      {"lantern.vm=0 role=kernel name=ok", 100},
      {"lantern.vm=1 role=module string=x", 10},                   // no kernel
      {"lantern.vm=2 role=kernel name=zero cpus=0", 100},
      {"lantern.vm=3 role=kernel name=one mem=1", 100},
      {"lantern.vm=4 role=kernel name=big mem=2", 2 << 20},         // does not fit in 2 MiB
      {"lantern.vm=5 role=kernel name=ok", 100},                   // duplicate name
      {"lantern.vm=6 role=kernel name=many cpus=5", 100},          // more than 4 physical CPUs
      {"lantern.vm=7 role=kernel colour=red", 100},
      {"lantern.vm=8 role=kernel append=a%2", 100},
      {"lantern.vm=9 role=kernel append=a'b", 100},
      {"lantern.vm=10 role=kernel cpus=two", 100},
      {"lantern.vm=11 role=kernel", 100},
      {"lantern.vm=11 role=kernel", 100},
      {"lantern.vm=12 role=module cpus=2", 100},
      {"lantern.vm=13 role=kernel -- it's", 100},
      {"lantern.vm=14 role=kernel name=bad/name", 100},
      {"lantern.vm=15 role=kernel mem=4096", 100},
      {"lantern.vm=99 role=kernel", 100},                           // stray: VM number out of range
      {"lantern.vm=x role=kernel", 100},                            // stray
  };
  const VmPlan p = plan(mods);
  ASSERT_EQ(p.vms.size(), 16u);
  auto find = [&](uint32_t id) -> const VmDescription& {
    for (const auto& vm : p.vms)
      if (vm.id == id) return vm;
    ADD_FAILURE() << "no VM " << id;
    return p.vms[0];
  };
  EXPECT_FALSE(find(0).refused) << reason(find(0));
  const std::vector<std::pair<uint32_t, std::string>> expected = {
      {1, "no kernel module"},
      {2, "cpus=0"},
      {3, "mem below the 2 MiB minimum"},
      {4, "mem too small for the kernel"},
      {5, "already has this name"},
      {6, "more vCPUs than physical CPUs"},
      {7, "unknown key"},
      {8, "escape is malformed"},
      {9, "%XX"},
      {10, "number is malformed"},
      {11, "two kernel modules"},
      {12, "belong on the role=kernel module"},
      {13, "GRUB re-quotes"},
      {14, "VM name must be"},
      {15, "mem above the 3072 MiB maximum"},
  };
  for (const auto& [id, words] : expected) {
    const VmDescription& vm = find(id);
    EXPECT_TRUE(vm.refused) << "VM " << id;
    EXPECT_NE(reason(vm).find(words), std::string::npos) << "VM " << id << ": " << reason(vm);
  }
  ASSERT_EQ(p.stray.size(), 2u);
  EXPECT_EQ(p.stray[0].boot_module, 17u);
  EXPECT_NE(std::string(p.stray[1].reason.message).find("VM number"), std::string::npos);
}

// The module strings Debian's GRUB 2.06-13+deb12u2 handed a multiboot kernel for the lines
//   module /boot/env.txt 'lantern.vm=0' 'role=kernel' 'name=k.elf' 'append=a,b%20%20%27c%27%24x'
//   module /boot/env.txt lantern.vm=1 role=kernel -- console=ttyS0   x,y "q r" w\'x
// (seen under QEMU: GRUB drops the path, unquotes, joins with one blank, then re-quotes a word
// holding a blank and escapes ' " \).
TEST(GuestVmSpec, StringsAsGrubDeliversThem) {
  const VmPlan p = plan({{"lantern.vm=0 role=kernel name=k.elf append=a,b%20%20%27c%27%24x", 9},
                         {"lantern.vm=1 role=kernel -- console=ttyS0 x,y \"q r\" w\\'x", 9},
                         {"lantern.vm=2 role=kernel name=ok -- console=ttyS0 x,y", 9}});
  ASSERT_EQ(p.vms.size(), 3u);
  EXPECT_FALSE(p.vms[0].refused) << reason(p.vms[0]);
  EXPECT_EQ(p.vms[0].append, "a,b  'c'$x");
  EXPECT_TRUE(p.vms[1].refused);
  EXPECT_NE(reason(p.vms[1]).find("GRUB re-quotes"), std::string::npos);
  EXPECT_FALSE(p.vms[2].refused) << reason(p.vms[2]);
  EXPECT_EQ(p.vms[2].append, "console=ttyS0 x,y");
}

TEST(GuestVmSpec, DecodeAcceptsOnlyTheGrubSafeSet) {
  EXPECT_EQ(*decode_tag_value("a%2Cb%2cc"), "a,b,c");
  EXPECT_EQ(*decode_tag_value("x=1,y:/+@-._"), "x=1,y:/+@-._");
  EXPECT_FALSE(decode_tag_value("%").has_value());
  EXPECT_FALSE(decode_tag_value("%g0").has_value());
  EXPECT_FALSE(decode_tag_value("%00").has_value());
  EXPECT_FALSE(decode_tag_value("a b").has_value());
  EXPECT_FALSE(decode_tag_value("$x").has_value());
}

TEST(GuestVmPlacement, OneApplicationProcessorPerVcpuInPlanOrder) {
  // Five CPUs: core 0 runs the console, cores 1-4 take vCPUs.
  VmPlan p = plan({{"lantern.vm=0 role=kernel cpus=1", 100},
                   {"lantern.vm=1 role=kernel mem=1", 100},  // refused: keeps no core
                   {"lantern.vm=2 role=kernel cpus=2", 100},
                   {"lantern.vm=3 role=kernel cpus=2", 100},  // one core left: too few
                   {"lantern.vm=4 role=kernel", 100},         // a smaller VM still fits
                   {"lantern.vm=5 role=kernel", 100}},        // none left
                  5);
  place_vms(p, 5);
  ASSERT_EQ(p.vms.size(), 6u);
  EXPECT_EQ(p.vms[0].vcpu_cpus, (std::vector<int32_t>{1}));
  EXPECT_TRUE(p.vms[1].vcpu_cpus.empty());
  EXPECT_EQ(reason(p.vms[1]), "mem below the 2 MiB minimum");
  EXPECT_EQ(p.vms[2].vcpu_cpus, (std::vector<int32_t>{2, 3}));
  EXPECT_TRUE(p.vms[3].vcpu_cpus.empty());
  EXPECT_NE(reason(p.vms[3]).find("not enough free physical CPUs"), std::string::npos) << reason(p.vms[3]);
  EXPECT_EQ(p.vms[4].vcpu_cpus, (std::vector<int32_t>{4}));
  EXPECT_TRUE(p.vms[5].vcpu_cpus.empty());
  EXPECT_NE(reason(p.vms[5]).find("not enough free physical CPUs"), std::string::npos) << reason(p.vms[5]);
}

TEST(GuestVmPlacement, ABootWithOneCpuRunsNoVm) {
  VmPlan p = plan({{"lantern.vm=0 role=kernel", 100}}, 1);
  place_vms(p, 1);
  ASSERT_EQ(p.vms.size(), 1u);
  EXPECT_TRUE(p.vms[0].vcpu_cpus.empty());
  EXPECT_TRUE(p.vms[0].refused);
}

}  // namespace
}  // namespace lantern::guest
