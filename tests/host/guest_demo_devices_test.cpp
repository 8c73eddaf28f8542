#include "guest/demo_devices.h"

#include <gtest/gtest.h>

#include <string>

namespace lantern::guest {
namespace {

class CollectingOutput : public ConsoleOutput {
 public:
  void put_char(char c) override { text += c; }
  std::string text;
};

struct DemoVm {
  Vm vm;
  CollectingOutput output;
  DemoUart uart{output};
  ExitPort exit_port{vm};
  DemoVm() { EXPECT_TRUE(register_demo_devices(vm, uart, exit_port)); }
};

TEST(GuestDemoDevices, UartTransmitsOnlyThrWritesToTheConsole) {
  DemoVm d;
  d.vm.ports.write(0x3f8, 1, 'h');
  d.vm.ports.write(0x3f8, 1, 0x169);  // only the low byte is the character
  d.vm.ports.write(0x3f9, 1, 'x');    // IER: not transmitted
  d.vm.ports.write(0x3fb, 1, 'y');    // LCR: not transmitted
  EXPECT_EQ(d.output.text, "hi");
  EXPECT_EQ(d.vm.ports.unclaimed().port_writes, 0u);
}

TEST(GuestDemoDevices, UartLsrReportsTransmitterIdleOtherRegistersReadZero) {
  DemoVm d;
  EXPECT_EQ(d.vm.ports.read(0x3fd, 1), 0x60u);  // LSR: THRE | TEMT
  for (uint16_t port : {0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fe, 0x3ff}) {
    EXPECT_EQ(d.vm.ports.read(port, 1), 0u) << port;
  }
  EXPECT_EQ(d.vm.ports.unclaimed().port_reads, 0u);
}

TEST(GuestDemoDevices, ExitPortWriteRequestsTheVmExitWithItsStatus) {
  DemoVm d;
  EXPECT_FALSE(d.vm.exit_requested);
  d.vm.ports.write(0xf4, 1, 0x42);
  EXPECT_TRUE(d.vm.exit_requested);
  EXPECT_EQ(d.vm.exit_status, 0x42u);
  EXPECT_EQ(d.vm.ports.read(0xf4, 1), 0xffu);  // reads float high (low byte of all-ones)
}

TEST(GuestDemoDevices, PortsBesideTheDevicesStayUnclaimed) {
  DemoVm d;
  d.vm.ports.write(0x80, 1, 0x5a);
  EXPECT_EQ(d.vm.ports.read(0x3f7, 1), 0xffu);
  EXPECT_EQ(d.vm.ports.read(0xf5, 2), 0xffffu);
  EXPECT_EQ(d.vm.ports.unclaimed().port_writes, 1u);
  EXPECT_EQ(d.vm.ports.unclaimed().port_reads, 2u);
  EXPECT_FALSE(d.vm.exit_requested);
  EXPECT_EQ(d.output.text, "");
}

TEST(GuestDemoDevices, RegisteringTwiceOnOneVmIsRefused) {
  DemoVm d;
  CollectingOutput other;
  DemoUart uart2{other};
  ExitPort exit2{d.vm};
  auto again = register_demo_devices(d.vm, uart2, exit2);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists);
}

}  // namespace
}  // namespace lantern::guest
