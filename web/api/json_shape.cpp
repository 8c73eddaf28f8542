#include "web/api/json_shape.h"

#include "svm/exit_code.h"
#include "vmx/exit_reason.h"
#include "guest/general_registers.h"

namespace lantern::web::api {
namespace {

constexpr std::string_view kSegmentNames[8] = {"es", "cs", "ss", "ds", "fs", "gs", "ldtr", "tr"};

Json nullable_u32(const std::optional<uint32_t>& v) {
  return v ? Json(*v) : Json(nullptr);
}

// A basic exit reason (a count's key): its number, SDM name and vendor-neutral kind.
Json vmx_basic_reason_json(uint32_t basic_reason) {
  return Json{{"reason", basic_reason},
              {"name", std::string(vmx::exit_reason_name(basic_reason))},
              {"kind", std::string(guest::exit_kind_name(vmx::exit_kind(basic_reason)))}};
}

Json exit_reason_json(uint32_t raw_reason) {
  // SDM Vol. 3C 24.9.1: bits 15:0 basic reason, bit 31 VM-entry failure.
  const vmx::ExitReasonField field = vmx::ExitReasonField::from_raw(raw_reason);
  Json j;
  j["reason"] = field.basic;
  j["name"] = std::string(vmx::exit_reason_name(field.basic));
  j["kind"] = std::string(guest::exit_kind_name(vmx::exit_kind(field.basic)));
  j["entry_failure"] = field.entry_failure;
  return j;
}

}  // namespace

std::string hex_string(uint64_t value, unsigned digits) {
  constexpr char kDigits[] = "0123456789abcdef";
  if (digits == 0) digits = 1;
  if (digits > 16) digits = 16;
  std::string out(2 + digits, '0');
  out[1] = 'x';
  for (unsigned i = 0; i < digits; ++i) {
    out[2 + digits - 1 - i] = kDigits[(value >> (4 * i)) & 0xf];
  }
  return out;
}

unsigned vmcs_width_digits(vmx::VmcsWidth width) {
  switch (width) {
    case vmx::VmcsWidth::k16: return 4;
    case vmx::VmcsWidth::k32: return 8;
    case vmx::VmcsWidth::k64: return 16;
    case vmx::VmcsWidth::kNatural: return 16;
  }
  return 16;
}

std::string dump(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

http::Response json_response(const Json& value, int status) {
  http::Response r;
  r.status = status;
  r.body = dump(value);
  return r;
}

std::string_view cpu_vmx_state_name(CpuVmxState s) {
  switch (s) {
    case CpuVmxState::kOn: return "on";
    case CpuVmxState::kOff: return "off";
    case CpuVmxState::kUnsupported: return "unsupported";
  }
  return "unknown";
}

std::string_view vcpu_state_name(VcpuState s) {
  switch (s) {
    case VcpuState::kCreated: return "created";
    case VcpuState::kRunning: return "running";
    case VcpuState::kHalted: return "halted";
    case VcpuState::kStopped: return "stopped";
  }
  return "unknown";
}

std::string_view backend_name(Backend b) {
  return b == Backend::kSvm ? "svm" : "vmx";
}

Json svm_exit_code_json(uint64_t exitcode) {
  Json j;
  if (svm::is_vmexit_invalid(exitcode)) {
    j["reason"] = -1;
  } else {
    j["reason"] = exitcode;
  }
  j["name"] = std::string(svm::exit_code_name(exitcode));
  j["kind"] = std::string(guest::exit_kind_name(svm::exit_kind(exitcode)));
  return j;
}

Json vmcb_field_json(const svm::VmcbFieldInfo& info, uint64_t value) {
  Json j;
  j["name"] = std::string(info.name);
  j["offset"] = info.offset;
  j["width"] = info.width;
  j["area"] = std::string(svm::vmcb_area_name(info.area));
  j["value"] = hex_string(value, info.width / 4);
  return j;
}

Json vmcb_json(uint32_t vm, uint32_t vcpu, const std::vector<VmcbValue>& values) {
  Json fields = Json::array();
  for (const VmcbValue& v : values) {
    if (v.field_index >= svm::kVmcbFieldCount) continue;
    fields.push_back(vmcb_field_json(svm::kVmcbFields[v.field_index], v.value));
  }
  Json j;
  j["vm"] = vm;
  j["vcpu"] = vcpu;
  j["count"] = fields.size();
  j["fields"] = std::move(fields);
  return j;
}

std::string_view vm_state_name(VmState s) {
  switch (s) {
    case VmState::kRunning: return "running";
    case VmState::kStopped: return "stopped";
    case VmState::kExited: return "exited";
    case VmState::kFailed: return "failed";
  }
  return "unknown";
}

Json system_json(const SystemSummary& s) {
  Json caps;
  caps["ept"] = s.vmx_caps.ept;
  caps["ept_large_pages"] = s.vmx_caps.ept_large_pages;
  caps["ept_1g_pages"] = s.vmx_caps.ept_1g_pages;
  caps["vpid"] = s.vmx_caps.vpid;
  caps["unrestricted_guest"] = s.vmx_caps.unrestricted_guest;
  caps["preemption_timer"] = s.vmx_caps.preemption_timer;
  caps["nmi_window"] = s.vmx_caps.nmi_window;
  caps["activity_hlt"] = s.vmx_caps.activity_hlt;
  caps["true_controls"] = s.vmx_caps.true_controls;
  caps["xsaves"] = s.vmx_caps.xsaves;

  Json vmx;
  vmx["available"] = s.vmx_available;
  vmx["cpuid"] = s.vmx_cpuid;
  vmx["cores"] = s.vmx_cores;
  vmx["reason"] = s.vmx_reason;
  vmx["vmcs_revision"] = hex32(s.vmx_caps.vmcs_revision);  // IA32_VMX_BASIC bits 30:0 (SDM Vol. 3D A.1)
  vmx["capabilities"] = std::move(caps);

  Json svm_caps;
  svm_caps["nested_paging"] = s.svm_caps.nested_paging;
  svm_caps["next_rip_save"] = s.svm_caps.next_rip_save;
  svm_caps["vmcb_clean"] = s.svm_caps.vmcb_clean;
  svm_caps["flush_by_asid"] = s.svm_caps.flush_by_asid;
  svm_caps["decode_assists"] = s.svm_caps.decode_assists;
  svm_caps["pause_filter"] = s.svm_caps.pause_filter;
  svm_caps["avic"] = s.svm_caps.avic;
  svm_caps["vgif"] = s.svm_caps.vgif;
  svm_caps["lbr_virtualization"] = s.svm_caps.lbr_virtualization;
  Json svm;
  svm["available"] = s.svm_available;
  svm["cpuid"] = s.svm_cpuid;
  svm["cores"] = s.svm_cores;
  svm["reason"] = s.svm_reason;
  svm["revision"] = s.svm_caps.revision;  // CPUID 8000_000AH:EAX[7:0] (APM Vol. 3 E.4.9)
  svm["asids"] = s.svm_caps.asids;        // CPUID 8000_000AH:EBX (NASID)
  svm["capabilities"] = std::move(svm_caps);

  Json pools = Json::array();
  for (const NetPoolLevel& p : s.net_pools) {
    pools.push_back(
        {{"name", p.name}, {"used", p.used}, {"max", p.max}, {"avail", p.avail}, {"errors", p.errors}});
  }
  Json console;
  console["connections_open"] = s.http_connections_open;
  console["connections_total"] = s.http_connections_total;
  console["requests"] = s.http_requests;
  console["refused"] = s.http_refused;
  console["framing_errors"] = s.http_framing_errors;
  console["timeouts"] = s.http_timeouts;
  console["aborted"] = s.http_aborted;

  Json j;
  j["name"] = s.name;
  j["version"] = s.version;
  j["uptime_ms"] = s.uptime_ms;
  j["cpus_online"] = s.cpus_online;
  j["vcpus"] = s.vcpus;
  j["hv"] = s.hv;
  j["vmx"] = std::move(vmx);
  j["svm"] = std::move(svm);
  j["cmdline"] = s.cmdline;
  j["network"] = {{"ip", s.ip}, {"nic", s.nic}, {"pools", std::move(pools)}};
  j["console"] = std::move(console);
  j["memory"] = {{"heap",
                  {{"bytes_in_use", s.memory.heap_bytes_in_use},
                   {"bytes_reserved", s.memory.heap_bytes_reserved},
                   {"live_allocations", s.memory.heap_live_allocations}}},
                 {"frames", {{"total", s.memory.frames_total}, {"free", s.memory.frames_free}}}};
  return j;
}

Json cpu_json(const CpuSummary& c) {
  Json vcpus = Json::array();
  for (const auto& [vm, vcpu] : c.vcpus) vcpus.push_back({{"vm", vm}, {"vcpu", vcpu}});
  Json j;
  j["index"] = c.index;
  j["apic_id"] = c.apic_id;
  j["bsp"] = c.bsp;
  j["vmx"] = std::string(cpu_vmx_state_name(c.vmx));
  j["svm"] = std::string(cpu_vmx_state_name(c.svm));
  j["vcpus"] = std::move(vcpus);
  return j;
}

Json vm_devices_json(const VmDeviceCounters& d) {
  Json ports = Json::array();
  for (const PortCount& p : d.unclaimed_ports) {
    ports.push_back({{"port", p.port}, {"reads", p.reads}, {"writes", p.writes}});
  }
  Json j;
  j["uart_bytes_in"] = d.uart_bytes_in;
  j["uart_bytes_out"] = d.uart_bytes_out;
  j["uart_bytes_read"] = d.uart_bytes_read;
  j["uart_input_refused"] = d.uart_input_refused;
  j["unclaimed_port_reads"] = d.unclaimed_port_reads;
  j["unclaimed_port_writes"] = d.unclaimed_port_writes;
  j["unclaimed_ports"] = std::move(ports);
  j["unclaimed_accesses_unlisted"] = d.unclaimed_accesses_unlisted;
  return j;
}

Json vm_json(const VmSummary& v) {
  const bool exited = v.state == VmState::kExited;
  Json j;
  j["vm"] = v.vm;
  j["kind"] = v.kind == VmKind::kUser ? "user" : "demo";
  j["name"] = v.name;
  j["program"] = v.program;
  j["kernel_format"] = v.kernel_format.empty() ? Json(nullptr) : Json(v.kernel_format);
  j["cmdline"] = v.cmdline;
  j["state"] = std::string(vm_state_name(v.state));
  j["memory_bytes"] = v.memory_bytes;
  j["vcpu_count"] = v.vcpu_count;
  j["cpu"] = v.cpu ? Json(*v.cpu) : Json(nullptr);
  j["console_bytes"] = v.console_bytes;
  j["exit_status"] = nullable_u32(v.exit_status);
  j["exit_code"] = exited ? nullable_u32(v.exit_code) : Json(nullptr);
  j["exit_cause"] = exited && !v.exit_cause.empty() ? Json(v.exit_cause) : Json(nullptr);
  j["failure"] = v.state == VmState::kFailed ? Json(v.failure) : Json(nullptr);
  j["resets"] = v.resets;
  j["devices"] = v.devices ? vm_devices_json(*v.devices) : Json(nullptr);
  return j;
}

Json vcpu_json(const VcpuSummary& v, bool exit_counts) {
  Json j;
  j["vm"] = v.vm;
  j["vcpu"] = v.vcpu;
  j["backend"] = std::string(backend_name(v.backend));
  j["cpu"] = v.cpu >= 0 ? Json(v.cpu) : Json(nullptr);
  j["state"] = std::string(vcpu_state_name(v.state));
  j["launched"] = v.launched;
  j["in_hlt"] = v.in_hlt;
  j["exits"] = v.exits;
  if (!v.last_exit_reason) {
    j["last_exit"] = nullptr;
  } else if (v.backend == Backend::kSvm) {
    // EXITCODE's low 32 bits: every code of Appendix C fits, and all ones is VMEXIT_INVALID.
    const uint32_t low = *v.last_exit_reason;
    j["last_exit"] = svm_exit_code_json(low == 0xffffffffu ? ~uint64_t{0} : uint64_t{low});
  } else {
    j["last_exit"] = exit_reason_json(*v.last_exit_reason);
  }
  j["stop_reason"] = v.state == VcpuState::kStopped ? Json(v.stop_reason) : Json(nullptr);
  j["pending_events"] = v.pending_events;
  j["events_injected"] = v.events_injected;
  if (exit_counts) {
    Json counts = Json::array();
    for (const VcpuSummary::ReasonCount& c : v.exit_counts) {
      if (c.count == 0) continue;
      Json e = v.backend == Backend::kSvm
                   ? svm_exit_code_json(c.code)
                   : vmx_basic_reason_json(static_cast<uint32_t>(c.code));
      e["count"] = c.count;
      counts.push_back(std::move(e));
    }
    j["exit_counts"] = std::move(counts);
  }
  return j;
}

Json regs_json(const VcpuSnapshot& s) {
  Json j;
  j["vm"] = s.summary.vm;
  j["vcpu"] = s.summary.vcpu;
  j["backend"] = std::string(backend_name(s.summary.backend));
  // The 15 general registers in hardware order (SDM Vol. 2A Table 3-1); rsp is GUEST_RSP.
  for (unsigned i = 0; i < guest::kGprCount; ++i) {
    if (i == guest::kGprRspIndex) continue;
    const Result<uint64_t> value = s.regs.get_reg_of_index(i);
    j[std::string(guest::gpr_name(i))] = hex64(value ? *value : 0);
  }
  j["rsp"] = hex64(s.rsp);
  j["rip"] = hex64(s.rip);
  j["rflags"] = hex64(s.rflags);
  j["cr0"] = hex64(s.cr0);
  j["cr2"] = hex64(s.cr2);
  j["cr3"] = hex64(s.cr3);
  j["cr4"] = hex64(s.cr4);
  j["efer"] = hex64(s.efer);
  Json segments;
  for (size_t i = 0; i < s.segments.size(); ++i) {
    const SegmentSummary& seg = s.segments[i];
    segments[std::string(kSegmentNames[i])] = {{"selector", hex16(seg.selector)},
                                               {"base", hex64(seg.base)},
                                               {"limit", hex32(seg.limit)},
                                               {"access_rights", hex32(seg.access_rights)}};
  }
  j["segments"] = std::move(segments);
  return j;
}

Json vmcs_field_json(const vmx::VmcsFieldInfo& info, uint64_t value, bool high) {
  // The _HIGH half of a 64-bit field is a 32-bit access to bits 63:32 (SDM Vol. 3C 24.11.2).
  const vmx::VmcsWidth width = high ? vmx::VmcsWidth::k32 : info.width;
  Json j;
  j["name"] = high ? std::string(info.name) + "_HIGH" : std::string(info.name);
  j["encoding"] = hex16(info.encoding | (high ? vmx::kVmcsEncodingHighAccess : 0u));
  j["width"] = std::string(vmx::vmcs_width_name(width));
  j["group"] = std::string(vmx::vmcs_group_name(info.group));
  j["value"] = hex_string(high ? value >> 32 : value, vmcs_width_digits(width));
  return j;
}

Json pending_event_json(const guest::PendingEvent& e) {
  Json j;
  j["type"] = std::string(guest::pending_event_type_name(e.type));
  j["vector"] = e.vector;
  j["error_code"] = e.has_error_code ? Json(e.error_code) : Json(nullptr);
  return j;
}

Json events_json(uint32_t vm, uint32_t vcpu, const guest::PendingEventSnapshot& q) {
  Json events = Json::array();
  const size_t count = q.count < q.events.size() ? q.count : q.events.size();
  for (size_t i = 0; i < count; ++i) {
    Json e = pending_event_json(q.events[i]);
    e["position"] = i;
    events.push_back(std::move(e));
  }
  Json j;
  j["vm"] = vm;
  j["vcpu"] = vcpu;
  j["capacity"] = guest::PendingEventQueue::kCapacity;
  j["count"] = count;
  j["events"] = std::move(events);
  return j;
}

namespace {

Json svm_exits_json(const VcpuSnapshot& s) {
  Json counts = Json::array();
  for (const SvmExitCount& c : s.svm_exit_counts) {
    if (c.count == 0) continue;
    Json e = svm_exit_code_json(c.exitcode);
    e["count"] = c.count;
    counts.push_back(std::move(e));
  }
  Json recent = Json::array();
  for (const ExitRecordView& e : s.recent_exits) {
    Json r = svm_exit_code_json(e.exitcode);
    r["raw_reason"] = hex64(e.exitcode);
    r["qualification"] = hex64(e.qualification);  // EXITINFO1
    r["exitinfo1"] = hex64(e.qualification);
    r["exitinfo2"] = hex64(e.exitinfo2);
    r["rip"] = hex64(e.rip);
    r["tsc"] = e.tsc;
    recent.push_back(std::move(r));
  }
  Json j;
  j["vm"] = s.summary.vm;
  j["vcpu"] = s.summary.vcpu;
  j["backend"] = "svm";
  j["total"] = s.summary.exits;
  j["tsc"] = s.tsc;
  j["counts"] = std::move(counts);
  j["recent"] = std::move(recent);
  return j;
}

}  // namespace

Json exits_json(const VcpuSnapshot& s) {
  if (s.summary.backend == Backend::kSvm) return svm_exits_json(s);
  Json counts = Json::array();
  for (size_t reason = 0; reason < s.exit_counts.size(); ++reason) {
    if (s.exit_counts[reason] == 0) continue;
    Json e = vmx_basic_reason_json(static_cast<uint32_t>(reason));
    e["count"] = s.exit_counts[reason];
    counts.push_back(std::move(e));
  }
  Json recent = Json::array();
  for (const ExitRecordView& e : s.recent_exits) {
    Json r = exit_reason_json(e.reason);
    r["raw_reason"] = hex32(e.reason);
    r["qualification"] = hex64(e.qualification);
    r["rip"] = hex64(e.rip);
    r["tsc"] = e.tsc;
    recent.push_back(std::move(r));
  }
  Json j;
  j["vm"] = s.summary.vm;
  j["vcpu"] = s.summary.vcpu;
  j["backend"] = "vmx";
  j["total"] = s.summary.exits;
  j["tsc"] = s.tsc;
  j["counts"] = std::move(counts);
  j["recent"] = std::move(recent);
  return j;
}

Json console_json(uint32_t vm, const ConsoleText& c) {
  Json j;
  j["vm"] = vm;
  j["start"] = c.start;
  j["next"] = c.next;
  j["missed"] = c.missed;
  j["text"] = c.text;
  return j;
}

Json log_json(const LogChunk& c) {
  Json lines = Json::array();
  for (const LogLine& l : c.lines) {
    lines.push_back({{"seq", l.seq},
                     {"timestamp_ns", l.timestamp_ns},
                     {"cpu", l.cpu},
                     {"level", l.level},
                     {"text", l.text},
                     {"truncated", l.truncated}});
  }
  Json j;
  j["next"] = c.next;
  j["missed"] = c.missed;
  j["lines"] = std::move(lines);
  return j;
}

VmcsDumpSource::VmcsDumpSource(uint32_t vm, uint32_t vcpu, std::vector<VmcsValue> values)
    : vm_(vm), vcpu_(vcpu), values_(std::move(values)) {}

bool VmcsDumpSource::next(std::string& out, size_t max_bytes) {
  switch (stage_) {
    case Stage::kHeader: {
      size_t count = 0;
      for (const VmcsValue& v : values_) count += v.field_index < vmx::kVmcsFieldCount ? 1 : 0;
      Json head;
      head["vm"] = vm_;
      head["vcpu"] = vcpu_;
      head["count"] = count;
      std::string text = dump(head);  // {"vm":0,"vcpu":0,"count":N}
      text.pop_back();
      out += text;
      out += ",\"fields\":[";
      stage_ = Stage::kFields;
      return true;
    }
    case Stage::kFields: {
      const size_t start = out.size();
      while (index_ < values_.size()) {
        const VmcsValue& v = values_[index_];
        if (v.field_index >= vmx::kVmcsFieldCount) {
          ++index_;
          continue;
        }
        // At least one field per piece, then only while the piece stays within max_bytes.
        std::string field = dump(vmcs_field_json(vmx::kVmcsFields[v.field_index], v.value));
        const size_t piece = out.size() - start;
        if (piece > 0 && piece + field.size() + 1 > max_bytes) break;
        if (emitted_ > 0) out += ',';
        out += field;
        ++emitted_;
        ++index_;
      }
      if (index_ >= values_.size()) stage_ = Stage::kEnd;
      if (out.size() > start) return true;
      [[fallthrough]];
    }
    case Stage::kEnd:
      out += "]}";
      stage_ = Stage::kDone;
      return true;
    case Stage::kDone: return false;
  }
  return false;
}

}  // namespace lantern::web::api
