// Intel 82540EM (PCI 8086:100E, the e1000 that Bochs and QEMU emulate): registers, bits and the
// legacy descriptor formats.
//
// Source: "PCI/PCI-X Family of Gigabit Ethernet Controllers Software Developer's Manual"
// (Intel 8254x SDM, 317453). Register offsets are from its table 13-2 (register summary);
// each bit's subsection of chapter 13 is cited beside it. Descriptors: 3.2.3 (receive) and
// 3.3.3 (legacy transmit). All registers are 32 bits wide and little-endian.
#pragma once

#include <cstddef>
#include <cstdint>

#include "net/mmio.h"

namespace lantern::net::e1000 {

inline constexpr uint16_t kVendorIntel = 0x8086;
inline constexpr uint16_t kDevice82540EM = 0x100E;
inline constexpr uint32_t kRegisterWindowBytes = 128 * 1024;  // BAR0: 128 KiB memory (5.1)

enum class Reg : uint32_t {
  kCtrl = 0x0000,     // Device Control, 13.4.1
  kStatus = 0x0008,   // Device Status, 13.4.2
  kEecd = 0x0010,     // EEPROM/Flash Control, 13.4.3
  kEerd = 0x0014,     // EEPROM Read, 13.4.4
  kCtrlExt = 0x0018,  // Extended Device Control, 13.4.6
  kMdic = 0x0020,     // MDI Control, 13.4.7
  kIcr = 0x00C0,      // Interrupt Cause Read (read clears), 13.4.17
  kItr = 0x00C4,      // Interrupt Throttling, 13.4.18
  kIcs = 0x00C8,      // Interrupt Cause Set, 13.4.19
  kIms = 0x00D0,      // Interrupt Mask Set/Read, 13.4.20
  kImc = 0x00D8,      // Interrupt Mask Clear, 13.4.21
  kRctl = 0x0100,     // Receive Control, 13.4.22
  kTctl = 0x0400,     // Transmit Control, 13.4.33
  kTipg = 0x0410,     // Transmit IPG, 13.4.34
  kRdbal = 0x2800,    // Receive Descriptor Base Low, 13.4.25
  kRdbah = 0x2804,    // Receive Descriptor Base High, 13.4.26
  kRdlen = 0x2808,    // Receive Descriptor Length, 13.4.27
  kRdh = 0x2810,      // Receive Descriptor Head, 13.4.28
  kRdt = 0x2818,      // Receive Descriptor Tail, 13.4.29
  kRdtr = 0x2820,     // Receive Delay Timer, 13.4.30
  kTdbal = 0x3800,    // Transmit Descriptor Base Low, 13.4.36
  kTdbah = 0x3804,    // Transmit Descriptor Base High, 13.4.37
  kTdlen = 0x3808,    // Transmit Descriptor Length, 13.4.38
  kTdh = 0x3810,      // Transmit Descriptor Head, 13.4.39
  kTdt = 0x3818,      // Transmit Descriptor Tail, 13.4.40
  kTidv = 0x3820,     // Transmit Interrupt Delay Value, 13.4.41
  kMta = 0x5200,      // Multicast Table Array, 128 dwords 0x5200..0x53FC, 13.4.47
  kRal0 = 0x5400,     // Receive Address Low (entry 0), 13.4.48
  kRah0 = 0x5404,     // Receive Address High (entry 0), 13.4.48
};

inline constexpr uint32_t kMtaEntries = 128;  // 13.4.47: 4096 bits

// CTRL, 13.4.1.
namespace ctrl {
inline constexpr uint32_t kFd = 1u << 0;        // full duplex
inline constexpr uint32_t kLrst = 1u << 3;      // link reset
inline constexpr uint32_t kAsde = 1u << 5;      // auto-speed detection enable
inline constexpr uint32_t kSlu = 1u << 6;       // set link up
inline constexpr uint32_t kIlos = 1u << 7;      // invert loss-of-signal
inline constexpr uint32_t kFrcspd = 1u << 11;   // force speed
inline constexpr uint32_t kFrcdplx = 1u << 12;  // force duplex
inline constexpr uint32_t kRst = 1u << 26;      // device reset (self-clearing)
inline constexpr uint32_t kVme = 1u << 30;      // VLAN mode enable
inline constexpr uint32_t kPhyRst = 1u << 31;   // PHY reset
}  // namespace ctrl

// STATUS, 13.4.2.
namespace status {
inline constexpr uint32_t kFd = 1u << 0;  // full duplex
inline constexpr uint32_t kLu = 1u << 1;  // link up
inline constexpr uint32_t kTxoff = 1u << 4;
inline constexpr uint32_t kSpeedShift = 6;  // bits 7:6: 00 10, 01 100, 1x 1000 Mb/s
inline constexpr uint32_t kSpeedMask = 0x3u << 6;
}  // namespace status

// EERD, 13.4.4 (82540EM layout; 82541/82547 differ: DONE bit 1, ADDR 15:2).
namespace eerd {
inline constexpr uint32_t kStart = 1u << 0;
inline constexpr uint32_t kDone = 1u << 4;
inline constexpr uint32_t kAddrShift = 8;   // bits 15:8
inline constexpr uint32_t kDataShift = 16;  // bits 31:16
}  // namespace eerd
// EEPROM words 00h..02h hold the Ethernet address, low byte first (5.6.1).
inline constexpr uint8_t kEepromMacWord0 = 0x00;

// Interrupt cause bits, shared by ICR/ICS/IMS/IMC (13.4.17).
namespace intr {
inline constexpr uint32_t kTxdw = 1u << 0;    // transmit descriptor written back
inline constexpr uint32_t kTxqe = 1u << 1;    // transmit queue empty
inline constexpr uint32_t kLsc = 1u << 2;     // link status change
inline constexpr uint32_t kRxseq = 1u << 3;   // receive sequence error
inline constexpr uint32_t kRxdmt0 = 1u << 4;  // receive descriptor minimum threshold
inline constexpr uint32_t kRxo = 1u << 6;     // receiver overrun
inline constexpr uint32_t kRxt0 = 1u << 7;    // receiver timer interrupt
inline constexpr uint32_t kAll = 0xFFFFFFFFu;
}  // namespace intr

// RCTL, 13.4.22.
namespace rctl {
inline constexpr uint32_t kEn = 1u << 1;   // receiver enable
inline constexpr uint32_t kSbp = 1u << 2;  // store bad packets
inline constexpr uint32_t kUpe = 1u << 3;  // unicast promiscuous
inline constexpr uint32_t kMpe = 1u << 4;  // multicast promiscuous
inline constexpr uint32_t kLpe = 1u << 5;  // long packet enable
inline constexpr uint32_t kLbmMask = 0x3u << 6;
inline constexpr uint32_t kRdmtsHalf = 0x0u << 8;   // RDMTS bits 9:8: 00 = 1/2 of RDLEN
inline constexpr uint32_t kMoShift = 12;            // multicast offset, bits 13:12
inline constexpr uint32_t kBam = 1u << 15;          // broadcast accept mode
inline constexpr uint32_t kBsize2048 = 0x0u << 16;  // BSIZE bits 17:16 = 00 with BSEX = 0
inline constexpr uint32_t kBsizeMask = 0x3u << 16;
inline constexpr uint32_t kVfe = 1u << 18;    // VLAN filter enable
inline constexpr uint32_t kBsex = 1u << 25;   // buffer size extension
inline constexpr uint32_t kSecrc = 1u << 26;  // strip Ethernet CRC
}  // namespace rctl
inline constexpr uint32_t kRxBufferBytes = 2048;  // RCTL.BSIZE = 00b, BSEX = 0

// TCTL, 13.4.33.
namespace tctl {
inline constexpr uint32_t kEn = 1u << 1;           // transmit enable
inline constexpr uint32_t kPsp = 1u << 3;          // pad short packets
inline constexpr uint32_t kCtShift = 4;            // collision threshold, bits 11:4
inline constexpr uint32_t kColdShift = 12;         // collision distance, bits 21:12
inline constexpr uint32_t kRtlc = 1u << 24;        // re-transmit on late collision
inline constexpr uint32_t kCtRecommended = 0x0F;   // 13.4.33: recommended 0Fh
inline constexpr uint32_t kColdFullDuplex = 0x40;  // 13.4.33: 40h for full duplex
}  // namespace tctl

// TIPG, 13.4.34: IPGT bits 9:0, IPGR1 bits 19:10, IPGR2 bits 29:20; recommended values for
// the 82540EM on copper: IPGT 10, IPGR1 8, IPGR2 6 (IEEE 802.3 inter-packet gap).
namespace tipg {
inline constexpr uint32_t kIpgtShift = 0;
inline constexpr uint32_t kIpgr1Shift = 10;
inline constexpr uint32_t kIpgr2Shift = 20;
inline constexpr uint32_t kRecommended = (10u << kIpgtShift) | (8u << kIpgr1Shift) | (6u << kIpgr2Shift);
}  // namespace tipg

// RAH, 13.4.48: bits 15:0 address bytes 5:4, bit 31 Address Valid.
inline constexpr uint32_t kRahAddressValid = 1u << 31;

// Ring geometry: RDLEN/TDLEN must be a multiple of 128 bytes, i.e. of 8 descriptors
// (13.4.27, 13.4.38); the base must be 16-byte aligned (13.4.25, 13.4.36).
inline constexpr uint16_t kRingGranule = 8;
inline constexpr size_t kRingAlignment = 128;  // 16 is required; 128 keeps a ring in whole lines

// Receive descriptor, 3.2.3 (table 3-1).
struct RxDescriptor {
  uint64_t buffer_address;
  uint16_t length;    // bytes written into the buffer (CRC stripped when RCTL.SECRC)
  uint16_t checksum;  // packet checksum
  uint8_t status;
  uint8_t errors;
  uint16_t special;  // VLAN tag
};
static_assert(sizeof(RxDescriptor) == 16, "8254x SDM 3.2.3: receive descriptors are 16 bytes");
static_assert(offsetof(RxDescriptor, status) == 12 && offsetof(RxDescriptor, errors) == 13);

// RX descriptor status (3.2.3.1, table 3-2) and errors (3.2.3.2, table 3-3).
namespace rx_status {
inline constexpr uint8_t kDd = 1u << 0;    // descriptor done
inline constexpr uint8_t kEop = 1u << 1;   // end of packet
inline constexpr uint8_t kIxsm = 1u << 2;  // ignore checksum indication
inline constexpr uint8_t kVp = 1u << 3;    // 802.1Q packet
inline constexpr uint8_t kTcpcs = 1u << 5;
inline constexpr uint8_t kIpcs = 1u << 6;
inline constexpr uint8_t kPif = 1u << 7;  // passed in-exact filter
}  // namespace rx_status
namespace rx_errors {
inline constexpr uint8_t kCe = 1u << 0;    // CRC or alignment error
inline constexpr uint8_t kSe = 1u << 1;    // symbol error
inline constexpr uint8_t kSeq = 1u << 2;   // sequence error
inline constexpr uint8_t kCxe = 1u << 4;   // carrier extension error
inline constexpr uint8_t kTcpe = 1u << 5;  // TCP/UDP checksum error (offload only)
inline constexpr uint8_t kIpe = 1u << 6;   // IP checksum error (offload only)
inline constexpr uint8_t kRxe = 1u << 7;   // RX data error
// Errors that make the frame itself bad (checksum-offload bits are not used by this driver).
inline constexpr uint8_t kFrameErrors = kCe | kSe | kSeq | kCxe | kRxe;
}  // namespace rx_errors

// Legacy transmit descriptor, 3.3.3 (table 3-8).
struct TxDescriptor {
  uint64_t buffer_address;
  uint16_t length;
  uint8_t cso;  // checksum offset
  uint8_t command;
  uint8_t status;
  uint8_t css;  // checksum start
  uint16_t special;
};
static_assert(sizeof(TxDescriptor) == 16, "8254x SDM 3.3.3: transmit descriptors are 16 bytes");
static_assert(offsetof(TxDescriptor, command) == 11 && offsetof(TxDescriptor, status) == 12);

// TX command (3.3.3.1, table 3-10) and status (3.3.3.2, table 3-11).
namespace tx_command {
inline constexpr uint8_t kEop = 1u << 0;   // end of packet
inline constexpr uint8_t kIfcs = 1u << 1;  // insert FCS
inline constexpr uint8_t kIc = 1u << 2;    // insert checksum
inline constexpr uint8_t kRs = 1u << 3;    // report status (sets DD when done)
inline constexpr uint8_t kDext = 1u << 5;  // extension (0 = legacy)
inline constexpr uint8_t kVle = 1u << 6;   // VLAN enable
inline constexpr uint8_t kIde = 1u << 7;   // interrupt delay enable
}  // namespace tx_command
namespace tx_status {
inline constexpr uint8_t kDd = 1u << 0;  // descriptor done
inline constexpr uint8_t kEc = 1u << 1;  // excess collisions
inline constexpr uint8_t kLc = 1u << 2;  // late collision
inline constexpr uint8_t kTu = 1u << 3;  // transmit underrun
inline constexpr uint8_t kErrors = kEc | kLc | kTu;
}  // namespace tx_status

// Typed access to the register window: every access is 32 bits (13.1).
class Registers {
 public:
  explicit Registers(MmioWindow& window) : window_(window) {}
  uint32_t read(Reg reg) { return window_.read32(static_cast<uint32_t>(reg)); }
  void write(Reg reg, uint32_t value) { window_.write32(static_cast<uint32_t>(reg), value); }
  // Array registers (MTA[i], ...): `reg` plus 4 * index.
  uint32_t read_at(Reg reg, uint32_t index) { return window_.read32(static_cast<uint32_t>(reg) + 4 * index); }
  void write_at(Reg reg, uint32_t index, uint32_t value) {
    window_.write32(static_cast<uint32_t>(reg) + 4 * index, value);
  }
  MmioWindow& window() { return window_; }

 private:
  MmioWindow& window_;
};

// Decoded STATUS register.
struct StatusRegister {
  uint32_t raw = 0;
  bool link_up() const { return (raw & status::kLu) != 0; }
  bool full_duplex() const { return (raw & status::kFd) != 0; }
  uint32_t speed_mbps() const {
    switch ((raw & status::kSpeedMask) >> status::kSpeedShift) {
      case 0: return 10;
      case 1: return 100;
      default: return 1000;
    }
  }
};

}  // namespace lantern::net::e1000
