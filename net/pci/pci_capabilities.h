// PCI capability list walk, MSI, MSI-X and the virtio vendor-specific capabilities.
//
// References: PCI Local Bus Specification 3.0 ("PCI 3.0") 6.7 (capability list), 6.8.1 (MSI),
// 6.8.2 (MSI-X); virtio 1.0 spec 4.1.4 (virtio structure PCI capabilities); Intel SDM Vol. 3A
// 10.11.1/10.11.2 (x86 MSI address and data formats).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "kernel/lib/result.h"
#include "net/mmio.h"
#include "net/pci/pci.h"

namespace lantern::net::pci {

// Capability IDs (PCI Code and ID Assignment Specification, 2).
namespace cap_id {
inline constexpr uint8_t kPowerManagement = 0x01;
inline constexpr uint8_t kMsi = 0x05;
inline constexpr uint8_t kVendorSpecific = 0x09;  // virtio uses this (virtio 1.0 4.1.4)
inline constexpr uint8_t kPciExpress = 0x10;
inline constexpr uint8_t kMsiX = 0x11;
}  // namespace cap_id

// ---- Capability list -------------------------------------------------------------------
// Capabilities live in the device-specific region 0x40..0xFF (PCI 3.0 6.7), dword-aligned:
// the pointer's bottom two bits are reserved and masked off. A dword per capability at least,
// so at most (256 - 64) / 4 = 48 fit: a longer walk is a loop.
inline constexpr size_t kMaxCapabilities = 48;
inline constexpr uint8_t kFirstCapabilityOffset = 0x40;

struct PciCapability {
  uint8_t id = 0;
  uint8_t offset = 0;  // in configuration space
};

struct PciCapabilityList {
  std::array<PciCapability, kMaxCapabilities> items{};
  size_t count = 0;

