#include "guest/devices/uart16550.h"

namespace lantern::guest {

void Uart16550::reset() {
  ier_ = 0;
  fcr_ = 0;
  lcr_ = 0;
  mcr_ = 0;
  scr_ = 0;
  msr_deltas_ = 0;
  overrun_ = false;
  thr_interrupt_ = false;
  rx_head_ = 0;
  rx_count_ = 0;
}

Result<void> Uart16550::push_input(std::span<const uint8_t> bytes) {
  if (bytes.size() > input_free()) {
    ++counters_.input_refused;
    return make_error(ErrorCode::kFull, "UART input buffer full", input_free());
  }
  for (uint8_t b : bytes) (void)rx_push(b);
  counters_.bytes_in += bytes.size();
  return ok();
}

bool Uart16550::rx_push(uint8_t byte) {
  if (rx_count_ == kInputCapacity) return false;
  rx_[(rx_head_ + rx_count_) % kInputCapacity] = byte;
  ++rx_count_;
  return true;
}

uint8_t Uart16550::rx_pop() {
  const uint8_t b = rx_[rx_head_];
  rx_head_ = (rx_head_ + 1) % kInputCapacity;
  --rx_count_;
  return b;
}

// Highest-priority pending source, datasheet Table 4: line status, received data, THR empty,
// modem status. Each counts only while its IER enable bit is set.
uint8_t Uart16550::interrupt_id() const {
  if ((ier_ & kIerLineStatus) && overrun_) return kIirLineStatus;
  if ((ier_ & kIerRxData) && rx_count_ > 0) return kIirRxData;
  if ((ier_ & kIerThrEmpty) && thr_interrupt_) return kIirThrEmpty;
  if ((ier_ & kIerModemStatus) && msr_deltas_ != 0) return kIirModemStatus;
  return kIirNoInterrupt;
}

uint8_t Uart16550::line_status() const {
  uint8_t lsr = kLsrThrEmpty | kLsrTransmitterEmpty;  // transmission is instantaneous
  if (rx_count_ > 0) lsr |= kLsrDataReady;
  if (overrun_) lsr |= kLsrOverrun;
  return lsr;
}

// MSR bits 7:4. In loopback the modem outputs feed the inputs (datasheet 8.7, MCR bit 4):
// RTS -> CTS, DTR -> DSR, OUT1 -> RI, OUT2 -> DCD.
uint8_t Uart16550::modem_lines() const {
  if (!(mcr_ & kMcrLoop)) return kMsrConnected;
  uint8_t lines = 0;
  if (mcr_ & kMcrRts) lines |= kMsrCts;
  if (mcr_ & kMcrDtr) lines |= kMsrDsr;
  if (mcr_ & kMcrOut1) lines |= kMsrRi;
  if (mcr_ & kMcrOut2) lines |= kMsrDcd;
  return lines;
}

void Uart16550::set_modem_control(uint8_t mcr) {
  const uint8_t before = modem_lines();
  mcr_ = mcr & kMcrMask;
  const uint8_t after = modem_lines();
  const uint8_t changed = before ^ after;
  // Delta bits, datasheet 8.8: DCTS/DDSR/DDCD on any change, TERI when RI goes from 1 to 0.
  if (changed & kMsrCts) msr_deltas_ |= kMsrDeltaCts;
  if (changed & kMsrDsr) msr_deltas_ |= kMsrDeltaDsr;
  if (changed & kMsrDcd) msr_deltas_ |= kMsrDeltaDcd;
  if ((before & kMsrRi) && !(after & kMsrRi)) msr_deltas_ |= kMsrTrailingRi;
}

void Uart16550::transmit(uint8_t byte) {
  if (mcr_ & kMcrLoop) {
    // Loopback: the transmitter output is wired to the receiver input (datasheet 8.7); a byte
    // that finds the receive buffer full is an overrun (LSR bit 1).
    if (!rx_push(byte)) overrun_ = true;
  } else {
    ++counters_.bytes_out;
    if (sink_ != nullptr) sink_(sink_context_, byte);
  }
  // The THR is empty again at once, which is a new THR-empty interrupt (Table 4).
  thr_interrupt_ = true;
}

uint32_t Uart16550::port_read(uint16_t port, uint8_t width) {
  // A wider access reads consecutive registers, as the ISA bus splits it into byte cycles.
  uint32_t value = 0;
  for (uint8_t i = 0; i < width; ++i) {
    const uint32_t offset = uint32_t{port} + i - base_;
    uint8_t b = 0xff;  // past the last register: nothing decodes it
    switch (offset) {
      case kRbrThr:
        if (lcr_ & kLcrDlab) {
          b = static_cast<uint8_t>(divisor_);
        } else if (rx_count_ > 0) {
          b = rx_pop();
          ++counters_.bytes_read;
        } else {
          b = 0;
        }
        break;
      case kIer: b = (lcr_ & kLcrDlab) ? static_cast<uint8_t>(divisor_ >> 8) : ier_; break;
      case kIirFcr: {
        const uint8_t id = interrupt_id();
        // Reading the IIR while it shows THR empty clears that interrupt (Table 4).
        if (id == kIirThrEmpty) thr_interrupt_ = false;
        b = static_cast<uint8_t>(id | ((fcr_ & kFcrEnable) ? kIirFifosEnabled : 0));
        break;
      }
      case kLcr: b = lcr_; break;
      case kMcr: b = mcr_; break;
      case kLsr:
        b = line_status();
        overrun_ = false;  // the error bits clear when the LSR is read (datasheet 8.4)
        break;
      case kMsr:
        b = static_cast<uint8_t>(modem_lines() | msr_deltas_);
        msr_deltas_ = 0;  // the delta bits clear when the MSR is read (datasheet 8.8)
        break;
      case kScr: b = scr_; break;
      default: break;
    }
    value |= uint32_t{b} << (8 * i);
  }
  return value;
}

void Uart16550::port_write(uint16_t port, uint8_t width, uint32_t value) {
  for (uint8_t i = 0; i < width; ++i) {
    const uint32_t offset = uint32_t{port} + i - base_;
    const uint8_t b = static_cast<uint8_t>(value >> (8 * i));
    switch (offset) {
      case kRbrThr:
        if (lcr_ & kLcrDlab)
          divisor_ = static_cast<uint16_t>((divisor_ & 0xff00) | b);
        else
          transmit(b);
        break;
      case kIer:
        if (lcr_ & kLcrDlab) {
          divisor_ = static_cast<uint16_t>((divisor_ & 0x00ff) | (uint16_t{b} << 8));
        } else {
          const uint8_t enabled_now = static_cast<uint8_t>(b & ~ier_);
          ier_ = b & kIerMask;
          // Enabling ETBEI while the THR is empty raises the THR-empty interrupt at once (what
          // QEMU does, and what Linux's 8250 driver tests for at startup).
          if (enabled_now & kIerThrEmpty) thr_interrupt_ = true;
          if (!(ier_ & kIerThrEmpty)) thr_interrupt_ = false;
        }
        break;
      case kIirFcr: {
        // Changing FCR bit 0 clears both FIFOs (datasheet 8.4, FCR bit 0).
        const bool toggled = ((fcr_ ^ b) & kFcrEnable) != 0;
        if ((b & kFcrClearRx) || toggled) {
          counters_.input_cleared += rx_count_;
          rx_head_ = 0;
          rx_count_ = 0;
        }
        fcr_ = b & kFcrStoredMask;
        // Clearing the transmit FIFO leaves the THR empty, which re-arms the THR-empty
        // interrupt while ETBEI is set (QEMU's serial model does the same on FCR bit 2).
        if ((b & kFcrClearTx) && (ier_ & kIerThrEmpty)) thr_interrupt_ = true;
        break;
      }
      case kLcr: lcr_ = b; break;
      case kMcr: set_modem_control(b); break;
      case kLsr: break;  // read-only in this model (factory test writes are ignored)
      case kMsr: break;  // read-only
      case kScr: scr_ = b; break;
      default: break;
    }
  }
}

}  // namespace lantern::guest
