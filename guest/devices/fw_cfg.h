// QEMU's firmware configuration device (fw_cfg), legacy I/O-port interface only, as a multiboot
// test kernel (kvm-unit-tests' lib/x86/fwcfg.c) reads it. Portable (host-tested).
//
// Facts from QEMU docs/specs/fw_cfg.rst:
//  - "Register Locations", x86: selector at 0x510 (16-bit, little-endian, write only), data at
//    0x511 (8-bit). The DMA address register (0x514) exists only when the ID item says so; here
//    it does not (ID bit 1 clear), so 0x514 is left unclaimed.
//  - "Selector (Control) Register": writing it selects an item and sets the data offset to 0.
//    Bit 14 asks for write mode, bit 15 selects an architecture-specific item.
//  - "Data Register": each read returns the byte at the offset and advances it; past the end of
//    an item, and for an item that does not exist, reads return 0. Writes are ignored (since
//    QEMU v2.4, outside the DMA interface).
//  - Items: "Signature (Key 0x0000)" reads "QEMU"; "Revision / feature bitmap (Key 0x0001)" is a
//    32-bit little-endian word with bit 0 = traditional interface, bit 1 = DMA; "File Directory
//    (Key 0x0019)" begins with a 32-bit BIG-endian count of files (0 here).
//  - Other items QEMU's x86 machines provide (hw/i386/fw_cfg.c, include/standard-headers/linux/
//    qemu_fw_cfg.h): RAM size 0x0003 (64-bit LE, bytes), CPU count 0x0005 (16-bit LE), max CPUs
//    0x000f (16-bit LE). Every other key reads as 0 (a zero-length item).
// Access widths follow QEMU's combined I/O region (hw/nvram/fw_cfg.c, fw_cfg_comb_valid): a
// 16-bit write at 0x510 selects, an 8-bit read at 0x511 reads data; any other access is
// invalid: it reads all-ones and writes nothing.
#pragma once

#include <cstdint>

#include "guest/io_bus.h"

namespace lantern::guest {

class FwCfg final : public PortDevice {
 public:
  static constexpr uint16_t kSelectorPort = 0x510;
  static constexpr uint16_t kDataPort = 0x511;
  static constexpr uint32_t kPortCount = 2;

  static constexpr uint16_t kKeySignature = 0x0000;
  static constexpr uint16_t kKeyId = 0x0001;
  static constexpr uint16_t kKeyRamSize = 0x0003;
  static constexpr uint16_t kKeyCpuCount = 0x0005;
  static constexpr uint16_t kKeyMaxCpus = 0x000f;
  static constexpr uint16_t kKeyFileDir = 0x0019;
  static constexpr uint16_t kWriteChannel = 0x4000;  // selector bit 14
  static constexpr uint32_t kIdTraditionalInterface = 1u << 0;  // "Revision / feature bitmap"

  struct Config {
    uint64_t ram_bytes = 0;
    uint16_t cpu_count = 1;
    uint16_t max_cpus = 1;
  };

  explicit FwCfg(const Config& config);

  uint16_t selector() const { return selector_; }
  void reset() {
    selector_ = kKeySignature;
    offset_ = 0;
  }
  uint32_t port_read(uint16_t port, uint8_t width) override;
  void port_write(uint16_t port, uint8_t width, uint32_t value) override;

 private:
  struct Item {
    uint16_t key;
    uint8_t length;
    uint8_t bytes[8];
  };
  static constexpr int kItemCount = 6;

  const Item* selected() const;

  Item items_[kItemCount];
  uint16_t selector_ = kKeySignature;
  uint32_t offset_ = 0;
};

}  // namespace lantern::guest
