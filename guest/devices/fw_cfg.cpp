#include "guest/devices/fw_cfg.h"

namespace lantern::guest {
namespace {

template <typename T>
void store_le(uint8_t* out, T value) {
  for (unsigned i = 0; i < sizeof(T); ++i) out[i] = static_cast<uint8_t>(uint64_t{value} >> (8 * i));
}

}  // namespace

FwCfg::FwCfg(const Config& config) {
  items_[0] = Item{kKeySignature, 4, {'Q', 'E', 'M', 'U'}};
  items_[1] = Item{kKeyId, 4, {}};
  store_le<uint32_t>(items_[1].bytes, kIdTraditionalInterface);
  items_[2] = Item{kKeyRamSize, 8, {}};
  store_le<uint64_t>(items_[2].bytes, config.ram_bytes);
  items_[3] = Item{kKeyCpuCount, 2, {}};
  store_le<uint16_t>(items_[3].bytes, config.cpu_count);
  items_[4] = Item{kKeyMaxCpus, 2, {}};
  store_le<uint16_t>(items_[4].bytes, config.max_cpus);
  // An empty file directory: a big-endian count of 0 (fw_cfg.rst "File Directory").
  items_[5] = Item{kKeyFileDir, 4, {0, 0, 0, 0}};
}

const FwCfg::Item* FwCfg::selected() const {
  // Bit 14 only asks for write access: QEMU looks the item up without it (hw/nvram/fw_cfg.c,
  // FW_CFG_ENTRY_MASK). Bit 15 selects the architecture-specific table, which is empty here.
  const uint16_t key = selector_ & static_cast<uint16_t>(~kWriteChannel);
  for (const Item& item : items_) {
    if (item.key == key) return &item;
  }
  return nullptr;
}

uint32_t FwCfg::port_read(uint16_t port, uint8_t width) {
  if (port != kDataPort || width != 1) return width >= 4 ? 0xffffffffu : (1u << (8 * width)) - 1;
  const Item* item = selected();
  if (item == nullptr || offset_ >= item->length) return 0;
  return item->bytes[offset_++];
}

void FwCfg::port_write(uint16_t port, uint8_t width, uint32_t value) {
  if (port == kSelectorPort && width == 2) {
    selector_ = static_cast<uint16_t>(value);
    offset_ = 0;
  }
  // Data writes (8-bit at 0x511) are ignored, as are invalid accesses.
}

}  // namespace lantern::guest
