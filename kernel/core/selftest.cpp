#include "kernel/core/selftest.h"

#include "kernel/core/log.h"
#include "kernel/core/memory.h"
#include "kernel/mm/frame_allocator.h"

namespace lantern::selftest {
namespace {

struct TestCase {
  const char* name;
  TestFunction fn;
};
constexpr int kMaxTests = 128;
TestCase g_tests[kMaxTests];
int g_count = 0;
int g_dropped = 0;

}  // namespace

Registrar::Registrar(const char* name, TestFunction fn) {
  if (g_count < kMaxTests) {
    g_tests[g_count++] = {name, fn};
  } else {
    ++g_dropped;  // reported as a failure by run_all(): no test is lost silently
  }
}

Summary run_all() {
  Summary s{0, 0};
  const memory::Stats before = memory::stats();
  for (int i = 0; i < g_count; ++i) {
    const uint64_t frames_before = memory::stats().free_frames;
    auto result = g_tests[i].fn();
    const uint64_t frames_after = memory::stats().free_frames;
    if (frames_after < frames_before) {
      LOG_INFO("selftest %s: %llu KiB of frames still allocated after it", g_tests[i].name,
               static_cast<unsigned long long>((frames_before - frames_after) * mm::kFrameSize / 1024));
    }
    if (result) {
      log::contract_line("SELFTEST %s ok", g_tests[i].name);
      ++s.passed;
    } else {
      log::contract_line("SELFTEST %s FAIL %s (%s, line/detail %llu)", g_tests[i].name,
                         result.error().message, error_code_name(result.error().code),
                         static_cast<unsigned long long>(result.error().detail));
      ++s.failed;
    }
  }
  if (g_dropped > 0) {
    log::contract_line("SELFTEST registry FAIL %d tests did not fit in the registry", g_dropped);
    ++s.failed;
  }
  // What the tests left allocated: guest VMs, vCPUs and their pages are freed when a test ends.
  const memory::Stats after = memory::stats();
  LOG_INFO("selftest: free memory before %llu KiB, after %llu KiB; heap in use before %llu, after %llu bytes",
           static_cast<unsigned long long>(before.free_frames * mm::kFrameSize / 1024),
           static_cast<unsigned long long>(after.free_frames * mm::kFrameSize / 1024),
           static_cast<unsigned long long>(before.heap_bytes_in_use),
           static_cast<unsigned long long>(after.heap_bytes_in_use));
  log::contract_line("selftest: %d passed, %d failed", s.passed, s.failed);
  return s;
}

}  // namespace lantern::selftest
