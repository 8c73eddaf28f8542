// A 16550A UART as QEMU's `serial` device presents it at COM1 (0x3f8, IRQ 4): the registers a
// polling driver and Linux's 8250 driver use. Portable (host-tested); not thread-safe — the
// platform's owner serializes every access (vCPU exits and console input alike).
//
// Register map: PC16550D datasheet (National Semiconductor, 1995), Table 2 "Register Summary";
// offsets from the base port, DLAB = LCR bit 7:
//   +0 RBR (read) / THR (write), or DLL when DLAB=1      +4 MCR
//   +1 IER, or DLM when DLAB=1                           +5 LSR
//   +2 IIR (read) / FCR (write)                          +6 MSR
//   +3 LCR                                               +7 SCR
// Transmission is instantaneous: a THR write goes straight to the output sink, so the
// transmitter is always empty (LSR THRE and TEMT read 1). Received bytes come from a bounded
// buffer the console fills (push_input); the guest reads them one by one through RBR.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "guest/io_bus.h"
#include "kernel/lib/result.h"

namespace lantern::guest {

class Uart16550 final : public PortDevice {
 public:
  static constexpr uint16_t kCom1Base = 0x3f8;
  static constexpr uint8_t kCom1Irq = 4;  // the ISA IRQ of COM1 on a PC
  static constexpr uint32_t kPortCount = 8;
  static constexpr size_t kInputCapacity = 4096;

  // Register offsets (Table 2).
  static constexpr uint16_t kRbrThr = 0, kIer = 1, kIirFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5,
                            kMsr = 6, kScr = 7;

  // IER bits (datasheet 8.5 "Interrupt Enable Register").
  static constexpr uint8_t kIerRxData = 1u << 0;      // ERBFI: received data available
  static constexpr uint8_t kIerThrEmpty = 1u << 1;    // ETBEI: THR empty
  static constexpr uint8_t kIerLineStatus = 1u << 2;  // ELSI: receiver line status
  static constexpr uint8_t kIerModemStatus = 1u << 3; // EDSSI: modem status
  static constexpr uint8_t kIerMask = 0x0f;           // bits 4-7 are always 0

  // IIR (datasheet 8.6, Table 4 "Interrupt Control Functions"): bit 0 = 1 when nothing is
  // pending; bits 3:1 identify the highest-priority pending source; bits 7:6 are set when the
  // FIFOs are enabled (FCR bit 0).
  static constexpr uint8_t kIirNoInterrupt = 0x01;
  static constexpr uint8_t kIirLineStatus = 0x06;   // priority 1 (highest)
  static constexpr uint8_t kIirRxData = 0x04;       // priority 2
  static constexpr uint8_t kIirThrEmpty = 0x02;     // priority 3
  static constexpr uint8_t kIirModemStatus = 0x00;  // priority 4
  static constexpr uint8_t kIirFifosEnabled = 0xc0;

  // FCR bits (datasheet 8.4 "FIFO Control Register").
  static constexpr uint8_t kFcrEnable = 1u << 0;
  static constexpr uint8_t kFcrClearRx = 1u << 1;
  static constexpr uint8_t kFcrClearTx = 1u << 2;
  static constexpr uint8_t kFcrStoredMask = 0xc9;  // enable, DMA mode, RX trigger level

  // LCR bit 7 (datasheet 8.3 "Line Control Register"): divisor latch access.
  static constexpr uint8_t kLcrDlab = 1u << 7;

  // MCR bits (datasheet 8.7 "Modem Control Register"); bits 5-7 are always 0.
  static constexpr uint8_t kMcrDtr = 1u << 0, kMcrRts = 1u << 1, kMcrOut1 = 1u << 2,
                           kMcrOut2 = 1u << 3, kMcrLoop = 1u << 4, kMcrMask = 0x1f;

