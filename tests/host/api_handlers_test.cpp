// Every API handler's JSON shape over a fake backend, hex formatting, the streamed VMCS dump,
// console/log ?since= and the mapping of backend errors to status codes.
#include <gtest/gtest.h>

#include "api_fake_backend.h"
#include "api_test_util.h"
#include "vmx/vmcs_fields.h"
#include "web/api/api.h"
#include "web/api/json_shape.h"

namespace lantern::web::api {
namespace {

using nlohmann::json;
using testing::body_json;
using testing::FakeBackend;
using testing::full_body;
using testing::get;
using testing::header_value;

class ApiHandlers : public ::testing::Test {
 protected:
  ApiHandlers() : api(backend, AuthConfig{}) {
    backend.add_vcpu(0, 0);
    backend.add_vcpu(0, 1);
    backend.add_vcpu(1, 0, VcpuState::kStopped);
    backend.vm_list.push_back(
        FakeBackend::demo_vm(0, "demo", VmState::kRunning, 16 << 20, 2, 5, std::nullopt));
    backend.vm_list.push_back(FakeBackend::demo_vm(1, "crash", VmState::kStopped, 1 << 20, 1, 0, 3));
  }
  FakeBackend backend;
  Api api;
};

TEST(ApiHex, FixedWidthLowerCase) {
  EXPECT_EQ(hex_string(0xfee00000, 16), "0x00000000fee00000");
  EXPECT_EQ(hex64(UINT64_MAX), "0xffffffffffffffff");
  EXPECT_EQ(hex32(0xABCDEF), "0x00abcdef");
  EXPECT_EQ(hex16(0x12345), "0x2345");  // higher bits dropped
  EXPECT_EQ(hex16(0), "0x0000");
  EXPECT_EQ(vmcs_width_digits(vmx::VmcsWidth::k16), 4u);
  EXPECT_EQ(vmcs_width_digits(vmx::VmcsWidth::k32), 8u);
  EXPECT_EQ(vmcs_width_digits(vmx::VmcsWidth::k64), 16u);
  EXPECT_EQ(vmcs_width_digits(vmx::VmcsWidth::kNatural), 16u);
}

TEST_F(ApiHandlers, System) {
  backend.system_summary.version = "0.1.0";
  backend.system_summary.uptime_ms = 1234;
  backend.system_summary.cpus_online = 4;
  backend.system_summary.vmx_available = false;
  backend.system_summary.vmx_reason = "CPUID.01H:ECX.VMX[bit 5] is clear";
  backend.system_summary.vmx_caps.vmcs_revision = 0x12;
  backend.system_summary.net_pools.push_back(NetPoolLevel{"TCP_PCB", 1, 3, 16, 0});
  backend.system_summary.http_requests = 77;
  backend.system_summary.memory = MemoryLevels{4096, 65536, 3, 1000, 900};
  http::Response r = api.handle(get("/api/v1/system"));
  ASSERT_EQ(r.status, 200);
  const json j = body_json(r);
  EXPECT_EQ(j["name"], "lantern");
  EXPECT_EQ(j["version"], "0.1.0");
  EXPECT_EQ(j["uptime_ms"], 1234);
  EXPECT_EQ(j["cpus_online"], 4);
  EXPECT_EQ(j["vmx"]["available"], false);
  EXPECT_EQ(j["vmx"]["reason"], "CPUID.01H:ECX.VMX[bit 5] is clear");
  EXPECT_EQ(j["vmx"]["vmcs_revision"], "0x00000012");
  EXPECT_EQ(j["vmx"]["capabilities"]["ept"], false);
  EXPECT_EQ(j["network"]["pools"][0]["name"], "TCP_PCB");
  EXPECT_EQ(j["network"]["pools"][0]["avail"], 16);
  EXPECT_EQ(j["console"]["requests"], 77);
  EXPECT_EQ(j["memory"],
            (json{{"heap", {{"bytes_in_use", 4096}, {"bytes_reserved", 65536}, {"live_allocations", 3}}},
                  {"frames", {{"total", 1000}, {"free", 900}}}}));
}

TEST_F(ApiHandlers, Cpus) {
  backend.cpu_list.push_back(CpuSummary{0, 0, true, CpuVmxState::kOn, {{0, 0}}});
  backend.cpu_list.push_back(CpuSummary{1, 2, false, CpuVmxState::kUnsupported, {}});
  http::Response r = api.handle(get("/api/v1/cpus"));
  const json j = body_json(r);
  ASSERT_EQ(j["cpus"].size(), 2u);
  EXPECT_EQ(j["cpus"][0]["bsp"], true);
  EXPECT_EQ(j["cpus"][0]["vmx"], "on");
  EXPECT_EQ(j["cpus"][0]["vcpus"][0], (json{{"vm", 0}, {"vcpu", 0}}));
  EXPECT_EQ(j["cpus"][1]["apic_id"], 2);
  EXPECT_EQ(j["cpus"][1]["vmx"], "unsupported");
}

TEST_F(ApiHandlers, VmsAndOneVm) {
  http::Response r = api.handle(get("/api/v1/vms"));
  json j = body_json(r);
  ASSERT_EQ(j["vms"].size(), 2u);
  EXPECT_EQ(j["vms"][0]["program"], "demo");
  EXPECT_EQ(j["vms"][0]["memory_bytes"], 16 << 20);
  EXPECT_TRUE(j["vms"][0]["exit_status"].is_null());
  EXPECT_EQ(j["vms"][1]["state"], "stopped");
  EXPECT_EQ(j["vms"][1]["exit_status"], 3);

  r = api.handle(get("/api/v1/vms/0"));
  ASSERT_EQ(r.status, 200);
  j = body_json(r);
  EXPECT_EQ(j["vm"], 0);
  ASSERT_EQ(j["vcpus"].size(), 2u);  // only VM 0's
  EXPECT_EQ(j["vcpus"][1]["vcpu"], 1);

  r = api.handle(get("/api/v1/vms/9"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(body_json(r)["error"]["code"], "not_found");
}

TEST_F(ApiHandlers, UserVmsShowFormatCmdlineStateAndDevices) {
  VmSummary exited = FakeBackend::user_vm(4, "mbguest", VmState::kExited);
  exited.exit_code = 7;
  exited.exit_status = 15;
  exited.exit_cause = "debug_exit";
  exited.resets = 2;
  backend.vm_list.push_back(exited);
  VmSummary failed = FakeBackend::user_vm(5, "broken", VmState::kFailed);
  failed.failure = "kernel module is empty (zero length)";
  failed.kernel_format.clear();
  failed.exit_code = 9;  // stale: only an exited VM shows a code
  backend.vm_list.push_back(failed);

  http::Response r = api.handle(get("/api/v1/vms/4"));
  ASSERT_EQ(r.status, 200);
  json j = body_json(r);
  EXPECT_EQ(j["kind"], "user");
  EXPECT_EQ(j["name"], "mbguest");
  EXPECT_EQ(j["kernel_format"], "multiboot-elf32");
  EXPECT_EQ(j["cmdline"], "exit=7 hello");
  EXPECT_EQ(j["state"], "exited");
  EXPECT_EQ(j["exit_code"], 7);
  EXPECT_EQ(j["exit_status"], 15);
  EXPECT_EQ(j["exit_cause"], "debug_exit");
  EXPECT_TRUE(j["failure"].is_null());
  EXPECT_EQ(j["resets"], 2);
  EXPECT_EQ(j["cpu"], 5);
  EXPECT_EQ(j["devices"]["uart_bytes_in"], 3);
  EXPECT_EQ(j["devices"]["uart_bytes_out"], 40);
  EXPECT_EQ(j["devices"]["unclaimed_port_reads"], 5);
  ASSERT_EQ(j["devices"]["unclaimed_ports"].size(), 1u);
  EXPECT_EQ(j["devices"]["unclaimed_ports"][0]["port"], 0x61);

  j = [&] {
    http::Response x = api.handle(get("/api/v1/vms/5"));
    return body_json(x);
  }();
  EXPECT_EQ(j["state"], "failed");
  EXPECT_EQ(j["failure"], "kernel module is empty (zero length)");
  EXPECT_TRUE(j["kernel_format"].is_null());
  EXPECT_TRUE(j["exit_code"].is_null());

  // Demo VMs: no devices, no user fields.
  j = [&] {
    http::Response x = api.handle(get("/api/v1/vms/0"));
    return body_json(x);
  }();
  EXPECT_EQ(j["kind"], "demo");
  EXPECT_TRUE(j["devices"].is_null());
  EXPECT_TRUE(j["cpu"].is_null());
  EXPECT_TRUE(j["failure"].is_null());
}

TEST_F(ApiHandlers, ConsoleInputIsAllOrNothingIntoABoundedBuffer) {
  backend.vm_list.push_back(FakeBackend::user_vm(6, "mbecho", VmState::kRunning));
  backend.vm_list.push_back(FakeBackend::user_vm(7, "done", VmState::kExited));
  auto post = [&](const std::string& target, std::string body) {
    return api.handle(testing::make_request(http::Method::kPost, target, std::move(body),
                                            {{"content-type", "application/octet-stream"}}));
  };
  http::Response r = post("/api/v1/vms/6/console", "hello\n");
  ASSERT_EQ(r.status, 202);
  EXPECT_EQ(body_json(r)["accepted"], 6);
  EXPECT_EQ(backend.console_input_bytes[6], "hello\n");

  r = post("/api/v1/vms/6/console", "0123456789a");  // 6 + 11 > 16: nothing is taken
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(body_json(r)["error"]["code"], "console_input_full");
  EXPECT_EQ(header_value(r, "retry-after"), "1");
  EXPECT_EQ(backend.console_input_bytes[6], "hello\n");

  r = post("/api/v1/vms/6/console", std::string(17, 'x'));
  EXPECT_EQ(r.status, 413);
  r = post("/api/v1/vms/6/console", "");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(body_json(r)["error"]["code"], "empty_body");
  r = post("/api/v1/vms/9/console", "x");
  EXPECT_EQ(r.status, 404);
  r = post("/api/v1/vms/0/console", "x");  // a demo guest
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(body_json(r)["error"]["code"], "no_console_input");
  r = post("/api/v1/vms/7/console", "x");  // exited
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(body_json(r)["error"]["code"], "vm_not_running");

  r = api.handle(get("/api/v1/vms/6/console"));  // GET stays the output
  EXPECT_NE(r.status, 405);
}

TEST_F(ApiHandlers, ResetRestartsUserVmsOnly) {
  VmSummary exited = FakeBackend::user_vm(4, "mbguest", VmState::kExited);
  backend.vm_list.push_back(exited);
  backend.vm_list.push_back(FakeBackend::user_vm(5, "broken", VmState::kFailed));
  http::Response r = api.handle(testing::make_request(http::Method::kPost, "/api/v1/vms/4/reset"));
  ASSERT_EQ(r.status, 202);
  EXPECT_EQ(body_json(r)["reset"], "requested");
  r = api.handle(get("/api/v1/vms/4"));
  json j = body_json(r);
  EXPECT_EQ(j["state"], "running");
  EXPECT_EQ(j["resets"], 1);

  r = api.handle(testing::make_request(http::Method::kPost, "/api/v1/vms/5/reset"));
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(body_json(r)["error"]["code"], "cannot_reset");
  r = api.handle(testing::make_request(http::Method::kPost, "/api/v1/vms/0/reset"));
  EXPECT_EQ(r.status, 409);
  r = api.handle(testing::make_request(http::Method::kPost, "/api/v1/vms/9/reset"));
  EXPECT_EQ(r.status, 404);
  backend.reset_error = make_error(ErrorCode::kTimeout, "no answer");
  r = api.handle(testing::make_request(http::Method::kPost, "/api/v1/vms/4/reset"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(header_value(r, "retry-after"), "1");
  r = api.handle(get("/api/v1/vms/4/reset"));
  EXPECT_EQ(r.status, 405);
}

TEST_F(ApiHandlers, VcpusAndOneVcpu) {
  http::Response r = api.handle(get("/api/v1/vcpus"));
  json j = body_json(r);
  ASSERT_EQ(j["vcpus"].size(), 3u);
  const json& v = j["vcpus"][1];
  EXPECT_EQ(v["vm"], 0);
  EXPECT_EQ(v["vcpu"], 1);
  EXPECT_EQ(v["cpu"], 1);
  EXPECT_EQ(v["state"], "running");
  EXPECT_EQ(v["launched"], true);
  EXPECT_EQ(v["exits"], 101);
  EXPECT_EQ(v["last_exit"]["reason"], 12);
  EXPECT_EQ(v["last_exit"]["name"], "HLT");
  EXPECT_TRUE(v["stop_reason"].is_null());
  EXPECT_EQ(j["vcpus"][2]["state"], "stopped");
  EXPECT_EQ(j["vcpus"][2]["stop_reason"], "triple fault");

  r = api.handle(get("/api/v1/vms/0/vcpus/1"));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(body_json(r), v);
  EXPECT_EQ(backend.snapshot_calls, 0) << "the summary must not need the owning core";

  r = api.handle(get("/api/v1/vms/0/vcpus/5"));
  EXPECT_EQ(r.status, 404);
}

TEST_F(ApiHandlers, VcpuListCarriesExitCountsOnlyWhenAsked) {
  for (const char* target :
       {"/api/v1/vcpus", "/api/v1/vcpus?exit_counts=false", "/api/v1/vcpus?exit_counts=0"}) {
    http::Response r = api.handle(get(target));
    EXPECT_FALSE(body_json(r)["vcpus"][0].contains("exit_counts")) << target;
  }
  for (const char* target : {"/api/v1/vcpus?exit_counts=true", "/api/v1/vcpus?exit_counts=1"}) {
    http::Response r = api.handle(get(target));
    ASSERT_EQ(r.status, 200) << target;
    const json counts = body_json(r)["vcpus"][1]["exit_counts"];
    EXPECT_EQ(counts, (json{{{"reason", 12}, {"name", "HLT"}, {"kind", "hlt"}, {"count", 40}},
                            {{"reason", 30}, {"name", "IO_INSTRUCTION"}, {"kind", "io"}, {"count", 2}}}))
        << target;
  }
  EXPECT_EQ(backend.snapshot_calls, 0) << "the counters must not need the owning core";
  for (const char* bad :
       {"/api/v1/vcpus?exit_counts=yes", "/api/v1/vcpus?exit_counts=", "/api/v1/vcpus?exit_counts=TRUE"}) {
    http::Response r = api.handle(get(bad));
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(body_json(r)["error"]["code"], "invalid_parameter") << bad;
  }
}

TEST_F(ApiHandlers, EmptyVcpuListWithoutVmx) {
  FakeBackend empty;
  Api no_vmx(empty, AuthConfig{});
  http::Response r = no_vmx.handle(get("/api/v1/vcpus"));
  EXPECT_EQ(body_json(r), (json{{"vcpus", json::array()}}));
  for (const char* path :
       {"/api/v1/vms/0/vcpus/0", "/api/v1/vms/0/vcpus/0/regs", "/api/v1/vms/0/vcpus/0/vmcs",
        "/api/v1/vms/0/vcpus/0/events", "/api/v1/vms/0/vcpus/0/exits"}) {
    r = no_vmx.handle(get(path));
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(body_json(r)["error"]["code"], "not_found") << path;
  }
}

TEST_F(ApiHandlers, RegistersAreFixedWidthHexStrings) {
  http::Response r = api.handle(get("/api/v1/vms/0/vcpus/1/regs"));
  ASSERT_EQ(r.status, 200);
  const json j = body_json(r);
  EXPECT_EQ(j["rax"], "0x1111000000000001");
  EXPECT_EQ(j["rcx"], "0x0000000000000002");
  EXPECT_EQ(j["r15"], "0xfffffffffffffff0");
  EXPECT_EQ(j["rsp"], "0x0000000000007000");
  EXPECT_EQ(j["rip"], "0x000000000000fff0");
  EXPECT_EQ(j["cr0"], "0x0000000060000010");
  EXPECT_EQ(j["efer"], "0x0000000000000500");
  for (const char* name :
       {"rax", "rbx", "rcx", "rdx", "rsi", "rdi",    "rbp", "r8",  "r9",  "r10", "r11", "r12",
        "r13", "r14", "r15", "rsp", "rip", "rflags", "cr0", "cr2", "cr3", "cr4", "efer"}) {
    ASSERT_TRUE(j.contains(name)) << name;
    EXPECT_EQ(j[name].get<std::string>().size(), 18u) << name;
  }
  EXPECT_FALSE(j.contains("rsp_unused"));
  EXPECT_EQ(j["segments"]["cs"]["selector"], "0xf000");
  EXPECT_EQ(j["segments"]["cs"]["base"], "0x00000000ffff0000");
  EXPECT_EQ(j["segments"]["cs"]["limit"], "0x0000ffff");
  EXPECT_EQ(j["segments"]["cs"]["access_rights"], "0x0000009b");
  EXPECT_EQ(j["segments"].size(), 8u);
}

TEST_F(ApiHandlers, DebugStreamSendsTheExactPatternInPieces) {
  http::Response r = api.handle(get("/api/v1/debug/stream?bytes=100"));
  ASSERT_EQ(r.status, 200);
  ASSERT_TRUE(r.stream != nullptr);
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
  size_t pieces = 0;
  std::string expected;
  for (size_t i = 0; i < 100; ++i) expected += "0123456789abcdef"[i % 16];
  EXPECT_EQ(full_body(r, 30, &pieces), expected);
  EXPECT_EQ(pieces, 4u);  // 30 + 30 + 30 + 10
  for (const char* bad : {"/api/v1/debug/stream", "/api/v1/debug/stream?bytes=",
                          "/api/v1/debug/stream?bytes=1x", "/api/v1/debug/stream?bytes=16777217"}) {
    http::Response e = api.handle(get(bad));
    EXPECT_EQ(e.status, 400) << bad;
    EXPECT_EQ(body_json(e)["error"]["code"], "invalid_parameter") << bad;
  }
  http::Response empty = api.handle(get("/api/v1/debug/stream?bytes=0"));
  ASSERT_EQ(empty.status, 200);
  EXPECT_EQ(full_body(empty), "");
}

TEST_F(ApiHandlers, SnapshotRoutesReportTheCaptureTimeAsServerTiming) {
  backend.snapshots[{0, 1}].capture_ns = 1'234'567;  // 1.234 ms (sub-microsecond part dropped)
  for (const char* path :
       {"/api/v1/vms/0/vcpus/1/regs", "/api/v1/vms/0/vcpus/1/vmcs", "/api/v1/vms/0/vcpus/1/exits"}) {
    http::Response r = api.handle(get(path));
    ASSERT_EQ(r.status, 200) << path;
    std::string timing;
    for (const http::Header& h : r.headers) {
      if (h.name == "server-timing") timing = h.value;
    }
    EXPECT_EQ(timing, "snapshot;dur=1.234") << path;
  }
  backend.snapshots[{0, 1}].capture_ns = 5'000;  // 0.005 ms: leading zeros kept
  http::Response r = api.handle(get("/api/v1/vms/0/vcpus/1/regs"));
  ASSERT_FALSE(r.headers.empty());
  EXPECT_EQ(r.headers.back().value, "snapshot;dur=0.005");
}

// Expected dump, built from the fake's snapshot independently of the streaming code.
json expected_vmcs_fields(const VcpuSnapshot& snap) {
  json fields = json::array();
  for (const VmcsValue& v : snap.vmcs) {
    const vmx::VmcsFieldInfo& f = vmx::kVmcsFields[v.field_index];
    const unsigned digits = f.width == vmx::VmcsWidth::k16 ? 4 : f.width == vmx::VmcsWidth::k32 ? 8 : 16;
    const uint64_t mask = digits == 16 ? UINT64_MAX : (uint64_t{1} << (4 * digits)) - 1;
    char value[32], encoding[16];
    snprintf(value, sizeof(value), "0x%0*llx", static_cast<int>(digits),
             static_cast<unsigned long long>(v.value & mask));
    snprintf(encoding, sizeof(encoding), "0x%04x", f.encoding);
    fields.push_back({{"name", std::string(f.name)},
                      {"encoding", encoding},
                      {"width", std::string(vmx::vmcs_width_name(f.width))},
                      {"group", std::string(vmx::vmcs_group_name(f.group))},
                      {"value", value}});
  }
  return fields;
}

TEST_F(ApiHandlers, VmcsDumpIsStreamedInPiecesAndReassemblesToTheWholeDump) {
  const VcpuSnapshot& snap = backend.snapshots[{0, 1}];
  const json expected = expected_vmcs_fields(snap);
  ASSERT_GT(expected.size(), 100u);
  for (size_t max_bytes : {size_t{1}, size_t{200}, size_t{1460}, size_t{1 << 20}}) {
    http::Response r = api.handle(get("/api/v1/vms/0/vcpus/1/vmcs"));
    ASSERT_EQ(r.status, 200);
    ASSERT_NE(r.stream, nullptr) << "the full dump must be streamed";
    EXPECT_TRUE(r.body.empty());
    size_t pieces = 0;
    const std::string text = full_body(r, max_bytes, &pieces);
    const json j = json::parse(text, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << text.substr(0, 200);
    EXPECT_EQ(j["vm"], 0);
    EXPECT_EQ(j["vcpu"], 1);
    EXPECT_EQ(j["count"], expected.size());
    EXPECT_EQ(j["fields"], expected) << "max_bytes " << max_bytes;
    if (max_bytes < 2000) {
      EXPECT_GT(pieces, 10u) << "max_bytes " << max_bytes;
    }
  }
}

TEST_F(ApiHandlers, VmcsPiecesRespectMaxBytes) {
  VmcsDumpSource source(0, 0, backend.snapshots[{0, 0}].vmcs);
  std::string piece;
  ASSERT_TRUE(source.next(piece, 600));  // header
  size_t longest = 0;
  while (true) {
    piece.clear();
    if (!source.next(piece, 600)) break;
    longest = std::max(longest, piece.size());
  }
  EXPECT_LE(longest, 600u);
  EXPECT_GT(longest, 300u) << "pieces should be filled up to max_bytes";
}

TEST_F(ApiHandlers, VmcsSkipsOutOfTableIndices) {
  std::vector<VmcsValue> values = {{0, 1}, {static_cast<uint16_t>(vmx::kVmcsFieldCount), 2}, {1, 3}};
  VmcsDumpSource source(2, 3, values);
  std::string all, piece;
  while (source.next(piece, 64)) {
    all += piece;
    piece.clear();
  }
  const json j = json::parse(all);
  EXPECT_EQ(j["count"], 2);
  EXPECT_EQ(j["fields"].size(), 2u);
}

TEST_F(ApiHandlers, VmcsEmptyDumpIsAnEmptyList) {
  backend.snapshots[{0, 0}].vmcs.clear();
  http::Response r = api.handle(get("/api/v1/vms/0/vcpus/0/vmcs"));
  const json j = body_json(r);
  EXPECT_EQ(j["count"], 0);
  EXPECT_EQ(j["fields"], json::array());
}

TEST_F(ApiHandlers, VmcsNameSelectsExactFields) {
  auto& snap = backend.snapshots[{0, 0}];
  auto index_of = [](std::string_view name) {
    const auto ref = vmx::find_field_by_name(name);
    return static_cast<size_t>(ref->info - vmx::kVmcsFields);
  };
  for (VmcsValue& v : snap.vmcs) {
    if (v.field_index == index_of("GUEST_RIP")) v.value = 0x7c00;
    if (v.field_index == index_of("VM_EXIT_REASON")) v.value = 0xc;
    if (v.field_index == index_of("EPT_POINTER")) v.value = 0x0000'0001'2345'601eull;
    if (v.field_index == index_of("GUEST_CS_SELECTOR")) v.value = 0x8;
  }
  http::Response r = api.handle(get("/api/v1/vms/0/vcpus/0/vmcs?name=GUEST_RIP"));
  ASSERT_EQ(r.status, 200);
  json j = body_json(r);
  EXPECT_EQ(j["count"], 1);
  EXPECT_EQ(j["fields"][0], (json{{"name", "GUEST_RIP"},
                                  {"encoding", "0x681e"},
                                  {"width", "natural"},
                                  {"group", "guest"},
                                  {"value", "0x0000000000007c00"}}));

  r = api.handle(
      get("/api/v1/vms/0/vcpus/0/vmcs?name=VM_EXIT_REASON,EPT_POINTER,EPT_POINTER_HIGH,GUEST_CS_SELECTOR"));
  ASSERT_EQ(r.status, 200);
  j = body_json(r);
  ASSERT_EQ(j["fields"].size(), 4u);
  EXPECT_EQ(j["fields"][0]["encoding"], "0x4402");
  EXPECT_EQ(j["fields"][0]["width"], "32");
  EXPECT_EQ(j["fields"][0]["group"], "read_only");
  EXPECT_EQ(j["fields"][0]["value"], "0x0000000c");
  EXPECT_EQ(j["fields"][1]["encoding"], "0x201a");
  EXPECT_EQ(j["fields"][1]["value"], "0x000000012345601e");
  EXPECT_EQ(j["fields"][2]["name"], "EPT_POINTER_HIGH");
  EXPECT_EQ(j["fields"][2]["encoding"], "0x201b");
  EXPECT_EQ(j["fields"][2]["width"], "32");
  EXPECT_EQ(j["fields"][2]["value"], "0x00000001");
  EXPECT_EQ(j["fields"][3]["value"], "0x0008");
}

TEST_F(ApiHandlers, VmcsNameErrors) {
  struct Case {
    const char* query;
    int status;
    const char* code;
  } cases[] = {
      {"?name=GUEST_RIPX", 400, "unknown_vmcs_field"},
      {"?name=guest_rip", 400, "unknown_vmcs_field"},       // exact names only
      {"?name=GUEST_RIP_HIGH", 400, "unknown_vmcs_field"},  // natural width has no high half
      {"?name=", 400, "invalid_parameter"},
      {"?name=GUEST_RIP,", 400, "invalid_parameter"},
      {"?name=GUEST_RIP,%ff%00", 400, "unknown_vmcs_field"},
  };
  for (const Case& c : cases) {
    const int before = backend.snapshot_calls;
    http::Response r = api.handle(get(std::string("/api/v1/vms/0/vcpus/0/vmcs") + c.query));
    EXPECT_EQ(r.status, c.status) << c.query;
    EXPECT_EQ(body_json(r)["error"]["code"], c.code) << c.query;
    EXPECT_EQ(backend.snapshot_calls, before) << "names are checked before asking the owning core";
  }
  // A real field this CPU does not support (the fake drops every index with i % 7 == 3).
  const std::string missing(vmx::kVmcsFields[3].name);
  http::Response r = api.handle(get("/api/v1/vms/0/vcpus/0/vmcs?name=" + missing));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(body_json(r)["error"]["code"], "vmcs_field_unsupported");
}

TEST_F(ApiHandlers, Exits) {
  http::Response r = api.handle(get("/api/v1/vms/0/vcpus/0/exits"));
  ASSERT_EQ(r.status, 200);
  const json j = body_json(r);
  EXPECT_EQ(j["total"], 100);
  ASSERT_EQ(j["counts"].size(), 2u);  // only non-zero counters
  EXPECT_EQ(j["counts"][0], (json{{"reason", 12}, {"name", "HLT"}, {"kind", "hlt"}, {"count", 40}}));
  EXPECT_EQ(j["counts"][1]["name"], "IO_INSTRUCTION");
  ASSERT_EQ(j["recent"].size(), 2u);
  EXPECT_EQ(j["recent"][0]["reason"], 30);
  EXPECT_EQ(j["recent"][0]["qualification"], "0x0000000003f80008");
  EXPECT_EQ(j["recent"][0]["rip"], "0x0000000000001234");
  EXPECT_EQ(j["recent"][0]["tsc"], 999);
  EXPECT_EQ(j["recent"][0]["entry_failure"], false);
  EXPECT_EQ(j["recent"][1]["reason"], 33);
  EXPECT_EQ(j["recent"][1]["name"], "INVALID_GUEST_STATE");
  EXPECT_EQ(j["recent"][1]["entry_failure"], true);
  EXPECT_EQ(j["recent"][1]["raw_reason"], "0x80000021");
}

TEST_F(ApiHandlers, SnapshotErrorsMapToStatusCodes) {
  struct Case {
    ErrorCode code;
    int status;
    const char* error;
  } cases[] = {
      {ErrorCode::kNotFound, 404, "not_found"},
      {ErrorCode::kTimeout, 503, "snapshot_timeout"},
      {ErrorCode::kInvalidState, 409, "vcpu_stopped"},
      {ErrorCode::kIoError, 500, "internal_error"},
  };
  for (const Case& c : cases) {
    backend.snapshot_error = make_error(c.code, "injected");
    for (const char* path : {"/api/v1/vms/0/vcpus/0/regs", "/api/v1/vms/0/vcpus/0/vmcs",
                             "/api/v1/vms/0/vcpus/0/vmcs?name=GUEST_RIP", "/api/v1/vms/0/vcpus/0/exits"}) {
      http::Response r = api.handle(get(path));
      EXPECT_EQ(r.status, c.status) << path;
      EXPECT_EQ(r.stream, nullptr);
      const json j = body_json(r);
      EXPECT_EQ(j["error"]["code"], c.error) << path;
      if (c.status == 503) {
        EXPECT_NE(j["error"]["message"].get<std::string>().find("did not answer in time"), std::string::npos);
        EXPECT_EQ(header_value(r, "retry-after"), "1");
      }
    }
  }
}

TEST_F(ApiHandlers, ConsoleSinceSemantics) {
  backend.console_capacity = 10;
  backend.console_output[0] = "hello";
  http::Response r = api.handle(get("/api/v1/vms/0/console"));
  ASSERT_EQ(r.status, 200);
  json j = body_json(r);
  EXPECT_EQ(j, (json{{"vm", 0}, {"start", 0}, {"next", 5}, {"missed", 0}, {"text", "hello"}}));
  EXPECT_EQ(backend.last_console_since, 0u);
  EXPECT_EQ(backend.last_console_max, kConsoleMaxBytes);

  backend.console_output[0] += " world";  // 11 bytes, the ring keeps the last 10
  r = api.handle(get("/api/v1/vms/0/console?since=5"));
  j = body_json(r);
  EXPECT_EQ(j["start"], 5);
  EXPECT_EQ(j["text"], " world");
  EXPECT_EQ(j["next"], 11);
  EXPECT_EQ(backend.last_console_since, 5u);

  r = api.handle(get("/api/v1/vms/0/console?since=0"));
  j = body_json(r);
  EXPECT_EQ(j["start"], 1);
  EXPECT_EQ(j["missed"], 1);
  EXPECT_EQ(j["text"], "ello world");

  r = api.handle(get("/api/v1/vms/0/console?since=11"));
  j = body_json(r);
  EXPECT_EQ(j["text"], "");
  EXPECT_EQ(j["next"], 11);

  for (const char* bad : {"?since=-1", "?since=x", "?since=1e3", "?since=18446744073709551616"}) {
    r = api.handle(get(std::string("/api/v1/vms/0/console") + bad));
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(body_json(r)["error"]["code"], "invalid_parameter");
  }
  r = api.handle(get("/api/v1/vms/7/console"));
  EXPECT_EQ(r.status, 404);
}

TEST_F(ApiHandlers, ConsoleTextWithInvalidUtf8IsStillJson) {
  backend.console_output[0] = std::string(
      "a\xff\xfe"
      "b\x01");
  http::Response r = api.handle(get("/api/v1/vms/0/console"));
  ASSERT_EQ(r.status, 200);
  const json j = body_json(r);
  EXPECT_EQ(j["text"],
            "a\xEF\xBF\xBD\xEF\xBF\xBD"
            "b\x01");  // U+FFFD replacements
}

TEST_F(ApiHandlers, LogSinceSemantics) {
  for (uint64_t i = 0; i < 300; ++i) {
    backend.log_lines.push_back(
        LogLine{i, 1000 * i, static_cast<uint32_t>(i % 4), "info", "line " + std::to_string(i), false});
  }
  backend.log_capacity = 280;
  http::Response r = api.handle(get("/api/v1/log"));
  json j = body_json(r);
  EXPECT_EQ(backend.last_log_max, kLogMaxLines);
  EXPECT_EQ(j["missed"], 20);
  ASSERT_EQ(j["lines"].size(), kLogMaxLines);
  EXPECT_EQ(j["lines"][0]["seq"], 20);
  EXPECT_EQ(j["lines"][0]["text"], "line 20");
  EXPECT_EQ(j["lines"][0]["cpu"], 0);
  EXPECT_EQ(j["lines"][0]["level"], "info");
  EXPECT_EQ(j["next"], 20 + kLogMaxLines);

  r = api.handle(get("/api/v1/log?since=" + std::to_string(j["next"].get<uint64_t>())));
  j = body_json(r);
  EXPECT_EQ(j["missed"], 0);
  ASSERT_EQ(j["lines"].size(), 300 - 20 - kLogMaxLines);
  EXPECT_EQ(j["next"], 300);

  r = api.handle(get("/api/v1/log?since=abc"));
  EXPECT_EQ(r.status, 400);
}

TEST_F(ApiHandlers, HeadIsServedLikeGet) {
  http::Response r = api.handle(testing::make_request(http::Method::kHead, "/api/v1/vcpus"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body_json(r)["vcpus"].size(), 3u);
}

}  // namespace
}  // namespace lantern::web::api
