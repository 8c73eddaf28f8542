// What the console API reads and asks for, as plain data, and the one seam to the hypervisor:
// ConsoleBackend. Portable: the kernel implements the backend over vmx/ (web/kernel/), host
// tests use a fake. Handlers (web/api/) shape these structs into JSON; they never touch vmx/hw.
//
// Threading: every call is made on the core that owns lwIP (the BSP) from the HTTP server. A
// call that needs another core (a snapshot) waits for it at most the backend's timeout and then
// fails with kTimeout (the API answers 503).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/lib/result.h"
#include "guest/general_registers.h"
#include "guest/pending_events.h"

namespace lantern::web::api {

// Which virtualization backend runs a vCPU (and the machine): "vmx" (Intel) or "svm" (AMD).
enum class Backend : uint8_t { kVmx, kSvm };

// CPUID 8000_000AH as the SVM backend reads it (APM Vol. 3 E.4.9, svm/svm_capabilities.h).
struct SvmCapabilitySummary {
  bool nested_paging = false, next_rip_save = false, vmcb_clean = false, flush_by_asid = false;
  bool decode_assists = false, pause_filter = false, avic = false, vgif = false, lbr_virtualization = false;
  uint32_t revision = 0;
  uint32_t asids = 0;  // NASID
};

struct VmxCapabilitySummary {
  bool ept = false, ept_large_pages = false, ept_1g_pages = false, vpid = false;
  bool unrestricted_guest = false, preemption_timer = false, nmi_window = false;
  bool activity_hlt = false, true_controls = false, xsaves = false;
  uint32_t vmcs_revision = 0;
};

struct NetPoolLevel {  // one lwIP memory pool (memp) or the heap
  std::string name;    // "TCP_PCB", "PBUF_POOL", "heap", ...
  uint64_t used = 0;
  uint64_t max = 0;     // high-water mark
  uint64_t avail = 0;   // capacity
  uint64_t errors = 0;  // failed allocations
};

// The kernel heap and the physical frame allocator, for leak checks over time (the soak test compares
// them before and after hours of traffic).
struct MemoryLevels {
  uint64_t heap_bytes_in_use = 0;      // live allocations, block headers included
  uint64_t heap_bytes_reserved = 0;    // in use + free: what the heap holds from the frame allocator
  uint64_t heap_live_allocations = 0;  // allocations not yet released
  uint64_t frames_total = 0;           // 4 KiB frames the allocator manages
  uint64_t frames_free = 0;
};

struct SystemSummary {
  std::string name = "lantern";
  std::string version;
  uint64_t uptime_ms = 0;
  uint32_t cpus_online = 0;
  uint32_t vmx_cores = 0;      // cores in VMX operation
  bool vmx_available = false;  // Lantern can run guests
  bool vmx_cpuid = false;      // CPUID.01H:ECX.VMX[bit 5]
  std::string vmx_reason;      // why not available ("" when available)
  VmxCapabilitySummary vmx_caps;
  std::string hv = "none";  // the backend running guests: "vmx", "svm" or "none"
  uint32_t svm_cores = 0;   // cores in SVM operation (EFER.SVME and a host save area)
  bool svm_available = false;
  bool svm_cpuid = false;  // CPUID 8000_0001H:ECX.SVM[bit 2]
  std::string svm_reason;  // why not available ("" when available)
  SvmCapabilitySummary svm_caps;
  uint32_t vcpus = 0;
  std::string cmdline;
  // Network and console
  std::string ip;   // "10.0.2.15" or "none"
  std::string nic;  // "e1000", "virtio-net", "none"
  uint64_t http_connections_open = 0;
  uint64_t http_connections_total = 0;
  uint64_t http_requests = 0;
  uint64_t http_refused = 0;
  uint64_t http_framing_errors = 0;  // 400/413/414/431/501 answered by the server itself
  uint64_t http_timeouts = 0;        // 408s, idle closes, stalled sends reset
  uint64_t http_aborted = 0;         // connections reset
  std::vector<NetPoolLevel> net_pools;
  MemoryLevels memory;
};

enum class CpuVmxState : uint8_t { kOn, kOff, kUnsupported };
struct CpuSummary {
  uint32_t index = 0;
  uint32_t apic_id = 0;
  bool bsp = false;
  CpuVmxState vmx = CpuVmxState::kUnsupported;
  std::vector<std::pair<uint32_t, uint32_t>> vcpus;  // (vm, vcpu) bound here
  CpuVmxState svm = CpuVmxState::kUnsupported;       // on, off (VMX runs the core) or unsupported
};

// kRunning: launched and taking its turns (including HLT sleeps, see in_hlt). kHalted: parked
// until something restarts it (INIT, waiting for a SIPI). kStopped: stopped for good, with a reason.
enum class VcpuState : uint8_t { kCreated, kRunning, kHalted, kStopped };
struct VcpuSummary {
  Backend backend = Backend::kVmx;
  uint32_t vm = 0;
  uint32_t vcpu = 0;
  int32_t cpu = -1;  // bound core index, -1 when unbound
  VcpuState state = VcpuState::kCreated;
  bool launched = false;
  bool in_hlt = false;  // running, but sleeping in HLT until its next interrupt (activity state HLT)
  uint64_t exits = 0;
  std::optional<uint32_t> last_exit_reason;  // VMX: basic reason; SVM: EXITCODE bits 31:0
  std::string stop_reason;                   // when stopped
  size_t pending_events = 0;
  uint64_t events_injected = 0;
  // Exits per reason, read without the owning core (at most a few exits old), nonzero ones in
  // ascending order of `code`: the VMX basic exit reason, or the SVM EXITCODE. Shown by
  // GET /api/v1/vcpus?exit_counts=true.
  struct ReasonCount {
    uint64_t code = 0;
    uint64_t count = 0;
  };
  std::vector<ReasonCount> exit_counts;
};

// kFailed: a user VM the kernel could not build or run (failure says why).
enum class VmState : uint8_t { kRunning, kStopped, kExited, kFailed };

// A port without a device that the guest touched.
struct PortCount {
  uint16_t port = 0;
  uint64_t reads = 0;
  uint64_t writes = 0;
};

// The guest platform's counters (user VMs; guest/devices/guest_platform.h).
struct VmDeviceCounters {
  uint64_t uart_bytes_in = 0;       // console input accepted into the UART
  uint64_t uart_bytes_out = 0;      // bytes the guest transmitted
  uint64_t uart_bytes_read = 0;     // bytes the guest read from the UART
  uint64_t uart_input_refused = 0;  // console posts refused (buffer full)
  uint64_t unclaimed_port_reads = 0;
  uint64_t unclaimed_port_writes = 0;
  std::vector<PortCount> unclaimed_ports;    // first-seen order, bounded
  uint64_t unclaimed_accesses_unlisted = 0;  // accesses to ports beyond that list
};

enum class VmKind : uint8_t { kDemo, kUser };
struct VmSummary {
  uint32_t vm = 0;
  VmKind kind = VmKind::kDemo;
  std::string name;           // the VM's name (user VMs: name=, default vm<N>; demo: the program)
  std::string program;        // the guest program's name ("demo", ...; user VMs: the name)
  std::string kernel_format;  // user VMs: "multiboot-elf32", ...; "" when never loaded or a demo
  std::string cmdline;        // the guest command line (user VMs)
  VmState state = VmState::kRunning;
  uint64_t memory_bytes = 0;
  uint32_t vcpu_count = 0;
  std::optional<int32_t> cpu;           // the physical CPU running vCPU 0 (user VMs)
  uint64_t console_bytes = 0;           // total bytes the guest wrote to its UART
  std::optional<uint32_t> exit_status;  // when the guest wrote to an exit port (user VMs: QEMU's status)
  std::optional<uint32_t> exit_code;    // user VMs that exited: the value written to 0xf4
  std::string exit_cause;               // "debug_exit" (0xf4) or "shutdown_port" (0x8900)
  std::string failure;                  // kFailed: the reason
  uint32_t resets = 0;
  std::optional<VmDeviceCounters> devices;  // user VMs
};

struct SegmentSummary {
  uint16_t selector = 0;
  uint64_t base = 0;
  uint32_t limit = 0;
  uint32_t access_rights = 0;  // VMCS format (SDM Vol. 3C 24.4.1, Table 24-2)
};

struct VmcsValue {
  uint16_t field_index = 0;  // index into vmx::kVmcsFields
  uint64_t value = 0;
};

// One field of a captured VMCB (SVM vCPUs).
struct VmcbValue {
  uint16_t field_index = 0;  // index into svm::kVmcbFields
  uint64_t value = 0;
};

// An SVM exit code and how often it happened.
struct SvmExitCount {
  uint64_t exitcode = 0;
  uint64_t count = 0;
};

struct ExitRecordView {
  uint32_t reason = 0;         // raw VM_EXIT_REASON (VMX); EXITCODE bits 31:0 (SVM)
  uint64_t qualification = 0;  // EXIT_QUALIFICATION (VMX); EXITINFO1 (SVM)
  uint64_t rip = 0;
  uint64_t tsc = 0;
  uint64_t exitinfo2 = 0;  // SVM only
  uint64_t exitcode = 0;   // SVM only: the full 64-bit EXITCODE
};

// Everything about one vCPU, read on its owning core at one exit (consistent).
struct VcpuSnapshot {
  VcpuSummary summary;  // summary.backend says which of vmcs/vmcb is filled
  guest::GeneralRegisters regs{};
  uint64_t rsp = 0, rip = 0, rflags = 0, cr0 = 0, cr2 = 0, cr3 = 0, cr4 = 0, efer = 0;
  // es, cs, ss, ds, fs, gs, ldtr, tr in that order
  std::array<SegmentSummary, 8> segments{};
  // Every field this CPU supports, in kVmcsFields order. Empty when the vCPU was never set up.
  std::vector<VmcsValue> vmcs;
  std::array<uint64_t, 80> exit_counts{};  // VMX: per basic exit reason (vmx::kExitReasonTableSize)
  // SVM vCPUs: every VMCB field (kVmcbFields order) and the exit codes seen, by code.
  std::vector<VmcbValue> vmcb;
  std::vector<SvmExitCount> svm_exit_counts;
  std::vector<ExitRecordView> recent_exits;  // newest first, up to 64
  uint64_t tsc = 0;                          // host TSC when taken
  uint64_t capture_ns = 0;                   // from asking the owning core to its answer (Server-Timing)
};

struct ConsoleText {
  uint64_t start = 0;   // offset of the first byte of `text` in the guest's output stream
  uint64_t next = 0;    // pass as ?since= next time (= total bytes written so far)
  uint64_t missed = 0;  // bytes between `since` and `start` that the buffer no longer holds
  std::string text;
};

struct LogLine {
  uint64_t seq = 0;
  uint64_t timestamp_ns = 0;
  uint32_t cpu = 0;
  std::string level;  // "error", "warn", "info", "debug"
  std::string text;
  bool truncated = false;
};
struct LogChunk {
  std::vector<LogLine> lines;
  uint64_t next = 0;
  uint64_t missed = 0;
};

class ConsoleBackend {
 public:
  virtual ~ConsoleBackend() = default;

