// In-kernel self-tests: what only the real machine (or emulator) can prove. Host-testable
// logic is tested under GoogleTest instead (tests/host/).
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "kernel/arch/x86_64/apic.h"
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/interrupts.h"
#include "kernel/arch/x86_64/paging.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/boot/cmdline.h"
#include "kernel/core/boot_state.h"
#include "kernel/core/log.h"
#include "kernel/core/memory.h"
#include "kernel/core/selftest.h"
#include "kernel/core/time.h"
#include "kernel/lib/string.h"

namespace lantern {
namespace {

LANTERN_SELFTEST(boot_information) {
  const auto& mb = boot_state().multiboot;
  SELFTEST_EXPECT(mb.memory_map().size() > 0);
  SELFTEST_EXPECT(mb.cmdline.has_value());
  SELFTEST_EXPECT(cmdline_has_flag(*mb.cmdline, "selftest"));
  SELFTEST_EXPECT(mb.usable_memory_bytes() > (16ull << 20));
  return ok();
}

LANTERN_SELFTEST(json_roundtrip) {
  using nlohmann::json;
  json doc = {{"name", "lantern"}, {"cpus", cpu_count()}, {"big", 0xfedcba9876543210ull},
              {"ratio", 0.15625},  {"list", {1, 2, 3}},   {"nested", {{"ok", true}, {"none", nullptr}}}};
  const std::string text = doc.dump();
  const json back = json::parse(text, nullptr, false);
  SELFTEST_EXPECT(!back.is_discarded());
  SELFTEST_EXPECT(back == doc);
  SELFTEST_EXPECT(back["big"].get<uint64_t>() == 0xfedcba9876543210ull);
  SELFTEST_EXPECT(back["ratio"].get<double>() == 0.15625);
  SELFTEST_EXPECT(back.dump() == text);
  SELFTEST_EXPECT(json::parse("{\"unterminated\": [1, 2", nullptr, false).is_discarded());
  SELFTEST_EXPECT(json::parse("3.141592653589793", nullptr, false).get<double>() == 3.141592653589793);
  return ok();
}

LANTERN_SELFTEST(std_containers) {
  std::vector<uint64_t> v;
  for (uint64_t i = 0; i < 20000; ++i) v.push_back(i * i);
  SELFTEST_EXPECT(v.size() == 20000 && v[19999] == 19999ull * 19999ull);
  std::map<std::string, int> m;
  for (int i = 0; i < 500; ++i) m["key" + std::to_string(i)] = i;
  SELFTEST_EXPECT(m.size() == 500 && m["key123"] == 123);
  std::string s(1000, 'x');
  s += "tail";
  SELFTEST_EXPECT(s.size() == 1004 && s.substr(1000) == "tail");
  std::variant<int, std::string> var = std::string("text");
  SELFTEST_EXPECT(std::holds_alternative<std::string>(var));
  std::optional<int> opt;
  SELFTEST_EXPECT(!opt.has_value());
  std::span<const uint64_t> sp(v.data() + 10, 5);
  SELFTEST_EXPECT(sp[0] == 100);
  return ok();
}

LANTERN_SELFTEST(heap_alignment_and_reuse) {
  const auto before = memory::stats().heap_bytes_in_use;
  void* blocks[64];
  for (int i = 0; i < 64; ++i) {
    const size_t align = size_t{16} << (i % 9);  // 16 .. 4096
    blocks[i] = kmalloc(24 + i * 37, align);
    SELFTEST_EXPECT(blocks[i] != nullptr);
    SELFTEST_EXPECT(reinterpret_cast<uintptr_t>(blocks[i]) % align == 0);
    lib::mem_set(blocks[i], i, 24 + i * 37);
  }
  for (int i = 0; i < 64; ++i) {
    SELFTEST_EXPECT(static_cast<uint8_t*>(blocks[i])[23 + i * 37] == i);
    kfree(blocks[i]);
  }
  SELFTEST_EXPECT(memory::stats().heap_bytes_in_use == before);
  return ok();
}

LANTERN_SELFTEST(frame_allocator_on_real_memory) {
  const auto free_before = memory::stats().free_frames;
  uint64_t frames[32];
  for (auto& f : frames) {
    auto r = memory::alloc_frame();
    SELFTEST_EXPECT(r.has_value());
    f = *r;
    SELFTEST_EXPECT(f % paging::kPageSize == 0 && f >= (1u << 20));
    *paging::phys_to_ptr<uint64_t>(f) = f;  // the frame is real, writable RAM
  }
  for (auto f : frames) SELFTEST_EXPECT(*paging::phys_to_ptr<uint64_t>(f) == f);
  for (auto f : frames) SELFTEST_EXPECT(memory::free_frame(f).has_value());
  SELFTEST_EXPECT(memory::stats().free_frames == free_before);
  SELFTEST_EXPECT(!memory::free_frame(frames[0]).has_value());  // double free is an error
  return ok();
}

LANTERN_SELFTEST(paging_map_translate_unmap) {
  constexpr uint64_t kTestVirt = 0xffffa00000000000ull;
  auto frame = memory::alloc_frame();
  SELFTEST_EXPECT(frame.has_value());
  SELFTEST_EXPECT(paging::map(kTestVirt, *frame, paging::kWritable, paging::PageSize::k4KiB).has_value());
  SELFTEST_EXPECT(!paging::map(kTestVirt, *frame, paging::kWritable, paging::PageSize::k4KiB).has_value());
  auto translated = paging::translate(kTestVirt + 0x123);
  SELFTEST_EXPECT(translated.has_value() && *translated == *frame + 0x123);
  *reinterpret_cast<volatile uint64_t*>(kTestVirt) = 0x1234abcd;
  SELFTEST_EXPECT(*paging::phys_to_ptr<uint64_t>(*frame) == 0x1234abcd);
  SELFTEST_EXPECT(paging::unmap(kTestVirt, paging::PageSize::k4KiB).has_value());
  SELFTEST_EXPECT(!paging::translate(kTestVirt).has_value());
  SELFTEST_EXPECT(memory::free_frame(*frame).has_value());
  return ok();
}

std::atomic<int> g_breakpoints{0};
void on_breakpoint(interrupts::Frame&) {
  g_breakpoints.fetch_add(1);
  asm volatile("pxor %%xmm0, %%xmm0" ::: "xmm0");  // the handler clobbers SSE state on purpose
}

LANTERN_SELFTEST(exception_handler_returns_and_keeps_sse) {
  interrupts::set_handler(3, &on_breakpoint);
  const uint64_t pattern = 0x0123456789abcdefull;
  uint64_t out = 0;
  asm volatile(
      "movq %1, %%xmm0\n"
      "int3\n"
      "movq %%xmm0, %0\n"
      : "=r"(out)
      : "r"(pattern)
      : "xmm0", "memory");
  interrupts::set_handler(3, nullptr);
  SELFTEST_EXPECT(g_breakpoints.load() == 1);
  SELFTEST_EXPECT(out == pattern);
  return ok();
}

LANTERN_SELFTEST(monotonic_clock_and_timer_ticks) {
  const uint64_t t0 = time::now_ns();
  const uint64_t ticks0 = this_cpu().timer_ticks;
  while (time::now_ns() - t0 < 50'000'000) cpu::enable_interrupts_and_halt();  // 50 ms
  const uint64_t ticks = this_cpu().timer_ticks - ticks0;
  SELFTEST_EXPECT(time::now_ns() > t0);
  SELFTEST_EXPECT(ticks >= 3 && ticks <= 8);  // 100 Hz: about 5 ticks in 50 ms
  return ok();
}

std::atomic<uint32_t> g_ipi_seen_mask{0};
void on_call_ipi(interrupts::Frame&) {
  g_ipi_seen_mask.fetch_or(1u << this_cpu().index);
}

LANTERN_SELFTEST(every_cpu_online_and_answers_ipis) {
  SELFTEST_EXPECT(cpu_count() == boot_state().cpus_expected);
  interrupts::set_handler(interrupts::kVectorCallFunction, &on_call_ipi);
  g_ipi_seen_mask.store(0);
  uint32_t expected = 0;
  for (uint32_t i = 1; i < cpu_count() && i < 32; ++i) {
    PerCpu* c = cpu_by_index(i);
    SELFTEST_EXPECT(c != nullptr && c->online.load());
    expected |= 1u << i;
    apic::send_fixed_ipi(c->apic_id, interrupts::kVectorCallFunction);
  }
  const uint64_t deadline = time::now_ns() + 200'000'000;
  while ((g_ipi_seen_mask.load() & expected) != expected && time::now_ns() < deadline) cpu::pause();
  interrupts::set_handler(interrupts::kVectorCallFunction, nullptr);
  SELFTEST_EXPECT((g_ipi_seen_mask.load() & expected) == expected);
  return ok();
}

}  // namespace
}  // namespace lantern

namespace lantern {
namespace {

LANTERN_SELFTEST(log_ring_keeps_boot_records) {
  static lib::LogRecord records[256];
  uint64_t dropped = 0;
  const uint64_t n = log::read_ring(0, std::span<lib::LogRecord>(records, 256), &dropped);
  SELFTEST_EXPECT(n > 0);
  bool saw_acpi = false;
  for (uint64_t i = 0; i < n; ++i) {
    if (records[i].text_view().starts_with("acpi: ")) saw_acpi = true;
  }
  SELFTEST_EXPECT(saw_acpi);
  SELFTEST_EXPECT(dropped == 0);
  return ok();
}

}  // namespace
}  // namespace lantern
