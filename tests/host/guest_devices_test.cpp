#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "guest/devices/exit_ports.h"
#include "guest/devices/fw_cfg.h"
#include "guest/devices/guest_platform.h"
#include "guest/devices/i8259.h"
#include "guest/devices/pci_config_none.h"
#include "guest/devices/uart16550.h"

namespace lantern::guest {
namespace {

constexpr uint16_t kCom1 = 0x3f8;

struct Sink {
  std::string out;
  static void put(void* ctx, uint8_t b) { static_cast<Sink*>(ctx)->out.push_back(static_cast<char>(b)); }
};

uint8_t rd(Uart16550& u, uint16_t off) { return static_cast<uint8_t>(u.port_read(kCom1 + off, 1)); }
void wr(Uart16550& u, uint16_t off, uint8_t v) { u.port_write(kCom1 + off, 1, v); }

std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(GuestUart, PollingTransmitReachesTheSinkAndLsrShowsTransmitterEmpty) {
  Uart16550 u;
  Sink sink;
  u.set_output_sink(&Sink::put, &sink);
  EXPECT_EQ(rd(u, Uart16550::kLsr), 0x60);  // THRE | TEMT, no data
  for (char c : std::string("hi\n")) {
    ASSERT_TRUE(rd(u, Uart16550::kLsr) & Uart16550::kLsrThrEmpty);
    wr(u, Uart16550::kRbrThr, static_cast<uint8_t>(c));
  }
  EXPECT_EQ(sink.out, "hi\n");
  EXPECT_EQ(u.counters().bytes_out, 3u);
  EXPECT_FALSE(u.irq_asserted());  // IER = 0
}

TEST(GuestUart, DivisorLatchScratchLcrAndIerReadBack) {
  Uart16550 u;
  wr(u, Uart16550::kLcr, 0x83);  // DLAB, 8N1
  wr(u, Uart16550::kRbrThr, 0x01);
  wr(u, Uart16550::kIer, 0x00);
  EXPECT_EQ(u.divisor(), 1);  // 115200 baud
  EXPECT_EQ(rd(u, Uart16550::kRbrThr), 0x01);
  EXPECT_EQ(rd(u, Uart16550::kIer), 0x00);
  wr(u, Uart16550::kLcr, 0x03);
  EXPECT_EQ(rd(u, Uart16550::kLcr), 0x03);
  wr(u, Uart16550::kIer, 0xff);
  EXPECT_EQ(rd(u, Uart16550::kIer), 0x0f);  // bits 4-7 always 0
  wr(u, Uart16550::kIer, 0x00);
  wr(u, Uart16550::kScr, 0xa5);
  EXPECT_EQ(rd(u, Uart16550::kScr), 0xa5);
  EXPECT_EQ(u.divisor(), 1);  // divisor untouched by DLAB=0 writes
}

TEST(GuestUart, IirShowsFifoBitsOnlyWhenFifosAreEnabled) {
  Uart16550 u;
  EXPECT_EQ(rd(u, Uart16550::kIirFcr), 0x01);
  wr(u, Uart16550::kIirFcr, 0x07);  // enable + clear both
  EXPECT_EQ(rd(u, Uart16550::kIirFcr), 0xc1);  // Linux's 8250 probe: IIR >> 6 == 3 -> 16550A
  wr(u, Uart16550::kIirFcr, 0x00);
  EXPECT_EQ(rd(u, Uart16550::kIirFcr), 0x01);
}

TEST(GuestUart, ConsoleInputIsBoundedAndRefusedWholeWhenItDoesNotFit) {
  Uart16550 u;
  std::vector<uint8_t> big(Uart16550::kInputCapacity - 2, 'x');
  ASSERT_TRUE(u.push_input(big).has_value());
  const auto refused = u.push_input(bytes_of("abc"));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kFull);
  EXPECT_EQ(u.input_pending(), Uart16550::kInputCapacity - 2);  // nothing of "abc" was taken
  EXPECT_EQ(u.counters().input_refused, 1u);
  EXPECT_TRUE(u.push_input(bytes_of("ab")).has_value());
  EXPECT_EQ(u.input_free(), 0u);
  EXPECT_EQ(u.counters().bytes_in, Uart16550::kInputCapacity);
}

TEST(GuestUart, ReceiveDataReadsInOrderWithDataReady) {
  Uart16550 u;
  ASSERT_TRUE(u.push_input(bytes_of("ok")).has_value());
  EXPECT_TRUE(rd(u, Uart16550::kLsr) & Uart16550::kLsrDataReady);
  EXPECT_EQ(rd(u, Uart16550::kRbrThr), 'o');
  EXPECT_EQ(rd(u, Uart16550::kRbrThr), 'k');
  EXPECT_FALSE(rd(u, Uart16550::kLsr) & Uart16550::kLsrDataReady);
  EXPECT_EQ(rd(u, Uart16550::kRbrThr), 0);  // empty: nothing more
  EXPECT_EQ(u.counters().bytes_read, 2u);
}

TEST(GuestUart, InterruptIdentificationFollowsPriorityAndClearRules) {
  Uart16550 u;
  wr(u, Uart16550::kIirFcr, 0x01);
  // Enabling ETBEI with the THR empty raises THR-empty at once (Linux's startup THRE test).
  wr(u, Uart16550::kIer, Uart16550::kIerThrEmpty);
  EXPECT_TRUE(u.irq_asserted());
  EXPECT_EQ(rd(u, Uart16550::kIirFcr), 0xc2);
  // Reading IIR cleared it.
  EXPECT_EQ(rd(u, Uart16550::kIirFcr), 0xc1);
  EXPECT_FALSE(u.irq_asserted());
  // A transmitted byte leaves the THR empty again: a new THR-empty interrupt.
  wr(u, Uart16550::kRbrThr, 'a');
  EXPECT_TRUE(u.irq_asserted());
  // Received data outranks THR empty.
  wr(u, Uart16550::kIer, Uart16550::kIerThrEmpty | Uart16550::kIerRxData);
  ASSERT_TRUE(u.push_input(bytes_of("z")).has_value());
  EXPECT_EQ(rd(u, Uart16550::kIirFcr), 0xc4);
  EXPECT_EQ(rd(u, Uart16550::kRbrThr), 'z');
  EXPECT_EQ(rd(u, Uart16550::kIirFcr), 0xc2);
  EXPECT_EQ(rd(u, Uart16550::kIirFcr), 0xc1);
  // Received data without ERBFI raises nothing.
  wr(u, Uart16550::kIer, 0);
  ASSERT_TRUE(u.push_input(bytes_of("y")).has_value());
  EXPECT_FALSE(u.irq_asserted());
}

TEST(GuestUart, LoopbackFeedsReceiverAndModemLinesAsLinuxProbesThem) {
  Uart16550 u;
  Sink sink;
  u.set_output_sink(&Sink::put, &sink);
  EXPECT_EQ(rd(u, Uart16550::kMsr) & 0xf0, Uart16550::kMsrConnected);
  // Linux 8250 autoconfig: MCR = LOOP | OUT2 | RTS, then MSR & 0xf0 must be 0x90 (DCD | CTS).
  wr(u, Uart16550::kMcr, 0x1a);
  EXPECT_EQ(rd(u, Uart16550::kMcr), 0x1a);
  const uint8_t msr = rd(u, Uart16550::kMsr);
  EXPECT_EQ(msr & 0xf0, 0x90);
  EXPECT_NE(msr & 0x0f, 0);  // deltas from leaving the "connected" lines
  EXPECT_EQ(rd(u, Uart16550::kMsr) & 0x0f, 0);  // reading cleared them
  wr(u, Uart16550::kRbrThr, 'L');
  EXPECT_EQ(sink.out, "");  // looped back, not transmitted
  EXPECT_EQ(rd(u, Uart16550::kRbrThr), 'L');
  // Modem status interrupt on a line change.
  wr(u, Uart16550::kIer, Uart16550::kIerModemStatus);
  wr(u, Uart16550::kMcr, 0x1b);  // DTR -> DSR changes
  EXPECT_EQ(rd(u, Uart16550::kIirFcr), 0x00);  // modem status pending
  EXPECT_EQ(rd(u, Uart16550::kMsr) & 0x0f, Uart16550::kMsrDeltaDsr);
  EXPECT_EQ(rd(u, Uart16550::kIirFcr), 0x01);
}

TEST(GuestUart, LoopbackOverrunRaisesLineStatusUntilLsrIsRead) {
  Uart16550 u;
  std::vector<uint8_t> full(Uart16550::kInputCapacity, 'f');
  ASSERT_TRUE(u.push_input(full).has_value());
  wr(u, Uart16550::kMcr, Uart16550::kMcrLoop);
  wr(u, Uart16550::kIer, Uart16550::kIerLineStatus | Uart16550::kIerRxData);
  wr(u, Uart16550::kRbrThr, 'x');
  EXPECT_EQ(rd(u, Uart16550::kIirFcr), 0x06);  // line status outranks received data
  EXPECT_TRUE(rd(u, Uart16550::kLsr) & Uart16550::kLsrOverrun);
  EXPECT_FALSE(rd(u, Uart16550::kLsr) & Uart16550::kLsrOverrun);
  EXPECT_EQ(rd(u, Uart16550::kIirFcr), 0x04);
}

TEST(GuestUart, FcrClearDiscardsQueuedInputAndCountsIt) {
  Uart16550 u;
  ASSERT_TRUE(u.push_input(bytes_of("abc")).has_value());
  wr(u, Uart16550::kIirFcr, 0x03);  // enable (a toggle) + clear RX
  EXPECT_EQ(u.input_pending(), 0u);
  EXPECT_EQ(u.counters().input_cleared, 3u);
}

TEST(GuestUart, WideAccessesCoverConsecutiveRegisters) {
  Uart16550 u;
  u.port_write(kCom1 + Uart16550::kLcr, 2, 0x0003);  // LCR = 3, MCR = 0
  u.port_write(kCom1 + Uart16550::kScr, 1, 0x5a);
  EXPECT_EQ(u.port_read(kCom1 + Uart16550::kMsr, 2), 0x5a00u | Uart16550::kMsrConnected);
  EXPECT_EQ(u.port_read(kCom1 + Uart16550::kLcr, 4), 0xb0600003u);
}

TEST(GuestExitPorts, DebugExitRecordsValueAndQemuStatusFirstWins) {
  ExitLatch latch;
  DebugExitPort port(latch);
  EXPECT_FALSE(latch.requested());
  port.port_write(0xf4, 4, 0x7);
  ASSERT_TRUE(latch.requested());
  EXPECT_EQ(latch.cause(), ExitCause::kDebugExit);
  EXPECT_EQ(latch.value(), 7u);
  EXPECT_EQ(latch.status(), 15u);
  port.port_write(0xf4, 1, 0x1);
  EXPECT_EQ(latch.value(), 7u);
  latch.reset();
  port.port_write(0xf5, 4, 0x80000000u);
  EXPECT_EQ(latch.status(), 0x100000001ull);  // no bit lost
  EXPECT_STREQ(exit_cause_name(latch.cause()), "debug_exit");
}

TEST(GuestExitPorts, ShutdownNeedsTheWholeStringInBytes) {
  ExitLatch latch;
  ShutdownPort port(latch);
  for (char c : std::string("ShutShutdow")) port.port_write(0x8900, 1, static_cast<uint8_t>(c));
  EXPECT_FALSE(latch.requested());
  port.port_write(0x8900, 2, 'n');  // a word write breaks the sequence
  port.port_write(0x8900, 1, 'n');
  EXPECT_FALSE(latch.requested());
  for (char c : std::string("xSShutdown")) port.port_write(0x8900, 1, static_cast<uint8_t>(c));
  ASSERT_TRUE(latch.requested());
  EXPECT_EQ(latch.cause(), ExitCause::kShutdownPort);
}

uint64_t fw_read(FwCfg& f, uint16_t key, int n) {
  f.port_write(FwCfg::kSelectorPort, 2, key);
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint64_t{f.port_read(FwCfg::kDataPort, 1)} << (8 * i);
  return v;
}

TEST(GuestFwCfg, ItemsAsQemuLegacyInterfaceReturnsThem) {
  FwCfg f(FwCfg::Config{128ull << 20, 2, 4});
  EXPECT_EQ(fw_read(f, 0x0000, 4), 0x554d4551u);  // "QEMU"
  EXPECT_EQ(fw_read(f, 0x0001, 4), 1u);           // traditional interface, no DMA
  EXPECT_EQ(fw_read(f, 0x0003, 8), 128ull << 20);
  EXPECT_EQ(fw_read(f, 0x0005, 2), 2u);
  EXPECT_EQ(fw_read(f, 0x000f, 2), 4u);
  EXPECT_EQ(fw_read(f, 0x0019, 4), 0u);           // empty file directory
  EXPECT_EQ(fw_read(f, 0x0011, 8), 0u);           // unknown key
  EXPECT_EQ(fw_read(f, 0x8003, 4), 0u);           // arch-local table is empty
  EXPECT_EQ(fw_read(f, 0x4005, 2), 2u);           // write-channel bit ignored for reads
  // Past the end of an item: zeros. Reselecting restarts at offset 0.
  EXPECT_EQ(fw_read(f, 0x0005, 4), 2u);
  EXPECT_EQ(fw_read(f, 0x0000, 1), 'Q');
}

TEST(GuestFwCfg, InvalidWidthsReadAllOnesAndDoNotSelect) {
  FwCfg f(FwCfg::Config{1 << 20, 1, 1});
  f.port_write(FwCfg::kSelectorPort, 2, FwCfg::kKeyCpuCount);
  f.port_write(FwCfg::kSelectorPort, 1, FwCfg::kKeySignature);  // byte write: not a select
  f.port_write(FwCfg::kDataPort, 1, 0x55);                       // data write: ignored
  EXPECT_EQ(f.selector(), FwCfg::kKeyCpuCount);
  EXPECT_EQ(f.port_read(FwCfg::kDataPort, 2), 0xffffu);
  EXPECT_EQ(f.port_read(FwCfg::kSelectorPort, 1), 0xffu);
  EXPECT_EQ(f.port_read(FwCfg::kDataPort, 1), 1u);
}

TEST(GuestI8259, InitSequenceMaskReadbackAndOcw3) {
  I8259Pair pic;
  // Linux/BIOS style remap: ICW1 0x11, ICW2 base, ICW3 cascade, ICW4 8086 mode.
  pic.port_write(0x20, 1, 0x11);
  pic.port_write(0x21, 1, 0x20);
  pic.port_write(0x21, 1, 0x04);
  pic.port_write(0x21, 1, 0x01);
  pic.port_write(0xa0, 1, 0x11);
  pic.port_write(0xa1, 1, 0x28);
  pic.port_write(0xa1, 1, 0x02);
  pic.port_write(0xa1, 1, 0x01);
  EXPECT_TRUE(pic.master().initialized());
  EXPECT_EQ(pic.master().vector_base(), 0x20);
  EXPECT_EQ(pic.slave().vector_base(), 0x28);
  EXPECT_EQ(pic.master().cascade(), 0x04);
  EXPECT_EQ(pic.port_read(0x21, 1), 0x00u);  // ICW1 cleared the mask
  pic.port_write(0x21, 1, 0xfb);              // OCW1
  pic.port_write(0xa1, 1, 0xff);
  EXPECT_EQ(pic.port_read(0x21, 1), 0xfbu);
  EXPECT_EQ(pic.port_read(0xa1, 1), 0xffu);
  pic.port_write(0x20, 1, 0x0b);  // OCW3: read ISR
  EXPECT_TRUE(pic.master().reads_isr());
  EXPECT_EQ(pic.port_read(0x20, 1), 0u);
  pic.port_write(0x20, 1, 0x0a);  // OCW3: read IRR
  EXPECT_FALSE(pic.master().reads_isr());
  pic.port_write(0x20, 1, 0x20);  // OCW2: non-specific EOI, accepted
  pic.port_write(0x20, 1, 0x0c);  // OCW3: poll
  EXPECT_EQ(pic.port_read(0x20, 1), 0u);  // no interrupt requested, ever
  EXPECT_EQ(pic.port_read(0x21, 1), 0xfbu);  // the mask survives OCW2/OCW3
  // A single-mode init without ICW4 takes only ICW2, then the next data write is the mask.
  pic.port_write(0xa0, 1, 0x12);
  pic.port_write(0xa1, 1, 0x70);
  pic.port_write(0xa1, 1, 0x3c);
  EXPECT_EQ(pic.slave().vector_base(), 0x70);
  EXPECT_EQ(pic.port_read(0xa1, 1), 0x3cu);
}

TEST(GuestPciNone, AddressReadsBackDataIsAllOnes) {
  PciConfigNone pci;
  pci.port_write(0xcf8, 4, 0x80000000u);
  EXPECT_EQ(pci.port_read(0xcf8, 4), 0x80000000u);  // Linux pci_check_type1()
  pci.port_write(0xcf8, 4, 0xffffffffu);
  EXPECT_EQ(pci.port_read(0xcf8, 4), 0x80fffffcu);  // reserved and low bits read 0
  pci.port_write(0xcf8, 1, 0x00);                    // not CONFIG_ADDRESS
  EXPECT_EQ(pci.address(), 0x80fffffcu);
  EXPECT_EQ(pci.port_read(0xcfc, 4), 0xffffffffu);
  EXPECT_EQ(pci.port_read(0xcfe, 2), 0xffffffffu);
}

TEST(GuestPlatformTest, RoutesPortsCountsAndLatchesExit) {
  GuestPlatform p(PlatformConfig{64ull << 20, 2, 2});
  ASSERT_TRUE(p.attach().has_value());
  EXPECT_FALSE(p.attach().has_value());
  Sink sink;
  p.uart().set_output_sink(&Sink::put, &sink);
  for (char c : std::string("ok\n")) p.port_write(0x3f8, 1, static_cast<uint8_t>(c));
  EXPECT_EQ(sink.out, "ok\n");
  p.port_write(0x510, 2, 0x0005);
  EXPECT_EQ(p.port_read(0x511, 1), 2u);
  p.port_write(0x80, 1, 0x42);             // ignored, not unclaimed
  EXPECT_EQ(p.port_read(0x80, 1), 0xffu);
  EXPECT_EQ(p.port_read(0x61, 1), 0xffu);  // no device
  p.port_write(0x61, 1, 0);
  p.port_write(0x514, 4, 0);               // no DMA interface
  ASSERT_TRUE(p.uart().push_input(bytes_of("in")).has_value());
  EXPECT_EQ(p.port_read(0x3f8, 1), 'i');
  PlatformCounters c = p.counters();
  EXPECT_EQ(c.uart_bytes_out, 3u);
  EXPECT_EQ(c.uart_bytes_in, 2u);
  EXPECT_EQ(c.uart_bytes_read, 1u);
  EXPECT_EQ(c.unclaimed_port_reads, 1u);
  EXPECT_EQ(c.unclaimed_port_writes, 2u);
  EXPECT_EQ(c.unclaimed_ports, 2u);
  EXPECT_FALSE(p.exit_requested());
  p.port_write(0xf4, 1, 3);
  ASSERT_TRUE(p.exit_requested());
  EXPECT_EQ(p.exit_latch().status(), 7u);
  p.reset();
  EXPECT_FALSE(p.exit_requested());
  EXPECT_EQ(p.uart().input_pending(), 0u);
  EXPECT_EQ(p.counters().uart_bytes_out, 3u);  // counters survive a reset
  for (char c2 : std::string("Shutdown")) p.port_write(0x8900, 1, static_cast<uint8_t>(c2));
  EXPECT_EQ(p.exit_latch().cause(), ExitCause::kShutdownPort);
}

// Linux drivers/tty/serial/8250/8250_port.c autoconfig(), step by step, on a fresh UART.
TEST(GuestUart, LinuxAutoconfigProbeFindsA16550A) {
  Uart16550 u;
  // "Do a simple existence test": IER 0 reads 0, IER 0x0f reads 0x0f.
  wr(u, Uart16550::kIer, 0x00);
  EXPECT_EQ(rd(u, Uart16550::kIer) & 0x0f, 0x00);
  wr(u, Uart16550::kIer, 0x0f);
  EXPECT_EQ(rd(u, Uart16550::kIer) & 0x0f, 0x0f);
  wr(u, Uart16550::kIer, 0x00);
  // The loopback test: MCR = LOOP | OUT2 | RTS, MSR & 0xf0 == 0x90.
  wr(u, Uart16550::kMcr, 0x1a);
  EXPECT_EQ(rd(u, Uart16550::kMsr) & 0xf0, 0x90);
  wr(u, Uart16550::kMcr, 0x00);
  // LCR 0xbf (configuration mode B), EFR (offset 2) = 0: a 16550A has no EFR, the write lands
  // on FCR; LCR reads back as written.
  wr(u, Uart16550::kLcr, 0xbf);
  EXPECT_EQ(rd(u, Uart16550::kLcr), 0xbf);
  wr(u, Uart16550::kIirFcr, 0x00);
  wr(u, Uart16550::kLcr, 0x00);
  wr(u, Uart16550::kIirFcr, Uart16550::kFcrEnable);
  EXPECT_EQ(rd(u, Uart16550::kIirFcr) >> 6, 3);  // case 3: autoconfig_16550a()
  // autoconfig_16550a(): EFR reads (offset 2 under LCR 0xbf and 0x80) are the IIR, non-zero,
  // so no 16650/16C950 is detected.
  wr(u, Uart16550::kLcr, 0xbf);
  EXPECT_NE(rd(u, Uart16550::kIirFcr), 0);
  wr(u, Uart16550::kLcr, 0x80);
  EXPECT_NE(rd(u, Uart16550::kIirFcr), 0);
  // The 16750 test: FCR with the 64-byte bit, IIR >> 5 must not read 7 under DLAB.
  wr(u, Uart16550::kLcr, 0x00);
  wr(u, Uart16550::kIirFcr, Uart16550::kFcrEnable | 0x20);
  const uint8_t status1 = rd(u, Uart16550::kIirFcr) >> 5;
  wr(u, Uart16550::kLcr, Uart16550::kLcrDlab);
  wr(u, Uart16550::kIirFcr, Uart16550::kFcrEnable | 0x20);
  const uint8_t status2 = rd(u, Uart16550::kIirFcr) >> 5;
  EXPECT_EQ(status1, 6);
  EXPECT_EQ(status2, 6);  // not 7: not a 16750
  // The XScale test: IER bit 6 (UUE) does not stick.
  wr(u, Uart16550::kLcr, 0x00);
  wr(u, Uart16550::kIer, 0x40);
  EXPECT_EQ(rd(u, Uart16550::kIer) & 0x40, 0);
  // The scratch register holds a value.
  wr(u, Uart16550::kScr, 0x55);
  EXPECT_EQ(rd(u, Uart16550::kScr), 0x55);
}

// serial8250_do_startup(): the UART_BUG_THRE test toggles IER.THRI and reads IIR twice; a
// 16550 that re-asserts THRE shows a pending interrupt both times.
TEST(GuestUart, LinuxStartupThreTestSeesThreReassertedAndNoTxenBug) {
  Uart16550 u;
  wr(u, Uart16550::kIirFcr, 0x07);
  wr(u, Uart16550::kIirFcr, 0x00);
  ASSERT_TRUE(rd(u, Uart16550::kLsr) & Uart16550::kLsrThrEmpty);
  wr(u, Uart16550::kIer, Uart16550::kIerThrEmpty);
  const uint8_t iir1 = rd(u, Uart16550::kIirFcr);
  wr(u, Uart16550::kIer, 0);
  wr(u, Uart16550::kIer, Uart16550::kIerThrEmpty);
  const uint8_t iir = rd(u, Uart16550::kIirFcr);
  wr(u, Uart16550::kIer, 0);
  EXPECT_EQ(iir1 & 0x0f, Uart16550::kIirThrEmpty);
  EXPECT_EQ(iir & 0x0f, Uart16550::kIirThrEmpty);  // no UART_BUG_THRE
  // The UART_BUG_TXEN check: IER = THRI, then LSR has TEMT and IIR shows an interrupt.
  wr(u, Uart16550::kLcr, 0x03);
  wr(u, Uart16550::kMcr, Uart16550::kMcrOut2 | Uart16550::kMcrRts | Uart16550::kMcrDtr);
  wr(u, Uart16550::kIer, Uart16550::kIerThrEmpty);
  const uint8_t lsr = rd(u, Uart16550::kLsr);
  const uint8_t iir_tx = rd(u, Uart16550::kIirFcr);
  EXPECT_TRUE(lsr & Uart16550::kLsrTransmitterEmpty);
  EXPECT_EQ(iir_tx & Uart16550::kIirNoInterrupt, 0);  // no UART_BUG_TXEN
}

TEST(GuestUart, ClearingTheTransmitFifoReArmsThreOnlyWhileEnabled) {
  Uart16550 u;
  wr(u, Uart16550::kIirFcr, Uart16550::kFcrEnable | Uart16550::kFcrClearTx);
  EXPECT_FALSE(u.irq_asserted());  // ETBEI clear: nothing
  wr(u, Uart16550::kIer, Uart16550::kIerThrEmpty);
  EXPECT_EQ(rd(u, Uart16550::kIirFcr), 0xc2);
  EXPECT_FALSE(u.irq_asserted());
  wr(u, Uart16550::kIirFcr, Uart16550::kFcrEnable | Uart16550::kFcrClearTx);
  EXPECT_TRUE(u.irq_asserted());
  EXPECT_EQ(rd(u, Uart16550::kIirFcr), 0xc2);
}

TEST(GuestPciNone, ResetControlByteAt0xcf9LatchesAResetAndReadsBack) {
  ResetLatch latch;
  PciConfigNone pci(&latch);
  pci.port_write(0xcf9, 1, 0x02);  // Linux: select a hard reset first
  EXPECT_FALSE(latch.requested());
  EXPECT_EQ(pci.port_read(0xcf9, 1), 0x02u);
  pci.port_write(0xcf9, 1, 0x06);
  ASSERT_TRUE(latch.requested());
  EXPECT_EQ(latch.cause(), ResetCause::kResetControl);
  EXPECT_STREQ(reset_cause_name(latch.cause()), "0xCF9");
  EXPECT_EQ(latch.value(), 0x06);
  EXPECT_EQ(pci.port_read(0xcf9, 1), 0x06u);
  latch.clear();
  pci.port_write(0xcf9, 1, 0xff);  // full reset; only bits 3:1 are kept
  EXPECT_TRUE(latch.requested());
  EXPECT_EQ(pci.port_read(0xcf9, 1), 0x0eu);
  // CONFIG_ADDRESS is untouched by the byte and answers dword accesses as before.
  EXPECT_EQ(pci.address(), 0u);
  pci.port_write(0xcf8, 4, 0x80001234u);
  EXPECT_EQ(pci.port_read(0xcf8, 4), 0x80001234u);
  EXPECT_EQ(pci.reset_control(), 0x0e);
  EXPECT_EQ(pci.port_read(0xcf9, 2), 0xffffffffu);  // a word at 0xcf9 is neither register
  pci.reset();
  EXPECT_EQ(pci.port_read(0xcf9, 1), 0x00u);
}

// Records every irq sink call.
struct IrqLog {
  std::vector<std::pair<uint8_t, bool>> calls;
  static void sink(void* ctx, uint8_t irq, bool asserted) {
    static_cast<IrqLog*>(ctx)->calls.emplace_back(irq, asserted);
  }
};

TEST(GuestPlatformTest, IrqSinkSeesUartLineChangesOnly) {
  GuestPlatform p(PlatformConfig{64ull << 20, 1, 1});
  ASSERT_TRUE(p.attach().has_value());
  IrqLog log;
  p.set_irq_sink(&IrqLog::sink, &log);
  p.port_write(0x3f8 + Uart16550::kLcr, 1, 0x03);
  p.port_write(0x3f8 + Uart16550::kIirFcr, 1, 0x07);
  EXPECT_TRUE(log.calls.empty());
  // THRE interrupt enable with THR empty: asserted.
  p.port_write(0x3f8 + Uart16550::kIer, 1, Uart16550::kIerThrEmpty);
  ASSERT_EQ(log.calls.size(), 1u);
  EXPECT_EQ(log.calls[0], std::make_pair(uint8_t{4}, true));
  // Same level again (LSR reads, another IER write with THRI): no call.
  p.port_read(0x3f8 + Uart16550::kLsr, 1);
  p.port_write(0x3f8 + Uart16550::kIer, 1, Uart16550::kIerThrEmpty);
  EXPECT_EQ(log.calls.size(), 1u);
  // Reading IIR clears THRE: deasserted.
  EXPECT_EQ(p.port_read(0x3f8 + Uart16550::kIirFcr, 1), 0xc2u);
  ASSERT_EQ(log.calls.size(), 2u);
  EXPECT_EQ(log.calls[1], std::make_pair(uint8_t{4}, false));
  // Console input with the receive interrupt enabled: asserted.
  p.port_write(0x3f8 + Uart16550::kIer, 1, Uart16550::kIerRxData);
  EXPECT_EQ(log.calls.size(), 2u);
  ASSERT_TRUE(p.push_console_input(bytes_of("ab")).has_value());
  ASSERT_EQ(log.calls.size(), 3u);
  EXPECT_EQ(log.calls[2], std::make_pair(uint8_t{4}, true));
  ASSERT_TRUE(p.push_console_input(bytes_of("c")).has_value());
  EXPECT_EQ(log.calls.size(), 3u);  // still asserted: no call
  EXPECT_EQ(p.port_read(0x3f8, 1), 'a');
  EXPECT_EQ(p.port_read(0x3f8, 1), 'b');
  EXPECT_EQ(log.calls.size(), 3u);
  EXPECT_EQ(p.port_read(0x3f8, 1), 'c');  // the last byte drops the line
  ASSERT_EQ(log.calls.size(), 4u);
  EXPECT_EQ(log.calls[3], std::make_pair(uint8_t{4}, false));
  EXPECT_EQ(p.counters().irq_line_changes, 4u);
  EXPECT_FALSE(p.uart_irq_asserted());
}

TEST(GuestPlatformTest, ResetDropsAnAssertedLineThroughTheSink) {
  GuestPlatform p(PlatformConfig{64ull << 20, 1, 1});
  ASSERT_TRUE(p.attach().has_value());
  IrqLog log;
  p.set_irq_sink(&IrqLog::sink, &log);
  p.port_write(0x3f9, 1, Uart16550::kIerThrEmpty);
  ASSERT_EQ(log.calls.size(), 1u);
  p.reset();
  ASSERT_EQ(log.calls.size(), 2u);
  EXPECT_EQ(log.calls[1], std::make_pair(uint8_t{4}, false));
  p.reset();
  EXPECT_EQ(log.calls.size(), 2u);
}

TEST(GuestPlatformTest, I8042PulseLatchesResetUntilCleared) {
  GuestPlatform p(PlatformConfig{64ull << 20, 1, 1});
  ASSERT_TRUE(p.attach().has_value());
  EXPECT_EQ(p.port_read(0x64, 1), 0x1cu);
  p.port_write(0x64, 1, 0xaa);
  EXPECT_EQ(p.port_read(0x60, 1), 0x55u);
  EXPECT_FALSE(p.reset_requested());
  p.port_write(0x64, 1, 0xfe);
  ASSERT_TRUE(p.reset_requested());
  EXPECT_EQ(p.reset_cause(), ResetCause::kI8042Pulse);
  p.port_write(0xcf9, 1, 0x06);  // a second request does not replace the first
  EXPECT_EQ(p.reset_cause(), ResetCause::kI8042Pulse);
  EXPECT_EQ(p.counters().reset_requests, 2u);
  EXPECT_FALSE(p.exit_requested());  // a reset is not an exit
  p.clear_reset_request();
  EXPECT_FALSE(p.reset_requested());
  p.port_write(0x64, 1, 0xfe);
  EXPECT_TRUE(p.reset_requested());
  p.reset();
  EXPECT_FALSE(p.reset_requested());
  EXPECT_EQ(p.counters().reset_requests, 3u);
}

TEST(GuestPlatformTest, ResetControlRegisterLatchesResetAndConfigAddressStillWorks) {
  GuestPlatform p(PlatformConfig{64ull << 20, 1, 1});
  ASSERT_TRUE(p.attach().has_value());
  p.port_write(0xcf8, 4, 0x80000000u);
  EXPECT_EQ(p.port_read(0xcf8, 4), 0x80000000u);  // Linux pci_check_type1()
  EXPECT_EQ(p.port_read(0xcfc, 4), 0xffffffffu);
  p.port_write(0xcf9, 1, 0x02);
  EXPECT_FALSE(p.reset_requested());
  EXPECT_EQ(p.port_read(0xcf9, 1), 0x02u);
  EXPECT_EQ(p.port_read(0xcf8, 4), 0x80000000u);  // the byte did not touch CONFIG_ADDRESS
  p.port_write(0xcf9, 1, 0x0e);
  ASSERT_TRUE(p.reset_requested());
  EXPECT_EQ(p.reset_cause(), ResetCause::kResetControl);
  EXPECT_EQ(p.reset_latch().value(), 0x0e);
  p.reset();
  EXPECT_EQ(p.port_read(0xcf9, 1), 0x00u);
  EXPECT_EQ(p.port_read(0xcf8, 4), 0x00000000u);
  EXPECT_EQ(p.counters().unclaimed_port_reads, 0u);
}

uint64_t fixed_clock(void*) { return 1721051130; }  // 2024-07-15 13:45:30 UTC

TEST(GuestPlatformTest, CmosRtcAndI8042AreOnTheBusWithTheConfiguredClockAndRam) {
  PlatformConfig config{256ull << 20, 1, 1};
  config.wall_clock_seconds = &fixed_clock;
  GuestPlatform p(config);
  ASSERT_TRUE(p.attach().has_value());
  p.port_write(0x70, 1, 0x80 | CmosRtc::kHours);  // NMI disabled, hours
  EXPECT_EQ(p.port_read(0x71, 1), 0x13u);
  EXPECT_TRUE(p.rtc().nmi_disabled());
  p.port_write(0x70, 1, CmosRtc::kMemoryAbove16MHigh);
  EXPECT_EQ(p.port_read(0x71, 1), 0x0fu);
  p.port_write(0x70, 1, CmosRtc::kStatusA);
  EXPECT_EQ(p.port_read(0x71, 1), 0x26u);
  // Linux's i8042 probe: flush, read CTR, write CTR, the MUX loopback.
  EXPECT_EQ(p.port_read(0x64, 1) & I8042::kStatusOutputFull, 0u);
  p.port_write(0x64, 1, 0x20);
  EXPECT_EQ(p.port_read(0x60, 1), 0x45u);
  p.port_write(0x64, 1, 0x60);
  p.port_write(0x60, 1, 0x74);
  EXPECT_EQ(p.i8042().config(), 0x74);
  p.port_write(0x64, 1, 0xd3);
  p.port_write(0x60, 1, 0xa4);
  EXPECT_EQ(p.port_read(0x64, 1) & 0x21u, 0x21u);
  EXPECT_EQ(p.port_read(0x60, 1), 0xa4u);
  p.port_write(0x60, 1, 0xf2);  // to the absent keyboard
  EXPECT_EQ(p.counters().i8042_device_bytes_dropped, 1u);
  EXPECT_EQ(p.port_read(0x61, 1), 0xffu);  // 0x61 stays without a device
  const PlatformCounters c = p.counters();
  EXPECT_EQ(c.unclaimed_port_reads, 1u);
  EXPECT_EQ(c.unclaimed_port_writes, 0u);
}

}  // namespace
}  // namespace lantern::guest
