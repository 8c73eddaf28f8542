// The MOV decoder used for xAPIC MMIO exits (vmx/mmio_decode.h). Byte sequences are what GNU as
// emits for the instructions in the comments.
#include <gtest/gtest.h>

#include <vector>

#include "vmx/mmio_decode.h"

namespace lantern::vmx {
namespace {

Result<MmioMove> decode(std::vector<uint8_t> bytes, CodeSize size) {
  return decode_mmio_move(bytes, size);
}

TEST(VmxMmioDecode, LoadAbsoluteAddress32) {
  // mov 0xfee00080, %ebx  =  8b 1d 80 00 e0 fe
  auto m = decode({0x8b, 0x1d, 0x80, 0x00, 0xe0, 0xfe}, CodeSize::k32);
  ASSERT_TRUE(m.has_value());
  EXPECT_FALSE(m->store);
  EXPECT_EQ(m->gpr, 3);  // ebx
  EXPECT_EQ(m->length, 6);
}

TEST(VmxMmioDecode, StoreRegisterWithBaseAndDisp8) {
  // mov %ecx, 0x30(%esi)  =  89 4e 30
  auto m = decode({0x89, 0x4e, 0x30, 0x90}, CodeSize::k32);
  ASSERT_TRUE(m.has_value());
  EXPECT_TRUE(m->store);
  EXPECT_FALSE(m->immediate);
  EXPECT_EQ(m->gpr, 1);
  EXPECT_EQ(m->length, 3);
}

TEST(VmxMmioDecode, SibForms) {
  // mov %eax, (%esp)  =  89 04 24
  auto a = decode({0x89, 0x04, 0x24}, CodeSize::k32);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->length, 3);
  // mov %edx, 0xfee00000(,%eax,1)  =  89 14 05 00 00 e0 fe (SIB base 101, mod 00: disp32)
  auto b = decode({0x89, 0x14, 0x05, 0x00, 0x00, 0xe0, 0xfe}, CodeSize::k32);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->gpr, 2);
  EXPECT_EQ(b->length, 7);
  // mov 0x100(%ebx,%ecx,4), %edi  =  8b bc 8b 00 01 00 00
  auto c = decode({0x8b, 0xbc, 0x8b, 0x00, 0x01, 0x00, 0x00}, CodeSize::k32);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->gpr, 7);
  EXPECT_EQ(c->length, 7);
}

TEST(VmxMmioDecode, StoreImmediate) {
  // movl $0x1ff, 0xfee000f0  =  c7 05 f0 00 e0 fe ff 01 00 00
  auto m = decode({0xc7, 0x05, 0xf0, 0x00, 0xe0, 0xfe, 0xff, 0x01, 0x00, 0x00}, CodeSize::k32);
  ASSERT_TRUE(m.has_value());
  EXPECT_TRUE(m->store);
  EXPECT_TRUE(m->immediate);
  EXPECT_EQ(m->imm, 0x1ffu);
  EXPECT_EQ(m->length, 10);
}

TEST(VmxMmioDecode, PrefixesAndCodeSizes) {
  // 16-bit code: 66 67 8b 07 = mov (%edi), %eax with 32-bit operand and address size.
  auto a = decode({0x66, 0x67, 0x8b, 0x07}, CodeSize::k16);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->length, 4);
  EXPECT_EQ(a->gpr, 0);
  // 16-bit code, 16-bit addressing: 66 8b 1e 80 00 = mov 0x80, %ebx (mod 00 rm 110: disp16).
  auto b = decode({0x66, 0x8b, 0x1e, 0x80, 0x00}, CodeSize::k16);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->length, 5);
  EXPECT_EQ(b->gpr, 3);
  // Segment override: 64 8b 03 = mov %fs:(%ebx), %eax.
  auto c = decode({0x64, 0x8b, 0x03}, CodeSize::k32);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->length, 3);
  // 64-bit code: 44 89 00 = mov %r8d, (%rax) (REX.R); 8b 05 rel32 is RIP-relative, 6 bytes.
  auto d = decode({0x44, 0x89, 0x00}, CodeSize::k64);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->gpr, 8);
  EXPECT_EQ(d->length, 3);
  auto e = decode({0x8b, 0x05, 0x10, 0x00, 0x00, 0x00}, CodeSize::k64);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->length, 6);
}

TEST(VmxMmioDecode, EaxWithAnAbsoluteOffset) {
  // mov 0xfee000f0, %eax  =  a1 f0 00 e0 fe (what gcc -m32 emits for a constant address)
  auto load = decode({0xa1, 0xf0, 0x00, 0xe0, 0xfe, 0x90}, CodeSize::k32);
  ASSERT_TRUE(load.has_value());
  EXPECT_FALSE(load->store);
  EXPECT_EQ(load->gpr, 0);
  EXPECT_EQ(load->length, 5);
  // mov %eax, 0xfee000f0  =  a3 f0 00 e0 fe
  auto store = decode({0xa3, 0xf0, 0x00, 0xe0, 0xfe}, CodeSize::k32);
  ASSERT_TRUE(store.has_value());
  EXPECT_TRUE(store->store);
  EXPECT_FALSE(store->immediate);
  EXPECT_EQ(store->length, 5);
  // 64-bit code: an 8-byte offset (movabs); with 67 a 4-byte one; 16-bit code: 2 bytes (66 for EAX).
  auto abs64 = decode({0xa1, 0xf0, 0x00, 0xe0, 0xfe, 0, 0, 0, 0}, CodeSize::k64);
  ASSERT_TRUE(abs64.has_value());
  EXPECT_EQ(abs64->length, 9);
  auto abs64_67 = decode({0x67, 0xa3, 0xf0, 0x00, 0xe0, 0xfe}, CodeSize::k64);
  ASSERT_TRUE(abs64_67.has_value());
  EXPECT_EQ(abs64_67->length, 6);
  auto real = decode({0x66, 0xa1, 0xf0, 0x00}, CodeSize::k16);
  ASSERT_TRUE(real.has_value());
  EXPECT_EQ(real->length, 4);
  EXPECT_FALSE(decode({0xa1, 0xf0, 0x00, 0xe0}, CodeSize::k32).has_value());  // truncated offset
  EXPECT_FALSE(decode({0xa0, 0xf0, 0x00, 0xe0, 0xfe}, CodeSize::k32).has_value());  // 8-bit AL form
}

