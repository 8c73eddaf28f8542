#include "kernel/core/panic.h"

#include <atomic>
#include <cstdarg>

#include "kernel/arch/x86_64/boot_layout.h"
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/interrupts.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/arch/x86_64/serial.h"
#include "kernel/lib/format.h"

namespace lantern {
namespace {

std::atomic<int> g_panic_owner{-1};

// Serialises panic output between CPUs, but never deadlocks: after a bounded wait a
// second panicking CPU prints anyway (interleaved output beats no output).
class PanicOutputLock {
 public:
  PanicOutputLock() {
    const int me = current_index();
    for (uint64_t i = 0; i < 50'000'000; ++i) {
      int expected = -1;
      if (g_panic_owner.compare_exchange_strong(expected, me) || expected == me) {
        owned_ = true;
        return;
      }
      cpu::pause();
    }
  }
  ~PanicOutputLock() {
    if (owned_) g_panic_owner.store(-1);
  }

 private:
  static int current_index() {
    PerCpu* c = this_cpu_or_null();
    return c ? static_cast<int>(c->index) : 0;
  }
  bool owned_ = false;
};

void put(const char* s) {
  serial::write(s);
}

void put_hex(const char* name, uint64_t v) {
  char buf[40];
  lib::format(buf, sizeof(buf), "%s=0x%016llx ", name, static_cast<unsigned long long>(v));
  put(buf);
}

bool plausible_kernel_address(uint64_t a) {
  // Frames live on kernel stacks: the image (top 2 GiB) or the direct map (heap stacks).
  return (a % 8) == 0 && (a >= KERNEL_VMA || (a >= DIRECT_MAP_BASE && a < MMIO_MAP_BASE));
}

void print_backtrace(uint64_t rip, uint64_t rbp) {
  put("backtrace:\n");
  char buf[48];
  lib::format(buf, sizeof(buf), "  #0 0x%016llx\n", static_cast<unsigned long long>(rip));
  put(buf);
  for (int depth = 1; depth < 24 && plausible_kernel_address(rbp); ++depth) {
    const uint64_t* frame = reinterpret_cast<const uint64_t*>(rbp);
    const uint64_t ret = frame[1];
    if (ret < KERNEL_VMA) break;
    lib::format(buf, sizeof(buf), "  #%d 0x%016llx\n", depth, static_cast<unsigned long long>(ret));
    put(buf);
    if (frame[0] <= rbp) break;  // stacks grow down: the caller's frame is above ours
    rbp = frame[0];
  }
  put("(resolve with: addr2line -fipe build/lantern.elf <address>)\n");
}

struct NamedValue {
  const char* name;
  uint64_t value;
};

// Prints name=0x... pairs, `per_line` to a line.
template <size_t N>
void put_rows(const NamedValue (&values)[N], size_t per_line) {
  for (size_t i = 0; i < N; ++i) {
    put_hex(values[i].name, values[i].value);
    if ((i + 1) % per_line == 0 || i + 1 == N) put("\n");
  }
}

void put_header(const char* reason) {
  put("\nLANTERN PANIC ");
  put(reason);
  put("\n");
}

void print_cpu_line(uint64_t vector, uint64_t error_code, bool has_vector) {
  PerCpu* c = this_cpu_or_null();
  char buf[96];
  if (has_vector) {
    lib::format(buf, sizeof(buf), "cpu=%u apic=%u vector=%llu error_code=0x%llx\n", c ? c->index : 0,
                c ? c->apic_id : 0, static_cast<unsigned long long>(vector),
                static_cast<unsigned long long>(error_code));
  } else {
    lib::format(buf, sizeof(buf), "cpu=%u apic=%u\n", c ? c->index : 0, c ? c->apic_id : 0);
  }
  put(buf);
}

void print_control_registers() {
  put_hex("cr0", cpu::read_cr0());
  put_hex("cr2", cpu::read_cr2());
  put_hex("cr3", cpu::read_cr3());
  put_hex("cr4", cpu::read_cr4());
  put("\n");
}

}  // namespace

void panic(const char* fmt, ...) {
  cpu::disable_interrupts();
  {
    PanicOutputLock lock;
    char message[256];
    va_list args;
    va_start(args, fmt);
    lib::format_v(message, sizeof(message), fmt, args);
    va_end(args);
    put_header(message);
    print_cpu_line(0, 0, false);
    uint64_t rsp, rbp;
    asm volatile("movq %%rsp, %0; movq %%rbp, %1" : "=r"(rsp), "=r"(rbp));
    put_hex("rsp", rsp);
    put_hex("rbp", rbp);
    put_hex("rflags", cpu::read_rflags());
    put("\n");
    print_control_registers();
    print_backtrace(reinterpret_cast<uint64_t>(__builtin_return_address(0)), rbp);
    serial::drain();
  }
  cpu::halt_forever();
}

void panic_with_frame(const interrupts::Frame& f, const char* reason) {
  cpu::disable_interrupts();
  {
    PanicOutputLock lock;
    put_header(reason);
    print_cpu_line(f.vector, f.error_code, true);
    const NamedValue registers[] = {{"rip", f.rip}, {"rsp", f.rsp}, {"rflags", f.rflags}, {"cs", f.cs},
                                    {"ss", f.ss},   {"rax", f.rax}, {"rbx", f.rbx},       {"rcx", f.rcx},
                                    {"rdx", f.rdx}, {"rsi", f.rsi}, {"rdi", f.rdi},       {"rbp", f.rbp},
                                    {"r8 ", f.r8},  {"r9 ", f.r9},  {"r10", f.r10},       {"r11", f.r11},
                                    {"r12", f.r12}, {"r13", f.r13}, {"r14", f.r14},       {"r15", f.r15}};
    put_rows(registers, 5);
    print_control_registers();
    print_backtrace(f.rip, f.rbp);
    serial::drain();
  }
  cpu::halt_forever();
}

}  // namespace lantern
