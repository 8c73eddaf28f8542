// Result<T>: the error-propagation type used throughout Lantern (kernel and host).
// Errors are values; panics are reserved for broken invariants.
#pragma once

#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

namespace lantern {

// Every error the kernel can report. Names are printed by the log and the console,
// so keep them snake_case-friendly and stable (see error_code_name()).
enum class ErrorCode : uint16_t {
  kOk = 0,
  kInvalidArgument,       // a caller passed something out of range
  kMalformed,             // a structure read from firmware/loader/guest/network is malformed
  kTruncated,             // a structure claims more bytes than it has
  kBadChecksum,           // an ACPI (or similar) checksum does not sum to zero
  kNotFound,              // the thing asked for does not exist
  kOutOfMemory,           // frame allocator or heap exhausted
  kAlreadyExists,         // e.g. mapping an already-mapped page
  kUnsupported,           // the hardware/firmware lacks a needed feature
  kBusy,                  // the resource is owned elsewhere (e.g. vCPU bound on another core)
  kFull,                  // a bounded queue is full
  kInvalidState,          // the object is in a state that forbids the operation
  kTimeout,               // something did not answer in time
  kVmxInstructionFailed,  // VMfailValid/VMfailInvalid; detail holds VM-instruction error
  kIoError,               // a device reported an error
};

constexpr const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "ok";
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kMalformed: return "malformed";
    case ErrorCode::kTruncated: return "truncated";
    case ErrorCode::kBadChecksum: return "bad_checksum";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kOutOfMemory: return "out_of_memory";
    case ErrorCode::kAlreadyExists: return "already_exists";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kBusy: return "busy";
    case ErrorCode::kFull: return "full";
    case ErrorCode::kInvalidState: return "invalid_state";
    case ErrorCode::kTimeout: return "timeout";
    case ErrorCode::kVmxInstructionFailed: return "vmx_instruction_failed";
    case ErrorCode::kIoError: return "io_error";
  }
  return "unknown";
}

// An error: a code, a static human-readable message, and one number of detail
// (an offset, an MSR, a VM-instruction error, ...). Messages must be string literals.
struct Error {
  ErrorCode code = ErrorCode::kOk;
  const char* message = "";
  uint64_t detail = 0;
};

constexpr Error make_error(ErrorCode code, const char* message, uint64_t detail = 0) {
  return Error{code, message, detail};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(const T& value) : has_value_(true) { new (&storage_.value) T(value); }        // NOLINT
  Result(T&& value) : has_value_(true) { new (&storage_.value) T(std::move(value)); }  // NOLINT
  Result(Error error) : has_value_(false) { new (&storage_.error) Error(error); }      // NOLINT

  Result(const Result& other) : has_value_(other.has_value_) {
    if (has_value_)
      new (&storage_.value) T(other.storage_.value);
    else
      new (&storage_.error) Error(other.storage_.error);
  }
  Result(Result&& other) noexcept : has_value_(other.has_value_) {
    if (has_value_)
      new (&storage_.value) T(std::move(other.storage_.value));
    else
      new (&storage_.error) Error(other.storage_.error);
  }
  Result& operator=(Result other) noexcept {
    destroy();
    has_value_ = other.has_value_;
    if (has_value_)
      new (&storage_.value) T(std::move(other.storage_.value));
    else
      new (&storage_.error) Error(other.storage_.error);
    return *this;
  }
  ~Result() { destroy(); }

  bool has_value() const { return has_value_; }
  explicit operator bool() const { return has_value_; }

  T& value() & { return storage_.value; }
  const T& value() const& { return storage_.value; }
  T&& value() && { return std::move(storage_.value); }
  T* operator->() { return &storage_.value; }
  const T* operator->() const { return &storage_.value; }
  T& operator*() & { return storage_.value; }
  const T& operator*() const& { return storage_.value; }

  const Error& error() const { return storage_.error; }

 private:
  void destroy() {
    if (has_value_) storage_.value.~T();
  }
  union Storage {
    Storage() {}
    ~Storage() {}
    T value;
    Error error;
  } storage_;
  bool has_value_;
};

// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(error), has_value_(false) {}  // NOLINT
  bool has_value() const { return has_value_; }
  explicit operator bool() const { return has_value_; }
  void value() const {}
  const Error& error() const { return error_; }

 private:
  Error error_{};
  bool has_value_ = true;
};

inline Result<void> ok() {
  return Result<void>();
}

}  // namespace lantern

// TRY(expr): evaluate a Result; on error return that error from the enclosing function,
// otherwise yield the value. Uses a GNU statement expression (g++ and clang both accept it).
#define LANTERN_TRY_CONCAT2(a, b) a##b
#define LANTERN_TRY_CONCAT(a, b) LANTERN_TRY_CONCAT2(a, b)
#define TRY(expr)                                                 \
  ({                                                              \
    auto&& LANTERN_TRY_CONCAT(try_result_, __LINE__) = (expr);    \
    if (!LANTERN_TRY_CONCAT(try_result_, __LINE__).has_value())   \
      return LANTERN_TRY_CONCAT(try_result_, __LINE__).error();   \
    std::move(LANTERN_TRY_CONCAT(try_result_, __LINE__)).value(); \
  })
