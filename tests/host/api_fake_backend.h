// A ConsoleBackend for the API's host tests: plain data the test sets up, a real
// guest::PendingEventQueue per vCPU, a console ring with a fixed capacity, and error injection.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "svm/vmcb.h"
#include "vmx/vmcs_fields.h"
#include "web/api/api.h"
#include "web/api/console_model.h"

namespace lantern::web::api::testing {

class FakeBackend final : public ConsoleBackend {
 public:
  using Key = std::pair<uint32_t, uint32_t>;

  SystemSummary system_summary;
  std::vector<CpuSummary> cpu_list;
  std::vector<VmSummary> vm_list;
  std::vector<VcpuSummary> vcpu_list;
  std::map<Key, VcpuSnapshot> snapshots;
  std::map<Key, guest::PendingEventQueue> queues;
  std::map<uint32_t, std::string> console_output;  // everything each VM ever wrote
  size_t console_capacity = 64;                    // the ring keeps only the last bytes
  std::vector<LogLine> log_lines;                  // seq = index
  size_t log_capacity = 1000;

  std::map<uint32_t, std::string> console_input_bytes;  // what each VM's input buffer holds
  size_t input_capacity = 16;

  // Error injection.
  std::optional<Error> snapshot_error;
  std::optional<Error> queue_error;
  std::optional<Error> console_input_error;
  std::optional<Error> reset_error;
  int console_input_calls = 0;
  int reset_calls = 0;

  // What the API asked for.
  int snapshot_calls = 0;
  int queue_calls = 0;
  uint64_t last_console_since = 0;
  size_t last_console_max = 0;
  uint64_t last_log_since = 0;
  size_t last_log_max = 0;

  static VmSummary demo_vm(uint32_t vm, std::string program, VmState state, uint64_t memory_bytes,
                           uint32_t vcpu_count, uint64_t console_bytes, std::optional<uint32_t> exit_status) {
    VmSummary v;
    v.vm = vm;
    v.name = program;
    v.program = std::move(program);
    v.state = state;
    v.memory_bytes = memory_bytes;
    v.vcpu_count = vcpu_count;
    v.console_bytes = console_bytes;
    v.exit_status = exit_status;
    return v;
  }

  // A --vm VM with device counters.
  static VmSummary user_vm(uint32_t vm, std::string name, VmState state) {
    VmSummary v;
    v.vm = vm;
    v.kind = VmKind::kUser;
    v.name = name;
    v.program = std::move(name);
    v.kernel_format = "multiboot-elf32";
    v.cmdline = "exit=7 hello";
    v.state = state;
    v.memory_bytes = 16 << 20;
    v.vcpu_count = 1;
    v.cpu = static_cast<int32_t>(vm + 1);
    v.console_bytes = 40;
    VmDeviceCounters d;
    d.uart_bytes_in = 3;
    d.uart_bytes_out = 40;
    d.uart_bytes_read = 2;
    d.unclaimed_port_reads = 5;
    d.unclaimed_port_writes = 1;
    d.unclaimed_ports.push_back(PortCount{0x61, 5, 1});
    v.devices = d;
    return v;
  }

