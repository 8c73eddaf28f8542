// Advancing the instruction pointer past an emulated instruction (guest/instruction_pointer.h).
#include <gtest/gtest.h>

#include "guest/instruction_pointer.h"

namespace lantern::guest {
namespace {

TEST(GuestInstructionPointer, CodeSizeFromLmaAndCs) {
  EXPECT_EQ(code_size_of(true, true, false), CodeSize::k64);
  EXPECT_EQ(code_size_of(true, false, true), CodeSize::k32);   // compatibility mode, 32-bit code
  EXPECT_EQ(code_size_of(true, false, false), CodeSize::k16);  // compatibility mode, 16-bit code
  EXPECT_EQ(code_size_of(false, true, true), CodeSize::k32);   // CS.L means nothing outside IA-32e mode
  EXPECT_EQ(code_size_of(false, false, false), CodeSize::k16); // real mode after reset
}

TEST(GuestInstructionPointer, WrapsAtTheOperandSize) {
  EXPECT_EQ(wrap_instruction_pointer(0x10001, CodeSize::k16), 0x1u);             // IP past 0xFFFF
  EXPECT_EQ(wrap_instruction_pointer(0x100000002ull, CodeSize::k32), 0x2u);      // EIP past 4 GiB
  EXPECT_EQ(wrap_instruction_pointer(0x100000002ull, CodeSize::k64), 0x100000002ull);
  EXPECT_EQ(wrap_instruction_pointer(0x1234, CodeSize::k16), 0x1234u);
}

TEST(GuestInstructionPointer, OnlyA64KibCrossingNeedsTheCodeSize) {
  EXPECT_FALSE(next_rip_may_wrap(0x1002, 2));
  EXPECT_FALSE(next_rip_may_wrap(0xfffe, 14));
  EXPECT_FALSE(next_rip_may_wrap(0xffff, 15));  // ends on the last byte of the 64 KiB
  EXPECT_TRUE(next_rip_may_wrap(0x10000, 2));
  EXPECT_TRUE(next_rip_may_wrap(0x10001, 3));
  EXPECT_TRUE(next_rip_may_wrap(0x100000001ull, 3));
  // Against the definition (rip and next in different 64 KiB), for every length 1..15 near the
  // boundaries; and where it says no, the unwrapped pointer is right at every operand size.
  for (uint64_t rip : {0xfff0ull, 0xfff1ull, 0xffffull, 0xfffffff1ull, 0x7ffffff5ull, 0x12345678ull}) {
    for (uint64_t length = 1; length <= 15; ++length) {
      const uint64_t next = rip + length;
      EXPECT_EQ(next_rip_may_wrap(next, length), (rip >> 16) != (next >> 16)) << std::hex << rip << " " << length;
      if (next_rip_may_wrap(next, length)) continue;
      for (CodeSize size : {CodeSize::k16, CodeSize::k32, CodeSize::k64}) {
        EXPECT_EQ(wrap_instruction_pointer(next, size), wrap_instruction_pointer(rip, size) + length);
      }
    }
  }
}

}  // namespace
}  // namespace lantern::guest
