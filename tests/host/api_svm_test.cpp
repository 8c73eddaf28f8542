// The console API over SVM vCPUs: the shared routes, GET .../vmcb (every field with its APM
// name, offset, width and area; ?name=), the 404s between .../vmcs and .../vmcb, SVM exits
// with their vendor-neutral kind and APM name, and /system and /cpus with the SVM backend.
#include <gtest/gtest.h>

#include "api_fake_backend.h"
#include "api_test_util.h"
#include "svm/vmcb.h"
#include "web/api/api.h"
#include "web/api/json_shape.h"

namespace lantern::web::api {
namespace {

using nlohmann::json;
using testing::body_json;
using testing::FakeBackend;
using testing::get;

class ApiSvm : public ::testing::Test {
 protected:
  ApiSvm() : api(backend, AuthConfig{}) {
    backend.add_vcpu(0, 0);      // VMX
    backend.add_svm_vcpu(1, 0);  // SVM
    backend.vm_list.push_back(
        testing::FakeBackend::demo_vm(1, "demo", VmState::kRunning, 2 << 20, 1, 0, std::nullopt));
  }
  json get_json(const std::string& target, int expected_status) {
    http::Response r = api.handle(get(target));
    EXPECT_EQ(r.status, expected_status) << target << ": " << r.body;
    return body_json(r);
  }
  FakeBackend backend;
  Api api;
};

TEST_F(ApiSvm, VcpuListNamesTheBackendAndTheSvmExit) {
  const json j = get_json("/api/v1/vcpus", 200);
  ASSERT_EQ(j["vcpus"].size(), 2u);
  EXPECT_EQ(j["vcpus"][0]["backend"], "vmx");
  EXPECT_EQ(j["vcpus"][0]["last_exit"]["name"], "HLT");
  EXPECT_EQ(j["vcpus"][1]["backend"], "svm");
  EXPECT_EQ(j["vcpus"][1]["last_exit"], (json{{"reason", 0x78}, {"name", "VMEXIT_HLT"}, {"kind", "hlt"}}));
}

TEST_F(ApiSvm, VcpuListExitCountsUseSvmExitCodes) {
  const json j = get_json("/api/v1/vcpus?exit_counts=true", 200);
  EXPECT_EQ(j["vcpus"][1]["exit_counts"],
            (json{{{"reason", 0x72}, {"name", "VMEXIT_CPUID"}, {"kind", "cpuid"}, {"count", 7}},
                  {{"reason", 0x78}, {"name", "VMEXIT_HLT"}, {"kind", "hlt"}, {"count", 3}},
                  {{"reason", 0x400}, {"name", "VMEXIT_NPF"}, {"kind", "nested_page_fault"}, {"count", 1}}}));
}

TEST_F(ApiSvm, VmcbDumpHasEveryFieldWithApmNameOffsetWidthArea) {
  const json j = get_json("/api/v1/vms/1/vcpus/0/vmcb", 200);
  EXPECT_EQ(j["vm"], 1);
  EXPECT_EQ(j["vcpu"], 0);
  ASSERT_EQ(j["count"], svm::kVmcbFieldCount);
  ASSERT_EQ(j["fields"].size(), svm::kVmcbFieldCount);
  bool saw_control = false, saw_save = false;
  for (size_t i = 0; i < svm::kVmcbFieldCount; ++i) {
    const json& f = j["fields"][i];
    const svm::VmcbFieldInfo& info = svm::kVmcbFields[i];
    EXPECT_EQ(f["name"], std::string(info.name));
    EXPECT_EQ(f["offset"], info.offset);
    EXPECT_EQ(f["width"], info.width);
    EXPECT_EQ(f["area"], info.offset < 0x400 ? "control" : "save");
    // width/4 hex digits of the captured value (0x1122334455667788 + index, truncated).
    const uint64_t v = 0x1122'3344'5566'7788ull + i;
    EXPECT_EQ(f["value"], hex_string(v, info.width / 4)) << info.name;
    saw_control |= f["area"] == "control";
    saw_save |= f["area"] == "save";
  }
  EXPECT_TRUE(saw_control && saw_save);
}

TEST_F(ApiSvm, VmcbNameSelectsFieldsInTheOrderAsked) {
  const json j = get_json("/api/v1/vms/1/vcpus/0/vmcb?name=RIP,EXITCODE,CS_SELECTOR", 200);
  ASSERT_EQ(j["count"], 3);
  EXPECT_EQ(j["fields"][0]["name"], "RIP");
  EXPECT_EQ(j["fields"][0]["offset"], 0x578);
  EXPECT_EQ(j["fields"][0]["area"], "save");
  EXPECT_EQ(j["fields"][1]["name"], "EXITCODE");
  EXPECT_EQ(j["fields"][1]["offset"], 0x070);
  EXPECT_EQ(j["fields"][1]["width"], 64);
  EXPECT_EQ(j["fields"][1]["area"], "control");
  EXPECT_EQ(j["fields"][2]["name"], "CS_SELECTOR");
  EXPECT_EQ(j["fields"][2]["width"], 16);
  EXPECT_EQ(j["fields"][2]["value"].get<std::string>().size(), 2u + 4u);
}

TEST_F(ApiSvm, VmcbBadNamesAre400) {
  EXPECT_EQ(get_json("/api/v1/vms/1/vcpus/0/vmcb?name=GUEST_RIP", 400)["error"]["code"],
            "unknown_vmcb_field");
  EXPECT_EQ(get_json("/api/v1/vms/1/vcpus/0/vmcb?name=rip", 400)["error"]["code"], "unknown_vmcb_field");
  EXPECT_EQ(get_json("/api/v1/vms/1/vcpus/0/vmcb?name=RIP,", 400)["error"]["code"], "invalid_parameter");
  EXPECT_EQ(backend.snapshot_calls, 0);  // refused before asking the owning core
}

TEST_F(ApiSvm, EachControlBlockRouteIs404OnTheOtherBackend) {
  const json vmcs = get_json("/api/v1/vms/1/vcpus/0/vmcs", 404);
  EXPECT_EQ(vmcs["error"]["code"], "no_vmcs");
  EXPECT_NE(vmcs["error"]["message"].get<std::string>().find("SVM"), std::string::npos);
  const json vmcb = get_json("/api/v1/vms/0/vcpus/0/vmcb", 404);
  EXPECT_EQ(vmcb["error"]["code"], "no_vmcb");
  EXPECT_NE(vmcb["error"]["message"].get<std::string>().find("VMX"), std::string::npos);
  EXPECT_EQ(get_json("/api/v1/vms/7/vcpus/0/vmcb", 404)["error"]["code"], "not_found");
}

TEST_F(ApiSvm, VmcbSnapshotErrorsMapLikeTheOtherRoutes) {
  backend.snapshot_error = Error{ErrorCode::kTimeout, "late", 0};
  EXPECT_EQ(get_json("/api/v1/vms/1/vcpus/0/vmcb", 503)["error"]["code"], "snapshot_timeout");
}

TEST_F(ApiSvm, ExitsCarryKindRawCodeAndApmName) {
  const json j = get_json("/api/v1/vms/1/vcpus/0/exits", 200);
  EXPECT_EQ(j["backend"], "svm");
  EXPECT_EQ(j["total"], 11);
  ASSERT_EQ(j["counts"].size(), 3u);
  EXPECT_EQ(j["counts"][0],
            (json{{"reason", 0x72}, {"name", "VMEXIT_CPUID"}, {"kind", "cpuid"}, {"count", 7}}));
  EXPECT_EQ(j["counts"][2]["name"], "VMEXIT_NPF");
  EXPECT_EQ(j["counts"][2]["kind"], "nested_page_fault");
  ASSERT_EQ(j["recent"].size(), 2u);
  const json& npf = j["recent"][0];
  EXPECT_EQ(npf["reason"], 0x400);
  EXPECT_EQ(npf["raw_reason"], "0x0000000000000400");
  EXPECT_EQ(npf["exitinfo1"], "0x0000000100000006");
  EXPECT_EQ(npf["qualification"], npf["exitinfo1"]);
  EXPECT_EQ(npf["exitinfo2"], "0x00000000fee00000");
  EXPECT_EQ(npf["rip"], "0x0000000000001234");
  // QEMU 7.2's zero-extended VMEXIT_INVALID still reads as -1.
  const json& invalid = j["recent"][1];
  EXPECT_EQ(invalid["reason"], -1);
  EXPECT_EQ(invalid["name"], "VMEXIT_INVALID");
  EXPECT_EQ(invalid["kind"], "invalid");
  EXPECT_EQ(invalid["raw_reason"], "0x00000000ffffffff");
}

TEST_F(ApiSvm, VmxExitsSayTheirBackend) {
  EXPECT_EQ(get_json("/api/v1/vms/0/vcpus/0/exits", 200)["backend"], "vmx");
}

TEST_F(ApiSvm, RegistersAndEventsServeSvmVcpus) {
  const json regs = get_json("/api/v1/vms/1/vcpus/0/regs", 200);
  EXPECT_EQ(regs["backend"], "svm");
  EXPECT_EQ(regs["rax"], "0x0000000000000004");
  EXPECT_EQ(regs["rip"], "0x0000000000001010");
  http::Response posted =
      api.handle(testing::post_json("/api/v1/vms/1/vcpus/0/events", R"({"type":"nmi","vector":2})"));
  EXPECT_EQ(posted.status, 202);
  const json events = get_json("/api/v1/vms/1/vcpus/0/events", 200);
  ASSERT_EQ(events["count"], 1);
  EXPECT_EQ(events["events"][0]["type"], "nmi");
}

TEST(ApiSvmShape, SystemReportsTheBackendAndSvmCapabilities) {
  SystemSummary s;
  s.hv = "svm";
  s.svm_cores = 4;
  s.svm_available = true;
  s.svm_cpuid = true;
  s.svm_caps.nested_paging = true;
  s.svm_caps.vgif = true;
  s.svm_caps.revision = 1;
  s.svm_caps.asids = 16;
  const json j = system_json(s);
  EXPECT_EQ(j["hv"], "svm");
  EXPECT_EQ(j["svm"]["cores"], 4);
  EXPECT_EQ(j["svm"]["available"], true);
  EXPECT_EQ(j["svm"]["asids"], 16);
  EXPECT_EQ(j["svm"]["capabilities"]["nested_paging"], true);
  EXPECT_EQ(j["svm"]["capabilities"]["next_rip_save"], false);
  EXPECT_EQ(j["svm"]["capabilities"]["vgif"], true);
  EXPECT_EQ(j["vmx"]["available"], false);
}

TEST(ApiSvmShape, CpuReportsSvmState) {
  CpuSummary c;
  c.svm = CpuVmxState::kOn;
  EXPECT_EQ(cpu_json(c)["svm"], "on");
  EXPECT_EQ(cpu_json(c)["vmx"], "unsupported");
}

TEST(ApiSvmShape, VmcbFieldWidthsSetTheDigits) {
  const svm::VmcbFieldInfo* tlb = svm::find_vmcb_field_by_name("TLB_CONTROL");
  ASSERT_NE(tlb, nullptr);
  EXPECT_EQ(vmcb_field_json(*tlb, 0x1ff)["value"], "0xff");  // 8 bits: higher bits dropped
  const svm::VmcbFieldInfo* asid = svm::find_vmcb_field_by_name("GUEST_ASID");
  ASSERT_NE(asid, nullptr);
  EXPECT_EQ(vmcb_field_json(*asid, 5)["value"], "0x00000005");
}

}  // namespace
}  // namespace lantern::web::api
