// guest::deliver_ipi(): an IPI from one vCPU's vlapic to the vCPUs of its VM (SDM Vol. 3A 11.6).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "guest/vlapic.h"

namespace lantern::guest {
namespace {

struct FakeVcpu {
  uint32_t id = 0;
  uint32_t logical_bits = 0;  // accepts a logical MDA sharing a bit with this
  std::vector<std::string>* log = nullptr;

  void post_interrupt(uint8_t vector, bool level) {
    log->push_back("int " + std::to_string(id) + " " + std::to_string(vector) + (level ? " level" : ""));
  }
  void post_nmi() { log->push_back("nmi " + std::to_string(id)); }
  void post_init() { log->push_back("init " + std::to_string(id)); }
  void post_sipi(uint8_t vector) { log->push_back("sipi " + std::to_string(id) + " " + std::to_string(vector)); }
  bool accepts_logical_destination(uint32_t mda) const { return (mda & logical_bits) != 0; }
};

// vCPUs 0, 1, 2 and 5 exist; 3, 4 and 6.. do not.
struct Vm {
  std::vector<std::string> log;
  FakeVcpu vcpus[6];
  Vm() {
    for (uint32_t i = 0; i < 6; ++i) vcpus[i] = FakeVcpu{i, 1u << i, &log};
  }
  std::vector<std::string> send(const IpiRequest& ipi, uint32_t source, bool x2apic = false) {
    log.clear();
    deliver_ipi(ipi, source, x2apic, [this](uint32_t id) -> FakeVcpu* {
      return (id <= 2 || id == 5) ? &vcpus[id] : nullptr;
    });
    return log;
  }
};

IpiRequest fixed(uint8_t vector, uint32_t destination) {
  IpiRequest r;
  r.vector = vector;
  r.destination = destination;
  return r;
}

using Log = std::vector<std::string>;

TEST(GuestIpiDelivery, PhysicalDestinationReachesThatVcpuOnly) {
  Vm vm;
  EXPECT_EQ(vm.send(fixed(0x40, 2), 0), (Log{"int 2 64"}));
  EXPECT_EQ(vm.send(fixed(0x40, 3), 0), Log{});  // no vCPU 3
  IpiRequest level = fixed(0x41, 5);
  level.level_triggered = true;
  EXPECT_EQ(vm.send(level, 0), (Log{"int 5 65 level"}));
}

TEST(GuestIpiDelivery, BroadcastAndShorthands) {
  Vm vm;
  EXPECT_EQ(vm.send(fixed(0x30, 0xff), 1), (Log{"int 0 48", "int 1 48", "int 2 48", "int 5 48"}));
  // In x2APIC mode 0xFF is an ID, all ones the broadcast (SDM 11.12.9).
  EXPECT_EQ(vm.send(fixed(0x30, 0xff), 1, true), Log{});
  EXPECT_EQ(vm.send(fixed(0x30, 0xffffffffu), 1, true).size(), 4u);
  IpiRequest self = fixed(0x31, 0);
  self.shorthand = IpiShorthand::kSelf;
  EXPECT_EQ(vm.send(self, 2), (Log{"int 2 49"}));
  IpiRequest others = fixed(0x32, 0);
  others.shorthand = IpiShorthand::kAllExcludingSelf;
  EXPECT_EQ(vm.send(others, 0), (Log{"int 1 50", "int 2 50", "int 5 50"}));
}

TEST(GuestIpiDelivery, LogicalDestinationAsksEachTarget) {
  Vm vm;
  IpiRequest logical = fixed(0x50, (1u << 1) | (1u << 5));
  logical.logical_destination = true;
  EXPECT_EQ(vm.send(logical, 0), (Log{"int 1 80", "int 5 80"}));
  // Lowest priority: one target, the first that matches (SDM 11.6.2.4).
  logical.delivery_mode = IpiDeliveryMode::kLowestPriority;
  EXPECT_EQ(vm.send(logical, 0), (Log{"int 1 80"}));
}

TEST(GuestIpiDelivery, NmiInitAndStartup) {
  Vm vm;
  IpiRequest nmi = fixed(0, 1);
  nmi.delivery_mode = IpiDeliveryMode::kNmi;
  EXPECT_EQ(vm.send(nmi, 0), (Log{"nmi 1"}));
  IpiRequest init = fixed(0, 0xff);
  init.delivery_mode = IpiDeliveryMode::kInit;
  init.shorthand = IpiShorthand::kAllExcludingSelf;
  EXPECT_EQ(vm.send(init, 0), (Log{"init 1", "init 2", "init 5"}));
  // INIT level de-assert (SDM 11.6.1): no vCPU sees it.
  init.level_triggered = true;
  init.level_assert = false;
  EXPECT_EQ(vm.send(init, 0), Log{});
  IpiRequest sipi = fixed(0x9f, 2);
  sipi.delivery_mode = IpiDeliveryMode::kStartup;
  EXPECT_EQ(vm.send(sipi, 0), (Log{"sipi 2 159"}));
  IpiRequest smi = fixed(0, 2);
  smi.delivery_mode = IpiDeliveryMode::kSmi;
  EXPECT_EQ(vm.send(smi, 0), Log{});
}

}  // namespace
}  // namespace lantern::guest
