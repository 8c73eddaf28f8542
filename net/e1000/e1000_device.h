// E1000Device: the 82540EM driver logic, written against the MmioWindow and DmaAllocator
// seams so host tests drive it with a fake register file and fake DMA memory.
//
// It is a polling driver: init() leaves every interrupt masked; the kernel may unmask some with
// enable_interrupts() and call poll_receive()/reclaim_transmitted() from its handler or loop.
// Single-threaded: one core owns the device (callers serialise).
//
// Sequence (Intel 8254x SDM chapter 14): stop RX/TX, mask interrupts, global reset (CTRL.RST,
// self-clearing), mask again and clear ICR (14.3 general configuration); set link up
// (CTRL.SLU, ASDE); read the MAC from EEPROM words 0..2 through EERD (5.6.1, 13.4.4), or fall
// back to RAL0/RAH0 when the EEPROM does not answer; program RAL0/RAH0 and clear the MTA;
// receive init (14.4); transmit init (14.5).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "kernel/lib/result.h"
#include "net/dma.h"
#include "net/e1000/descriptor_ring.h"
#include "net/e1000/e1000_regs.h"
#include "net/mmio.h"
#include "net/nic.h"

namespace lantern::net::e1000 {

struct E1000Config {
  // Multiple of 8 (13.4.27). More than lwIP's TCP_WND / TCP_MSS (32 segments) with headroom:
  // when the ring is full the device drops frames (QEMU's model does), and TCP then stalls in
  // retransmission timeouts (32 descriptors measured 0.93 MB/s upload, 128 about 90 MB/s).
  uint16_t rx_descriptors = 128;
  uint16_t tx_descriptors = 32;  // multiple of 8 (13.4.38)
  uint32_t poll_limit = 100000;  // register polls (reset, EERD) before kTimeout
  // Optional busy-wait, used after setting CTRL.RST (8254x SDM 13.4.1: give the reset at least
  // 1 us before polling the bit) and between EERD polls. nullptr: no wait (the emulators reset
  // synchronously).
  void (*delay_us)(uint32_t microseconds) = nullptr;
  bool promiscuous = false;  // RCTL.UPE | RCTL.MPE
};

enum class MacSource : uint8_t { kNone, kEeprom, kReceiveAddress };

class E1000Device {
 public:
  static constexpr uint32_t kTxBufferBytes = 2048;

  E1000Device(MmioWindow& registers, DmaAllocator& dma) : regs_(registers), dma_(dma) {}

  // Resets and configures the device; allocates rings and buffers on the first call only.
  // kInvalidArgument (bad ring sizes), kTimeout (reset never completed), kNotFound (no MAC in
  // EEPROM nor RAL0/RAH0), kOutOfMemory (from the DMA allocator).
  Result<void> init(const E1000Config& config = E1000Config{});

  // Copies `frame` (Ethernet header onward, no FCS: the NIC appends it, TX IFCS) into the next
  // transmit slot and hands it to the device. kInvalidState before init(); kInvalidArgument
  // for frames shorter than 14 or longer than 1514 bytes (short frames are padded by TCTL.PSP);
  // kFull (counted in tx_ring_full) when every descriptor is still in flight after reclaiming.
  Result<void> transmit(std::span<const uint8_t> frame);

  // Reclaims transmit descriptors the device marked done (DD); counts tx_errors from their
  // status. Returns how many were reclaimed.
  size_t reclaim_transmitted();

  // Hands every complete received frame to `sink`, in order, and gives the descriptors back
  // to the device (one RDT write per call). Dropped and counted instead: frames with error
  // bits (rx_errors), shorter than 14 bytes (rx_runts), longer than 1518 bytes or spanning
  // several descriptors (rx_oversize). Looks at most `max_descriptors` descriptors (0: one
  // ring's worth). Returns the number of frames delivered.
  size_t poll_receive(FrameSink sink, size_t max_descriptors = 0);
  template <typename F>
  size_t poll_receive_with(F&& on_frame, size_t max_descriptors = 0) {
    auto sink = FrameSink::from(on_frame);
    return poll_receive(sink, max_descriptors);
  }

  StatusRegister status() { return StatusRegister{regs_.read(Reg::kStatus)}; }
  bool link_up() { return status().link_up(); }  // STATUS.LU, 13.4.2

  void enable_interrupts(uint32_t mask) { regs_.write(Reg::kIms, mask); }
  void disable_interrupts() { regs_.write(Reg::kImc, intr::kAll); }
  uint32_t read_and_clear_interrupt_cause() { return regs_.read(Reg::kIcr); }  // 13.4.17

  bool initialized() const { return initialized_; }
  const MacAddress& mac() const { return mac_; }
  MacSource mac_source() const { return mac_source_; }
  const NicCounters& counters() const { return counters_; }
  const DescriptorRing& rx_ring() const { return rx_; }
  const DescriptorRing& tx_ring() const { return tx_; }
  // Bus addresses of the rings (what RDBAL/TDBAL were programmed with).
  uint64_t rx_ring_phys() const { return rx_ring_mem_.phys; }
  uint64_t tx_ring_phys() const { return tx_ring_mem_.phys; }

 private:
  Result<void> reset();
  Result<uint16_t> read_eeprom_word(uint8_t word);
  Result<void> load_mac();
  Result<void> allocate(uint16_t rx_count, uint16_t tx_count);
  void init_receive();
  void init_transmit();
  void delay(uint32_t us) {
    if (config_.delay_us) config_.delay_us(us);
  }

  Registers regs_;
  DmaAllocator& dma_;
  E1000Config config_{};
  bool initialized_ = false;
  bool allocated_ = false;
  bool discarding_long_frame_ = false;  // inside a frame that spans descriptors
  MacAddress mac_{};
  MacSource mac_source_ = MacSource::kNone;
  NicCounters counters_{};
  DescriptorRing rx_;
  DescriptorRing tx_;
  DmaBuffer rx_ring_mem_{};
  DmaBuffer rx_buffers_{};
  DmaBuffer tx_ring_mem_{};
  DmaBuffer tx_buffers_{};
  RxDescriptor* rx_desc_ = nullptr;
  TxDescriptor* tx_desc_ = nullptr;
};

}  // namespace lantern::net::e1000
