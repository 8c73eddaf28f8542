// NicDriver: what the stack (net/stack/netif_bridge.cpp) needs from a NIC, whatever the model.
// net/kernel/nic_probe.cpp adapts net/e1000's E1000Device and net/virtio's VirtioNetDevice to it.
//
// Threading: every call except acknowledge_interrupt() comes from the stack's owner core (the
// BSP) outside interrupt context. acknowledge_interrupt() runs in the NIC's interrupt handler on
// that same core: it only reads the device's cause register (which deasserts a level-triggered
// INTx line) and never touches rings or buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "kernel/lib/result.h"
#include "net/nic.h"

namespace lantern::net {

class NicDriver {
 public:
  virtual const char* name() const = 0;  // "e1000", "virtio-net"
  virtual const MacAddress& mac() const = 0;
  virtual bool link_up() = 0;
  virtual Result<void> transmit(std::span<const uint8_t> frame) = 0;
  virtual size_t reclaim_transmitted() = 0;
  // Delivers at most `max_frames` received frames (0: one ring's worth) to `sink`.
  virtual size_t poll_receive(FrameSink sink, size_t max_frames) = 0;
  virtual const NicCounters& counters() const = 0;
  // Interrupt context: read-and-clear the device's cause; true if it had one (the interrupt
  // was ours).
  virtual bool acknowledge_interrupt() = 0;

 protected:
  NicDriver() = default;
  ~NicDriver() = default;
  NicDriver(const NicDriver&) = default;
  NicDriver& operator=(const NicDriver&) = default;
};

}  // namespace lantern::net
