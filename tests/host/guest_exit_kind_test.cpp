#include <gtest/gtest.h>

#include <set>
#include <string>

#include "guest/exit_kind.h"

namespace lantern::guest {
namespace {

TEST(GuestExitKind, EveryKindHasItsOwnName) {
  std::set<std::string> names;
  for (int k = 0; k <= static_cast<int>(ExitKind::kUnknown); ++k) {
    const std::string name(exit_kind_name(static_cast<ExitKind>(k)));
    EXPECT_FALSE(name.empty()) << k;
    EXPECT_TRUE(names.insert(name).second) << "two kinds are called " << name;
    if (static_cast<ExitKind>(k) != ExitKind::kUnknown) {
      EXPECT_NE(name, "unknown") << k;
    }
  }
}

TEST(GuestExitKind, NamesTheApiDocuments) {
  EXPECT_EQ(exit_kind_name(ExitKind::kIo), "io");
  EXPECT_EQ(exit_kind_name(ExitKind::kNestedPageFault), "nested_page_fault");
  EXPECT_EQ(exit_kind_name(ExitKind::kVirtualizationInstruction), "virtualization_instruction");
  EXPECT_EQ(exit_kind_name(static_cast<ExitKind>(200)), "unknown");
}

}  // namespace
}  // namespace lantern::guest
