/* What vmx/hw/vmx_entry.S needs besides the VMCS field encodings (those come from
 * vmx/vmcs_fields.def itself) and the register offsets (guest/general_registers_layout.h):
 * VmxFastPath's offsets and the VMCALL exit reason, static_asserted in vmx/hw/vcpu.h against
 * the struct and ExitReason. Preprocessor-only: the assembler includes it. */
#pragma once

#define LANTERN_FAST_ENABLED 0
#define LANTERN_FAST_NULL_HYPERCALLS 8
#define LANTERN_FAST_HOST_RSP 16
/* Basic exit reason 18, VMCALL (SDM Vol. 3D Appendix C). */
#define LANTERN_EXIT_REASON_VMCALL 18
