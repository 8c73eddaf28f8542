#include "svm/vmcb_reset.h"

#include "svm/svm_capabilities.h"
#include "svm/vmcb_controls.h"

namespace lantern::svm {
namespace {

void real_mode_segment(VmcbSegment& s, uint16_t attrib) {
  s.selector = 0;
  s.attrib = attrib;
  s.limit = 0xffff;
  s.base = 0;
}

}  // namespace

void reset_vmcb_to_real_mode(Vmcb& vmcb, const VmcbStart& start) {
  VmcbControlArea& c = vmcb.control;
  c.intercept_vector_3 = intercept3::kIntr | intercept3::kNmi | intercept3::kInit | intercept3::kVintr |
                         intercept3::kCpuid | intercept3::kHlt | intercept3::kIoioProt | intercept3::kMsrProt |
                         intercept3::kShutdown;
  c.intercept_vector_4 = intercept4::kSvmInstructions | intercept4::kVmmcall | start.extra_intercept_vector_4;
  c.iopm_base_pa = start.iopm_pa;
  c.msrpm_base_pa = start.msrpm_pa;
  c.guest_asid = start.asid;
  c.tlb_control = kTlbControlFlushAll;
  c.virtual_interrupt_control = vintr::kMasking;
  c.np_enable = kNpEnable;
  c.n_cr3 = start.n_cr3;
  c.vmcb_clean_bits = 0;  // 0 means "reload everything" (APM 15.15.3); QEMU ignores clean bits

  VmcbSaveArea& s = vmcb.save;
  real_mode_segment(s.cs, kRealModeCodeAttrib);
  for (VmcbSegment* seg : {&s.es, &s.ss, &s.ds, &s.fs, &s.gs}) real_mode_segment(*seg, kRealModeDataAttrib);
  real_mode_segment(s.gdtr, 0);
  real_mode_segment(s.idtr, 0);
  real_mode_segment(s.ldtr, kLdtAttrib);
  real_mode_segment(s.tr, kBusyTssAttrib);
  s.cpl = 0;
  s.efer = kEferSvme;
  s.cr0 = kResetCr0;
  s.rflags = kResetRflags;
  s.rip = start.rip;
  s.rsp = start.rsp;
  s.dr6 = kResetDr6;
  s.dr7 = kResetDr7;
  s.g_pat = kPowerOnPat;
}

}  // namespace lantern::svm
