#include <gtest/gtest.h>

#include "vmx/exit_qualification.h"
#include "vmx/exit_reason.h"

namespace lantern::vmx {
namespace {

TEST(VmxDecoders, ExitReasonNames) {
  struct Case {
    uint32_t number;
    const char* name;
  } cases[] = {{0, "EXCEPTION_NMI"},
               {1, "EXTERNAL_INTERRUPT"},
               {7, "INTERRUPT_WINDOW"},
               {10, "CPUID"},
               {12, "HLT"},
               {18, "VMCALL"},
               {28, "CR_ACCESS"},
               {30, "IO_INSTRUCTION"},
               {31, "MSR_READ"},
               {32, "MSR_WRITE"},
               {33, "INVALID_GUEST_STATE"},
               {48, "EPT_VIOLATION"},
               {49, "EPT_MISCONFIG"},
               {52, "PREEMPTION_TIMER"},
               {55, "XSETBV"},
               {79, "WRMSRLIST"}};
  for (const Case& c : cases) {
    EXPECT_EQ(exit_reason_name(c.number), c.name) << c.number;
    EXPECT_TRUE(is_known_exit_reason(c.number));
  }
  for (uint32_t gap : {35u, 38u, 42u, 71u, 80u, 0xffffu, 0xffffffffu}) {
    EXPECT_EQ(exit_reason_name(gap), "UNKNOWN") << gap;
    EXPECT_FALSE(is_known_exit_reason(gap));
  }
  EXPECT_EQ(exit_reason_name(ExitReason::EPT_VIOLATION), "EPT_VIOLATION");
  EXPECT_LT(static_cast<size_t>(ExitReason::WRMSRLIST), kExitReasonTableSize);
}

TEST(VmxDecoders, ExitReasonField) {
  // VM-entry failure due to invalid guest state: bit 31 | 33.
  const ExitReasonField f = ExitReasonField::from_raw(0x80000021u);
  EXPECT_EQ(f.basic, 33);
  EXPECT_TRUE(f.entry_failure);
  EXPECT_FALSE(f.pending_mtf);
  const ExitReasonField g = ExitReasonField::from_raw((1u << 27) | (1u << 28) | 48);
  EXPECT_EQ(g.basic, 48);
  EXPECT_TRUE(g.enclave_mode);
  EXPECT_TRUE(g.pending_mtf);
  EXPECT_FALSE(g.from_vmx_root);
  EXPECT_FALSE(g.entry_failure);
}

TEST(VmxDecoders, IoQualificationTable) {
  struct Case {
    uint64_t raw;
    uint8_t size;
    bool in, string, rep, imm;
    uint16_t port;
  } cases[] = {
      // out dx, al to COM1 (0x3f8): size 0, OUT, DX operand.
      {0x03f80000, 1, false, false, false, false, 0x3f8},
      // in al, 0x60: size 0, IN, immediate.
      {0x00600048, 1, true, false, false, true, 0x60},
      // in eax, dx (port 0xcfc): size 3, IN.
      {0x0cfc000b, 4, true, false, false, false, 0xcfc},
      // rep outsw to port 0x1f0: size 1, OUT, string, rep.
      {0x01f00031, 2, false, true, true, false, 0x1f0},
      // port 0xffff, upper bits 63:32 ignored.
      {0xffffffff'ffff0008ull, 1, true, false, false, false, 0xffff},
  };
  for (const Case& c : cases) {
    auto q = IoQualification::decode(c.raw);
    ASSERT_TRUE(q.has_value()) << std::hex << c.raw;
    EXPECT_EQ(q->size_bytes, c.size) << std::hex << c.raw;
    EXPECT_EQ(q->in, c.in) << std::hex << c.raw;
    EXPECT_EQ(q->string, c.string) << std::hex << c.raw;
    EXPECT_EQ(q->rep, c.rep) << std::hex << c.raw;
    EXPECT_EQ(q->immediate_operand, c.imm) << std::hex << c.raw;
    EXPECT_EQ(q->port, c.port) << std::hex << c.raw;
  }
  // Size encodings 2 and 4-7 are not defined.
  for (uint64_t bad : {0x2ull, 0x4ull, 0x5ull, 0x6ull, 0x7ull, 0x03f8000aull}) {
    auto q = IoQualification::decode(bad);
    ASSERT_FALSE(q.has_value()) << bad;
    EXPECT_EQ(q.error().code, ErrorCode::kMalformed);
  }
}

TEST(VmxDecoders, CrAccessQualificationTable) {
  struct Case {
    uint64_t raw;
    uint8_t cr;
    CrAccessType type;
    uint8_t gpr;
    bool lmsw_mem;
    uint16_t lmsw_data;
  } cases[] = {
      {0x00000000, 0, CrAccessType::kMovToCr, 0, false, 0},    // mov cr0, rax
      {0x00000303, 3, CrAccessType::kMovToCr, 3, false, 0},    // mov cr3, rbx
      {0x00000f04, 4, CrAccessType::kMovToCr, 15, false, 0},   // mov cr4, r15
      {0x00000118, 8, CrAccessType::kMovFromCr, 1, false, 0},  // mov rcx, cr8
      {0x00000713, 3, CrAccessType::kMovFromCr, 7, false, 0},  // mov rdi, cr3
      {0x00000020, 0, CrAccessType::kClts, 0, false, 0},       // clts
      {0x00110030, 0, CrAccessType::kLmsw, 0, false, 0x0011},  // lmsw ax (PE|ET)
      {0xfffe0070, 0, CrAccessType::kLmsw, 0, true, 0xfffe},   // lmsw [mem]
  };
  for (const Case& c : cases) {
    auto q = CrAccessQualification::decode(c.raw);
    ASSERT_TRUE(q.has_value()) << std::hex << c.raw;
    EXPECT_EQ(q->cr, c.cr) << std::hex << c.raw;
    EXPECT_EQ(q->access_type, c.type) << std::hex << c.raw;
    EXPECT_EQ(q->gpr, c.gpr) << std::hex << c.raw;
    EXPECT_EQ(q->lmsw_memory_operand, c.lmsw_mem) << std::hex << c.raw;
    EXPECT_EQ(q->lmsw_source_data, c.lmsw_data) << std::hex << c.raw;
  }
  EXPECT_EQ(cr_access_type_name(CrAccessType::kMovFromCr), "mov_from_cr");
  // MOV to/from CR2, CR1, CR5-7, CR9-15 never exits.
  for (uint64_t bad : {0x2ull, 0x1ull, 0x5ull, 0x9ull, 0xfull, 0x12ull}) {
    auto q = CrAccessQualification::decode(bad);
    ASSERT_FALSE(q.has_value()) << bad;
    EXPECT_EQ(q.error().code, ErrorCode::kMalformed);
  }
}

TEST(VmxDecoders, EptViolationQualificationTable) {
  // Write to a read-only page, through a linear address translation.
  auto w = EptViolationQualification::decode(0x18a);  // bits 1, 3, 7, 8
  EXPECT_FALSE(w.read);
  EXPECT_TRUE(w.write);
  EXPECT_FALSE(w.fetch);
  EXPECT_TRUE(w.readable);
  EXPECT_FALSE(w.writable);
  EXPECT_FALSE(w.executable);
  EXPECT_TRUE(w.guest_linear_valid);
  EXPECT_TRUE(w.translated_access);
  EXPECT_FALSE(w.nmi_unblocking);

  // Instruction fetch from a not-present page, NMI unblocking.
  auto f = EptViolationQualification::decode(0x1084);  // bits 2, 7, 12
  EXPECT_TRUE(f.fetch);
  EXPECT_FALSE(f.readable || f.writable || f.executable);
  EXPECT_TRUE(f.guest_linear_valid);
  EXPECT_FALSE(f.translated_access);  // bit 8 clear: paging-structure access
  EXPECT_TRUE(f.nmi_unblocking);

  // Bit 8 means nothing without bit 7.
  auto n = EptViolationQualification::decode(0x101);
  EXPECT_TRUE(n.read);
  EXPECT_FALSE(n.guest_linear_valid);
  EXPECT_FALSE(n.translated_access);

  // Every defined bit individually.
  auto all = EptViolationQualification::decode(0x1ffff);
  EXPECT_TRUE(all.user_executable && all.user_mode_linear && all.linear_read_write &&
              all.linear_execute_disable && all.shadow_stack && all.supervisor_shadow_stack &&
              all.guest_paging_verification && all.asynchronous);
  auto none = EptViolationQualification::decode(0xfffffffffffe0000ull);  // only undefined bits
  EXPECT_FALSE(none.read || none.write || none.fetch || none.asynchronous);
}

TEST(VmxDecoders, InterruptionInfoTable) {
  struct Case {
    uint32_t raw;
    uint8_t vector;
    InterruptionType type;
    bool ec, nmi_unblock, valid;
  } cases[] = {
      {0x80000b0e, 14, InterruptionType::kHardwareException, true, false, true},  // #PF
      {0x80000202, 2, InterruptionType::kNmi, false, false, true},                // NMI
      {0x80000020, 0x20, InterruptionType::kExternalInterrupt, false, false, true},
      {0x80000603, 3, InterruptionType::kSoftwareException, false, false, true},     // INT3
      {0x80000480, 0x80, InterruptionType::kSoftwareInterrupt, false, false, true},  // INT 80h
      {0x80001306, 6, InterruptionType::kHardwareException, false, true, true},      // #UD, bit 12
      {0x00000b0d, 13, InterruptionType::kHardwareException, true, false, false},    // not valid
  };
  for (const Case& c : cases) {
    auto i = InterruptionInfo::decode_exit(c.raw);
    EXPECT_EQ(i.vector, c.vector) << std::hex << c.raw;
    EXPECT_EQ(i.type, c.type) << std::hex << c.raw;
    EXPECT_EQ(i.error_code_valid, c.ec) << std::hex << c.raw;
    EXPECT_EQ(i.nmi_unblocking, c.nmi_unblock) << std::hex << c.raw;
    EXPECT_EQ(i.valid, c.valid) << std::hex << c.raw;
  }
  // Bit 12 is undefined in IDT-vectoring information.
  EXPECT_FALSE(InterruptionInfo::decode_idt_vectoring(0x80001306).nmi_unblocking);
  EXPECT_EQ(interruption_type_name(InterruptionType::kPrivilegedSoftwareException),
            "privileged_software_exception");
}

TEST(VmxDecoders, EntryInterruptionInfoEncoder) {
  struct Case {
    InterruptionType type;
    uint8_t vector;
    bool ec;
    uint32_t expected;
  } good[] = {
      {InterruptionType::kHardwareException, 13, true, 0x80000b0d},
      {InterruptionType::kHardwareException, 6, false, 0x80000306},
      {InterruptionType::kNmi, 2, false, 0x80000202},
      {InterruptionType::kExternalInterrupt, 0xec, false, 0x800000ec},
      {InterruptionType::kSoftwareInterrupt, 0x80, false, 0x80000480},
      {InterruptionType::kOtherEvent, 0, false, 0x80000700},
  };
  for (const Case& c : good) {
    auto v = encode_entry_interruption_info(c.type, c.vector, c.ec);
    ASSERT_TRUE(v.has_value()) << static_cast<int>(c.type) << " " << int(c.vector);
    EXPECT_EQ(*v, c.expected);
    // Round trip through the exit decoder (same layout for bits 11:0 and 31).
    auto d = InterruptionInfo::decode_exit(*v);
    EXPECT_EQ(d.vector, c.vector);
    EXPECT_EQ(d.type, c.type);
    EXPECT_EQ(d.error_code_valid, c.ec);
  }
  struct Bad {
    InterruptionType type;
    uint8_t vector;
    bool ec;
  } bad[] = {
      {InterruptionType::kReserved, 0, false},
      {InterruptionType::kNmi, 3, false},
      {InterruptionType::kHardwareException, 32, false},
      {InterruptionType::kOtherEvent, 1, false},
      {InterruptionType::kExternalInterrupt, 0x30, true},
      {InterruptionType::kNmi, 2, true},
  };
  for (const Bad& b : bad) {
    auto v = encode_entry_interruption_info(b.type, b.vector, b.ec);
    ASSERT_FALSE(v.has_value()) << static_cast<int>(b.type) << " " << int(b.vector);
    EXPECT_EQ(v.error().code, ErrorCode::kInvalidArgument);
  }
}

TEST(VmxDecoders, ExitReasonKinds) {
  using guest::ExitKind;
  struct Case {
    uint32_t reason;
    ExitKind kind;
  } cases[] = {{0, ExitKind::kException},           {1, ExitKind::kInterrupt},
               {2, ExitKind::kShutdown},            {3, ExitKind::kInit},
               {4, ExitKind::kSipi},                {7, ExitKind::kInterruptWindow},
               {8, ExitKind::kNmiWindow},           {10, ExitKind::kCpuid},
               {12, ExitKind::kHlt},                {16, ExitKind::kOtherInstruction},
               {18, ExitKind::kHypercall},          {24, ExitKind::kVirtualizationInstruction},
               {28, ExitKind::kControlRegister},    {29, ExitKind::kDebugRegister},
               {30, ExitKind::kIo},                 {31, ExitKind::kMsr},
               {32, ExitKind::kMsr},                {33, ExitKind::kInvalid},
               {34, ExitKind::kInvalid},            {41, ExitKind::kInvalid},
               {44, ExitKind::kApic},               {46, ExitKind::kDescriptorTable},
               {48, ExitKind::kNestedPageFault},    {49, ExitKind::kNestedPageFault},
               {52, ExitKind::kTimer},              {55, ExitKind::kOtherInstruction},
               {74, ExitKind::kOther},              {35, ExitKind::kUnknown},
               {80, ExitKind::kUnknown},            {0xffff, ExitKind::kUnknown}};
  for (const Case& c : cases) {
    EXPECT_EQ(exit_kind(c.reason), c.kind) << c.reason << " " << exit_reason_name(c.reason);
  }
  // Every reason the table knows has a kind; only numbers outside it are kUnknown.
  for (uint32_t r = 0; r < kExitReasonTableSize; ++r) {
    EXPECT_EQ(exit_kind(r) == ExitKind::kUnknown, !is_known_exit_reason(r)) << r;
  }
}

TEST(VmxDecoders, EntryEventSlotBusyIsTheValidBitAlone) {
  EXPECT_TRUE(entry_event_slot_busy(0x80000b0e));   // #PF with error code, valid
  EXPECT_TRUE(entry_event_slot_busy(0x80000000));
  EXPECT_FALSE(entry_event_slot_busy(0x00000b0e));  // the same bits without valid: free
  EXPECT_FALSE(entry_event_slot_busy(0x7fffffff));
}

TEST(VmxDecoders, EntryInterruptionInfoOfQueuedEvents) {
  auto pf = guest::make_pending_event(guest::PendingEventType::kHardwareException, 14, 0x2);
  ASSERT_TRUE(pf.has_value());
  EXPECT_EQ(entry_interruption_info(*pf), 0x80000b0eu);
  auto nmi = guest::make_pending_event(guest::PendingEventType::kNmi, 2, std::nullopt);
  ASSERT_TRUE(nmi.has_value());
  EXPECT_EQ(entry_interruption_info(*nmi), 0x80000202u);
  auto irq = guest::make_pending_event(guest::PendingEventType::kExternalInterrupt, 0xef, std::nullopt);
  ASSERT_TRUE(irq.has_value());
  EXPECT_EQ(entry_interruption_info(*irq), 0x800000efu);
}

TEST(VmxDecoders, ReinjectionFromIdtVectoring) {
  // Not valid: nothing to re-inject.
  EXPECT_FALSE(reinjection_from_idt_vectoring(0x00000b0e, 4, 3).has_value());

  // #PF with error code, bit 12 (undefined) set: dropped; no instruction length.
  auto pf = reinjection_from_idt_vectoring(0x80001b0e, 0x6, 3);
  ASSERT_TRUE(pf.has_value());
  EXPECT_EQ(pf->entry_interruption_info, 0x80000b0eu);
  EXPECT_EQ(pf->error_code, 0x6u);
  EXPECT_EQ(pf->instruction_length, 0u);

  // External interrupt: error code ignored.
  auto irq = reinjection_from_idt_vectoring(0x80000031, 0xdead, 2);
  ASSERT_TRUE(irq.has_value());
  EXPECT_EQ(irq->entry_interruption_info, 0x80000031u);
  EXPECT_EQ(irq->error_code, 0u);

  // INT 0x80 (software interrupt) and INT3 (software exception) carry the length.
  auto soft = reinjection_from_idt_vectoring(0x80000480, 0, 2);
  ASSERT_TRUE(soft.has_value());
  EXPECT_EQ(soft->instruction_length, 2u);
  auto int3 = reinjection_from_idt_vectoring(0x80000603, 0, 1);
  ASSERT_TRUE(int3.has_value());
  EXPECT_EQ(int3->instruction_length, 1u);

  // Reserved bits 30:13 are not copied into the entry field.
  auto noisy = reinjection_from_idt_vectoring(0xfffff20e, 0, 0);
  ASSERT_TRUE(noisy.has_value());
  EXPECT_EQ(noisy->entry_interruption_info, 0x8000020eu);
}

}  // namespace
}  // namespace lantern::vmx
