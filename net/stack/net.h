// The network stack's public API for the kernel (kernel-only; see net/stack/README.md).
//
// One owner: the BSP. start() and poll() run on the BSP only; lwIP (NO_SYS=1, raw API) is never
// entered from another core or from an interrupt handler, so it needs no locks. Other cores hand
// work to the owner with post(), a bounded queue drained by poll().
//
// From the composition root (root/main.cpp), after the I/O APIC, the LAPIC timer and `sti`:
//     auto net = lantern::net::start(cmdline);   // never fails the boot
//     web::kernel::http_server_start(kConsolePort, &handler);  // the console (web/kernel/)
//   and in the BSP's idle loop:
//     for (;;) { lantern::net::poll(); cpu::enable_interrupts_and_halt(); }
#pragma once

#include <cstdint>
#include <string_view>

#include "kernel/lib/result.h"
#include "net/nic.h"

namespace lantern::net {

inline constexpr uint16_t kConsolePort = 80;

// Counters of the stack itself (the NIC's own are NicCounters).
struct StackCounters {
  uint64_t rx_frames = 0;        // frames handed to lwIP
  uint64_t rx_no_pbuf = 0;       // dropped: PBUF_POOL exhausted (RX slows down, never wedges)
  uint64_t rx_malformed = 0;     // dropped: shorter than an Ethernet header or over 1518 bytes
  uint64_t rx_input_errors = 0;  // lwIP's input refused the pbuf
  uint64_t tx_frames = 0;
  uint64_t tx_dropped = 0;       // driver refused (ring full after reclaim, bad length)
  uint64_t interrupts = 0;       // NIC interrupts taken
  uint64_t polls = 0;            // poll() passes that ran
  uint64_t posted = 0;           // work items run from post()
};

struct NetStatus {
  bool running = false;           // a NIC was found and lwIP is up
  char ip[16] = "none";           // "10.0.2.15", or "none" (no NIC, no link, no lease yet)
  const char* nic = "none";       // "e1000", "virtio-net" or "none"
  const char* irq = "none";       // "msi", "msix", "intx", "polled" or "none"
  const char* address_mode = "dhcp";  // "dhcp", "static" or "off"
  MacAddress mac{};
  bool link_up = false;
  NicCounters counters{};
  StackCounters stack{};
};

// Parses ip=/gw=/net.irq= from `cmdline`, probes PCI, initialises the first supported NIC, brings
// up lwIP, and with DHCP waits up to ~5 s of kernel time for a lease. Never fails the boot: no
// NIC, no link, no lease or a bad ip= are logged and reported through the status (ip "none").
// Errors only for misuse: kInvalidState when called a second time.
Result<NetStatus> start(std::string_view cmdline);

// Drains received frames, reclaims transmit descriptors, follows the link, runs posted work
// and lwIP's timers. Call it on the BSP from the idle loop (and, if wanted, the timer tick: it
// returns at once when re-entered or called on another core). Cheap when there is nothing to do.
void poll();

// A snapshot; any core may call it (fields are copied without locking; counters may be torn).
NetStatus status();

// True when the NIC interrupted since the last poll() (lets an idle loop skip HLT).
bool work_pending();

// Hands `fn(arg)` to the owner core; it runs inside the next poll(), where lwIP may be used.
// Any core, any context except NMI. kFull when 64 items are already waiting.
Result<void> post(void (*fn)(void* arg), void* arg);

}  // namespace lantern::net
