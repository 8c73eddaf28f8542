// The MOV decoder used for MMIO exits (guest/mmio_decode.h) and the moves it describes. Byte sequences are what GNU as
// emits for the instructions in the comments.
#include <gtest/gtest.h>

#include <vector>

#include "guest/mmio_decode.h"

namespace lantern::guest {
namespace {

Result<MmioMove> decode(std::vector<uint8_t> bytes, CodeSize size) {
  return decode_mmio_move(bytes, size);
}

TEST(GuestMmioDecode, LoadAbsoluteAddress32) {
  // mov 0xfee00080, %ebx  =  8b 1d 80 00 e0 fe
  auto m = decode({0x8b, 0x1d, 0x80, 0x00, 0xe0, 0xfe}, CodeSize::k32);
  ASSERT_TRUE(m.has_value());
  EXPECT_FALSE(m->store);
  EXPECT_EQ(m->gpr, 3);  // ebx
  EXPECT_EQ(m->length, 6);
}

TEST(GuestMmioDecode, StoreRegisterWithBaseAndDisp8) {
  // mov %ecx, 0x30(%esi)  =  89 4e 30
  auto m = decode({0x89, 0x4e, 0x30, 0x90}, CodeSize::k32);
  ASSERT_TRUE(m.has_value());
  EXPECT_TRUE(m->store);
  EXPECT_FALSE(m->immediate);
  EXPECT_EQ(m->gpr, 1);
  EXPECT_EQ(m->length, 3);
}

TEST(GuestMmioDecode, SibForms) {
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

TEST(GuestMmioDecode, StoreImmediate) {
  // movl $0x1ff, 0xfee000f0  =  c7 05 f0 00 e0 fe ff 01 00 00
  auto m = decode({0xc7, 0x05, 0xf0, 0x00, 0xe0, 0xfe, 0xff, 0x01, 0x00, 0x00}, CodeSize::k32);
  ASSERT_TRUE(m.has_value());
  EXPECT_TRUE(m->store);
  EXPECT_TRUE(m->immediate);
  EXPECT_EQ(m->imm, 0x1ffu);
  EXPECT_EQ(m->length, 10);
}

TEST(GuestMmioDecode, PrefixesAndCodeSizes) {
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

TEST(GuestMmioDecode, EaxWithAnAbsoluteOffset) {
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
}

TEST(GuestMmioDecode, MoffsFormsLoadAndStoreEax) {
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
  EXPECT_EQ(long_mode->width, 4);
  auto long_mode67 = decode({0x67, 0xa1, 0x30, 0x00, 0xe0, 0xfe}, CodeSize::k64);
  ASSERT_TRUE(long_mode67.has_value());
  EXPECT_EQ(long_mode67->length, 6);
  auto rax = decode({0x48, 0xa1, 0x30, 0x00, 0xe0, 0xfe, 0, 0, 0, 0}, CodeSize::k64);
  ASSERT_TRUE(rax.has_value());
  EXPECT_EQ(rax->length, 10);
  EXPECT_EQ(rax->width, 8);
  // Truncated offsets are refused.
  EXPECT_FALSE(decode({0xa1, 0x30, 0x00, 0xe0}, CodeSize::k32).has_value());
  EXPECT_FALSE(decode({0xa1, 0x30, 0x00, 0xe0, 0xfe, 0, 0}, CodeSize::k64).has_value());
  EXPECT_FALSE(decode({0xa2, 0x30, 0x00, 0xe0}, CodeSize::k32).has_value());
}

TEST(GuestMmioDecode, MoffsFormsOfOtherSizes) {
  // mov 0xfee00030, %al  =  a0 30 00 e0 fe; mov %al, 0xfee00030  =  a2 30 00 e0 fe
  auto load8 = decode({0xa0, 0x30, 0x00, 0xe0, 0xfe}, CodeSize::k32);
  ASSERT_TRUE(load8.has_value());
  EXPECT_FALSE(load8->store);
  EXPECT_EQ(load8->width, 1);
  EXPECT_EQ(load8->gpr, 0);
  EXPECT_FALSE(load8->high_byte);
  EXPECT_EQ(load8->length, 5);
  auto store8 = decode({0xa2, 0x30, 0x00, 0xe0, 0xfe}, CodeSize::k32);
  ASSERT_TRUE(store8.has_value());
  EXPECT_TRUE(store8->store);
  EXPECT_EQ(store8->width, 1);
  // mov %ax, 0xfee00030  =  66 a3 30 00 e0 fe
  auto store16 = decode({0x66, 0xa3, 0x30, 0x00, 0xe0, 0xfe}, CodeSize::k32);
  ASSERT_TRUE(store16.has_value());
  EXPECT_TRUE(store16->store);
  EXPECT_EQ(store16->width, 2);
  EXPECT_EQ(store16->length, 6);
}

TEST(GuestMmioDecode, ByteMoves) {
  // What kvm-unit-tests' memset does to the APIC page: mov %sil, (%rcx)  =  40 88 31. With a REX
  // prefix, ModRM.reg 6 is SIL (RSI's low byte).
  auto sil = decode({0x40, 0x88, 0x31}, CodeSize::k64);
  ASSERT_TRUE(sil.has_value());
  EXPECT_TRUE(sil->store);
  EXPECT_FALSE(sil->immediate);
  EXPECT_EQ(sil->width, 1);
  EXPECT_EQ(sil->gpr, 6);
  EXPECT_FALSE(sil->high_byte);
  EXPECT_EQ(sil->length, 3);
  // Without REX the same ModRM.reg is DH: mov %dh, (%ecx)  =  88 31
  auto dh = decode({0x88, 0x31}, CodeSize::k32);
  ASSERT_TRUE(dh.has_value());
  EXPECT_EQ(dh->gpr, 2);
  EXPECT_TRUE(dh->high_byte);
  EXPECT_EQ(dh->length, 2);
  // mov (%rax), %r9b  =  44 8a 08 (REX.R)
  auto r9b = decode({0x44, 0x8a, 0x08}, CodeSize::k64);
  ASSERT_TRUE(r9b.has_value());
  EXPECT_FALSE(r9b->store);
  EXPECT_EQ(r9b->width, 1);
  EXPECT_EQ(r9b->gpr, 9);
  // movb $0xff, 0x30(%ebx)  =  c6 43 30 ff; 66 does not widen the 8-bit forms.
  auto imm8 = decode({0x66, 0xc6, 0x43, 0x30, 0xff}, CodeSize::k32);
  ASSERT_TRUE(imm8.has_value());
  EXPECT_TRUE(imm8->store);
  EXPECT_TRUE(imm8->immediate);
  EXPECT_EQ(imm8->width, 1);
  EXPECT_EQ(imm8->imm, 0xffu);
  EXPECT_EQ(imm8->length, 5);
}

TEST(GuestMmioDecode, WordAndQuadwordMoves) {
  // mov %bx, (%ecx)  =  66 89 19; 16-bit code: mov %bx, (%di)  =  89 1d
  auto word = decode({0x66, 0x89, 0x19}, CodeSize::k32);
  ASSERT_TRUE(word.has_value());
  EXPECT_EQ(word->width, 2);
  EXPECT_EQ(word->gpr, 3);
  auto real = decode({0x89, 0x1d}, CodeSize::k16);
  ASSERT_TRUE(real.has_value());
  EXPECT_EQ(real->width, 2);
  EXPECT_EQ(real->length, 2);
  // movw $0x1234, (%eax)  =  66 c7 00 34 12 (an imm16)
  auto imm16 = decode({0x66, 0xc7, 0x00, 0x34, 0x12}, CodeSize::k32);
  ASSERT_TRUE(imm16.has_value());
  EXPECT_EQ(imm16->width, 2);
  EXPECT_EQ(imm16->imm, 0x1234u);
  EXPECT_EQ(imm16->length, 5);
  // mov (%rdi), %r12  =  4c 8b 27 (REX.W and REX.R)
  auto quad = decode({0x4c, 0x8b, 0x27}, CodeSize::k64);
  ASSERT_TRUE(quad.has_value());
  EXPECT_FALSE(quad->store);
  EXPECT_EQ(quad->width, 8);
  EXPECT_EQ(quad->gpr, 12);
  // movq $-1, (%rax)  =  48 c7 00 ff ff ff ff: the imm32 is sign-extended to 64 bits.
  auto imm64 = decode({0x48, 0xc7, 0x00, 0xff, 0xff, 0xff, 0xff}, CodeSize::k64);
  ASSERT_TRUE(imm64.has_value());
  EXPECT_EQ(imm64->width, 8);
  EXPECT_EQ(imm64->imm, ~uint64_t{0});
  EXPECT_EQ(imm64->length, 7);
  auto imm64_positive = decode({0x48, 0xc7, 0x00, 0x01, 0x00, 0x00, 0x70}, CodeSize::k64);
  ASSERT_TRUE(imm64_positive.has_value());
  EXPECT_EQ(imm64_positive->imm, 0x70000001u);
}

TEST(GuestMmioDecode, StoreValues) {
  MmioMove m;
  m.store = true;
  m.width = 1;
  EXPECT_EQ(mmio_store_value(m, 0x1122334455667788ull), 0x88u);
  m.high_byte = true;  // AH..BH: bits 15:8
  EXPECT_EQ(mmio_store_value(m, 0x1122334455667788ull), 0x77u);
  m.high_byte = false;
  m.width = 2;
  EXPECT_EQ(mmio_store_value(m, 0x1122334455667788ull), 0x7788u);
  m.width = 4;
  EXPECT_EQ(mmio_store_value(m, 0x1122334455667788ull), 0x55667788u);
  m.width = 8;
  EXPECT_EQ(mmio_store_value(m, 0x1122334455667788ull), 0x1122334455667788ull);
  m.immediate = true;  // the immediate, not the register
  m.imm = 0xffffffffffffffffull;
  m.width = 2;
  EXPECT_EQ(mmio_store_value(m, 0), 0xffffu);
}

TEST(GuestMmioDecode, LoadResults) {
  constexpr uint64_t kOld = 0x1122334455667788ull;
  MmioMove m;
  m.width = 1;  // the low byte only
  EXPECT_EQ(mmio_load_result(m, kOld, 0xffffffffu), 0x11223344556677ffull);
  m.high_byte = true;  // bits 15:8 only
  EXPECT_EQ(mmio_load_result(m, kOld, 0xab), 0x112233445566ab88ull);
  m.high_byte = false;
  m.width = 2;  // the low word only
  EXPECT_EQ(mmio_load_result(m, kOld, 0xabcd), 0x112233445566abcdull);
  m.width = 4;  // zero-extends
  EXPECT_EQ(mmio_load_result(m, kOld, 0xffffffffu), 0xffffffffull);
  m.width = 8;
  EXPECT_EQ(mmio_load_result(m, kOld, 0xfedcba9876543210ull), 0xfedcba9876543210ull);
}

// A device that records the last access and answers reads with a fixed value.
class RecordingDevice final : public guest::MmioDevice {
 public:
  uint64_t mmio_read(uint64_t offset, uint8_t width) override {
    last_offset = offset;
    last_width = width;
    return 0xa5a5a5a5a5a5a5a5ull & (width >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * width)) - 1);
  }
  void mmio_write(uint64_t offset, uint8_t width, uint64_t value) override {
    last_offset = offset;
    last_width = width;
    written = value;
  }
  uint64_t last_offset = 0;
  uint8_t last_width = 0;
  uint64_t written = 0;
};

TEST(GuestMmioDecode, PerformMoves) {
  RecordingDevice device;
  auto store = decode({0x40, 0x88, 0x31}, CodeSize::k64);  // mov %sil, (%rcx)
  ASSERT_TRUE(store.has_value());
  EXPECT_EQ(perform_mmio_move(*store, device, 0x30, 0x12ff), 0x12ffu);  // the register is unchanged
  EXPECT_EQ(device.last_offset, 0x30u);
  EXPECT_EQ(device.last_width, 1);
  EXPECT_EQ(device.written, 0xffu);
  auto load = decode({0x66, 0x8b, 0x01}, CodeSize::k32);  // mov (%ecx), %ax
  ASSERT_TRUE(load.has_value());
  EXPECT_EQ(perform_mmio_move(*load, device, 0x80, 0x1111222233334444ull), 0x111122223333a5a5ull);
  EXPECT_EQ(device.last_width, 2);
}

TEST(GuestMmioDecode, RefusesEverythingElse) {
  EXPECT_FALSE(decode({0x01, 0x03}, CodeSize::k32).has_value());        // ADD
  EXPECT_FALSE(decode({0x0f, 0xb6, 0x03}, CodeSize::k32).has_value());  // MOVZX
  EXPECT_FALSE(decode({0x88, 0xc3}, CodeSize::k32).has_value());        // 8-bit register to register
  EXPECT_FALSE(decode({0xc6, 0x08, 0xff}, CodeSize::k32).has_value());  // C6 /1
  EXPECT_FALSE(decode({0x66, 0xc7, 0x00, 0x34}, CodeSize::k32).has_value());  // truncated imm16
  EXPECT_FALSE(decode({0x89, 0xc3}, CodeSize::k32).has_value());        // register to register
  EXPECT_FALSE(decode({0xc7, 0x0d, 0, 0, 0, 0, 1, 0, 0, 0}, CodeSize::k32).has_value());  // C7 /1
  EXPECT_FALSE(decode({0x8b, 0x1d, 0x80, 0x00}, CodeSize::k32).has_value());              // truncated disp32
  EXPECT_FALSE(decode({}, CodeSize::k32).has_value());
  std::vector<uint8_t> prefixes(16, 0x3e);  // more than 15 bytes
  EXPECT_FALSE(decode_mmio_move(prefixes, CodeSize::k32).has_value());
}

}  // namespace
}  // namespace lantern::guest