  const PciCapability* begin() const { return items.data(); }
  const PciCapability* end() const { return items.data() + count; }
  // The first capability with this ID at or after position `from` in the list, or nullptr.
  const PciCapability* find(uint8_t id, size_t from = 0) const;
};

// Walks the list of a function whose header was read by read_header(). Empty (not an error)
// when Status bit 4 is clear. kMalformed (detail = offending pointer) for a pointer below 0x40
// or a walk longer than 48 entries (a loop).
Result<PciCapabilityList> read_capabilities(PciConfigAccess& access, const PciHeader& header);

// ---- MSI (PCI 3.0 6.8.1) ---------------------------------------------------------------
namespace msi_control {
inline constexpr uint16_t kEnable = 1u << 0;
inline constexpr uint16_t kMultipleMessageCapableShift = 1;  // bits 3:1, log2(vectors)
inline constexpr uint16_t kMultipleMessageEnableShift = 4;   // bits 6:4
inline constexpr uint16_t kMultipleMessageEnableMask = 0x7u << 4;
inline constexpr uint16_t kAddress64 = 1u << 7;
inline constexpr uint16_t kPerVectorMasking = 1u << 8;
}  // namespace msi_control

struct MsiCapability {
  uint8_t offset = 0;
  bool is_64bit = false;
  bool per_vector_masking = false;
  bool enabled = false;
  uint8_t vectors_capable = 1;  // 1, 2, 4, ..., 32
  // Field offsets inside configuration space (depend on is_64bit; PCI 3.0 figure 6-9).
  uint16_t address_offset() const { return static_cast<uint16_t>(offset + 0x04); }
  uint16_t data_offset() const { return static_cast<uint16_t>(offset + (is_64bit ? 0x0C : 0x08)); }
  uint16_t mask_offset() const { return static_cast<uint16_t>(offset + (is_64bit ? 0x10 : 0x0C)); }
  uint16_t pending_offset() const { return static_cast<uint16_t>(offset + (is_64bit ? 0x14 : 0x10)); }
};

// kMalformed if the structure would run past configuration space.
Result<MsiCapability> decode_msi(PciConfigAccess& access, PciAddress address, uint8_t offset);

// Programs one vector (Multiple Message Enable = 0) with `message_address`/`message_data` and
// sets MSI Enable. kInvalidArgument if the address needs 64 bits the function lacks, or is not
// dword-aligned (PCI 3.0 6.8.1.4: bits 1:0 of Message Address are reserved).
Result<void> program_msi(PciConfigAccess& access, PciAddress address, const MsiCapability& msi,
                         uint64_t message_address, uint16_t message_data);
Result<void> disable_msi(PciConfigAccess& access, PciAddress address, const MsiCapability& msi);
// Sets or clears the mask bit of `vector`. kUnsupported without per-vector masking,
// kInvalidArgument for vector >= vectors_capable.
Result<void> set_msi_vector_masked(PciConfigAccess& access, PciAddress address, const MsiCapability& msi,
                                   uint8_t vector, bool masked);

// ---- MSI-X (PCI 3.0 6.8.2) -------------------------------------------------------------
namespace msix_control {
inline constexpr uint16_t kTableSizeMask = 0x7FF;  // bits 10:0, N - 1
inline constexpr uint16_t kFunctionMask = 1u << 14;
inline constexpr uint16_t kEnable = 1u << 15;
}  // namespace msix_control
inline constexpr uint32_t kMsixBirMask = 0x7;       // Table/PBA BIR, bits 2:0
inline constexpr uint32_t kMsixOffsetMask = ~0x7u;  // offset, bits 31:3 (qword aligned)
inline constexpr uint32_t kMsixEntryBytes = 16;     // PCI 3.0 figure 6-11
inline constexpr uint32_t kMsixEntryAddressLow = 0x0;
inline constexpr uint32_t kMsixEntryAddressHigh = 0x4;
inline constexpr uint32_t kMsixEntryData = 0x8;
inline constexpr uint32_t kMsixEntryVectorControl = 0xC;
inline constexpr uint32_t kMsixVectorMasked = 1u << 0;  // Vector Control bit 0

struct MsixCapability {
  uint8_t offset = 0;
  uint16_t table_size = 0;  // entries (1..2048)
  uint8_t table_bar = 0;    // BIR: BAR index 0..5
  uint32_t table_offset = 0;
  uint8_t pba_bar = 0;
  uint32_t pba_offset = 0;
  bool enabled = false;
  bool function_masked = false;
};

// kMalformed for a BIR above 5 (PCI 3.0 6.8.2.4: values 6 and 7 are reserved) or a structure
// that would run past configuration space.
Result<MsixCapability> decode_msix(PciConfigAccess& access, PciAddress address, uint8_t offset);
// Sets MSI-X Enable and Function Mask as given; other control bits are read-only.
void set_msix_control(PciConfigAccess& access, PciAddress address, const MsixCapability& msix, bool enable,
                      bool function_mask);
// Writes table entry `index` through `table_bar_window`, a window onto the whole of BAR
// `msix.table_bar` (the entry sits at table_offset + 16 * index). kInvalidArgument for
// index >= table_size. The entry is masked while it is
// rewritten (PCI 3.0 6.8.2.8), then masked or unmasked as asked.
Result<void> program_msix_entry(MmioWindow& table_bar_window, const MsixCapability& msix, uint16_t index,
                                uint64_t message_address, uint32_t message_data, bool masked);

// ---- x86 MSI messages (Intel SDM Vol. 3A 10.11) ---------------------------------------
inline constexpr uint64_t kMsiAddressBase = 0xFEE00000;  // 10.11.1: bits 31:20 = 0FEEH
// Physical destination mode, no redirection hint; Destination ID in bits 19:12.
constexpr uint64_t x86_msi_address(uint8_t apic_id) {
  return kMsiAddressBase | (static_cast<uint64_t>(apic_id) << 12);
}
// 10.11.2: vector in bits 7:0, delivery mode fixed (000b, bits 10:8), edge trigger (bit 15=0).
constexpr uint16_t x86_msi_data(uint8_t vector) {
  return vector;
}

// ---- virtio vendor capabilities (virtio 1.0 spec 4.1.4) ------------------------------
enum class VirtioCfgType : uint8_t {
  kCommon = 1,  // VIRTIO_PCI_CAP_COMMON_CFG
  kNotify = 2,  // VIRTIO_PCI_CAP_NOTIFY_CFG
  kIsr = 3,     // VIRTIO_PCI_CAP_ISR_CFG
  kDevice = 4,  // VIRTIO_PCI_CAP_DEVICE_CFG
  kPci = 5,     // VIRTIO_PCI_CAP_PCI_CFG
};

// struct virtio_pci_cap field offsets (4.1.4): cap_vndr, cap_next, cap_len, cfg_type, bar,
// padding[3], offset (le32), length (le32); the notify variant appends
// notify_off_multiplier (le32, 4.1.4.4).
namespace virtio_cap {
inline constexpr uint8_t kCapLen = 2;
inline constexpr uint8_t kCfgType = 3;
inline constexpr uint8_t kBar = 4;
inline constexpr uint8_t kOffset = 8;
inline constexpr uint8_t kLength = 12;
inline constexpr uint8_t kNotifyOffMultiplier = 16;
inline constexpr uint8_t kMinLen = 16;
inline constexpr uint8_t kNotifyMinLen = 20;
}  // namespace virtio_cap

struct VirtioPciRegion {
  VirtioCfgType type = VirtioCfgType::kCommon;
  uint8_t bar = 0;
  uint8_t cap_offset = 0;  // where the capability sits in configuration space
  uint32_t offset = 0;     // within the BAR
  uint32_t length = 0;
  uint32_t notify_off_multiplier = 0;  // kNotify only
};

struct VirtioPciLayout {
  std::optional<VirtioPciRegion> common;
  std::optional<VirtioPciRegion> notify;
  std::optional<VirtioPciRegion> isr;
  std::optional<VirtioPciRegion> device;
  std::optional<VirtioPciRegion> pci;
};

// Collects the first usable capability of each cfg_type (4.1.4.1: the driver SHOULD use the
// first one it can). Skipped, per 4.1.4.1: unknown cfg_type, a bar value above 5, a cap_len
// too short for the structure. kNotFound (detail = missing cfg_type) when common, notify or isr
// is absent: a modern driver cannot work without them (4.1.4.1: the device MUST present them).
Result<VirtioPciLayout> read_virtio_layout(PciConfigAccess& access, PciAddress address,
                                           const PciCapabilityList& caps);

}  // namespace lantern::net::pci