  // LSR bits (datasheet 8.4 "Line Status Register").
  static constexpr uint8_t kLsrDataReady = 1u << 0, kLsrOverrun = 1u << 1,
                           kLsrThrEmpty = 1u << 5, kLsrTransmitterEmpty = 1u << 6;

  // MSR bits (datasheet 8.8 "Modem Status Register"): deltas in 3:0, lines in 7:4.
  static constexpr uint8_t kMsrDeltaCts = 1u << 0, kMsrDeltaDsr = 1u << 1,
                           kMsrTrailingRi = 1u << 2, kMsrDeltaDcd = 1u << 3, kMsrCts = 1u << 4,
                           kMsrDsr = 1u << 5, kMsrRi = 1u << 6, kMsrDcd = 1u << 7;
  // Outside loopback the lines read as QEMU's connected serial port reports them: DCD, DSR, CTS.
  static constexpr uint8_t kMsrConnected = kMsrDcd | kMsrDsr | kMsrCts;

  // Called once per byte the guest transmits (outside loopback).
  using OutputSink = void (*)(void* context, uint8_t byte);

  explicit Uart16550(uint16_t base = kCom1Base) : base_(base) { reset(); }

  uint16_t base() const { return base_; }
  void set_output_sink(OutputSink sink, void* context) {
    sink_ = sink;
    sink_context_ = context;
  }

  // Power-on state (datasheet Table 5 "UART Reset Configuration"): IER, IIR (=0x01), FCR, LCR,
  // MCR, LSR (=0x60), MSR deltas zero. The receive buffer is emptied; counters are kept.
  void reset();

  // Console input: all of `bytes` is queued, or none of it (kFull) when it does not fit.
  Result<void> push_input(std::span<const uint8_t> bytes);
  size_t input_pending() const { return rx_count_; }
  size_t input_free() const { return kInputCapacity - rx_count_; }

  // Level of the UART's interrupt output (QEMU's model: asserted while IIR shows a pending
  // interrupt; MCR OUT2 does not gate it). The IOAPIC wiring samples this after each access.
  bool irq_asserted() const { return (interrupt_id() & kIirNoInterrupt) == 0; }

  // Divisor latch (DLM:DLL); the baud rate is 115200 / divisor (1.8432 MHz clock / 16).
  uint16_t divisor() const { return divisor_; }
  uint8_t line_control() const { return lcr_; }

  struct Counters {
    uint64_t bytes_out = 0;       // bytes the guest transmitted to the sink
    uint64_t bytes_in = 0;        // bytes the console queued as input
    uint64_t bytes_read = 0;      // bytes the guest read from RBR
    uint64_t input_refused = 0;   // push_input calls refused with kFull
    uint64_t input_cleared = 0;   // queued bytes the guest discarded through FCR
  };
  const Counters& counters() const { return counters_; }

  uint32_t port_read(uint16_t port, uint8_t width) override;
  void port_write(uint16_t port, uint8_t width, uint32_t value) override;

 private:
  uint8_t interrupt_id() const;
  uint8_t line_status() const;
  uint8_t modem_lines() const;
  void set_modem_control(uint8_t mcr);
  void transmit(uint8_t byte);
  bool rx_push(uint8_t byte);
  uint8_t rx_pop();

  uint16_t base_;
  OutputSink sink_ = nullptr;
  void* sink_context_ = nullptr;

  uint8_t ier_ = 0;
  uint8_t fcr_ = 0;
  uint8_t lcr_ = 0;
  uint8_t mcr_ = 0;
  uint8_t scr_ = 0;
  uint8_t msr_deltas_ = 0;
  uint16_t divisor_ = 0;
  bool overrun_ = false;
  bool thr_interrupt_ = false;  // the THR-empty interrupt is pending (cleared by IIR read/THR write)

  uint8_t rx_[kInputCapacity] = {};
  size_t rx_head_ = 0;
  size_t rx_count_ = 0;
  Counters counters_;
};

}  // namespace lantern::guest
