#include <gtest/gtest.h>

#include "guest/devices/i8042.h"

namespace lantern::guest {
namespace {

uint8_t status(I8042& kbc) {
  return static_cast<uint8_t>(kbc.port_read(I8042::kStatusCommandPort, 1));
}
uint8_t data(I8042& kbc) {
  return static_cast<uint8_t>(kbc.port_read(I8042::kDataPort, 1));
}
void command(I8042& kbc, uint8_t cmd) {
  kbc.port_write(I8042::kStatusCommandPort, 1, cmd);
}
void write_data(I8042& kbc, uint8_t byte) {
  kbc.port_write(I8042::kDataPort, 1, byte);
}

TEST(GuestI8042, PowerOnStatusHasSystemFlagUnlockedAndNoOutput) {
  I8042 kbc;
  // SYS | CMD | not inhibited; OBF, IBF clear: Linux's i8042_flush() finds nothing to drain.
  EXPECT_EQ(status(kbc), 0x1c);
  EXPECT_EQ(kbc.config(), 0x45);
  EXPECT_EQ(kbc.output_port(), 0xcf);
}

TEST(GuestI8042, SelfTestAnswers55AndSetsTheSystemFlag) {
  I8042 kbc;
  command(kbc, I8042::kCmdWriteRamFirst);  // config without the system flag
  write_data(kbc, 0x00);
  EXPECT_EQ(status(kbc) & I8042::kStatusSystemFlag, 0);
  command(kbc, I8042::kCmdSelfTest);
  EXPECT_EQ(status(kbc) & (I8042::kStatusOutputFull | I8042::kStatusSystemFlag), 0x05);
  EXPECT_EQ(data(kbc), 0x55);
  EXPECT_EQ(status(kbc) & I8042::kStatusOutputFull, 0);
  EXPECT_EQ(data(kbc), 0x55);  // the buffer keeps its last byte when read again
}

TEST(GuestI8042, ConfigByteReadsAndWritesThroughCommands20And60) {
  I8042 kbc;
  command(kbc, 0x20);
  EXPECT_EQ(status(kbc) & I8042::kStatusOutputFull, I8042::kStatusOutputFull);
  EXPECT_EQ(data(kbc), 0x45);
  command(kbc, 0x60);
  EXPECT_EQ(status(kbc) & I8042::kStatusLastWasCommand, I8042::kStatusLastWasCommand);
  write_data(kbc, 0x74);  // Linux: keyboard disabled, interrupts off, translation kept
  EXPECT_EQ(status(kbc) & I8042::kStatusLastWasCommand, 0);
  EXPECT_EQ(kbc.config(), 0x74);
  command(kbc, 0x20);
  EXPECT_EQ(data(kbc), 0x74);
  // Other internal RAM bytes: 0x61 writes byte 1, 0x21 reads it.
  command(kbc, 0x61);
  write_data(kbc, 0x99);
  command(kbc, 0x21);
  EXPECT_EQ(data(kbc), 0x99);
  EXPECT_EQ(kbc.config(), 0x74);
}

TEST(GuestI8042, EnableDisableCommandsToggleConfigBitsAsLinuxChecks) {
  I8042 kbc;
  command(kbc, I8042::kCmdAuxDisable);
  EXPECT_EQ(kbc.config() & I8042::kConfigAuxDisabled, I8042::kConfigAuxDisabled);
  command(kbc, I8042::kCmdAuxEnable);  // Linux's i8042_toggle_aux() reads this back
  EXPECT_EQ(kbc.config() & I8042::kConfigAuxDisabled, 0);
  command(kbc, I8042::kCmdKeyboardDisable);
  EXPECT_EQ(kbc.config() & I8042::kConfigKeyboardDisabled, I8042::kConfigKeyboardDisabled);
  command(kbc, I8042::kCmdKeyboardEnable);
  EXPECT_EQ(kbc.config(), 0x45);
  EXPECT_EQ(status(kbc) & I8042::kStatusOutputFull, 0);  // none of them answers
}

TEST(GuestI8042, PortTestsPassAndAuxLoopbackEchoesAsAuxData) {
  I8042 kbc;
  command(kbc, I8042::kCmdKeyboardTest);
  EXPECT_EQ(data(kbc), 0x00);
  command(kbc, I8042::kCmdAuxTest);
  EXPECT_EQ(data(kbc), 0x00);
  // Linux's MUX check: 0xf0, 0x56, 0xa4 come back unchanged, so no active multiplexer.
  for (uint8_t b : {0xf0, 0x56, 0xa4, 0x5a}) {
    command(kbc, I8042::kCmdWriteAuxBuffer);
    write_data(kbc, b);
    EXPECT_EQ(status(kbc) & (I8042::kStatusOutputFull | I8042::kStatusAuxData), 0x21);
    EXPECT_EQ(data(kbc), b);
    EXPECT_EQ(status(kbc) & (I8042::kStatusOutputFull | I8042::kStatusAuxData), 0);
  }
  command(kbc, I8042::kCmdWriteKeyboardBuffer);
  write_data(kbc, 0x1e);
  EXPECT_EQ(status(kbc) & (I8042::kStatusOutputFull | I8042::kStatusAuxData), 0x01);
  EXPECT_EQ(data(kbc), 0x1e);
}

TEST(GuestI8042, BytesForAbsentDevicesTimeOutWithoutOutput) {
  I8042 kbc;
  write_data(kbc, 0xf2);  // atkbd GETID to the keyboard
  EXPECT_EQ(status(kbc) & (I8042::kStatusTimeout | I8042::kStatusOutputFull), I8042::kStatusTimeout);
  command(kbc, I8042::kCmdWriteAuxDevice);  // the timeout clears with the next command
  EXPECT_EQ(status(kbc) & I8042::kStatusTimeout, 0);
  write_data(kbc, 0xff);  // reset to the mouse
  EXPECT_EQ(status(kbc) & (I8042::kStatusTimeout | I8042::kStatusOutputFull), I8042::kStatusTimeout);
  EXPECT_EQ(kbc.counters().device_bytes_dropped, 2u);
  command(kbc, 0x20);
  EXPECT_EQ(data(kbc), 0x45);  // the controller still answers
}

TEST(GuestI8042, PulseFeLatchesResetAndFfDoesNot) {
  ResetLatch latch;
  I8042 kbc(&latch);
  command(kbc, 0xff);  // pulses nothing
  EXPECT_FALSE(latch.requested());
  command(kbc, I8042::kCmdPulseReset);
  ASSERT_TRUE(latch.requested());
  EXPECT_EQ(latch.cause(), ResetCause::kI8042Pulse);
  EXPECT_STREQ(reset_cause_name(latch.cause()), "i8042 0xFE");
  EXPECT_EQ(latch.value(), 0xfe);
  latch.clear();
  command(kbc, 0xf0);  // pulses bits 3:0, the reset line among them
  EXPECT_EQ(latch.cause(), ResetCause::kI8042Pulse);
}

TEST(GuestI8042, OutputPortReadWriteAndBit0ClearResets) {
  ResetLatch latch;
  I8042 kbc(&latch);
  command(kbc, I8042::kCmdReadOutputPort);
  EXPECT_EQ(data(kbc), 0xcf);
  command(kbc, I8042::kCmdWriteOutputPort);
  write_data(kbc, 0xcd);  // A20 off, reset line high
  EXPECT_FALSE(latch.requested());
  command(kbc, I8042::kCmdReadOutputPort);
  EXPECT_EQ(data(kbc), 0xcd);
  command(kbc, I8042::kCmdA20On);
  EXPECT_EQ(kbc.output_port(), 0xcf);
  command(kbc, I8042::kCmdWriteOutputPort);
  write_data(kbc, 0xce);  // reset line low
  ASSERT_TRUE(latch.requested());
  EXPECT_EQ(latch.cause(), ResetCause::kI8042OutputPort);
  EXPECT_EQ(latch.value(), 0xce);
  kbc.reset();
  EXPECT_EQ(kbc.output_port(), 0xcf);
}

TEST(GuestI8042, UnknownCommandsAreCountedAndAnswerNothing) {
  I8042 kbc;
  command(kbc, 0xc0);
  command(kbc, 0x90);
  EXPECT_EQ(kbc.counters().unknown_commands, 2u);
  EXPECT_EQ(status(kbc) & I8042::kStatusOutputFull, 0);
  EXPECT_EQ(kbc.port_read(I8042::kStatusCommandPort, 2), 0xff1cu);  // upper byte decodes nothing
}

}  // namespace
}  // namespace lantern::guest
