#include "vmx/demo_programs.h"

#include <gtest/gtest.h>

#include <string>

#include "kernel/boot/cmdline.h"

namespace lantern::vmx {
namespace {

std::string program(std::optional<std::string_view> list, uint32_t cpu) {
  auto r = demo_program_for_cpu(list, cpu);
  EXPECT_TRUE(r.has_value()) << "cpu " << cpu;
  return r ? std::string(*r) : std::string("<error>");
}

TEST(DemoPrograms, AbsentOptionRunsTheDemoEverywhere) {
  EXPECT_EQ(program(std::nullopt, 0), "demo");
  EXPECT_EQ(program(std::nullopt, 7), "demo");
}

TEST(DemoPrograms, NamesAreTakenByCoreIndex) {
  const std::string_view list = "demo,hostile_instr,hostile_storm,hostile_cli";
  EXPECT_EQ(program(list, 0), "demo");
  EXPECT_EQ(program(list, 1), "hostile_instr");
  EXPECT_EQ(program(list, 2), "hostile_storm");
  EXPECT_EQ(program(list, 3), "hostile_cli");
}

TEST(DemoPrograms, CoresBeyondTheListAndEmptyEntriesRunTheDemo) {
  EXPECT_EQ(program("hostile_triple", 0), "hostile_triple");
  EXPECT_EQ(program("hostile_triple", 1), "demo");
  EXPECT_EQ(program(",,hostile_paging", 0), "demo");
  EXPECT_EQ(program(",,hostile_paging", 1), "demo");
  EXPECT_EQ(program(",,hostile_paging", 2), "hostile_paging");
  EXPECT_EQ(program("a,", 1), "demo");
  EXPECT_EQ(program("", 0), "demo");
}

TEST(DemoPrograms, SixteenCharactersFitSeventeenDoNot) {
  EXPECT_EQ(program("abcdefghijklmnop", 0), "abcdefghijklmnop");
  auto r = demo_program_for_cpu("demo,abcdefghijklmnopq", 1);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().detail, 1u);
  // Only the entry asked for is checked: core 0 still gets its program.
  EXPECT_EQ(program("demo,abcdefghijklmnopq", 0), "demo");
}

TEST(DemoPrograms, CharactersOutsideTheNameSetAreRefused) {
  for (std::string_view bad : {"Demo", "de mo", "demo.bin", "x/y", "d\xc3\xa9mo", "a=b"}) {
    auto r = demo_program_for_cpu(bad, 0);
    EXPECT_FALSE(r.has_value()) << bad;
    if (!r) {
      EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << bad;
    }
  }
  EXPECT_EQ(program("hostile-2_x9", 0), "hostile-2_x9");
}

TEST(DemoPrograms, ReadFromTheCommandLine) {
  const std::string_view cmdline = "loglevel=info vmx.demo.programs=demo,hostile_cli console.token=x";
  const auto list = cmdline_value(cmdline, kDemoProgramsOption);
  EXPECT_EQ(program(list, 1), "hostile_cli");
  EXPECT_EQ(program(cmdline_value("loglevel=info", kDemoProgramsOption), 1), "demo");
}

}  // namespace
}  // namespace lantern::vmx
