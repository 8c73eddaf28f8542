#include "vmx/vcpu_exit.h"

#include <gtest/gtest.h>

namespace lantern::vmx {
namespace {

TEST(VmxVcpuExit, KindNamesFollowTheVariantOrder) {
  EXPECT_EQ(vm_exit_kind_name(VmExit{exits::Nothing{}}), "nothing");
  EXPECT_EQ(vm_exit_kind_name(VmExit{exits::Hypercall{1, {1, 2, 3, 4, 5, 6}}}), "hypercall");
  EXPECT_EQ(vm_exit_kind_name(VmExit{exits::IoRead{0x60, 1}}), "io_read");
  EXPECT_EQ(vm_exit_kind_name(VmExit{exits::IoWrite{0x3f8, 1, 'x'}}), "io_write");
  EXPECT_EQ(vm_exit_kind_name(VmExit{exits::MsrRead{0x10}}), "msr_read");
  EXPECT_EQ(vm_exit_kind_name(VmExit{exits::MsrWrite{0x10, 5}}), "msr_write");
  EXPECT_EQ(vm_exit_kind_name(VmExit{exits::ExternalInterrupt{0x40}}), "external_interrupt");
  EXPECT_EQ(vm_exit_kind_name(VmExit{exits::Halt{}}), "halt");
  EXPECT_EQ(vm_exit_kind_name(VmExit{exits::NestedPageFault{0x1000, 2}}), "nested_page_fault");
  EXPECT_EQ(vm_exit_kind_name(VmExit{exits::SystemDown{}}), "system_down");
  EXPECT_EQ(vm_exit_kind_name(VmExit{exits::FailEntry{33, 0}}), "fail_entry");
}

TEST(VmxVcpuExit, UnhandledExitsHaveAStopReasonEach) {
  EXPECT_STREQ(unhandled_exit_stop_reason(VmExit{exits::NestedPageFault{0x40000000, 1}}),
               "nested page fault outside guest memory (EPT violation)");
  EXPECT_STREQ(unhandled_exit_stop_reason(VmExit{exits::SystemDown{}}), "guest triple fault (shutdown)");
  EXPECT_STREQ(unhandled_exit_stop_reason(VmExit{exits::Hypercall{0x99, {}}}), "unknown hypercall");
  // Every kind has its own, non-empty text.
  const VmExit all[] = {exits::Nothing{},        exits::Hypercall{},        exits::IoRead{},
                        exits::IoWrite{},        exits::MsrRead{},          exits::MsrWrite{},
                        exits::ExternalInterrupt{}, exits::Halt{},          exits::NestedPageFault{},
                        exits::SystemDown{},     exits::FailEntry{}};
  for (size_t i = 0; i < std::size(all); ++i) {
    ASSERT_NE(unhandled_exit_stop_reason(all[i]), nullptr);
    EXPECT_GT(std::string_view(unhandled_exit_stop_reason(all[i])).size(), 8u) << i;
    for (size_t j = 0; j < i; ++j) {
      EXPECT_STRNE(unhandled_exit_stop_reason(all[i]), unhandled_exit_stop_reason(all[j])) << i << " " << j;
    }
  }
}

TEST(VmxVcpuExit, HypercallCarriesNumberAndSixArguments) {
  const VmExit e = exits::Hypercall{0x20, {7, 8, 9, 10, 11, 12}};
  const auto* h = std::get_if<exits::Hypercall>(&e);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->nr, 0x20u);
  EXPECT_EQ(h->args[0], 7u);
  EXPECT_EQ(h->args[5], 12u);
  EXPECT_EQ(std::get_if<exits::IoRead>(&e), nullptr);
}

}  // namespace
}  // namespace lantern::vmx
