// The C++ runtime the kernel needs without libsupc++'s exception machinery: operator new and
// delete on the kernel heap, libstdc++'s __throw_* hooks (exceptions are off, so each one is a
// panic with the message), static-initialisation guards, and stubs that keep libstdc++'s
// unwinder out of the link (see /work/shared/dependencies.md).
#include <bits/functexcept.h>

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#include "kernel/lib/format.h"
#include "kernel/runtime/heap_hooks.h"
#include "kernel/runtime/panic.h"

// ---- operator new / delete ----------------------------------------------------------------

namespace {

// The alignment plain new guarantees (__STDCPP_DEFAULT_NEW_ALIGNMENT__, 16 on x86-64).
constexpr size_t kDefaultAlign = __STDCPP_DEFAULT_NEW_ALIGNMENT__;

void* allocate_or_panic(size_t size, size_t align) {
  void* p = lantern::kmalloc(size, align);
  // Exceptions are off, so there is no std::bad_alloc to throw.
  if (p == nullptr) lantern::panic("out of memory: operator new(%zu, align %zu)", size, align);
  return p;
}

size_t checked_align(std::align_val_t align) {
  const auto a = static_cast<size_t>(align);
  if (a == 0 || (a & (a - 1)) != 0) lantern::panic("operator new: bad alignment %zu", a);
  return a < kDefaultAlign ? kDefaultAlign : a;
}

}  // namespace

void* operator new(size_t size) {
  return allocate_or_panic(size, kDefaultAlign);
}
void* operator new[](size_t size) {
  return allocate_or_panic(size, kDefaultAlign);
}
void* operator new(size_t size, std::align_val_t align) {
  return allocate_or_panic(size, checked_align(align));
}
void* operator new[](size_t size, std::align_val_t align) {
  return allocate_or_panic(size, checked_align(align));
}
void* operator new(size_t size, const std::nothrow_t&) noexcept {
  return lantern::kmalloc(size, kDefaultAlign);
}
void* operator new[](size_t size, const std::nothrow_t&) noexcept {
  return lantern::kmalloc(size, kDefaultAlign);
}
void* operator new(size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  return lantern::kmalloc(size, checked_align(align));
}
void* operator new[](size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  return lantern::kmalloc(size, checked_align(align));
}

