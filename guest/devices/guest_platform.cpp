#include "guest/devices/guest_platform.h"

namespace lantern::guest {
namespace {

FwCfg::Config fw_cfg_config(const PlatformConfig& config) {
  FwCfg::Config c;
  c.ram_bytes = config.ram_bytes;
  c.cpu_count = config.cpu_count;
  c.max_cpus = config.max_cpus;
  return c;
}

}  // namespace

GuestPlatform::GuestPlatform(const PlatformConfig& config)
    : uart_(Uart16550::kCom1Base), debug_exit_(exit_), shutdown_(exit_), fw_cfg_(fw_cfg_config(config)) {}

Result<void> GuestPlatform::attach() {
  if (attached_) return make_error(ErrorCode::kAlreadyExists, "guest platform already attached");
  TRY(bus_.register_range(I8259Pair::kMasterBase, I8259Pair::kPortCount, &pic_));
  TRY(bus_.register_range(PostCodePort::kPort, 1, &post_));
  TRY(bus_.register_range(I8259Pair::kSlaveBase, I8259Pair::kPortCount, &pic_));
  TRY(bus_.register_range(DebugExitPort::kBase, DebugExitPort::kPortCount, &debug_exit_));
  TRY(bus_.register_range(uart_.base(), Uart16550::kPortCount, &uart_));
  TRY(bus_.register_range(FwCfg::kSelectorPort, FwCfg::kPortCount, &fw_cfg_));
  TRY(bus_.register_range(PciConfigNone::kAddressPort, PciConfigNone::kPortCount, &pci_));
  TRY(bus_.register_range(ShutdownPort::kPort, 1, &shutdown_));
  attached_ = true;
  return ok();
}

void GuestPlatform::reset() {
  exit_.reset();
  uart_.reset();
  shutdown_.reset();
  pic_.reset();
  pci_ = PciConfigNone{};
  fw_cfg_.reset();
}

PlatformCounters GuestPlatform::counters() const {
  PlatformCounters c;
  const Uart16550::Counters& u = uart_.counters();
  c.uart_bytes_in = u.bytes_in;
  c.uart_bytes_out = u.bytes_out;
  c.uart_bytes_read = u.bytes_read;
  c.uart_input_refused = u.input_refused;
  c.unclaimed_port_reads = bus_.unclaimed().port_reads;
  c.unclaimed_port_writes = bus_.unclaimed().port_writes;
  c.unclaimed_ports = bus_.unclaimed_port_count();
  c.unclaimed_accesses_unlisted = bus_.unclaimed_ports_dropped();
  return c;
}

}  // namespace lantern::guest
