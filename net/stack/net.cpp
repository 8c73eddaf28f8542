// start()/poll()/status(): the network stack's owner loop. See net/stack/README.md.
#include "net/stack/net.h"

#include <atomic>

#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/boot/cmdline.h"
#include "kernel/core/log.h"
#include "kernel/core/spinlock.h"
#include "kernel/core/time.h"
#include "kernel/lib/format.h"
#include "lwip/dhcp.h"
#include "lwip/init.h"
#include "lwip/ip4_addr.h"
#include "lwip/netif.h"
#include "lwip/timeouts.h"
#include "net/kernel/nic_probe.h"
#include "net/stack/discard_listener.h"
#include "net/stack/ip_config.h"
#include "net/stack/netif_bridge.h"
#include "netif/ethernet.h"

namespace lantern::net {
namespace {

constexpr uint64_t kNsPerMs = 1000000;
constexpr uint64_t kLinkWaitMs = 2000;   // a NIC that never raises link: give up after 2 s
constexpr uint64_t kDhcpWaitMs = 5000;   // the brief's bound: ~5 s of emulated time
constexpr uint64_t kLinkCheckMs = 100;   // poll() looks at the link this often
constexpr size_t kRxBudgetPerPoll = 256; // frames per poll(): timers keep running under a flood
constexpr size_t kRxBatch = 64;
constexpr size_t kPostQueueSize = 64;

struct PostedWork {
  void (*fn)(void*);
  void* arg;
};

bool g_started = false;
uint32_t g_owner_apic_id = 0;
NetifBridge g_bridge;
StackCounters g_counters;
kernel::ProbedNic g_nic;
NetStatus g_status;  // the static part (nic, irq, mode)
std::atomic<bool> g_in_poll{false};
std::atomic<bool> g_irq_pending{false};
uint64_t g_last_link_check_ns = 0;
bool g_link_up = false;
bool g_link_known = false;

IrqSpinlock g_post_lock;
PostedWork g_post_queue[kPostQueueSize];
size_t g_post_head = 0;  // next to run
size_t g_post_count = 0;

void on_nic_interrupt() { g_irq_pending.store(true, std::memory_order_release); }

bool on_owner_core() { return this_cpu().apic_id == g_owner_apic_id; }

void ip_text(const ip4_addr_t& addr, char* out, size_t size) {
  const uint32_t a = lwip_ntohl(ip4_addr_get_u32(&addr));
  format_ipv4(Ipv4{static_cast<uint8_t>(a >> 24), static_cast<uint8_t>(a >> 16), static_cast<uint8_t>(a >> 8),
                   static_cast<uint8_t>(a)},
              out, size);
}

void on_netif_status(struct netif* netif) {
  if (ip4_addr_isany_val(*netif_ip4_addr(netif))) {
    LOG_INFO("net: %c%c%u has no address", netif->name[0], netif->name[1], netif->num);
    return;
  }
  // DHCP sets the address before the netmask and gateway (netif_set_addr), so those are
  // logged by start() once the lease is complete.
  char ip[16];
  ip_text(*netif_ip4_addr(netif), ip, sizeof(ip));
  LOG_INFO("net: address %s (%s)", ip, g_status.address_mode);
}

void follow_link(bool force) {
  const uint64_t now = time::now_ns();
  if (!force && now - g_last_link_check_ns < kLinkCheckMs * kNsPerMs) return;
  g_last_link_check_ns = now;
  const bool up = g_bridge.nic->link_up();
  if (g_link_known && up == g_link_up) return;
  g_link_known = true;
  g_link_up = up;
  if (up) {
    netif_set_link_up(&g_bridge.netif);
  } else {
    netif_set_link_down(&g_bridge.netif);
  }
  LOG_INFO("net: %s link %s", g_bridge.nic->name(), up ? "up" : "down");
}

void run_posted_work() {
  for (;;) {
    PostedWork work;
    {
      IrqSpinlockGuard guard(g_post_lock);
      if (g_post_count == 0) return;
      work = g_post_queue[g_post_head];
      g_post_head = (g_post_head + 1) % kPostQueueSize;
      --g_post_count;
    }
    work.fn(work.arg);
    ++g_counters.posted;
  }
}

void poll_once() {
  g_irq_pending.store(false, std::memory_order_relaxed);
  size_t budget = kRxBudgetPerPoll;
  while (budget > 0) {
    const size_t got = netif_bridge_receive(g_bridge, budget < kRxBatch ? budget : kRxBatch);
    if (got == 0) break;
    budget -= got < budget ? got : budget;
  }
  g_bridge.nic->reclaim_transmitted();
  follow_link(false);
  run_posted_work();
  sys_check_timeouts();
  ++g_counters.polls;
}

// Waits on the owner core, running the stack, until `done()` or `ms` pass. HLT between passes
// when interrupts are on (the LAPIC timer and the NIC wake us), else spins.
template <typename Done>
bool wait_ms(uint64_t ms, Done done) {
  const uint64_t deadline = time::now_ns() + ms * kNsPerMs;
  while (true) {
    poll();
    if (done()) return true;
    if (time::now_ns() >= deadline) return false;
    if (cpu::interrupts_enabled()) {
      cpu::disable_interrupts();
      if (!g_irq_pending.load(std::memory_order_acquire)) {
        cpu::enable_interrupts_and_halt();
      } else {
        cpu::enable_interrupts();
      }
    } else {
      cpu::pause();
    }
  }
}

kernel::IrqPreference irq_preference(std::string_view cmdline) {
  const auto value = cmdline_value(cmdline, "net.irq");
  if (!value || *value == "auto") return kernel::IrqPreference::kAuto;
  if (*value == "intx") return kernel::IrqPreference::kIntx;
  if (*value == "poll") return kernel::IrqPreference::kPoll;
  LOG_WARN("net: net.irq=%.*s is not auto|intx|poll; using auto", static_cast<int>(value->size()), value->data());
  return kernel::IrqPreference::kAuto;
}

ip4_addr_t to_lwip(const Ipv4& a) {
  ip4_addr_t out;
  IP4_ADDR(&out, a[0], a[1], a[2], a[3]);
  return out;
}

}  // namespace

Result<NetStatus> start(std::string_view cmdline) {
  if (g_started) return make_error(ErrorCode::kInvalidState, "net::start called twice");
  g_started = true;
  g_owner_apic_id = this_cpu().apic_id;

  auto config = parse_ip_config(cmdline);
  if (!config) {
    LOG_ERROR("net: bad network command line (%s); falling back to DHCP", config.error().message);
    config = IpConfig{};
  }
  if (config->mode == AddressMode::kDisabled) {
    g_status.address_mode = "off";
    LOG_INFO("net: disabled by ip=%s", "off");
    return status();
  }
  g_status.address_mode = config->mode == AddressMode::kStatic ? "static" : "dhcp";

  auto probed = kernel::probe_nic(irq_preference(cmdline), &on_nic_interrupt);
  if (!probed) {
    if (probed.error().code == ErrorCode::kNotFound) {
      LOG_WARN("net: no network: %s", probed.error().message);
    } else {
      LOG_ERROR("net: NIC initialisation failed: %s (%s, detail 0x%llx); no network", probed.error().message,
                error_code_name(probed.error().code), static_cast<unsigned long long>(probed.error().detail));
    }
    return status();
  }
  g_nic = *probed;
  g_status.nic = g_nic.driver->name();
  g_status.irq = kernel::irq_mode_name(g_nic.irq);
  g_status.mac = g_nic.driver->mac();
  const auto& mac = g_status.mac;
  LOG_INFO("net: %s MAC %02x:%02x:%02x:%02x:%02x:%02x, interrupts: %s", g_status.nic, mac[0], mac[1], mac[2], mac[3],
           mac[4], mac[5], g_status.irq);
  if (g_nic.irq == kernel::IrqMode::kPolled) {
    LOG_WARN("net: %s raises no interrupt we can use: polled from the idle loop and timer tick only", g_status.nic);
  }

  lwip_init();
  g_bridge.nic = g_nic.driver;
  g_bridge.counters = &g_counters;
  ip4_addr_t ip = {}, mask = {}, gw = {};
  if (config->mode == AddressMode::kStatic) {
    ip = to_lwip(config->address);
    mask = to_lwip(config->netmask);
    if (config->has_gateway) gw = to_lwip(config->gateway);
  }
  if (netif_add(&g_bridge.netif, &ip, &mask, &gw, &g_bridge, netif_bridge_init, ethernet_input) == nullptr) {
    LOG_ERROR("net: netif_add failed; no network");
    return status();
  }
  netif_set_default(&g_bridge.netif);
  netif_set_status_callback(&g_bridge.netif, on_netif_status);
  netif_set_up(&g_bridge.netif);
  g_status.running = true;

  if (!wait_ms(kLinkWaitMs, [] { return g_bridge.nic->link_up(); })) {
    LOG_WARN("net: %s link still down after %llu ms; continuing (the stack follows the link later)",
             g_status.nic, static_cast<unsigned long long>(kLinkWaitMs));
  }
  follow_link(true);

  // RFC 863 discard: the sink for `./lantern bench` bulk uploads (net/stack/discard_listener.h).
  if (auto discard = discard_listener_start(kDiscardPort); !discard) {
    LOG_ERROR("net: discard listener on port %u failed: %s", kDiscardPort, discard.error().message);
  }

  if (config->mode == AddressMode::kDhcp) {
    const err_t err = dhcp_start(&g_bridge.netif);
    if (err != ERR_OK) {
      LOG_ERROR("net: dhcp_start failed (%d)", static_cast<int>(err));
    } else if (!wait_ms(kDhcpWaitMs, [] { return dhcp_supplied_address(&g_bridge.netif) != 0; })) {
      LOG_WARN("net: no DHCP lease within %llu ms; ip=none for now (DHCP keeps trying)",
               static_cast<unsigned long long>(kDhcpWaitMs));
    }
  }
  char ip_s[16], mask_s[16], gw_s[16];
  ip_text(*netif_ip4_addr(&g_bridge.netif), ip_s, sizeof(ip_s));
  ip_text(*netif_ip4_netmask(&g_bridge.netif), mask_s, sizeof(mask_s));
  ip_text(*netif_ip4_gw(&g_bridge.netif), gw_s, sizeof(gw_s));
  LOG_INFO("net: %s %s netmask %s gateway %s, link %s, %llu NIC interrupts so far", g_status.address_mode, ip_s,
           mask_s, gw_s, g_link_up ? "up" : "down", static_cast<unsigned long long>(kernel::nic_interrupts()));
  return status();
}

void poll() {
  if (!g_status.running) return;
  if (!on_owner_core()) return;  // other cores use post()
  if (g_in_poll.exchange(true, std::memory_order_acquire)) return;  // re-entered from the tick
  poll_once();
  g_in_poll.store(false, std::memory_order_release);
}

bool work_pending() { return g_irq_pending.load(std::memory_order_acquire) || g_post_count != 0; }

Result<void> post(void (*fn)(void* arg), void* arg) {
  if (fn == nullptr) return make_error(ErrorCode::kInvalidArgument, "net::post of a null function");
  IrqSpinlockGuard guard(g_post_lock);
  if (g_post_count == kPostQueueSize) return make_error(ErrorCode::kFull, "net::post queue full", kPostQueueSize);
  g_post_queue[(g_post_head + g_post_count) % kPostQueueSize] = PostedWork{fn, arg};
  ++g_post_count;
  return ok();
}

NetStatus status() {
  NetStatus s = g_status;
  if (g_status.running) {
    const ip4_addr_t* addr = netif_ip4_addr(&g_bridge.netif);
    if (!ip4_addr_isany_val(*addr) && netif_is_up(&g_bridge.netif)) {
      ip_text(*addr, s.ip, sizeof(s.ip));
    }
    s.link_up = g_link_up;
    s.counters = g_bridge.nic->counters();
  }
  s.stack = g_counters;
  s.stack.interrupts = kernel::nic_interrupts();
  return s;
}

}  // namespace lantern::net