void operator delete(void* p) noexcept {
  lantern::kfree(p);
}
void operator delete[](void* p) noexcept {
  lantern::kfree(p);
}
void operator delete(void* p, size_t) noexcept {
  lantern::kfree(p);
}
void operator delete[](void* p, size_t) noexcept {
  lantern::kfree(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  lantern::kfree(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  lantern::kfree(p);
}
void operator delete(void* p, size_t, std::align_val_t) noexcept {
  lantern::kfree(p);
}
void operator delete[](void* p, size_t, std::align_val_t) noexcept {
  lantern::kfree(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  lantern::kfree(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  lantern::kfree(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  lantern::kfree(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  lantern::kfree(p);
}

// ---- libstdc++'s exception hooks (bits/functexcept.h) -------------------------------------

namespace std {

void __throw_bad_exception() {
  lantern::panic("std::bad_exception");
}
void __throw_bad_alloc() {
  lantern::panic("out of memory (std::bad_alloc)");
}
void __throw_bad_array_new_length() {
  lantern::panic("std::bad_array_new_length");
}
void __throw_bad_cast() {
  lantern::panic("std::bad_cast");
}
void __throw_bad_typeid() {
  lantern::panic("std::bad_typeid");
}
void __throw_logic_error(const char* what) {
  lantern::panic("std::logic_error: %s", what);
}
void __throw_domain_error(const char* what) {
  lantern::panic("std::domain_error: %s", what);
}
void __throw_invalid_argument(const char* what) {
  lantern::panic("std::invalid_argument: %s", what);
}
void __throw_length_error(const char* what) {
  lantern::panic("std::length_error: %s", what);
}
void __throw_out_of_range(const char* what) {
  lantern::panic("std::out_of_range: %s", what);
}
void __throw_out_of_range_fmt(const char* fmt, ...) {
  // libstdc++ passes printf-style messages ("%s: __n (which is %zu) >= this->size() ...").
  char what[256];
  va_list args;
  va_start(args, fmt);
  lantern::lib::format_v(what, sizeof(what), fmt, args);
  va_end(args);
  lantern::panic("std::out_of_range: %s", what);
}
void __throw_runtime_error(const char* what) {
  lantern::panic("std::runtime_error: %s", what);
}
void __throw_range_error(const char* what) {
  lantern::panic("std::range_error: %s", what);
}
void __throw_overflow_error(const char* what) {
  lantern::panic("std::overflow_error: %s", what);
}
void __throw_underflow_error(const char* what) {
  lantern::panic("std::underflow_error: %s", what);
}
void __throw_ios_failure(const char* what) {
  lantern::panic("std::ios_base::failure: %s", what);
}
void __throw_ios_failure(const char* what, int err) {
  lantern::panic("std::ios_base::failure: %s (error %d)", what, err);
}
void __throw_system_error(int err) {
  lantern::panic("std::system_error: error %d", err);
}
void __throw_future_error(int err) {
  lantern::panic("std::future_error: error %d", err);
}
void __throw_bad_function_call() {
  lantern::panic("std::bad_function_call");
}

// std::get_deleter() support for make_shared control blocks. Without RTTI the only tag ever
// compared is _S_ti()'s fake type_info, checked by address before this is called, so any
// real type_info here is never the make_shared tag.
bool _Sp_make_shared_tag::_S_eq(const type_info&) noexcept {
  return false;
}

}  // namespace std

// ---- Itanium C++ ABI ----------------------------------------------------------------------

extern "C" {

// Static-local initialisation guards (Itanium C++ ABI 3.3.2). Byte 0 of the 64-bit guard is
// "initialised" (the compiler tests it inline before calling acquire); byte 1 is a spin lock
// held while one CPU runs the initialiser. SMP-safe. A static initialiser that re-enters
// itself, or runs in an interrupt handler that interrupted it on the same CPU, would spin
// forever: keep such initialisers trivial.
int __cxa_guard_acquire(uint64_t* guard) {
  auto* bytes = reinterpret_cast<uint8_t*>(guard);
  for (;;) {
    if (__atomic_load_n(&bytes[0], __ATOMIC_ACQUIRE) != 0) return 0;
    uint8_t expected = 0;
    if (__atomic_compare_exchange_n(&bytes[1], &expected, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
      if (__atomic_load_n(&bytes[0], __ATOMIC_ACQUIRE) != 0) {  // finished while we waited
        __atomic_store_n(&bytes[1], 0, __ATOMIC_RELEASE);
        return 0;
      }
      return 1;  // caller runs the initialiser, then calls __cxa_guard_release
    }
    while (__atomic_load_n(&bytes[1], __ATOMIC_RELAXED) != 0) __builtin_ia32_pause();
  }
}

void __cxa_guard_release(uint64_t* guard) {
  auto* bytes = reinterpret_cast<uint8_t*>(guard);
  __atomic_store_n(&bytes[0], 1, __ATOMIC_RELEASE);
  __atomic_store_n(&bytes[1], 0, __ATOMIC_RELEASE);
}

void __cxa_guard_abort(uint64_t* guard) {
  auto* bytes = reinterpret_cast<uint8_t*>(guard);
  __atomic_store_n(&bytes[1], 0, __ATOMIC_RELEASE);
}

// The kernel never exits, so destructors of static objects are never run.
int __cxa_atexit(void (*)(void*), void*, void*) {
  return 0;
}
void* __dso_handle = &__dso_handle;

[[noreturn]] void __cxa_pure_virtual() {
  lantern::panic("pure virtual function called");
}
[[noreturn]] void __cxa_deleted_virtual() {
  lantern::panic("deleted virtual function called");
}
[[noreturn]] void __cxa_throw_bad_array_new_length() {
  lantern::panic("std::bad_array_new_length");
}

// Exception-handling entry points: nothing in the kernel throws (-fno-exceptions), but
// libstdc++.a objects reference these. Defining them keeps the unwinder out of the link.
[[noreturn]] void __gxx_personality_v0() {
  lantern::panic("__gxx_personality_v0 called");
}
[[noreturn]] void _Unwind_Resume(void*) {
  lantern::panic("_Unwind_Resume called");
}
[[noreturn]] void* __cxa_begin_catch(void*) {
  lantern::panic("__cxa_begin_catch called");
}
[[noreturn]] void __cxa_end_catch() {
  lantern::panic("__cxa_end_catch called");
}
[[noreturn]] void __cxa_rethrow() {
  lantern::panic("__cxa_rethrow called");
}
[[noreturn]] void* __cxa_allocate_exception(size_t) {
  lantern::panic("__cxa_allocate_exception called");
}
[[noreturn]] void __cxa_free_exception(void*) {
  lantern::panic("__cxa_free_exception called");
}
[[noreturn]] void __cxa_throw(void*, void*, void (*)(void*)) {
  lantern::panic("__cxa_throw called");
}
[[noreturn]] void __cxa_call_unexpected(void*) {
  lantern::panic("__cxa_call_unexpected called");
}
[[noreturn]] void __cxa_call_terminate(void*) {
  lantern::panic("__cxa_call_terminate called");
}

// Only reached if some code is built with -fstack-protector despite the kernel flags.
[[noreturn]] void __stack_chk_fail() {
  lantern::panic("stack smashing detected");
}

}  // extern "C"

namespace std {
[[noreturn]] void terminate() noexcept {
  lantern::panic("std::terminate called");
}
}  // namespace std
