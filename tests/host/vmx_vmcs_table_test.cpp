#include <gtest/gtest.h>

#include <set>
#include <string>

#include "vmx/testing/fake_vmx_hw.h"
#include "vmx/vm_instruction_error.h"
#include "vmx/vmcs_fields.h"
#include "vmx/vmx_hw.h"

namespace lantern::vmx {
namespace {

using testing::FakeVmcs;

TEST(VmxVmcsTable, KnownEncodingsFromAppendixB) {
  struct Case {
    const char* name;
    uint32_t encoding;
    VmcsWidth width;
    VmcsGroup group;
    bool read_only;
  } cases[] = {
      {"VIRTUAL_PROCESSOR_ID", 0x0000, VmcsWidth::k16, VmcsGroup::kControl, false},
      {"GUEST_CS_SELECTOR", 0x0802, VmcsWidth::k16, VmcsGroup::kGuest, false},
      {"HOST_TR_SELECTOR", 0x0c0c, VmcsWidth::k16, VmcsGroup::kHost, false},
      {"IO_BITMAP_A", 0x2000, VmcsWidth::k64, VmcsGroup::kControl, false},
      {"EPT_POINTER", 0x201a, VmcsWidth::k64, VmcsGroup::kControl, false},
      {"TSC_MULTIPLIER", 0x2032, VmcsWidth::k64, VmcsGroup::kControl, false},
      {"EPTP_LIST_ADDRESS", 0x2024, VmcsWidth::k64, VmcsGroup::kControl, false},
      {"VMREAD_BITMAP", 0x2026, VmcsWidth::k64, VmcsGroup::kControl, false},
      {"VMWRITE_BITMAP", 0x2028, VmcsWidth::k64, VmcsGroup::kControl, false},
      {"ENCLS_EXITING_BITMAP", 0x202e, VmcsWidth::k64, VmcsGroup::kControl, false},
      {"PML_ADDRESS", 0x200e, VmcsWidth::k64, VmcsGroup::kControl, false},
      {"SPPT_POINTER", 0x2030, VmcsWidth::k64, VmcsGroup::kControl, false},
      {"TERTIARY_VM_EXEC_CONTROL", 0x2034, VmcsWidth::k64, VmcsGroup::kControl, false},
      {"HLAT_POINTER", 0x2040, VmcsWidth::k64, VmcsGroup::kControl, false},
      {"GUEST_PHYSICAL_ADDRESS", 0x2400, VmcsWidth::k64, VmcsGroup::kReadOnlyData, true},
      {"VMCS_LINK_POINTER", 0x2800, VmcsWidth::k64, VmcsGroup::kGuest, false},
      {"GUEST_IA32_EFER", 0x2806, VmcsWidth::k64, VmcsGroup::kGuest, false},
      {"GUEST_IA32_PKRS", 0x2818, VmcsWidth::k64, VmcsGroup::kGuest, false},
      {"HOST_IA32_PKRS", 0x2c06, VmcsWidth::k64, VmcsGroup::kHost, false},
      {"PIN_BASED_VM_EXEC_CONTROL", 0x4000, VmcsWidth::k32, VmcsGroup::kControl, false},
      {"SECONDARY_VM_EXEC_CONTROL", 0x401e, VmcsWidth::k32, VmcsGroup::kControl, false},
      {"VM_INSTRUCTION_ERROR", 0x4400, VmcsWidth::k32, VmcsGroup::kReadOnlyData, true},
      {"VM_EXIT_REASON", 0x4402, VmcsWidth::k32, VmcsGroup::kReadOnlyData, true},
      {"VM_EXIT_INTR_INFO", 0x4404, VmcsWidth::k32, VmcsGroup::kReadOnlyData, true},
      {"GUEST_INTERRUPTIBILITY_INFO", 0x4824, VmcsWidth::k32, VmcsGroup::kGuest, false},
      {"VMX_PREEMPTION_TIMER_VALUE", 0x482e, VmcsWidth::k32, VmcsGroup::kGuest, false},
      {"HOST_IA32_SYSENTER_CS", 0x4c00, VmcsWidth::k32, VmcsGroup::kHost, false},
      {"CR0_GUEST_HOST_MASK", 0x6000, VmcsWidth::kNatural, VmcsGroup::kControl, false},
      {"EXIT_QUALIFICATION", 0x6400, VmcsWidth::kNatural, VmcsGroup::kReadOnlyData, true},
      {"GUEST_LINEAR_ADDRESS", 0x640a, VmcsWidth::kNatural, VmcsGroup::kReadOnlyData, true},
      {"GUEST_CR0", 0x6800, VmcsWidth::kNatural, VmcsGroup::kGuest, false},
      {"GUEST_RSP", 0x681c, VmcsWidth::kNatural, VmcsGroup::kGuest, false},
      {"GUEST_RIP", 0x681e, VmcsWidth::kNatural, VmcsGroup::kGuest, false},
      {"GUEST_RFLAGS", 0x6820, VmcsWidth::kNatural, VmcsGroup::kGuest, false},
      {"HOST_RSP", 0x6c14, VmcsWidth::kNatural, VmcsGroup::kHost, false},
      {"HOST_RIP", 0x6c16, VmcsWidth::kNatural, VmcsGroup::kHost, false},
  };
  for (const Case& c : cases) {
    auto by_name = find_field_by_name(c.name);
    ASSERT_TRUE(by_name.has_value()) << c.name;
    EXPECT_FALSE(by_name->high);
    EXPECT_EQ(by_name->info->encoding, c.encoding) << c.name;
    EXPECT_EQ(by_name->info->width, c.width) << c.name;
    EXPECT_EQ(by_name->info->group, c.group) << c.name;
    EXPECT_EQ(by_name->info->read_only, c.read_only) << c.name;
    auto by_encoding = find_field_by_encoding(c.encoding);
    ASSERT_TRUE(by_encoding.has_value()) << c.name;
    EXPECT_EQ(by_encoding->info->name, c.name);
  }
}

TEST(VmxVmcsTable, TypedEnumsCarryTheEncodings) {
  EXPECT_EQ(encoding_of(VmcsField16::GUEST_PML_INDEX), 0x0812u);
  EXPECT_EQ(encoding_of(VmcsField32::VM_ENTRY_INTR_INFO_FIELD), 0x4016u);
  EXPECT_EQ(encoding_of(VmcsField64::VM_FUNCTION_CONTROL), 0x2018u);
  EXPECT_EQ(encoding_of(VmcsFieldNatural::HOST_INTR_SSP_TABLE), 0x6c1cu);
  EXPECT_EQ(high_encoding_of(VmcsField64::TSC_OFFSET), 0x2011u);
}

TEST(VmxVmcsTable, EveryEntryIsConsistentAndCoversEveryGroupAndWidth) {
  std::set<std::pair<int, int>> seen;  // (width, group)
  std::set<std::string> names;
  for (const VmcsFieldInfo& f : kVmcsFields) {
    EXPECT_EQ(vmcs_encoding_width(f.encoding), f.width) << f.name;
    EXPECT_EQ(vmcs_encoding_group(f.encoding), f.group) << f.name;
    EXPECT_EQ(f.encoding & 1, 0u) << f.name;
    EXPECT_EQ(make_vmcs_encoding(f.width, f.group, vmcs_encoding_index(f.encoding)), f.encoding) << f.name;
    seen.insert({static_cast<int>(f.width), static_cast<int>(f.group)});
    names.insert(std::string(f.name));
  }
  EXPECT_EQ(names.size(), kVmcsFieldCount);
  // Every width has control, guest and host fields; 16-bit has no read-only data field.
  for (int w = 0; w < 4; ++w) {
    for (int g = 0; g < 4; ++g) {
      if (w == static_cast<int>(VmcsWidth::k16) && g == static_cast<int>(VmcsGroup::kReadOnlyData)) continue;
      EXPECT_TRUE(seen.count({w, g})) << "width " << w << " group " << g;
    }
  }
  EXPECT_GE(kVmcsFieldCount, 190u);
}

TEST(VmxVmcsTable, HighHalvesResolveByWidth) {
  auto by_name = find_field_by_name("EPT_POINTER_HIGH");
  ASSERT_TRUE(by_name.has_value());
  EXPECT_TRUE(by_name->high);
  EXPECT_EQ(by_name->encoding(), 0x201bu);
  EXPECT_EQ(by_name->access_width(), VmcsWidth::k32);

  auto by_encoding = find_field_by_encoding(0x2807);
  ASSERT_TRUE(by_encoding.has_value());
  EXPECT_EQ(by_encoding->info->name, "GUEST_IA32_EFER");
  EXPECT_TRUE(by_encoding->high);

  // No _HIGH for a field that is not 64-bit.
  EXPECT_EQ(find_field_by_name("GUEST_RIP_HIGH").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(find_field_by_encoding(0x681f).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(find_field_by_encoding(0x4403).error().code, ErrorCode::kInvalidArgument);
}

TEST(VmxVmcsTable, UnknownNamesAndEncodingsAreRejected) {
  for (const char* bad : {"", "guest_rip", "GUEST_RIP ", "_HIGH", "NOT_A_FIELD", "HIGH"}) {
    auto r = find_field_by_name(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kNotFound) << bad;
  }
  EXPECT_EQ(find_field_by_encoding(0x6830).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(find_field_by_encoding(0x1000).error().code, ErrorCode::kInvalidArgument);  // bit 12
  EXPECT_EQ(find_field_by_encoding(0x8000).error().code, ErrorCode::kInvalidArgument);  // bit 15
  EXPECT_EQ(find_field_by_encoding(0xffffffff).error().code, ErrorCode::kInvalidArgument);
}

TEST(VmxVmcsTable, WidthAndGroupNamesForTheConsole) {
  EXPECT_EQ(vmcs_width_name(VmcsWidth::kNatural), "natural");
  EXPECT_EQ(vmcs_width_name(VmcsWidth::k64), "64");
  EXPECT_EQ(vmcs_group_name(VmcsGroup::kReadOnlyData), "read_only");
  EXPECT_EQ(vmcs_group_name(VmcsGroup::kHost), "host");
}

// ---- The hardware seam with the fake VMCS ---------------------------------------------------

TEST(VmxHwSeam, WidthTypedAccessorsRoundTrip) {
  FakeVmcs hw;
  hw.support_all_fields();
  ASSERT_TRUE(vmcs_write(hw, VmcsFieldNatural::GUEST_RIP, 0xffffffff81000000ull).has_value());
  ASSERT_TRUE(vmcs_write(hw, VmcsField16::GUEST_CS_SELECTOR, 0x10).has_value());
  ASSERT_TRUE(vmcs_write(hw, VmcsField64::EPT_POINTER, 0x123456701eull).has_value());
  auto rip = vmcs_read(hw, VmcsFieldNatural::GUEST_RIP);
  ASSERT_TRUE(rip.has_value());
  EXPECT_EQ(*rip, 0xffffffff81000000ull);
  auto cs = vmcs_read(hw, VmcsField16::GUEST_CS_SELECTOR);
  ASSERT_TRUE(cs.has_value());
  EXPECT_EQ(*cs, 0x10);
  auto high = find_field_by_name("EPT_POINTER_HIGH");
  ASSERT_TRUE(high.has_value());
  auto high_value = vmcs_read(hw, *high);
  ASSERT_TRUE(high_value.has_value());
  EXPECT_EQ(*high_value, 0x12u);
}

TEST(VmxHwSeam, VmfailCarriesTheVmInstructionError) {
  FakeVmcs hw;
  hw.support_all_fields();
  // A read-only field cannot be written: error 13.
  auto w = vmcs_write(hw, VmcsField32::VM_EXIT_REASON, 1);
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().code, ErrorCode::kVmxInstructionFailed);
  EXPECT_EQ(w.error().detail, 13u);
  EXPECT_EQ(vm_instruction_error_name(13), "VMWRITE to read-only VMCS component");
  // Injected failure.
  hw.fail_vmread[encoding_of(VmcsFieldNatural::GUEST_RIP)] = 12;
  auto r = vmcs_read(hw, VmcsFieldNatural::GUEST_RIP);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(is_vm_instruction_error(r.error(), VmInstructionError::kUnsupportedVmcsComponent));
  // No current VMCS: VMfailInvalid, detail 0.
  hw.vmcs_loaded = false;
  auto inv = vmcs_read(hw, VmcsField32::VM_EXIT_REASON);
  ASSERT_FALSE(inv.has_value());
  EXPECT_EQ(inv.error().code, ErrorCode::kVmxInstructionFailed);
  EXPECT_EQ(inv.error().detail, 0u);
}

TEST(VmxHwSeam, DumpSkipsUnsupportedFieldsOnly) {
  FakeVmcs hw;
  hw.support_all_fields();
  hw.values.erase(encoding_of(VmcsField64::TSC_MULTIPLIER));
  hw.values.erase(encoding_of(VmcsField16::GUEST_UINV));
  hw.values[encoding_of(VmcsFieldNatural::GUEST_RIP)] = 0x7c00;
  size_t callbacks = 0;
  uint64_t rip = 0;
  auto count = for_each_supported_field(hw, [&](const VmcsFieldInfo& f, uint64_t v) {
    ++callbacks;
    EXPECT_NE(f.name, "TSC_MULTIPLIER");
    EXPECT_NE(f.name, "GUEST_UINV");
    if (f.name == "GUEST_RIP") rip = v;
  });
  ASSERT_TRUE(count.has_value());
  EXPECT_EQ(*count, kVmcsFieldCount - 2);
  EXPECT_EQ(callbacks, kVmcsFieldCount - 2);
  EXPECT_EQ(rip, 0x7c00u);

  // Any other failure stops the dump and is reported, never swallowed.
  hw.fail_vmread[encoding_of(VmcsField32::VM_EXIT_REASON)] = 7;
  auto failed = for_each_supported_field(hw, [](const VmcsFieldInfo&, uint64_t) {});
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().detail, 7u);
}

}  // namespace
}  // namespace lantern::vmx
