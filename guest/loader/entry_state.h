// The vendor-neutral register state a loader asks the vCPU to start in. Each backend turns it
// into its own form (VMCS guest-state fields, VMCB save area). Portable.
#pragma once

#include <cstdint>

namespace lantern::guest {

// A segment register's hidden part, as the descriptor it came from would set it
// (SDM Vol. 3A 3.4.5 "Segment Descriptors", Figure 3-8).
struct SegmentState {
  uint16_t selector = 0;
  uint64_t base = 0;
  uint32_t limit = 0;       // effective limit in bytes (already scaled by the granularity)
  uint8_t type = 0;         // descriptor type field, 4 bits (SDM Vol. 3A 3.4.5.1, Table 3-1)
  bool code_or_data = true; // S flag: 1 = code/data, 0 = system (TSS, LDT)
  uint8_t dpl = 0;
  bool present = true;
  bool default_big = true;  // D/B flag: 32-bit operand size / stack
  bool granularity = true;  // G flag: limit in 4 KiB units
  bool long_mode = false;   // L flag (code segments only)
  bool usable = true;       // false: a null selector's "unusable" segment
};

// The segment's attribute bits as its descriptor holds them in bits 47:40 and 55:52 (SDM Vol. 3A
// 3.4.5, Figure 3-8), packed into 12 bits: 3:0 type, 4 S, 6:5 DPL, 7 P, 8 AVL (0), 9 L, 10 D/B,
// 11 G. This is the VMCB's attribute format (APM Vol. 2 15.5.1, Figure 15-4); the VMCS's access
// rights hold bits 11:8 at 15:12 (SDM Vol. 3C 24.4.1, Table 24-2). An unusable segment is the
// caller's to encode.
constexpr uint16_t packed_descriptor_attributes(const SegmentState& s) {
  uint16_t a = s.type & 0xfu;
  if (s.code_or_data) a |= 1u << 4;
  a |= static_cast<uint16_t>((s.dpl & 3u) << 5);
  if (s.present) a |= 1u << 7;
  if (s.long_mode) a |= 1u << 9;
  if (s.default_big) a |= 1u << 10;
  if (s.granularity) a |= 1u << 11;
  return a;
}

struct DescriptorTableState {
  uint64_t base = 0;
  uint16_t limit = 0;
};

// Segment types (SDM Vol. 3A 3.4.5.1, Table 3-1 "Code- and Data-Segment Types", and 3.5,
// Table 3-2 "System-Segment and Gate-Descriptor Types").
inline constexpr uint8_t kSegmentTypeDataReadWriteAccessed = 0x3;
inline constexpr uint8_t kSegmentTypeCodeExecuteReadAccessed = 0xb;
inline constexpr uint8_t kSegmentTypeTss32Busy = 0xb;  // system segment (S = 0)
inline constexpr uint8_t kSegmentTypeLdt = 0x2;        // system segment (S = 0)

// CR0 and RFLAGS bits (SDM Vol. 3A 2.5 "Control Registers", Vol. 1 3.4.3 "EFLAGS Register").
inline constexpr uint64_t kCr0Pe = 1ull << 0;
inline constexpr uint64_t kCr0Et = 1ull << 4;  // reserved, reads 1 on every CPU since the i486
inline constexpr uint64_t kCr0Pg = 1ull << 31;
inline constexpr uint64_t kRflagsReserved1 = 1ull << 1;  // always 1
inline constexpr uint64_t kRflagsIf = 1ull << 9;

struct EntryState {
  uint64_t rip = 0;
  uint64_t rax = 0, rbx = 0, rcx = 0, rdx = 0, rsi = 0, rdi = 0, rbp = 0, rsp = 0;
  uint64_t rflags = kRflagsReserved1;
  uint64_t cr0 = 0, cr3 = 0, cr4 = 0, efer = 0;
  SegmentState cs, ds, es, fs, gs, ss, tr, ldtr;
  DescriptorTableState gdtr, idtr;
};

// For loaders whose boot protocol defines no TSS or LDT (Multiboot 3.2, the Linux boot
// protocol): a task register at 0 with limit 0xffff and type 11 (a busy 32-bit TSS, or in IA-32e
// mode a busy 64-bit TSS), which VMX entry requires to be usable (SDM Vol. 3C 27.3.1.2), and an
// unusable LDT register.
inline void set_minimal_tr_and_ldtr(EntryState& s) {
  s.tr.type = kSegmentTypeTss32Busy;
  s.tr.code_or_data = false;
  s.tr.limit = 0xffff;
  s.tr.default_big = false;
  s.tr.granularity = false;
  s.ldtr.type = kSegmentTypeLdt;
  s.ldtr.code_or_data = false;
  s.ldtr.usable = false;
  s.ldtr.present = false;
  s.ldtr.default_big = false;
  s.ldtr.granularity = false;
}

}  // namespace lantern::guest
