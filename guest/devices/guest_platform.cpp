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

CmosRtc::Config rtc_config(const PlatformConfig& config) {
  CmosRtc::Config c;
  c.ram_bytes = config.ram_bytes;
  c.wall_clock = config.wall_clock_seconds;
  c.wall_clock_context = config.wall_clock_context;
  return c;
}

}  // namespace

GuestPlatform::GuestPlatform(const PlatformConfig& config)
    : uart_(Uart16550::kCom1Base),
      debug_exit_(exit_),
      shutdown_(exit_),
      fw_cfg_(fw_cfg_config(config)),
      pci_(&reset_),
      rtc_(rtc_config(config)),
      i8042_(&reset_) {}

Result<void> GuestPlatform::attach() {
  if (attached_) return make_error(ErrorCode::kAlreadyExists, "guest platform already attached");
  TRY(bus_.register_range(I8259Pair::kMasterBase, I8259Pair::kPortCount, &pic_));
  TRY(bus_.register_range(I8042::kDataPort, 1, &i8042_));
  TRY(bus_.register_range(I8042::kStatusCommandPort, 1, &i8042_));
  TRY(bus_.register_range(CmosRtc::kIndexPort, CmosRtc::kPortCount, &rtc_));
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

uint32_t GuestPlatform::port_read(uint16_t port, uint8_t width) {
  const uint32_t value = bus_.read(port, width);
  update_irq_lines();  // e.g. reading IIR or RBR can drop the UART's line
  return value;
}

void GuestPlatform::port_write(uint16_t port, uint8_t width, uint32_t value) {
  bus_.write(port, width, value);
  update_irq_lines();
}

Result<void> GuestPlatform::push_console_input(std::span<const uint8_t> bytes) {
  Result<void> pushed = uart_.push_input(bytes);
  update_irq_lines();
  return pushed;
}

void GuestPlatform::update_irq_lines() {
  const bool level = uart_.irq_asserted();
  if (level == uart_irq_level_) return;
  uart_irq_level_ = level;
  ++irq_line_changes_;
  if (irq_sink_ != nullptr) irq_sink_(irq_sink_context_, Uart16550::kCom1Irq, level);
}

void GuestPlatform::reset() {
  exit_.reset();
  reset_.clear();
  uart_.reset();
  shutdown_.reset();
  pic_.reset();
  pci_.reset();
  fw_cfg_.reset();
  rtc_.reset();
  i8042_.reset();
  update_irq_lines();
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
  c.reset_requests = reset_.requests();
  c.irq_line_changes = irq_line_changes_;
  c.i8042_device_bytes_dropped = i8042_.counters().device_bytes_dropped;
  return c;
}

}  // namespace lantern::guest