  virtual SystemSummary system() = 0;
  virtual std::vector<CpuSummary> cpus() = 0;
  virtual std::vector<VmSummary> vms() = 0;
  // Summaries read without the owning core (counters may be a few exits old).
  virtual std::vector<VcpuSummary> vcpus() = 0;

  // kNotFound: no such vCPU. kTimeout: the owning core did not answer in time.
  virtual Result<VcpuSnapshot> snapshot(uint32_t vm, uint32_t vcpu) = 0;
  // kNotFound: no such vCPU.
  virtual Result<guest::PendingEventSnapshot> pending_events(uint32_t vm, uint32_t vcpu) = 0;
  // Returns the queue position. kNotFound: no such vCPU; kFull: 8 waiting; kInvalidState: the
  // vCPU has stopped; kInvalidArgument: the event breaks an architectural rule.
  virtual Result<size_t> queue_event(uint32_t vm, uint32_t vcpu, guest::PendingEventType type, uint32_t vector,
                                     std::optional<uint32_t> error_code) = 0;
  // kNotFound: no such VM. At most max_bytes of text.
  virtual Result<ConsoleText> console(uint32_t vm, uint64_t since, size_t max_bytes) = 0;
  // Guest serial input: all of `bytes` into the VM's UART receive buffer, or nothing. kNotFound:
  // no such VM; kFull: the buffer lacks room; kInvalidArgument: more than the buffer ever holds;
  // kInvalidState: the VM does not run; kUnsupported: the VM's UART has no receive side (demo).
  virtual Result<void> console_input(uint32_t vm, std::string_view bytes) = 0;
  // Restarts the VM from its loaded image (asynchronously). kNotFound; kUnsupported (demo VMs);
  // kInvalidState: nothing to restart (refused at boot); kTimeout: its core did not answer.
  virtual Result<void> reset_vm(uint32_t vm) = 0;
  virtual LogChunk log(uint64_t since, size_t max_lines) = 0;
};

}  // namespace lantern::web::api
