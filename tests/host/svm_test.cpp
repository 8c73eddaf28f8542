#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "svm/exit_code.h"
#include "svm/exit_info.h"
#include "svm/hypercall_sites.h"
#include "svm/permission_maps.h"
#include "svm/svm_capabilities.h"
#include "svm/vmcb.h"
#include "svm/vmcb_controls.h"
#include "svm/vmcb_reset.h"

namespace lantern::svm {
namespace {

// ---- VMCB field table ------------------------------------------------------------------------

TEST(SvmVmcb, TableHasUniqueNamesAndNonOverlappingFieldsInTheirArea) {
  std::set<std::string_view> names;
  std::vector<uint8_t> used(kVmcbBytes, 0);
  for (const VmcbFieldInfo& f : kVmcbFields) {
    EXPECT_TRUE(names.insert(f.name).second) << f.name;
    EXPECT_TRUE(f.width == 8 || f.width == 16 || f.width == 32 || f.width == 64) << f.name;
    EXPECT_EQ(f.offset % (f.width / 8), 0u) << f.name << " is naturally aligned";
    for (unsigned b = 0; b < f.width / 8u; ++b) {
      ASSERT_LT(f.offset + b, kVmcbBytes);
      EXPECT_EQ(used[f.offset + b], 0) << f.name << " overlaps another field";
      used[f.offset + b] = 1;
    }
  }
  EXPECT_EQ(kVmcbFieldCount, names.size());
}

TEST(SvmVmcb, WellKnownOffsetsFromAppendixB) {
  struct Case {
    std::string_view name;
    uint16_t offset;
    uint8_t width;
    VmcbArea area;
  } cases[] = {
      {"INTERCEPT_VECTOR_3", 0x00c, 32, VmcbArea::kControl}, {"IOPM_BASE_PA", 0x040, 64, VmcbArea::kControl},
      {"MSRPM_BASE_PA", 0x048, 64, VmcbArea::kControl},       {"GUEST_ASID", 0x058, 32, VmcbArea::kControl},
      {"TLB_CONTROL", 0x05c, 8, VmcbArea::kControl},          {"EXITCODE", 0x070, 64, VmcbArea::kControl},
      {"EXITINTINFO", 0x088, 64, VmcbArea::kControl},         {"EVENTINJ", 0x0a8, 64, VmcbArea::kControl},
      {"N_CR3", 0x0b0, 64, VmcbArea::kControl},               {"NRIP", 0x0c8, 64, VmcbArea::kControl},
      {"CS_SELECTOR", 0x410, 16, VmcbArea::kSave},            {"TR_BASE", 0x498, 64, VmcbArea::kSave},
      {"CPL", 0x4cb, 8, VmcbArea::kSave},                     {"EFER", 0x4d0, 64, VmcbArea::kSave},
      {"CR4", 0x548, 64, VmcbArea::kSave},                    {"RIP", 0x578, 64, VmcbArea::kSave},
      {"RSP", 0x5d8, 64, VmcbArea::kSave},                    {"RAX", 0x5f8, 64, VmcbArea::kSave},
      {"CR2", 0x640, 64, VmcbArea::kSave},                    {"G_PAT", 0x668, 64, VmcbArea::kSave},
      {"LASTEXCPTO", 0x690, 64, VmcbArea::kSave},
  };
  for (const Case& c : cases) {
    const VmcbFieldInfo* f = find_vmcb_field_by_name(c.name);
    ASSERT_NE(f, nullptr) << c.name;
    EXPECT_EQ(f->offset, c.offset) << c.name;
    EXPECT_EQ(f->width, c.width) << c.name;
    EXPECT_EQ(f->area, c.area) << c.name;
    EXPECT_EQ(find_vmcb_field_by_offset(c.offset), f) << c.name;
  }
  EXPECT_EQ(find_vmcb_field_by_name("exitcode"), nullptr) << "names are exact";
  EXPECT_EQ(find_vmcb_field_by_name("GUEST_RIP"), nullptr);
  EXPECT_EQ(vmcb_area_name(VmcbArea::kSave), "save");
}

TEST(SvmVmcb, ReadFieldTakesExactlyItsBytes) {
  static Vmcb vmcb;
  std::memset(&vmcb, 0xee, sizeof(vmcb));
  vmcb.control.tlb_control = 0x01;
  vmcb.control.guest_asid = 0x12345678;
  vmcb.save.cs.selector = 0xf000;
  vmcb.save.rip = 0xfffffffffffffff0ull;
  EXPECT_EQ(read_vmcb_field(vmcb, *find_vmcb_field_by_name("TLB_CONTROL")), 0x01u);
  EXPECT_EQ(read_vmcb_field(vmcb, *find_vmcb_field_by_name("GUEST_ASID")), 0x12345678u);
  EXPECT_EQ(read_vmcb_field(vmcb, *find_vmcb_field_by_name("CS_SELECTOR")), 0xf000u);
  EXPECT_EQ(read_vmcb_field(vmcb, *find_vmcb_field_by_name("RIP")), 0xfffffffffffffff0ull);
}

// ---- exit codes --------------------------------------------------------------------------------

TEST(SvmVmcbReset, RealModeStartAtTheResetState) {
  Vmcb vmcb{};
  VmcbStart start;
  start.iopm_pa = 0x10000;
  start.msrpm_pa = 0x20000;
  start.asid = 3;
  start.n_cr3 = 0x30000;
  start.extra_intercept_vector_4 = 1u << 13;  // XSETBV
  start.rip = 0x1000;
  start.rsp = 0x2000;
  reset_vmcb_to_real_mode(vmcb, start);

  const VmcbControlArea& c = vmcb.control;
  for (uint32_t bit : {intercept3::kIntr, intercept3::kNmi, intercept3::kInit, intercept3::kVintr,
                       intercept3::kCpuid, intercept3::kHlt, intercept3::kIoioProt, intercept3::kMsrProt,
                       intercept3::kShutdown}) {
    EXPECT_NE(c.intercept_vector_3 & bit, 0u) << bit;
  }
  EXPECT_EQ(c.intercept_vector_3 & intercept3::kIret, 0u);
  EXPECT_EQ(c.intercept_vector_4, intercept4::kSvmInstructions | intercept4::kVmmcall | (1u << 13));
  EXPECT_EQ(c.iopm_base_pa, 0x10000u);
  EXPECT_EQ(c.msrpm_base_pa, 0x20000u);
  EXPECT_EQ(c.guest_asid, 3u);
  EXPECT_EQ(c.tlb_control, kTlbControlFlushAll);
  EXPECT_EQ(c.virtual_interrupt_control, vintr::kMasking);
  EXPECT_EQ(c.np_enable, kNpEnable);
  EXPECT_EQ(c.n_cr3, 0x30000u);
  EXPECT_EQ(c.vmcb_clean_bits, 0u);

  const VmcbSaveArea& s = vmcb.save;
  EXPECT_EQ(s.cs.selector, 0);
  EXPECT_EQ(s.cs.attrib, 0x9b);
  EXPECT_EQ(s.cs.limit, 0xffffu);
  for (const VmcbSegment* seg : {&s.ds, &s.es, &s.fs, &s.gs, &s.ss}) {
    EXPECT_EQ(seg->attrib, 0x93);
    EXPECT_EQ(seg->limit, 0xffffu);
    EXPECT_EQ(seg->base, 0u);
  }
  EXPECT_EQ(s.gdtr.limit, 0xffffu);
  EXPECT_EQ(s.idtr.limit, 0xffffu);
  EXPECT_EQ(s.ldtr.attrib, 0x82);
  EXPECT_EQ(s.tr.attrib, 0x8b);
  EXPECT_EQ(s.cpl, 0);
  EXPECT_EQ(s.efer, kEferSvme);
  EXPECT_EQ(s.cr0, 0x10u);             // ET
  EXPECT_EQ(s.rflags, 0x2u);           // bit 1
  EXPECT_EQ(s.dr6, 0xffff0ff0u);
  EXPECT_EQ(s.dr7, 0x400u);
  EXPECT_EQ(s.g_pat, 0x0007040600070406ull);
  EXPECT_EQ(s.rip, 0x1000u);
  EXPECT_EQ(s.rsp, 0x2000u);
}

TEST(SvmExitCodes, NamesAndKinds) {
  struct Case {
    uint64_t code;
    std::string_view name;
    guest::ExitKind kind;
  } cases[] = {
      {0x000, "VMEXIT_CR0_READ", guest::ExitKind::kControlRegister},
      {0x01f, "VMEXIT_CR15_WRITE", guest::ExitKind::kControlRegister},
      {0x027, "VMEXIT_DR7_READ", guest::ExitKind::kDebugRegister},
      {0x046, "VMEXIT_EXCP6", guest::ExitKind::kException},
      {0x05f, "VMEXIT_EXCP31", guest::ExitKind::kException},
      {0x060, "VMEXIT_INTR", guest::ExitKind::kInterrupt},
      {0x061, "VMEXIT_NMI", guest::ExitKind::kNmi},
      {0x063, "VMEXIT_INIT", guest::ExitKind::kInit},
      {0x064, "VMEXIT_VINTR", guest::ExitKind::kInterruptWindow},
      {0x072, "VMEXIT_CPUID", guest::ExitKind::kCpuid},
      {0x074, "VMEXIT_IRET", guest::ExitKind::kNmiWindow},
      {0x078, "VMEXIT_HLT", guest::ExitKind::kHlt},
      {0x07b, "VMEXIT_IOIO", guest::ExitKind::kIo},
      {0x07c, "VMEXIT_MSR", guest::ExitKind::kMsr},
      {0x07f, "VMEXIT_SHUTDOWN", guest::ExitKind::kShutdown},
      {0x080, "VMEXIT_VMRUN", guest::ExitKind::kVirtualizationInstruction},
      {0x081, "VMEXIT_VMMCALL", guest::ExitKind::kHypercall},
      {0x085, "VMEXIT_CLGI", guest::ExitKind::kVirtualizationInstruction},
      {0x08d, "VMEXIT_XSETBV", guest::ExitKind::kOtherInstruction},
      {0x09f, "VMEXIT_CR15_WRITE_TRAP", guest::ExitKind::kControlRegister},
      {0x0a4, "VMEXIT_TLBSYNC", guest::ExitKind::kOtherInstruction},
      {0x400, "VMEXIT_NPF", guest::ExitKind::kNestedPageFault},
      {~uint64_t{0}, "VMEXIT_INVALID", guest::ExitKind::kInvalid},
      {0x00000000ffffffffull, "VMEXIT_INVALID", guest::ExitKind::kInvalid},  // QEMU 7.2, zero-extended
      {~uint64_t{0} - 1, "VMEXIT_BUSY", guest::ExitKind::kBusy},
      {0x0a5, "VMEXIT_UNKNOWN", guest::ExitKind::kUnknown},
      {0x3ff, "VMEXIT_UNKNOWN", guest::ExitKind::kUnknown},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(exit_code_name(c.code), c.name) << std::hex << c.code;
    EXPECT_EQ(exit_kind(c.code), c.kind) << std::hex << c.code;
  }
  EXPECT_TRUE(is_vmexit_invalid(0xffffffffull));
  EXPECT_FALSE(is_vmexit_invalid(0x7f));
  EXPECT_EQ(guest::exit_kind_name(guest::ExitKind::kNestedPageFault), "nested_page_fault");
  EXPECT_EQ(guest::exit_kind_name(guest::ExitKind::kHypercall), "hypercall");
}

// ---- capability detection ----------------------------------------------------------------------

SvmCpuid qemu_tcg_max() {
  // QEMU 7.2 TCG -cpu max (emulators.md): 8000_000AH EDX = 0x10010001 (NP, VGIF, bit 28).
  return SvmCpuid{0x80000021, 1u << 2, 1, 16, 0x10010001};
}

TEST(SvmCapabilities, QemuTcgHasNptAndVgifButNoNrip) {
  SvmDetection d = detect_svm(qemu_tcg_max(), 0);
  ASSERT_TRUE(d.available) << d.unavailable_reason;
  EXPECT_EQ(d.unavailable_reason, nullptr);
  EXPECT_EQ(d.features.revision, 1);
  EXPECT_EQ(d.features.asid_count, 16u);
  EXPECT_TRUE(d.features.nested_paging);
  EXPECT_TRUE(d.features.vgif);
  EXPECT_FALSE(d.features.next_rip_save);
  EXPECT_FALSE(d.features.flush_by_asid);
  EXPECT_FALSE(d.features.vmcb_clean);
  EXPECT_FALSE(d.features.decode_assists);
}

TEST(SvmCapabilities, BochsRyzenHasNripAndFlushByAsid) {
  SvmCpuid c = qemu_tcg_max();
  c.svm_edx = 0x44f;  // emulators.md
  SvmDetection d = detect_svm(c, 0);
  ASSERT_TRUE(d.available);
  EXPECT_TRUE(d.features.nested_paging);
  EXPECT_TRUE(d.features.lbr_virtualization);
  EXPECT_TRUE(d.features.next_rip_save);
  EXPECT_TRUE(d.features.flush_by_asid);
  EXPECT_TRUE(d.features.pause_filter);
  EXPECT_FALSE(d.features.vgif);
}

TEST(SvmCapabilities, EachReasonForUnavailable) {
  SvmCpuid no_svm = qemu_tcg_max();
  no_svm.ext_features_ecx = 0;
  SvmCpuid no_leaf = qemu_tcg_max();
  no_leaf.max_extended_leaf = 0x80000008;
  SvmCpuid no_np = qemu_tcg_max();
  no_np.svm_edx = 0x10010000;
  SvmCpuid no_asid = qemu_tcg_max();
  no_asid.svm_ebx = 1;
  struct Case {
    SvmCpuid cpuid;
    uint64_t vm_cr;
    std::string needle;
  } cases[] = {
      {no_svm, 0, "8000_0001H:ECX[2]"},
      {SvmCpuid{}, 0, "8000_0001H:ECX[2]"},
      {no_leaf, 0, "8000_000AH"},
      {qemu_tcg_max(), kVmCrSvmDisable, "SVMDIS is set: SVM is disabled"},
      {qemu_tcg_max(), kVmCrSvmDisable | kVmCrLock, "locked"},
      {no_np, 0, "nested paging"},
      {no_asid, 0, "ASID"},
  };
  for (const Case& c : cases) {
    SvmDetection d = detect_svm(c.cpuid, c.vm_cr);
    EXPECT_FALSE(d.available) << c.needle;
    ASSERT_NE(d.unavailable_reason, nullptr) << c.needle;
    EXPECT_NE(std::string(d.unavailable_reason).find(c.needle), std::string::npos) << d.unavailable_reason;
  }
  // LOCK alone does not disable SVM.
  EXPECT_TRUE(detect_svm(qemu_tcg_max(), kVmCrLock).available);
}

// ---- IOPM / MSRPM ------------------------------------------------------------------------------

TEST(SvmPermissionMaps, IopmPassthroughByRangeAndWidth) {
  std::vector<uint8_t> iopm(kIopmBytes, 0);
  intercept_all_io(iopm.data());
  EXPECT_TRUE(io_access_exits(iopm.data(), 0x80));
  ASSERT_TRUE(set_io_intercept(iopm.data(), PortRange{0x80, 4}, false));
  EXPECT_FALSE(io_access_exits(iopm.data(), 0x80, 1));
  EXPECT_FALSE(io_access_exits(iopm.data(), 0x80, 4));
  EXPECT_TRUE(io_access_exits(iopm.data(), 0x81, 4)) << "byte 0x84 is still intercepted";
  EXPECT_TRUE(io_access_exits(iopm.data(), 0x7f, 2));
  EXPECT_EQ(iopm[0x80 / 8], 0xf0) << "bit p%8 of byte p/8";
  // The top port: a 4-byte access at 0xFFFE runs into the bits past 0xFFFF, which stay set.
  ASSERT_TRUE(set_io_intercept(iopm.data(), PortRange{0xfffe, 2}, false));
  EXPECT_FALSE(io_access_exits(iopm.data(), 0xfffe, 2));
  EXPECT_TRUE(io_access_exits(iopm.data(), 0xfffe, 4));
  // Errors change nothing.
  EXPECT_EQ(set_io_intercept(iopm.data(), PortRange{0x10, 0}, false).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(set_io_intercept(iopm.data(), PortRange{0xffff, 2}, false).error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(io_access_exits(iopm.data(), 0x10, 1)) << "nothing changed";
  EXPECT_TRUE(io_access_exits(iopm.data(), 0xffff, 2)) << "runs past 0xFFFF";
  ASSERT_TRUE(set_io_intercept(iopm.data(), PortRange{0x80, 1}, true));
  EXPECT_TRUE(io_access_exits(iopm.data(), 0x80, 1));
}

TEST(SvmPermissionMaps, MsrpmThreeRangesTwoBitsPerMsr) {
  std::vector<uint8_t> msrpm(kMsrpmBytes, 0);
  intercept_all_msrs(msrpm.data());
  struct Case {
    uint32_t msr;
    size_t byte;  // APM Table 15-5
    unsigned read_bit;
  } cases[] = {
      {0x00000000, 0x000, 0}, {0x00000010, 0x004, 0}, {0x00001fff, 0x7ff, 6},
      {0xc0000080, 0x820, 0}, {0xc0000103, 0x840, 6}, {0xc0010000, 0x1000, 0}, {0xc0011fff, 0x17ff, 6},
  };
  for (const Case& c : cases) {
    ASSERT_TRUE(set_msr_intercept(msrpm.data(), MsrRange{c.msr, 1}, MsrAccess::kRead, false)) << std::hex << c.msr;
    EXPECT_EQ(msrpm[c.byte], static_cast<uint8_t>(~(1u << c.read_bit))) << std::hex << c.msr;
    EXPECT_FALSE(msr_access_exits(msrpm.data(), c.msr, false));
    EXPECT_TRUE(msr_access_exits(msrpm.data(), c.msr, true)) << "the write bit is the odd one, still set";
    ASSERT_TRUE(set_msr_intercept(msrpm.data(), MsrRange{c.msr, 1}, MsrAccess::kWrite, false));
    EXPECT_FALSE(msr_access_exits(msrpm.data(), c.msr, true));
    ASSERT_TRUE(set_msr_intercept(msrpm.data(), MsrRange{c.msr, 1}, MsrAccess::kReadWrite, true));
    EXPECT_EQ(msrpm[c.byte], 0xff);
  }
  for (size_t i = 0x1800; i < kMsrpmBytes; ++i) ASSERT_EQ(msrpm[i], 0xff) << "reserved quarter untouched";
  // Outside the ranges: always intercepted.
  for (uint32_t msr : {0x2000u, 0x40000000u, 0xc0002000u, 0xc0012000u, 0xffffffffu}) {
    EXPECT_TRUE(msr_access_exits(msrpm.data(), msr, false)) << std::hex << msr;
    EXPECT_TRUE(set_msr_intercept(msrpm.data(), MsrRange{msr, 1}, MsrAccess::kRead, true).has_value());
    EXPECT_EQ(set_msr_intercept(msrpm.data(), MsrRange{msr, 1}, MsrAccess::kRead, false).error().code,
              ErrorCode::kInvalidArgument);
  }
  EXPECT_EQ(set_msr_intercept(msrpm.data(), MsrRange{0x1ff0, 0x20}, MsrAccess::kRead, false).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(set_msr_intercept(msrpm.data(), MsrRange{0xbffffff0, 0x20}, MsrAccess::kRead, false).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(set_msr_intercept(msrpm.data(), MsrRange{0, 0}, MsrAccess::kRead, false).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(set_msr_intercept(msrpm.data(), MsrRange{0xfffffff0, 0x20}, MsrAccess::kRead, true).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_TRUE(msr_access_exits(msrpm.data(), 0x1ff0, false)) << "nothing changed on errors";
  // A whole range at once.
  ASSERT_TRUE(set_msr_intercept(msrpm.data(), MsrRange{0xc0010000, 0x2000}, MsrAccess::kReadWrite, false));
  for (size_t i = 0x1000; i < 0x1800; ++i) ASSERT_EQ(msrpm[i], 0) << i;
}

// ---- EVENTINJ, EXITINTINFO, IOIO, NPF, next RIP ------------------------------------------------

TEST(SvmExitInfo, EventinjEncodings) {
  EXPECT_EQ(*encode_eventinj({0x20, EventType::kExternalInterrupt, false, 0}), 0x80000020ull);
  EXPECT_EQ(*encode_eventinj({2, EventType::kNmi, false, 0}), 0x80000202ull);
  EXPECT_EQ(*encode_eventinj({13, EventType::kException, true, 0x18}), 0x0000001880000b0dull);
  EXPECT_EQ(*encode_eventinj({6, EventType::kException, false, 0}), 0x80000306ull);
  EXPECT_EQ(*encode_eventinj({0x80, EventType::kSoftwareInterrupt, false, 0}), 0x80000480ull);
  EXPECT_EQ(encode_eventinj({3, EventType::kNmi, false, 0}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(encode_eventinj({0x20, EventType::kExternalInterrupt, true, 1}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(encode_eventinj({0x20, static_cast<EventType>(1), false, 0}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(encode_eventinj({0x20, static_cast<EventType>(5), false, 0}).error().code, ErrorCode::kInvalidArgument);
}

TEST(SvmExitInfo, ExitintinfoDecodesWhatEventinjEncodes) {
  EventInjection e;
  EXPECT_FALSE(decode_exitintinfo(0x0000001800000b0dull, &e)) << "V clear: nothing was being delivered";
  ASSERT_TRUE(decode_exitintinfo(0x0000001880000b0eull, &e));
  EXPECT_EQ(e.vector, 14);
  EXPECT_EQ(e.type, EventType::kException);
  EXPECT_TRUE(e.error_code_valid);
  EXPECT_EQ(e.error_code, 0x18u);
  ASSERT_TRUE(decode_exitintinfo(0xdead000080000030ull, &e));
  EXPECT_EQ(e.type, EventType::kExternalInterrupt);
  EXPECT_FALSE(e.error_code_valid);
  EXPECT_EQ(e.error_code, 0u) << "ERRORCODE is ignored without EV";
  const EventInjection nmi{2, EventType::kNmi, false, 0};
  ASSERT_TRUE(decode_exitintinfo(*encode_eventinj(nmi), &e));
  EXPECT_EQ(e.vector, 2);
  EXPECT_EQ(e.type, EventType::kNmi);
}

TEST(SvmExitInfo, IoioExitinfo1) {
  // OUT DX, AL to 0x3f8: port 3f8, SZ8, A16.
  IoioInfo out = IoioInfo::decode(0x03f80090);
  EXPECT_FALSE(out.in);
  EXPECT_EQ(out.port, 0x3f8);
  EXPECT_EQ(out.width, 1);
  EXPECT_EQ(out.address_width, 16);
  EXPECT_FALSE(out.string);
  // REP INSD to 0x1f0: IN, STR, REP, SZ32, A32, segment ES (0).
  IoioInfo ins = IoioInfo::decode(0x01f0014d);
  EXPECT_TRUE(ins.in);
  EXPECT_TRUE(ins.string);
  EXPECT_TRUE(ins.rep);
  EXPECT_EQ(ins.width, 4);
  EXPECT_EQ(ins.address_width, 32);
  EXPECT_EQ(ins.port, 0x1f0);
  // OUTSW with a DS override (SEG = 3), A64.
  IoioInfo outs = IoioInfo::decode(0x00800e24);
  EXPECT_EQ(outs.segment, 3);
  EXPECT_EQ(outs.width, 2);
  EXPECT_EQ(outs.address_width, 64);
}

TEST(SvmExitInfo, NpfExitinfo1) {
  NpfInfo write_to_missing = NpfInfo::decode(0x100000006ull);
  EXPECT_FALSE(write_to_missing.present);
  EXPECT_TRUE(write_to_missing.write);
  EXPECT_TRUE(write_to_missing.user);
  EXPECT_TRUE(write_to_missing.final_address);
  EXPECT_FALSE(write_to_missing.guest_page_table);
  NpfInfo walk = NpfInfo::decode(0x200000015ull);
  EXPECT_TRUE(walk.present);
  EXPECT_TRUE(walk.fetch);
  EXPECT_TRUE(walk.guest_page_table);
  EXPECT_FALSE(walk.final_address);
  EXPECT_TRUE(NpfInfo::decode(0x8).reserved_bit);
}

TEST(SvmExitInfo, NextRipWithoutAndWithNrip) {
  EXPECT_EQ(*next_rip(kVmexitCpuid, 0x1000, 0, 0, false), 0x1002u);
  EXPECT_EQ(*next_rip(kVmexitMsr, 0x1000, 0, 0, false), 0x1002u);
  EXPECT_EQ(*next_rip(kVmexitHlt, 0x1000, 0, 0, false), 0x1001u);
  EXPECT_EQ(*next_rip(kVmexitVmmcall, 0x1000, 0, 0, false), 0x1003u);
  EXPECT_EQ(*next_rip(kVmexitIoio, 0x1000, 0x1001, 0, false), 0x1001u) << "EXITINFO2, not a length";
  EXPECT_EQ(*next_rip(kVmexitIoio, 0x1000, 0x1002, 0, false), 0x1002u);
  EXPECT_EQ(next_rip(kVmexitNpf, 0x1000, 0, 0, false).error().code, ErrorCode::kUnsupported);
  EXPECT_EQ(next_rip(0x40 + 6, 0x1000, 0, 0, false).error().code, ErrorCode::kUnsupported);
  // With NRIP the VMCB decides, whatever the exit.
  EXPECT_EQ(*next_rip(kVmexitCpuid, 0x1000, 0, 0x1005, true), 0x1005u);
  EXPECT_EQ(*next_rip(kVmexitIoio, 0x1000, 0x1001, 0x1003, true), 0x1003u);
}


// ---- Hypercall sites (tests/guests/guest_header.inc HYPERCALL) ---------------------------------

// A guest image at 0x1000: the header, code with two VMCALLs at 0x1030 and 0x1040, a data byte
// run 0F 01 C1 at 0x1050 that is not a site, and the table at 0x1060.
std::vector<uint8_t> image_with_sites(std::vector<uint32_t> sites) {
  std::vector<uint8_t> image(0x80, 0x90);
  std::memcpy(image.data() + 8, "LNTGUEST", 8);
  const uint8_t vmcall[3] = {0x0f, 0x01, 0xc1};
  std::memcpy(image.data() + 0x30, vmcall, 3);
  std::memcpy(image.data() + 0x40, vmcall, 3);
  std::memcpy(image.data() + 0x50, vmcall, 3);
  const uint32_t start = 0x1060;
  const uint32_t end = start + 4 * static_cast<uint32_t>(sites.size());
  std::memcpy(image.data() + kGuestSiteTableOffset, &start, 4);
  std::memcpy(image.data() + kGuestSiteTableOffset + 4, &end, 4);
  if (!sites.empty()) std::memcpy(image.data() + 0x60, sites.data(), 4 * sites.size());  // data() may be null
  return image;
}

TEST(SvmHypercallSites, RewritesExactlyTheListedVmcalls) {
  std::vector<uint8_t> image = image_with_sites({0x1030, 0x1040});
  auto n = rewrite_hypercalls_to_vmmcall(image, 0x1000);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, 2u);
  const uint8_t vmmcall[3] = {0x0f, 0x01, 0xd9};
  EXPECT_EQ(std::memcmp(image.data() + 0x30, vmmcall, 3), 0);
  EXPECT_EQ(std::memcmp(image.data() + 0x40, vmmcall, 3), 0);
  EXPECT_EQ(image[0x52], 0xc1) << "data that looks like VMCALL stays";
}

TEST(SvmHypercallSites, AnEmptyTableChangesNothing) {
  std::vector<uint8_t> image = image_with_sites({});
  const std::vector<uint8_t> before = image;
  auto n = rewrite_hypercalls_to_vmmcall(image, 0x1000);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(image, before);
}

TEST(SvmHypercallSites, BadTablesAreRefusedWithNothingChanged) {
  struct Case {
    const char* what;
    std::vector<uint32_t> sites;
    uint32_t start_override;
    uint32_t end_override;
    size_t size;
  };
  const Case cases[] = {
      {"a site that holds no VMCALL", {0x1030, 0x1044}, 0, 0, 0x80},
      {"a site below the load address", {0x0ff0}, 0, 0, 0x80},
      {"a site whose 3 bytes cross the end", {0x1030, 0x107f}, 0, 0, 0x80},
      {"a table past the end", {0x1030}, 0x1060, 0x1090, 0x80},
      {"end before start", {0x1030}, 0x1064, 0x1060, 0x80},
      {"a partial entry", {0x1030}, 0x1060, 0x1062, 0x80},
      {"an image shorter than the header", {}, 0, 0, 0x20},
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> image = image_with_sites(c.sites);
    if (c.start_override != 0) {
      std::memcpy(image.data() + kGuestSiteTableOffset, &c.start_override, 4);
      std::memcpy(image.data() + kGuestSiteTableOffset + 4, &c.end_override, 4);
    }
    image.resize(c.size);
    const std::vector<uint8_t> before = image;
    auto n = rewrite_hypercalls_to_vmmcall(image, 0x1000);
    ASSERT_FALSE(n.has_value()) << c.what;
    EXPECT_EQ(n.error().code, ErrorCode::kInvalidArgument) << c.what;
    EXPECT_EQ(image, before) << c.what;
  }
}

// The real guest programs, as built for the ISO: every listed site holds VMCALL and the rewrite
// leaves no VMCALL at a listed site.
TEST(SvmHypercallSites, TheBuiltGuestProgramsCarryAValidTable) {
  for (const char* name : {"events", "xstate", "longmode", "vlapic", "ipi", "selftest", "triple"}) {
    const std::string path = std::string(LANTERN_BINARY_DIR) + "/tests/guests/lantern-guest-" + name + ".bin";
    FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) GTEST_SKIP() << "guest programs not built in this preset: " << path;
    std::vector<uint8_t> image;
    uint8_t buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof(buf), f)) > 0;) image.insert(image.end(), buf, buf + n);
    std::fclose(f);
    auto n = rewrite_hypercalls_to_vmmcall(image, 0x1000);
    ASSERT_TRUE(n.has_value()) << name << ": " << n.error().message;
    EXPECT_GT(*n, 0u) << name;
  }
}

}  // namespace
}  // namespace lantern::svm
