// Finding, initialising and wiring the NIC. Kernel-only.
//
// Probe order: PCI is scanned (net/pci enumerate, brute force over the bus range) and the first
// supported NIC in (bus, device, function) order wins:
//   8086:100E (82540EM, QEMU -device e1000 and Bochs), 8086:100F (82545EM, same programming
//   model: Intel 8254x SDM 1.1) -> net/e1000;  1AF4:1041 (modern) or transitional 1AF4:1000 with
//   subsystem device 1 -> net/virtio (modern interface only, legacy I/O BAR untouched).
//
// Interrupts (one vector, on the BSP, which owns the stack):
//   * MSI if the function has an MSI capability (PCI 3.0 6.8.1): address 0xFEE00000 | BSP APIC
//     ID << 12, data = vector (Intel SDM Vol. 3A 11.11.1/11.11.2), edge-triggered.
//   * else MSI-X for virtio (table entry 0 for config, RX and TX; PCI 3.0 6.8.2).
//   * else INTx through the I/O APIC. GSI = the Interrupt Line register: on the i440FX/PIIX3
//     machines of QEMU (-M pc) and Bochs, firmware routes PIRQA-D to ISA IRQs and writes that
//     IRQ there (PCI 3.0 6.2.4), and the I/O APIC input is the ISA IRQ's GSI. Trigger and
//     polarity come from the MADT interrupt source override for that IRQ when there is one
//     (QEMU declares IRQs 5, 9, 10, 11 level/active-high: ACPI 6.5 5.2.12.5); otherwise
//     level-triggered, active-low, as PCI INTx# is (PCI 3.0 2.2.6).
//   * else (no pin, line 0xFF, or a routing error): polled mode, logged; the timer tick and the
//     idle loop call net::poll() anyway, so the NIC still works, only slower.
// The handler only acknowledges the device (ICR / ISR read, which deasserts INTx) and flags
// work for net::poll(); it never enters lwIP.
#pragma once

#include <cstdint>

#include "kernel/arch/x86_64/interrupts.h"
#include "kernel/lib/result.h"
#include "net/pci/pci.h"
#include "net/stack/nic_driver.h"

namespace lantern::net::kernel {

// Vectors (kernel/arch/x86_64/interrupts.h map): INTx uses kVectorIoApicBase + GSI like every
// I/O APIC input; MSI/MSI-X use kVectorNetMsi, above the 24 I/O APIC inputs (0x50..0x67).
inline constexpr uint8_t kVectorNetMsi = interrupts::kVectorNicMsi;

enum class IrqPreference : uint8_t { kAuto, kIntx, kPoll };  // cmdline net.irq=auto|intx|poll
enum class IrqMode : uint8_t { kNone, kMsi, kMsix, kIntx, kPolled };
const char* irq_mode_name(IrqMode mode);

struct ProbedNic {
  NicDriver* driver = nullptr;
  pci::PciAddress address{};
  uint16_t vendor_id = 0;
  uint16_t device_id = 0;
  IrqMode irq = IrqMode::kNone;
  uint8_t vector = 0;
  uint32_t gsi = 0;  // kIntx only
};

// Scans PCI, initialises the first supported NIC and wires its interrupt; `on_interrupt` runs
// in the handler after the device was acknowledged. kNotFound when there is no supported NIC;
// a driver's init error otherwise. Call once, on the BSP, with the I/O APIC initialised.
Result<ProbedNic> probe_nic(IrqPreference preference, void (*on_interrupt)());

// Interrupts taken / taken but not ours (shared INTx line, spurious).
uint64_t nic_interrupts();
uint64_t nic_interrupts_unclaimed();

}  // namespace lantern::net::kernel
