#include "vmx/cr_access.h"

namespace lantern::vmx {
namespace {

CrWriteResult apply(const CrWriteContext& c, uint64_t value) {
  CrWriteResult r;
  r.read_shadow = value;  // what the guest reads back for the host's bits
  r.guest_value = ((value | (c.fixed0 & ~c.guest_owned)) & (c.fixed1 | c.guest_owned)) & ~c.emulated;
  return r;
}

CrWriteResult gp(const char* reason) {
  CrWriteResult r;
  r.gp = true;
  r.reason = reason;
  return r;
}

}  // namespace

CrWriteResult evaluate_cr0_write(const CrWriteContext& context, uint64_t value) {
  if ((value >> 32) != 0) return gp("CR0 bits 63:32 are reserved");
  if ((value & kCr0PgBit) != 0 && (value & kCr0PeBit) == 0) return gp("CR0.PG without CR0.PE");
  if ((value & kCr0NwBit) != 0 && (value & kCr0CdBit) == 0) return gp("CR0.NW without CR0.CD");
  return apply(context, value);
}

CrWriteResult evaluate_cr4_write(const CrWriteContext& context, uint64_t value) {
  if ((value & context.forbidden) != 0) return gp("CR4 bit not offered to guests (VMXE/SMXE)");
  if ((value & ~(context.fixed1 | context.guest_owned)) != 0) return gp("CR4 reserved or unsupported bit");
  return apply(context, value);
}

}  // namespace lantern::vmx
