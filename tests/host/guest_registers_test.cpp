#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>

#include "guest/general_registers.h"

namespace lantern::guest {
namespace {

// Every slot holds a distinct pattern so a wrong index shows up.
GeneralRegisters patterned() {
  GeneralRegisters r{};
  uint64_t* raw = reinterpret_cast<uint64_t*>(&r);
  for (unsigned i = 0; i < kGprCount; ++i) raw[i] = 0x1111111111111111ull * (i + 1) + i;
  return r;
}

TEST(GuestRegisters, LayoutMatchesHardwareOrder) {
  // The asm stub relies on these offsets: hardware index * 8.
  EXPECT_EQ(sizeof(GeneralRegisters), 128u);
  EXPECT_EQ(offsetof(GeneralRegisters, rax), 0u);
  EXPECT_EQ(offsetof(GeneralRegisters, rbx), 24u);
  EXPECT_EQ(offsetof(GeneralRegisters, rsp_unused), 32u);
  EXPECT_EQ(offsetof(GeneralRegisters, rdi), 56u);
  EXPECT_EQ(offsetof(GeneralRegisters, r15), 120u);
}

TEST(GuestRegisters, GetByIndexReadsTheMatchingMember) {
  GeneralRegisters r = patterned();
  struct Case {
    unsigned index;
    uint64_t GeneralRegisters::*member;
  } cases[] = {{0, &GeneralRegisters::rax},  {1, &GeneralRegisters::rcx},  {2, &GeneralRegisters::rdx},
               {3, &GeneralRegisters::rbx},  {5, &GeneralRegisters::rbp},  {6, &GeneralRegisters::rsi},
               {7, &GeneralRegisters::rdi},  {8, &GeneralRegisters::r8},   {9, &GeneralRegisters::r9},
               {10, &GeneralRegisters::r10}, {11, &GeneralRegisters::r11}, {12, &GeneralRegisters::r12},
               {13, &GeneralRegisters::r13}, {14, &GeneralRegisters::r14}, {15, &GeneralRegisters::r15}};
  for (const Case& c : cases) {
    auto v = r.get_reg_of_index(c.index);
    ASSERT_TRUE(v.has_value()) << c.index;
    EXPECT_EQ(*v, r.*c.member) << gpr_name(c.index);
  }
}

TEST(GuestRegisters, SetByIndexWritesOnlyThatMember) {
  for (unsigned i = 0; i < kGprCount; ++i) {
    if (i == kGprRspIndex) continue;
    GeneralRegisters r = patterned();
    const GeneralRegisters before = r;
    ASSERT_TRUE(r.set_reg_of_index(i, 0xdeadbeefcafef00dull).has_value());
    const uint64_t* now = reinterpret_cast<const uint64_t*>(&r);
    const uint64_t* was = reinterpret_cast<const uint64_t*>(&before);
    for (unsigned j = 0; j < kGprCount; ++j) {
      EXPECT_EQ(now[j], j == i ? 0xdeadbeefcafef00dull : was[j]) << "set " << i << " saw " << j;
    }
  }
}

TEST(GuestRegisters, RspAndOutOfRangeIndicesAreRejected) {
  GeneralRegisters r = patterned();
  const GeneralRegisters before = r;
  for (unsigned bad : {4u, 16u, 17u, 255u, 0xffffffffu}) {
    auto g = r.get_reg_of_index(bad);
    ASSERT_FALSE(g.has_value()) << bad;
    EXPECT_EQ(g.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(g.error().detail, bad);
    auto s = r.set_reg_of_index(bad, 1);
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_EQ(std::memcmp(&r, &before, sizeof(r)), 0) << "a rejected write changed something";
}

TEST(GuestRegisters, ThirtyTwoBitWriteZeroesUpperHalf) {
  GeneralRegisters r{};
  r.rbx = 0xffffffffffffffffull;
  ASSERT_TRUE(r.set32(Gpr::kRbx, 0x12345678).has_value());
  EXPECT_EQ(r.rbx, 0x0000000012345678ull);
  r.r11 = 0xaaaaaaaaaaaaaaaaull;
  ASSERT_TRUE(r.set(SubRegister::kR11d, 0x1).has_value());
  EXPECT_EQ(r.r11, 1u);
  auto v = r.get32(Gpr::kRbx);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(*v, 0x12345678u);
}

TEST(GuestRegisters, SixteenAndEightBitWritesKeepOtherBits) {
  GeneralRegisters r{};
  r.rcx = 0x1122334455667788ull;
  ASSERT_TRUE(r.set16(Gpr::kRcx, 0xabcd).has_value());
  EXPECT_EQ(r.rcx, 0x112233445566abcdull);
  ASSERT_TRUE(r.set8l(Gpr::kRcx, 0xef).has_value());
  EXPECT_EQ(r.rcx, 0x112233445566abefull);
  ASSERT_TRUE(r.set8h(Gpr::kRcx, 0x99).has_value());
  EXPECT_EQ(r.rcx, 0x11223344556699efull);
  r.r9 = 0xffffffffffffffffull;
  ASSERT_TRUE(r.set(SubRegister::kR9b, 0).has_value());
  EXPECT_EQ(r.r9, 0xffffffffffffff00ull);
  ASSERT_TRUE(r.set(SubRegister::kR9w, 0x1234).has_value());
  EXPECT_EQ(r.r9, 0xffffffffffff1234ull);
}

TEST(GuestRegisters, HighByteViewsAreBits15To8OfTheRightRegister) {
  GeneralRegisters r{};
  r.rax = 0x1111111111111111ull;
  r.rcx = 0x2222222222222222ull;
  r.rdx = 0x3333333333333333ull;
  r.rbx = 0x4444444444444444ull;
  ASSERT_TRUE(r.set(SubRegister::kAh, 0xa1).has_value());
  ASSERT_TRUE(r.set(SubRegister::kCh, 0xc1).has_value());
  ASSERT_TRUE(r.set(SubRegister::kDh, 0xd1).has_value());
  ASSERT_TRUE(r.set(SubRegister::kBh, 0xb1).has_value());
  EXPECT_EQ(r.rax, 0x111111111111a111ull);
  EXPECT_EQ(r.rcx, 0x222222222222c122ull);
  EXPECT_EQ(r.rdx, 0x333333333333d133ull);
  EXPECT_EQ(r.rbx, 0x444444444444b144ull);
  auto bh = r.get(SubRegister::kBh);
  ASSERT_TRUE(bh.has_value());
  EXPECT_EQ(*bh, 0xb1u);
  // Only rax..rbx have a high byte.
  auto bad = r.set8h(Gpr::kRsi, 1);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

TEST(GuestRegisters, SubRegisterReadsTruncate) {
  GeneralRegisters r{};
  r.rdx = 0x8877665544332211ull;
  struct Case {
    SubRegister reg;
    uint64_t expected;
  } cases[] = {{SubRegister::kEdx, 0x44332211},
               {SubRegister::kDx, 0x2211},
               {SubRegister::kDl, 0x11},
               {SubRegister::kDh, 0x22}};
  for (const Case& c : cases) {
    auto v = r.get(c.reg);
    ASSERT_TRUE(v.has_value()) << sub_register_name(c.reg);
    EXPECT_EQ(*v, c.expected) << sub_register_name(c.reg);
  }
}

TEST(GuestRegisters, StackPointerViewsAreRejected) {
  GeneralRegisters r{};
  for (SubRegister s : {SubRegister::kEsp, SubRegister::kSp, SubRegister::kSpl}) {
    EXPECT_FALSE(r.get(s).has_value()) << sub_register_name(s);
    EXPECT_FALSE(r.set(s, 1).has_value()) << sub_register_name(s);
  }
  EXPECT_FALSE(r.set32(Gpr::kRsp, 1).has_value());
  EXPECT_EQ(r.rsp_unused, 0u);
}

TEST(GuestRegisters, WidthAccessorsForIoExits) {
  GeneralRegisters r{};
  r.rax = 0xffffffffffffffffull;
  ASSERT_TRUE(r.set_by_width(0, 1, 0x1234).has_value());  // IN AL: only AL changes
  EXPECT_EQ(r.rax, 0xffffffffffffff34ull);
  ASSERT_TRUE(r.set_by_width(0, 2, 0xbeef).has_value());  // IN AX
  EXPECT_EQ(r.rax, 0xffffffffffffbeefull);
  ASSERT_TRUE(r.set_by_width(0, 4, 0xcafebabe).has_value());  // IN EAX zero-extends
  EXPECT_EQ(r.rax, 0x00000000cafebabeull);
  auto v = r.get_by_width(0, 2);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(*v, 0xbabeu);
  for (unsigned bad_width : {0u, 3u, 5u, 16u}) {
    EXPECT_FALSE(r.set_by_width(0, bad_width, 0).has_value()) << bad_width;
    EXPECT_FALSE(r.get_by_width(0, bad_width).has_value()) << bad_width;
  }
  EXPECT_EQ(r.rax, 0x00000000cafebabeull);
}

TEST(GuestRegisters, SubRegisterNamesRoundTrip) {
  int count = 0;
  for (const char* name : {"eax", "r15d", "ax", "r8w", "al", "sil", "r12b", "ah", "bh"}) {
    auto s = find_sub_register(name);
    ASSERT_TRUE(s.has_value()) << name;
    EXPECT_EQ(sub_register_name(*s), name);
    ++count;
  }
  EXPECT_EQ(count, 9);
  EXPECT_EQ(sub_register_index(SubRegister::kR13w), 13u);
  EXPECT_EQ(sub_register_view(SubRegister::kBh), SubRegisterView::kHighByte);
  EXPECT_FALSE(find_sub_register("rax").has_value());
  EXPECT_FALSE(find_sub_register("").has_value());
  EXPECT_FALSE(find_sub_register("r16d").has_value());
  EXPECT_EQ(gpr_name(12), "r12");
  EXPECT_EQ(gpr_name(16), "?");
}

}  // namespace
}  // namespace lantern::guest
