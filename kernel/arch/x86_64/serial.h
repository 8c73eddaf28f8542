// 16550 UART on COM1 (115200 8N1): the boot log and the contract lines (READY, PANIC).
#pragma once

#include <cstddef>

namespace lantern::serial {

void init();
void write(const char* text, size_t length);
void write(const char* text);
// Waits until the transmitter is empty (LSR bit 6), e.g. before an emulator shutdown.
void drain();

}  // namespace lantern::serial