TEST(VmxMmioDecode, MoffsFormsLoadAndStoreEax) {
  // mov %fs:0x30, %eax  =  64 a1 30 00 00 00 (what GNU as and compilers emit for a constant
  // address into EAX)
  auto load = decode({0x64, 0xa1, 0x30, 0x00, 0x00, 0x00, 0x90}, CodeSize::k32);
  ASSERT_TRUE(load.has_value());
  EXPECT_FALSE(load->store);
  EXPECT_FALSE(load->immediate);
  EXPECT_EQ(load->gpr, 0);
  EXPECT_EQ(load->length, 6);
  // mov %eax, 0xfee000b0  =  a3 b0 00 e0 fe
  auto store = decode({0xa3, 0xb0, 0x00, 0xe0, 0xfe}, CodeSize::k32);
  ASSERT_TRUE(store.has_value());
  EXPECT_TRUE(store->store);
  EXPECT_EQ(store->gpr, 0);
  EXPECT_EQ(store->length, 5);
  // 16-bit code: a 2-byte offset; with 67 a 4-byte one.
  auto real = decode({0x66, 0xa1, 0x30, 0x00}, CodeSize::k16);
  ASSERT_TRUE(real.has_value());
  EXPECT_EQ(real->length, 4);
  auto real32 = decode({0x66, 0x67, 0xa1, 0x30, 0x00, 0xe0, 0xfe}, CodeSize::k16);
  ASSERT_TRUE(real32.has_value());
  EXPECT_EQ(real32->length, 7);
  // 64-bit code: an 8-byte offset, 4 with 67; REX.W (RAX) is a 64-bit access.
  auto long_mode = decode({0xa1, 0x30, 0x00, 0xe0, 0xfe, 0, 0, 0, 0}, CodeSize::k64);
  ASSERT_TRUE(long_mode.has_value());
  EXPECT_EQ(long_mode->length, 9);
  auto long_mode67 = decode({0x67, 0xa1, 0x30, 0x00, 0xe0, 0xfe}, CodeSize::k64);
  ASSERT_TRUE(long_mode67.has_value());
  EXPECT_EQ(long_mode67->length, 6);
  EXPECT_FALSE(decode({0x48, 0xa1, 0x30, 0x00, 0xe0, 0xfe, 0, 0, 0, 0}, CodeSize::k64).has_value());
  // Truncated offsets, and the 8-bit (A0/A2) and 16-bit forms, are refused.
  EXPECT_FALSE(decode({0xa1, 0x30, 0x00, 0xe0}, CodeSize::k32).has_value());
  EXPECT_FALSE(decode({0xa1, 0x30, 0x00, 0xe0, 0xfe, 0, 0}, CodeSize::k64).has_value());
  EXPECT_FALSE(decode({0xa0, 0x30, 0x00, 0xe0, 0xfe}, CodeSize::k32).has_value());
  EXPECT_FALSE(decode({0xa2, 0x30, 0x00, 0xe0, 0xfe}, CodeSize::k32).has_value());
  EXPECT_FALSE(decode({0x66, 0xa3, 0x30, 0x00, 0xe0, 0xfe}, CodeSize::k32).has_value());
}

TEST(VmxMmioDecode, RefusesEverythingElse) {
  EXPECT_FALSE(decode({0x66, 0x89, 0x03}, CodeSize::k32).has_value());  // 16-bit operand
  EXPECT_FALSE(decode({0x89, 0x03}, CodeSize::k16).has_value());        // 16-bit operand
  EXPECT_FALSE(decode({0x48, 0x89, 0x03}, CodeSize::k64).has_value());  // REX.W: 64-bit
  EXPECT_FALSE(decode({0x88, 0x03}, CodeSize::k32).has_value());        // 8-bit MOV
  EXPECT_FALSE(decode({0x01, 0x03}, CodeSize::k32).has_value());        // ADD
  EXPECT_FALSE(decode({0x89, 0xc3}, CodeSize::k32).has_value());        // register to register
  EXPECT_FALSE(decode({0xc7, 0x0d, 0, 0, 0, 0, 1, 0, 0, 0}, CodeSize::k32).has_value());  // C7 /1
  EXPECT_FALSE(decode({0x8b, 0x1d, 0x80, 0x00}, CodeSize::k32).has_value());              // truncated disp32
  EXPECT_FALSE(decode({}, CodeSize::k32).has_value());
  std::vector<uint8_t> prefixes(16, 0x3e);  // more than 15 bytes
  EXPECT_FALSE(decode_mmio_move(prefixes, CodeSize::k32).has_value());
}

}  // namespace
}  // namespace lantern::vmx
