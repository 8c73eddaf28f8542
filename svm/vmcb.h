// The VMCB (virtual machine control block, AMD APM Vol. 2 15.5 and Appendix B): the 4 KiB page
// VMRUN reads the guest's state and controls from and #VMEXIT writes them back to.
//
//   struct Vmcb            the layout, control area (Table B-1) then state save area at 400h
//                          (Table B-2); every offset is checked at compile time against the
//                          one field table, svm/vmcb_fields.def.
//   kVmcbFields            constexpr array of VmcbFieldInfo{name, offset, width, area}
//   find_vmcb_field_by_name()   "EXITCODE" -> the field (the console's ?name= lookup)
//   read_vmcb_field()      the value of a field in a VMCB image (zero-extended to 64 bits)
//
// The bits inside the control fields (intercepts, V_IRQ, EVENTINJ, ...) live in
// svm/vmcb_controls.h. Portable: the kernel and the host tests both build this.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace lantern::svm {

inline constexpr size_t kVmcbBytes = 4096;          // APM 15.5.1: one 4 KiB-aligned page
inline constexpr size_t kVmcbSaveAreaOffset = 0x400;  // APM Table B-2

// A segment register in the save area (APM Table B-2; attribute layout APM 15.5.1 Figure 15-4:
// the descriptor's type/S/DPL/P in bits 7:0 and AVL/L/D/G in bits 11:8).
struct VmcbSegment {
  uint16_t selector;
  uint16_t attrib;
  uint32_t limit;
  uint64_t base;
};
static_assert(sizeof(VmcbSegment) == 16);

// APM Table B-1, offsets 000h-3FFh.
struct VmcbControlArea {
  uint16_t intercept_cr_reads;
  uint16_t intercept_cr_writes;
  uint16_t intercept_dr_reads;
  uint16_t intercept_dr_writes;
  uint32_t intercept_exceptions;
  uint32_t intercept_vector_3;
  uint32_t intercept_vector_4;
  uint32_t intercept_vector_5;
  uint8_t reserved_018[0x03c - 0x018];
  uint16_t pause_filter_threshold;
  uint16_t pause_filter_count;
  uint64_t iopm_base_pa;
  uint64_t msrpm_base_pa;
  uint64_t tsc_offset;
  uint32_t guest_asid;
  uint8_t tlb_control;
  uint8_t reserved_05d[3];
  uint64_t virtual_interrupt_control;
  uint64_t interrupt_shadow;
  uint64_t exitcode;
  uint64_t exitinfo1;
  uint64_t exitinfo2;
  uint64_t exitintinfo;
  uint64_t np_enable;
  uint64_t avic_apic_bar;
  uint64_t ghcb_pa;
  uint64_t eventinj;
  uint64_t n_cr3;
  uint64_t lbr_virtualization_enable;
  uint32_t vmcb_clean_bits;
  uint32_t reserved_0c4;
  uint64_t nrip;
  uint8_t number_of_bytes_fetched;
  uint8_t guest_instruction_bytes[15];
  uint64_t avic_apic_backing_page_pointer;
  uint64_t reserved_0e8;
  uint64_t avic_logical_table_pointer;
  uint64_t avic_physical_table_pointer;
  uint64_t reserved_100;
  uint64_t vmsa_pointer;
  uint8_t reserved_110[0x400 - 0x110];
};
static_assert(sizeof(VmcbControlArea) == kVmcbSaveAreaOffset);

// APM Table B-2, offsets 000h-BFFh of the save area (400h-FFFh of the VMCB).
struct VmcbSaveArea {
  VmcbSegment es, cs, ss, ds, fs, gs, gdtr, ldtr, idtr, tr;
  uint8_t reserved_0a0[0x0cb - 0x0a0];
  uint8_t cpl;
  uint8_t reserved_0cc[4];
  uint64_t efer;
  uint8_t reserved_0d8[0x148 - 0x0d8];
  uint64_t cr4;
  uint64_t cr3;
  uint64_t cr0;
  uint64_t dr7;
  uint64_t dr6;
  uint64_t rflags;
  uint64_t rip;
  uint8_t reserved_180[0x1d8 - 0x180];
  uint64_t rsp;
  uint64_t s_cet;
  uint64_t ssp;
  uint64_t isst_addr;
  uint64_t rax;
  uint64_t star;
  uint64_t lstar;
  uint64_t cstar;
  uint64_t sfmask;
  uint64_t kernel_gs_base;
  uint64_t sysenter_cs;
  uint64_t sysenter_esp;
  uint64_t sysenter_eip;
  uint64_t cr2;
  uint8_t reserved_248[0x268 - 0x248];
  uint64_t g_pat;
  uint64_t dbgctl;
  uint64_t br_from;
  uint64_t br_to;
  uint64_t lastexcpfrom;
  uint64_t lastexcpto;
  uint8_t reserved_298[0x2e0 - 0x298];
  uint64_t spec_ctrl;
  uint8_t reserved_2e8[kVmcbBytes - kVmcbSaveAreaOffset - 0x2e8];
};
static_assert(sizeof(VmcbSaveArea) == kVmcbBytes - kVmcbSaveAreaOffset);

struct alignas(4096) Vmcb {
  VmcbControlArea control;
  VmcbSaveArea save;
};
static_assert(sizeof(Vmcb) == kVmcbBytes);

enum class VmcbArea : uint8_t { kControl, kSave };

// "control", "save": the console's "area" value.
constexpr std::string_view vmcb_area_name(VmcbArea a) {
  return a == VmcbArea::kControl ? "control" : "save";
}

struct VmcbFieldInfo {
  std::string_view name;
  uint16_t offset;  // bytes from the start of the VMCB
  uint8_t width;    // bits: 8, 16, 32, 64
  VmcbArea area;
};

inline constexpr VmcbFieldInfo kVmcbFields[] = {
#define LANTERN_VMCB_FIELD(NAME, MEMBER, OFFSET, WIDTH, AREA) {#NAME, OFFSET, WIDTH, VmcbArea::AREA},
#include "svm/vmcb_fields.def"
#undef LANTERN_VMCB_FIELD
};
inline constexpr size_t kVmcbFieldCount = sizeof(kVmcbFields) / sizeof(kVmcbFields[0]);

// Every row of the table names the struct member at its offset, with the row's width, and lies
// in its area: the table and the struct cannot drift apart.
#define LANTERN_VMCB_FIELD(NAME, MEMBER, OFFSET, WIDTH, AREA)                                        \
  static_assert(offsetof(Vmcb, MEMBER) == (OFFSET), "VMCB offset of " #NAME);                        \
  static_assert(sizeof(Vmcb::MEMBER) * 8 == (WIDTH), "VMCB width of " #NAME);                        \
  static_assert((VmcbArea::AREA == VmcbArea::kControl) == ((OFFSET) < kVmcbSaveAreaOffset),          \
                "VMCB area of " #NAME);
#include "svm/vmcb_fields.def"
#undef LANTERN_VMCB_FIELD

// The field named `name` (exact, case-sensitive, as in the table), or nullptr.
const VmcbFieldInfo* find_vmcb_field_by_name(std::string_view name);
// The field at exactly `offset`, or nullptr.
const VmcbFieldInfo* find_vmcb_field_by_offset(uint16_t offset);
// The value of `field` in a VMCB image (little-endian, zero-extended to 64 bits).
uint64_t read_vmcb_field(const Vmcb& vmcb, const VmcbFieldInfo& field);

}  // namespace lantern::svm
