#include "guest/loader/mp_table.h"

#include <span>

namespace lantern::guest::mp_table {
namespace {

constexpr uint64_t k4GiB = 1ull << 32;
constexpr uint8_t kSpecRevision = 4;  // MP 4.1 / 4.2: 04h for version 1.4

// Floating pointer fields (MP 4.1, Figure 4-2).
constexpr uint8_t kFloatingSignature[4] = {'_', 'M', 'P', '_'};
constexpr size_t kFpPhysicalAddress = 4, kFpLength = 8, kFpSpecRevision = 9, kFpChecksum = 10,
                 kFpFeature1 = 11, kFpFeature2 = 12;
constexpr uint8_t kFpLengthParagraphs = 1;  // the structure's length in 16-byte units

// Configuration table header fields (MP 4.2).
constexpr uint8_t kHeaderSignature[4] = {'P', 'C', 'M', 'P'};
constexpr size_t kHdrBaseTableLength = 4, kHdrSpecRevision = 6, kHdrChecksum = 7, kHdrOemId = 8,
                 kHdrProductId = 16, kHdrEntryCount = 34, kHdrLocalApicAddress = 36;
constexpr uint8_t kOemId[8] = {'L', 'A', 'N', 'T', 'E', 'R', 'N', ' '};  // space-padded ASCII
constexpr uint8_t kProductId[12] = {'G', 'U', 'E', 'S', 'T', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

// Processor entry (MP 4.3.1): CPU flags bit 0 EN (usable), bit 1 BP (bootstrap processor); the
// CPU signature is CPUID.1:EAX's stepping (3:0), model (7:4) and family (11:8); the feature
// flags are CPUID.1:EDX.
constexpr uint8_t kCpuEnabled = 1u << 0, kCpuBootstrap = 1u << 1;
constexpr uint32_t kCpuSignature = 6u << 8;               // family 6, model 0, stepping 0
constexpr uint32_t kCpuFeatures = (1u << 0) | (1u << 9);  // FPU, APIC (on-chip local APIC)
// Bus entry (MP 4.3.2): the bus type string, six ASCII characters padded with spaces.
constexpr uint8_t kBusIsa[6] = {'I', 'S', 'A', ' ', ' ', ' '};
constexpr uint8_t kIsaBusId = 0;
// I/O APIC entry (MP 4.3.3): flags bit 0 EN (usable).
constexpr uint8_t kIoApicEnabled = 1u << 0;
// Interrupt entries (MP 4.3.4 / 4.3.5): flags PO (1:0) and EL (3:2), 0 = conforms to the bus.
constexpr uint16_t kFlagsConformToBus = 0;
constexpr uint8_t kAllLocalApics = 0xff;  // MP 4.3.5: destination local APIC ID FFh = all
constexpr uint8_t kLint0 = 0, kLint1 = 1;

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
void put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
template <size_t N>
void put_bytes(uint8_t* p, const uint8_t (&bytes)[N]) {
  for (size_t i = 0; i < N; ++i) p[i] = bytes[i];
}
uint8_t byte_sum(std::span<const uint8_t> bytes) {
  uint8_t sum = 0;
  for (uint8_t b : bytes) sum = static_cast<uint8_t>(sum + b);
  return sum;
}

// Writes entries one after another into guest memory and keeps the running byte sum the
// header's checksum needs, so no buffer the size of the whole table is needed.
class EntryWriter {
 public:
  EntryWriter(GuestMemory& memory, uint64_t at) : memory_(memory), cursor_(at) {}

  Result<void> put(std::span<const uint8_t> entry) {
    TRY(memory_.write(cursor_, entry));
    cursor_ += entry.size();
    sum_ = static_cast<uint8_t>(sum_ + byte_sum(entry));
    ++count_;
    return ok();
  }
  uint8_t sum() const { return sum_; }
  uint16_t count() const { return count_; }

 private:
  GuestMemory& memory_;
  uint64_t cursor_;
  uint8_t sum_ = 0;
  uint16_t count_ = 0;
};

Result<void> put_processor(EntryWriter& out, uint8_t apic_id, bool bootstrap) {
  uint8_t e[kProcessorEntryBytes] = {};
  e[0] = kEntryProcessor;
  e[1] = apic_id;
  e[2] = kLocalApicVersion;
  e[3] = static_cast<uint8_t>(kCpuEnabled | (bootstrap ? kCpuBootstrap : 0));
  put32(e + 4, kCpuSignature);
  put32(e + 8, kCpuFeatures);
  // bytes 12-19 reserved, 0
  return out.put(e);
}

Result<void> put_bus(EntryWriter& out) {
  uint8_t e[kShortEntryBytes] = {};
  e[0] = kEntryBus;
  e[1] = kIsaBusId;
  put_bytes(e + 2, kBusIsa);
  return out.put(e);
}

Result<void> put_ioapic(EntryWriter& out, uint8_t id, uint32_t address) {
  uint8_t e[kShortEntryBytes] = {};
  e[0] = kEntryIoApic;
  e[1] = id;
  e[2] = kIoApicVersion;
  e[3] = kIoApicEnabled;
  put32(e + 4, address);
  return out.put(e);
}

// Entry types 3 and 4 share one layout (MP 4.3.4, 4.3.5): type, interrupt type, flags (16 bits),
// source bus ID, source bus IRQ, destination APIC ID, destination pin (INTIN# or LINTIN#).
Result<void> put_interrupt(EntryWriter& out, uint8_t entry_type, uint8_t interrupt_type, uint8_t source_irq,
                           uint8_t destination_id, uint8_t destination_pin) {
  uint8_t e[kShortEntryBytes] = {};
  e[0] = entry_type;
  e[1] = interrupt_type;
  put16(e + 2, kFlagsConformToBus);
  e[4] = kIsaBusId;
  e[5] = source_irq;
  e[6] = destination_id;
  e[7] = destination_pin;
  return out.put(e);
}

// ISA IRQs that get an I/O interrupt entry: all 16 but the cascade.
constexpr uint32_t kIoInterruptEntries = kIsaIrqCount - 1;
constexpr uint32_t kLocalInterruptEntries = 2;  // ExtINT -> LINT0, NMI -> LINT1

}  // namespace

uint32_t config_table_bytes(uint16_t cpu_count) {
  return kHeaderBytes + uint32_t{cpu_count} * kProcessorEntryBytes +
         (1 + 1 + kIoInterruptEntries + kLocalInterruptEntries) * kShortEntryBytes;
}

Result<MpTableLayout> write(GuestMemory& memory, const MpConfig& config, uint64_t address) {
  if (config.cpu_count == 0 || config.cpu_count > kMaxCpus)
    return make_error(ErrorCode::kInvalidArgument, "MP table: CPU count must be 1-254", config.cpu_count);
  if (address % 16 != 0)
    return make_error(ErrorCode::kInvalidArgument,
                      "MP table: floating pointer not on a 16-byte boundary (MP 4.1)", address);
  const uint32_t table_bytes = config_table_bytes(config.cpu_count);
  if (address < kBiosAreaStart || address >= kBiosAreaEnd ||
      kBiosAreaEnd - address < kFloatingPointerBytes + uint64_t{table_bytes})
    return make_error(ErrorCode::kInvalidArgument,
                      "MP table: tables must lie inside the BIOS area 0xF0000-0xFFFFF", address);
  if (config.lapic_address == 0 || config.lapic_address >= k4GiB)
    return make_error(ErrorCode::kInvalidArgument,
                      "MP table: local APIC address must be nonzero and below 4 GiB", config.lapic_address);
  if (config.ioapic_address >= k4GiB)
    return make_error(ErrorCode::kInvalidArgument, "MP table: I/O APIC address must lie below 4 GiB",
                      config.ioapic_address);

  MpTableLayout layout;
  layout.floating_pointer_address = address;
  layout.config_table_address = address + kFloatingPointerBytes;
  layout.config_table_bytes = table_bytes;

  // Entries first (MP 4.3 asks for them sorted by type), then the header with their sum.
  EntryWriter entries(memory, layout.config_table_address + kHeaderBytes);
  for (uint16_t cpu = 0; cpu < config.cpu_count; ++cpu)
    TRY(put_processor(entries, static_cast<uint8_t>(cpu), cpu == 0));
  TRY(put_bus(entries));
  TRY(put_ioapic(entries, config.ioapic_id, static_cast<uint32_t>(config.ioapic_address)));
  for (uint8_t irq = 0; irq < kIsaIrqCount; ++irq) {
    if (irq == kCascadeIrq) continue;
    const uint8_t pin = irq == 0 ? kTimerIoApicPin : irq;
    TRY(put_interrupt(entries, kEntryIoInterrupt, kInterruptInt, irq, config.ioapic_id, pin));
  }
  TRY(put_interrupt(entries, kEntryLocalInterrupt, kInterruptExtInt, 0, kAllLocalApics, kLint0));
  TRY(put_interrupt(entries, kEntryLocalInterrupt, kInterruptNmi, 0, kAllLocalApics, kLint1));
  layout.entry_count = entries.count();

  uint8_t header[kHeaderBytes] = {};
  put_bytes(header, kHeaderSignature);
  put16(header + kHdrBaseTableLength, static_cast<uint16_t>(table_bytes));
  header[kHdrSpecRevision] = kSpecRevision;
  put_bytes(header + kHdrOemId, kOemId);
  put_bytes(header + kHdrProductId, kProductId);
  // OEM table pointer and size, extended table length and checksum: 0 (none).
  put16(header + kHdrEntryCount, layout.entry_count);
  put32(header + kHdrLocalApicAddress, static_cast<uint32_t>(config.lapic_address));
  header[kHdrChecksum] = static_cast<uint8_t>(0u - byte_sum(header) - entries.sum());
  TRY(memory.write(layout.config_table_address, header));

  uint8_t pointer[kFloatingPointerBytes] = {};
  put_bytes(pointer, kFloatingSignature);
  put32(pointer + kFpPhysicalAddress, static_cast<uint32_t>(layout.config_table_address));
  pointer[kFpLength] = kFpLengthParagraphs;
  pointer[kFpSpecRevision] = kSpecRevision;
  pointer[kFpFeature1] = 0;  // 0: the configuration table is present, no default configuration
  pointer[kFpFeature2] = 0;  // bit 7 IMCRP clear: virtual wire mode
  pointer[kFpChecksum] = static_cast<uint8_t>(0u - byte_sum(pointer));
  TRY(memory.write(address, pointer));
  return layout;
}

}  // namespace lantern::guest::mp_table
