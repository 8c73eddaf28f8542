#include "net/pci/pci_capabilities.h"

namespace lantern::net::pci {

const PciCapability* PciCapabilityList::find(uint8_t id, size_t from) const {
  for (size_t i = from; i < count; ++i) {
    if (items[i].id == id) return &items[i];
  }
  return nullptr;
}

Result<PciCapabilityList> read_capabilities(PciConfigAccess& access, const PciHeader& header) {
  PciCapabilityList list;
  if (!header.has_capabilities()) return list;
  // PCI 3.0 6.7: the bottom two bits of every pointer are reserved; mask them off.
  uint8_t pointer = header.capabilities_pointer & 0xFC;
  while (pointer != 0) {
    if (pointer < kFirstCapabilityOffset) {
      return make_error(ErrorCode::kMalformed, "pci: capability pointer into the header", pointer);
    }
    if (list.count == kMaxCapabilities) {
      return make_error(ErrorCode::kMalformed, "pci: capability list loops", pointer);
    }
    uint32_t dword = access.read32(header.address, pointer);  // id, next, cap-specific
    list.items[list.count++] = PciCapability{static_cast<uint8_t>(dword), pointer};
    pointer = static_cast<uint8_t>(dword >> 8) & 0xFC;
  }
  return list;
}

// ---- MSI -------------------------------------------------------------------------------

Result<MsiCapability> decode_msi(PciConfigAccess& access, PciAddress address, uint8_t offset) {
  uint16_t control = access.read16(address, static_cast<uint16_t>(offset + 2));
  MsiCapability msi;
  msi.offset = offset;
  msi.is_64bit = (control & msi_control::kAddress64) != 0;
  msi.per_vector_masking = (control & msi_control::kPerVectorMasking) != 0;
  msi.enabled = (control & msi_control::kEnable) != 0;
  unsigned mmc = (control >> msi_control::kMultipleMessageCapableShift) & 0x7;
  if (mmc > 5) mmc = 5;  // 110b and 111b are reserved (PCI 3.0 6.8.1.3); 32 vectors at most
  msi.vectors_capable = static_cast<uint8_t>(1u << mmc);
  // Structure sizes, PCI 3.0 figure 6-9: 0x0A / 0x0E bytes, 0x14 / 0x18 with masking.
  unsigned size = msi.per_vector_masking ? (msi.is_64bit ? 0x18 : 0x14) : (msi.is_64bit ? 0x0E : 0x0A);
  if (offset < kFirstCapabilityOffset || offset + size > kConfigSpaceBytes) {
    return make_error(ErrorCode::kMalformed, "pci: MSI capability runs past config space", offset);
  }
  return msi;
}

Result<void> program_msi(PciConfigAccess& access, PciAddress address, const MsiCapability& msi,
                         uint64_t message_address, uint16_t message_data) {
  if ((message_address & 0x3) != 0) {
    return make_error(ErrorCode::kInvalidArgument, "pci: MSI address not dword aligned", message_address);
  }
  if (!msi.is_64bit && (message_address >> 32) != 0) {
    return make_error(ErrorCode::kInvalidArgument, "pci: MSI address needs 64 bits", message_address);
  }
  uint16_t control_offset = static_cast<uint16_t>(msi.offset + 2);
  uint16_t control = access.read16(address, control_offset);
  // Off while reprogramming; one vector (MME = 000b).
  control =
      static_cast<uint16_t>(control & ~(msi_control::kEnable | msi_control::kMultipleMessageEnableMask));
  access.write16(address, control_offset, control);
  access.write32(address, msi.address_offset(), static_cast<uint32_t>(message_address));
  if (msi.is_64bit) {
    access.write32(address, static_cast<uint16_t>(msi.address_offset() + 4),
                   static_cast<uint32_t>(message_address >> 32));
  }
  access.write16(address, msi.data_offset(), message_data);
  access.write16(address, control_offset, static_cast<uint16_t>(control | msi_control::kEnable));
  return ok();
}

Result<void> disable_msi(PciConfigAccess& access, PciAddress address, const MsiCapability& msi) {
  uint16_t control_offset = static_cast<uint16_t>(msi.offset + 2);
  uint16_t control = access.read16(address, control_offset);
  access.write16(address, control_offset, static_cast<uint16_t>(control & ~msi_control::kEnable));
  return ok();
}

Result<void> set_msi_vector_masked(PciConfigAccess& access, PciAddress address, const MsiCapability& msi,
                                   uint8_t vector, bool masked) {
  if (!msi.per_vector_masking) {
    return make_error(ErrorCode::kUnsupported, "pci: MSI without per-vector masking", vector);
  }
  if (vector >= msi.vectors_capable) {
    return make_error(ErrorCode::kInvalidArgument, "pci: MSI vector out of range", vector);
  }
  uint32_t mask = access.read32(address, msi.mask_offset());
  if (masked) {
    mask |= 1u << vector;
  } else {
    mask &= ~(1u << vector);
  }
  access.write32(address, msi.mask_offset(), mask);
  return ok();
}

// ---- MSI-X -----------------------------------------------------------------------------

Result<MsixCapability> decode_msix(PciConfigAccess& access, PciAddress address, uint8_t offset) {
  // PCI 3.0 figure 6-10: control at +2, Table Offset/BIR at +4, PBA Offset/BIR at +8.
  if (offset < kFirstCapabilityOffset || offset + 12u > kConfigSpaceBytes) {
    return make_error(ErrorCode::kMalformed, "pci: MSI-X capability runs past config space", offset);
  }
  uint16_t control = access.read16(address, static_cast<uint16_t>(offset + 2));
  uint32_t table = access.read32(address, static_cast<uint16_t>(offset + 4));
  uint32_t pba = access.read32(address, static_cast<uint16_t>(offset + 8));
  MsixCapability msix;
  msix.offset = offset;
  msix.table_size = static_cast<uint16_t>((control & msix_control::kTableSizeMask) + 1);
  msix.enabled = (control & msix_control::kEnable) != 0;
  msix.function_masked = (control & msix_control::kFunctionMask) != 0;
  msix.table_bar = static_cast<uint8_t>(table & kMsixBirMask);
  msix.table_offset = table & kMsixOffsetMask;
  msix.pba_bar = static_cast<uint8_t>(pba & kMsixBirMask);
  msix.pba_offset = pba & kMsixOffsetMask;
  if (msix.table_bar > 5 || msix.pba_bar > 5) {
    return make_error(ErrorCode::kMalformed, "pci: MSI-X BIR names a reserved BAR", offset);
  }
  return msix;
}

void set_msix_control(PciConfigAccess& access, PciAddress address, const MsixCapability& msix, bool enable,
                      bool function_mask) {
  uint16_t control_offset = static_cast<uint16_t>(msix.offset + 2);
  uint16_t control = access.read16(address, control_offset);
  control = static_cast<uint16_t>(control & ~(msix_control::kEnable | msix_control::kFunctionMask));
  if (enable) control |= msix_control::kEnable;
  if (function_mask) control |= msix_control::kFunctionMask;
  access.write16(address, control_offset, control);
}

Result<void> program_msix_entry(MmioWindow& table_bar_window, const MsixCapability& msix, uint16_t index,
                                uint64_t message_address, uint32_t message_data, bool masked) {
  if (index >= msix.table_size) {
    return make_error(ErrorCode::kInvalidArgument, "pci: MSI-X entry out of range", index);
  }
  uint64_t entry64 =
      static_cast<uint64_t>(msix.table_offset) + static_cast<uint64_t>(index) * kMsixEntryBytes;
  if (entry64 + kMsixEntryBytes > 0xFFFFFFFFull) {
    return make_error(ErrorCode::kMalformed, "pci: MSI-X table beyond a 32-bit window", entry64);
  }
  uint32_t entry = static_cast<uint32_t>(entry64);
  uint32_t control_offset = entry + kMsixEntryVectorControl;
  uint32_t vector_control = table_bar_window.read32(control_offset);
  table_bar_window.write32(control_offset, vector_control | kMsixVectorMasked);
  table_bar_window.write32(entry + kMsixEntryAddressLow, static_cast<uint32_t>(message_address));
  table_bar_window.write32(entry + kMsixEntryAddressHigh, static_cast<uint32_t>(message_address >> 32));
  table_bar_window.write32(entry + kMsixEntryData, message_data);
  vector_control = masked ? (vector_control | kMsixVectorMasked) : (vector_control & ~kMsixVectorMasked);
  table_bar_window.write32(control_offset, vector_control);
  return ok();
}

// ---- virtio ----------------------------------------------------------------------------

Result<VirtioPciLayout> read_virtio_layout(PciConfigAccess& access, PciAddress address,
                                           const PciCapabilityList& caps) {
  VirtioPciLayout layout;
  for (const PciCapability& cap : caps) {
    if (cap.id != cap_id::kVendorSpecific) continue;
    // The capability must fit in config space before any field is trusted.
    if (cap.offset + unsigned{virtio_cap::kMinLen} > kConfigSpaceBytes) continue;
    uint32_t head = access.read32(address, cap.offset);  // vndr, next, cap_len, cfg_type
    uint8_t cap_len = static_cast<uint8_t>(head >> 16);
    uint8_t cfg_type = static_cast<uint8_t>(head >> 24);
    uint8_t bar = access.read8(address, static_cast<uint16_t>(cap.offset + virtio_cap::kBar));
    if (cap_len < virtio_cap::kMinLen || bar > 5) continue;  // 4.1.4.1: ignore reserved bar
    VirtioPciRegion region;
    region.bar = bar;
    region.cap_offset = cap.offset;
    region.offset = access.read32(address, static_cast<uint16_t>(cap.offset + virtio_cap::kOffset));
    region.length = access.read32(address, static_cast<uint16_t>(cap.offset + virtio_cap::kLength));
    if (static_cast<uint64_t>(region.offset) + region.length > 0xFFFFFFFFull) continue;
    std::optional<VirtioPciRegion>* slot = nullptr;
    switch (cfg_type) {
      case static_cast<uint8_t>(VirtioCfgType::kCommon): slot = &layout.common; break;
      case static_cast<uint8_t>(VirtioCfgType::kNotify): slot = &layout.notify; break;
      case static_cast<uint8_t>(VirtioCfgType::kIsr): slot = &layout.isr; break;
      case static_cast<uint8_t>(VirtioCfgType::kDevice): slot = &layout.device; break;
      case static_cast<uint8_t>(VirtioCfgType::kPci): slot = &layout.pci; break;
      default: continue;  // 4.1.4.1: ignore reserved cfg_type values
    }
    if (slot->has_value()) continue;  // keep the first of each type
    region.type = static_cast<VirtioCfgType>(cfg_type);
    if (region.type == VirtioCfgType::kNotify) {
      if (cap_len < virtio_cap::kNotifyMinLen ||
          cap.offset + unsigned{virtio_cap::kNotifyMinLen} > kConfigSpaceBytes) {
        continue;
      }
      region.notify_off_multiplier =
          access.read32(address, static_cast<uint16_t>(cap.offset + virtio_cap::kNotifyOffMultiplier));
    }
    *slot = region;
  }
  if (!layout.common) {
    return make_error(ErrorCode::kNotFound, "virtio: no common configuration capability",
                      static_cast<uint64_t>(VirtioCfgType::kCommon));
  }
  if (!layout.notify) {
    return make_error(ErrorCode::kNotFound, "virtio: no notification capability",
                      static_cast<uint64_t>(VirtioCfgType::kNotify));
  }
  if (!layout.isr) {
    return make_error(ErrorCode::kNotFound, "virtio: no ISR capability",
                      static_cast<uint64_t>(VirtioCfgType::kIsr));
  }
  return layout;
}

}  // namespace lantern::net::pci
