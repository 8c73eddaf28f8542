#include "net/e1000/e1000_device.h"

namespace lantern::net::e1000 {

namespace {

void copy_bytes(uint8_t* dst, const uint8_t* src, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = src[i];
}

bool mac_usable(const MacAddress& mac) {
  bool all_zero = true;
  for (uint8_t b : mac) all_zero = all_zero && b == 0;
  // A unicast station address has the I/G bit (bit 0 of the first byte) clear (IEEE 802.3
  // 3.2.3); all ones is blank EEPROM.
  return !all_zero && (mac[0] & 1) == 0;
}

}  // namespace

Result<void> E1000Device::reset() {
  // Quiesce: receiver and transmitter off, interrupts masked (13.4.21), then global reset.
  regs_.write(Reg::kImc, intr::kAll);
  regs_.write(Reg::kRctl, 0);
  regs_.write(Reg::kTctl, 0);
  regs_.write(Reg::kCtrl, regs_.read(Reg::kCtrl) | ctrl::kRst);
  delay(1);  // 13.4.1: at least 1 us before the first access after setting RST
  uint32_t polls = 0;
  while (regs_.read(Reg::kCtrl) & ctrl::kRst) {
    if (++polls >= config_.poll_limit) {
      return make_error(ErrorCode::kTimeout, "e1000: CTRL.RST did not self-clear", polls);
    }
    delay(1);
  }
  // Reset re-enables nothing, but mask again and drain pending causes (ICR is read-to-clear).
  regs_.write(Reg::kImc, intr::kAll);
  (void)regs_.read(Reg::kIcr);
  return ok();
}

Result<uint16_t> E1000Device::read_eeprom_word(uint8_t word) {
  regs_.write(Reg::kEerd, eerd::kStart | (static_cast<uint32_t>(word) << eerd::kAddrShift));
  for (uint32_t polls = 0; polls < config_.poll_limit; ++polls) {
    uint32_t value = regs_.read(Reg::kEerd);
    if (value & eerd::kDone) return static_cast<uint16_t>(value >> eerd::kDataShift);
    delay(1);
  }
  return make_error(ErrorCode::kTimeout, "e1000: EERD.DONE never set", word);
}

Result<void> E1000Device::load_mac() {
  MacAddress mac{};
  bool from_eeprom = true;
  for (uint8_t i = 0; i < 3 && from_eeprom; ++i) {
    auto word = read_eeprom_word(static_cast<uint8_t>(kEepromMacWord0 + i));
    if (!word) {
      from_eeprom = false;
      break;
    }
    mac[2 * i] = static_cast<uint8_t>(*word);  // 5.6.1: low byte first
    mac[2 * i + 1] = static_cast<uint8_t>(*word >> 8);
  }
  if (from_eeprom && mac_usable(mac)) {
    mac_source_ = MacSource::kEeprom;
  } else {
    // RAL0/RAH0 as firmware (or the EEPROM auto-load at reset) left them (13.4.48).
    uint32_t ral = regs_.read(Reg::kRal0);
    uint32_t rah = regs_.read(Reg::kRah0);
    if ((rah & kRahAddressValid) == 0) {
      return make_error(ErrorCode::kNotFound, "e1000: no MAC in EEPROM or RAL0/RAH0", rah);
    }
    for (int i = 0; i < 4; ++i) mac[i] = static_cast<uint8_t>(ral >> (8 * i));
    mac[4] = static_cast<uint8_t>(rah);
    mac[5] = static_cast<uint8_t>(rah >> 8);
    if (!mac_usable(mac)) {
      return make_error(ErrorCode::kNotFound, "e1000: RAL0/RAH0 hold no unicast MAC", ral);
    }
    mac_source_ = MacSource::kReceiveAddress;
  }
  mac_ = mac;
  uint32_t ral = static_cast<uint32_t>(mac[0]) | static_cast<uint32_t>(mac[1]) << 8 |
                 static_cast<uint32_t>(mac[2]) << 16 | static_cast<uint32_t>(mac[3]) << 24;
  uint32_t rah = static_cast<uint32_t>(mac[4]) | static_cast<uint32_t>(mac[5]) << 8 | kRahAddressValid;
  regs_.write(Reg::kRal0, ral);
  regs_.write(Reg::kRah0, rah);
  return ok();
}

Result<void> E1000Device::allocate(uint16_t rx_count, uint16_t tx_count) {
  rx_ring_mem_ = TRY(dma_.alloc_dma(size_t{rx_count} * sizeof(RxDescriptor), kRingAlignment));
  rx_buffers_ = TRY(dma_.alloc_dma(size_t{rx_count} * kRxBufferBytes, kRxBufferBytes));
  tx_ring_mem_ = TRY(dma_.alloc_dma(size_t{tx_count} * sizeof(TxDescriptor), kRingAlignment));
  tx_buffers_ = TRY(dma_.alloc_dma(size_t{tx_count} * kTxBufferBytes, kTxBufferBytes));
  rx_desc_ = static_cast<RxDescriptor*>(rx_ring_mem_.virt);
  tx_desc_ = static_cast<TxDescriptor*>(tx_ring_mem_.virt);
  allocated_ = true;
  return ok();
}

void E1000Device::init_receive() {
  // 14.4: program the ring, give all but one descriptor to hardware, then enable.
  for (uint16_t i = 0; i < rx_.size(); ++i) {
    RxDescriptor& d = rx_desc_[i];
    d.buffer_address = rx_buffers_.phys + uint64_t{i} * kRxBufferBytes;
    d.length = 0;
    d.checksum = 0;
    d.errors = 0;
    d.special = 0;
    dma_store(&d.status, uint8_t{0});
  }
  while (!rx_.full()) (void)rx_.produce();
  dma_wmb();
  regs_.write(Reg::kRdbal, static_cast<uint32_t>(rx_ring_mem_.phys));
  regs_.write(Reg::kRdbah, static_cast<uint32_t>(rx_ring_mem_.phys >> 32));
  regs_.write(Reg::kRdlen, static_cast<uint32_t>(rx_.size()) * sizeof(RxDescriptor));
  regs_.write(Reg::kRdh, 0);
  regs_.write(Reg::kRdt, rx_.next_to_use());
  regs_.write(Reg::kRdtr, 0);
  uint32_t rctl = rctl::kEn | rctl::kBam | rctl::kSecrc | rctl::kBsize2048 | rctl::kRdmtsHalf;
  if (config_.promiscuous) rctl |= rctl::kUpe | rctl::kMpe;
  regs_.write(Reg::kRctl, rctl);
}

void E1000Device::init_transmit() {
  // 14.5: ring empty (TDH == TDT == 0), then TCTL and TIPG.
  for (uint16_t i = 0; i < tx_.size(); ++i) {
    TxDescriptor& d = tx_desc_[i];
    d.buffer_address = tx_buffers_.phys + uint64_t{i} * kTxBufferBytes;
    d.length = 0;
    d.cso = 0;
    d.command = 0;
    d.css = 0;
    d.special = 0;
    dma_store(&d.status, uint8_t{0});
  }
  dma_wmb();
  regs_.write(Reg::kTdbal, static_cast<uint32_t>(tx_ring_mem_.phys));
  regs_.write(Reg::kTdbah, static_cast<uint32_t>(tx_ring_mem_.phys >> 32));
  regs_.write(Reg::kTdlen, static_cast<uint32_t>(tx_.size()) * sizeof(TxDescriptor));
  regs_.write(Reg::kTdh, 0);
  regs_.write(Reg::kTdt, 0);
  regs_.write(Reg::kTctl, tctl::kEn | tctl::kPsp | (tctl::kCtRecommended << tctl::kCtShift) |
                              (tctl::kColdFullDuplex << tctl::kColdShift));
  regs_.write(Reg::kTipg, tipg::kRecommended);
}

Result<void> E1000Device::init(const E1000Config& config) {
  if (allocated_ && (config.rx_descriptors != rx_.size() || config.tx_descriptors != tx_.size())) {
    return make_error(ErrorCode::kInvalidState, "e1000: ring sizes fixed by the first init",
                      config.rx_descriptors);
  }
  DescriptorRing rx;
  DescriptorRing tx;
  TRY(rx.init(config.rx_descriptors));
  TRY(tx.init(config.tx_descriptors));
  config_ = config;
  if (config_.poll_limit == 0) config_.poll_limit = 1;
  initialized_ = false;
  discarding_long_frame_ = false;
  TRY(reset());

  // 14.3: link up, auto-speed detection; no forced speed/duplex, no PHY/link reset, no VLAN.
  uint32_t c = regs_.read(Reg::kCtrl);
  c |= ctrl::kSlu | ctrl::kAsde;
  c &= ~(ctrl::kLrst | ctrl::kPhyRst | ctrl::kIlos | ctrl::kFrcspd | ctrl::kFrcdplx | ctrl::kVme);
  regs_.write(Reg::kCtrl, c);

  TRY(load_mac());
  for (uint32_t i = 0; i < kMtaEntries; ++i) regs_.write_at(Reg::kMta, i, 0);  // 14.4

  if (!allocated_) TRY(allocate(config.rx_descriptors, config.tx_descriptors));
  rx_ = rx;
  tx_ = tx;
  init_receive();
  init_transmit();
  initialized_ = true;
  return ok();
}

size_t E1000Device::reclaim_transmitted() {
  if (!initialized_) return 0;
  size_t reclaimed = 0;
  while (!tx_.empty()) {
    TxDescriptor& d = tx_desc_[tx_.next_to_clean()];
    uint8_t st = dma_load(&d.status);
    if ((st & tx_status::kDd) == 0) break;  // 3.3.3.2: DD set once the descriptor is done
    if (st & tx_status::kErrors) ++counters_.tx_errors;
    (void)tx_.consume();
    ++reclaimed;
  }
  return reclaimed;
}

Result<void> E1000Device::transmit(std::span<const uint8_t> frame) {
  if (!initialized_) {
    return make_error(ErrorCode::kInvalidState, "e1000: transmit before init");
  }
  if (frame.size() < kEthernetHeaderBytes || frame.size() > kEthernetMaxFrameBytes) {
    return make_error(ErrorCode::kInvalidArgument, "e1000: frame size out of range", frame.size());
  }
  (void)reclaim_transmitted();
  if (tx_.full()) {
    ++counters_.tx_ring_full;
    return make_error(ErrorCode::kFull, "e1000: transmit ring full", tx_.in_flight());
  }
  uint16_t slot = tx_.produce();
  auto* buffer = static_cast<uint8_t*>(tx_buffers_.virt) + size_t{slot} * kTxBufferBytes;
  copy_bytes(buffer, frame.data(), frame.size());
  TxDescriptor& d = tx_desc_[slot];
  d.buffer_address = tx_buffers_.phys + uint64_t{slot} * kTxBufferBytes;
  d.length = static_cast<uint16_t>(frame.size());
  d.cso = 0;
  d.command = tx_command::kEop | tx_command::kIfcs | tx_command::kRs;
  d.css = 0;
  d.special = 0;
  dma_store(&d.status, uint8_t{0});
  dma_wmb();  // descriptor and data before the tail moves
  regs_.write(Reg::kTdt, tx_.next_to_use());
  ++counters_.tx_packets;
  counters_.tx_bytes += frame.size();
  return ok();
}

size_t E1000Device::poll_receive(FrameSink sink, size_t max_descriptors) {
  if (!initialized_) return 0;
  if (max_descriptors == 0) max_descriptors = rx_.size();
  size_t delivered = 0;
  size_t recycled = 0;
  while (recycled < max_descriptors && !rx_.empty()) {
    uint16_t slot = rx_.next_to_clean();
    RxDescriptor& d = rx_desc_[slot];
    uint8_t st = dma_load(&d.status);
    if ((st & rx_status::kDd) == 0) break;  // 3.2.3.1: the device has not written it yet
    dma_rmb();
    uint16_t length = d.length;
    uint8_t errors = d.errors;
    bool end_of_packet = (st & rx_status::kEop) != 0;
    if (discarding_long_frame_) {
      // Rest of a frame that spanned descriptors: already counted once.
      if (end_of_packet) discarding_long_frame_ = false;
    } else if (!end_of_packet) {
      // Longer than one 2048-byte buffer (only possible with RCTL.LPE): drop the whole frame.
      ++counters_.rx_oversize;
      ++counters_.rx_drops;
      discarding_long_frame_ = true;
    } else if (errors & rx_errors::kFrameErrors) {
      ++counters_.rx_errors;
    } else if (length < kEthernetHeaderBytes) {
      ++counters_.rx_runts;
      ++counters_.rx_drops;
    } else if (length > kEthernetMaxVlanFrameBytes) {
      ++counters_.rx_oversize;
      ++counters_.rx_drops;
    } else {
      const auto* buffer = static_cast<const uint8_t*>(rx_buffers_.virt) + size_t{slot} * kRxBufferBytes;
      if (sink.fn) sink(std::span<const uint8_t>(buffer, length));
      ++counters_.rx_packets;
      counters_.rx_bytes += length;
      ++delivered;
    }
    // Recycle: the slot becomes software's spare, the previous spare goes back to hardware.
    d.length = 0;
    d.errors = 0;
    d.special = 0;
    d.buffer_address = rx_buffers_.phys + uint64_t{slot} * kRxBufferBytes;
    dma_store(&d.status, uint8_t{0});
    (void)rx_.consume();
    (void)rx_.produce();
    ++recycled;
  }
  if (recycled != 0) {
    dma_wmb();
    regs_.write(Reg::kRdt, rx_.next_to_use());
  }
  return delivered;
}

}  // namespace lantern::net::e1000