  // A running vCPU with a snapshot whose values are derived from (vm, vcpu).
  void add_vcpu(uint32_t vm, uint32_t vcpu, VcpuState state = VcpuState::kRunning) {
    VcpuSummary s;
    s.vm = vm;
    s.vcpu = vcpu;
    s.cpu = static_cast<int32_t>(vcpu);
    s.state = state;
    s.launched = true;
    s.exits = 100 + vcpu;
    s.last_exit_reason = 12;  // HLT
    if (state == VcpuState::kStopped) s.stop_reason = "triple fault";
    s.exit_counts = {{12, 40}, {30, 2}};  // HLT, IO_INSTRUCTION: the snapshot's counters
    vcpu_list.push_back(s);
    VcpuSnapshot snap;
    snap.summary = s;
    snap.regs.rax = 0x1111'0000'0000'0000ull + vcpu;
    snap.regs.rcx = 0x2;
    snap.regs.r15 = 0xffff'ffff'ffff'fff0ull;
    snap.rsp = 0x7000;
    snap.rip = 0xfff0 + vm;
    snap.rflags = 0x2;
    snap.cr0 = 0x60000010;
    snap.cr3 = 0x1000;
    snap.cr4 = 0x2000;
    snap.efer = 0x500;
    snap.segments[1] = SegmentSummary{0xf000, 0xffff0000, 0xffff, 0x9b};
    for (size_t i = 0; i < vmx::kVmcsFieldCount; ++i) {
      if (i % 7 == 3) continue;  // "this CPU" lacks some fields
      snap.vmcs.push_back(VmcsValue{static_cast<uint16_t>(i), 0x0123'4567'89ab'cdefull + i});
    }
    snap.exit_counts[12] = 40;
    snap.exit_counts[30] = 2;
    snap.recent_exits.push_back(ExitRecordView{30, 0x3f80008, 0x1234, 999});
    snap.recent_exits.push_back(ExitRecordView{0x80000021, 0, 0xfff0, 900});  // entry failure, 33
    snap.tsc = 1000;
    snapshots[{vm, vcpu}] = snap;
    queues[{vm, vcpu}];
  }

  // A running SVM vCPU: every VMCB field with a value derived from its index, exit codes
  // CPUID (72h) x7, HLT (78h) x3, NPF (400h) x1, and a recent VMEXIT_INVALID stored the way
  // QEMU 7.2 stores it (zero-extended).
  void add_svm_vcpu(uint32_t vm, uint32_t vcpu) {
    VcpuSummary s;
    s.backend = Backend::kSvm;
    s.vm = vm;
    s.vcpu = vcpu;
    s.cpu = static_cast<int32_t>(vcpu);
    s.state = VcpuState::kRunning;
    s.launched = true;
    s.exits = 11;
    s.last_exit_reason = 0x78;  // VMEXIT_HLT
    s.exit_counts = {{0x72, 7}, {0x78, 3}, {0x400, 1}};
    vcpu_list.push_back(s);
    VcpuSnapshot snap;
    snap.summary = s;
    snap.regs.rax = 0x4;
    snap.rip = 0x1010;
    for (size_t i = 0; i < svm::kVmcbFieldCount; ++i) {
      snap.vmcb.push_back(VmcbValue{static_cast<uint16_t>(i), 0x1122'3344'5566'7788ull + i});
    }
    snap.svm_exit_counts = {SvmExitCount{0x72, 7}, SvmExitCount{0x78, 3}, SvmExitCount{0x400, 1}};
    ExitRecordView npf;
    npf.reason = 0x400;
    npf.exitcode = 0x400;
    npf.qualification = 0x100000006;
    npf.exitinfo2 = 0xfee00000;
    npf.rip = 0x1234;
    npf.tsc = 50;
    ExitRecordView invalid;
    invalid.reason = 0xffffffffu;
    invalid.exitcode = 0x00000000ffffffffull;
    invalid.rip = 0x1000;
    invalid.tsc = 40;
    snap.recent_exits = {npf, invalid};
    snap.tsc = 60;
    snapshots[{vm, vcpu}] = snap;
    queues[{vm, vcpu}];
  }

  SystemSummary system() override { return system_summary; }
  std::vector<CpuSummary> cpus() override { return cpu_list; }
  std::vector<VmSummary> vms() override { return vm_list; }
  std::vector<VcpuSummary> vcpus() override { return vcpu_list; }

  Result<VcpuSnapshot> snapshot(uint32_t vm, uint32_t vcpu) override {
    ++snapshot_calls;
    if (snapshot_error) return *snapshot_error;
    auto it = snapshots.find({vm, vcpu});
    if (it == snapshots.end()) return make_error(ErrorCode::kNotFound, "no such vCPU");
    return it->second;
  }

  Result<guest::PendingEventSnapshot> pending_events(uint32_t vm, uint32_t vcpu) override {
    auto it = queues.find({vm, vcpu});
    if (it == queues.end()) return make_error(ErrorCode::kNotFound, "no such vCPU");
    return it->second.snapshot();
  }

  Result<size_t> queue_event(uint32_t vm, uint32_t vcpu, guest::PendingEventType type, uint32_t vector,
                             std::optional<uint32_t> error_code) override {
    ++queue_calls;
    if (queue_error) return *queue_error;
    auto it = queues.find({vm, vcpu});
    if (it == queues.end()) return make_error(ErrorCode::kNotFound, "no such vCPU");
    for (const VcpuSummary& v : vcpu_list) {
      if (v.vm == vm && v.vcpu == vcpu && v.state == VcpuState::kStopped) {
        return make_error(ErrorCode::kInvalidState, "the vCPU has stopped");
      }
    }
    return it->second.queue_event(type, vector, error_code);
  }

  // A ring of console_capacity bytes over everything the VM wrote.
  Result<ConsoleText> console(uint32_t vm, uint64_t since, size_t max_bytes) override {
    last_console_since = since;
    last_console_max = max_bytes;
    auto it = console_output.find(vm);
    if (it == console_output.end()) return make_error(ErrorCode::kNotFound, "no such VM");
    const std::string& all = it->second;
    const uint64_t total = all.size();
    const uint64_t oldest = total > console_capacity ? total - console_capacity : 0;
    ConsoleText t;
    t.next = total;
    uint64_t start = since < oldest ? oldest : since;
    if (start > total) start = total;
    t.missed = since < oldest ? oldest - since : 0;
    t.start = start;
    t.text = all.substr(start, max_bytes);
    t.next = start + t.text.size();
    return t;
  }

  // Console input: a bounded buffer per VM that takes all of a post or nothing, like the UART's.
  Result<void> console_input(uint32_t vm, std::string_view bytes) override {
    ++console_input_calls;
    if (console_input_error) return *console_input_error;
    const VmSummary* found = nullptr;
    for (const VmSummary& v : vm_list) {
      if (v.vm == vm) found = &v;
    }
    if (found == nullptr) return make_error(ErrorCode::kNotFound, "no such VM");
    if (found->kind == VmKind::kDemo)
      return make_error(ErrorCode::kUnsupported, "the demo guest's UART has no receive side");
    if (found->state != VmState::kRunning)
      return make_error(ErrorCode::kInvalidState, "the VM is not running");
    if (bytes.size() > input_capacity)
      return make_error(ErrorCode::kInvalidArgument, "more bytes than the buffer holds", input_capacity);
    std::string& queued = console_input_bytes[vm];
    if (queued.size() + bytes.size() > input_capacity)
      return make_error(ErrorCode::kFull, "input buffer full");
    queued.append(bytes);
    return ok();
  }

  Result<void> reset_vm(uint32_t vm) override {
    ++reset_calls;
    if (reset_error) return *reset_error;
    for (VmSummary& v : vm_list) {
      if (v.vm != vm) continue;
      if (v.kind == VmKind::kDemo) return make_error(ErrorCode::kUnsupported, "demo guests are not reset");
      if (v.state == VmState::kFailed) return make_error(ErrorCode::kInvalidState, "refused at boot");
      v.state = VmState::kRunning;
      ++v.resets;
      return ok();
    }
    return make_error(ErrorCode::kNotFound, "no such VM");
  }

  LogChunk log(uint64_t since, size_t max_lines) override {
    last_log_since = since;
    last_log_max = max_lines;
    LogChunk c;
    const uint64_t total = log_lines.size();
    const uint64_t oldest = total > log_capacity ? total - log_capacity : 0;
    uint64_t seq = since < oldest ? oldest : since;
    c.missed = since < oldest ? oldest - since : 0;
    while (seq < total && c.lines.size() < max_lines) c.lines.push_back(log_lines[seq++]);
    c.next = seq;
    return c;
  }
};

}  // namespace lantern::web::api::testing
