// guest::run_vcpu() (guest/run_loop.h) through a scripted fake backend: which steps run in which
// order, and when the loop returns.
#include "guest/run_loop.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace lantern::guest {
namespace {

enum class FakeOutcome { kHandled, kToCaller, kSlept };

// One entry's script: what the guest's exit leads to.
struct Step {
  bool decline_entry = false;  // pre_enter() says "do not enter" (a HLT slept through)
  bool pre_enter_fails = false;
  bool enter_fails = false;
  bool dispatch_fails = false;
  FakeOutcome outcome = FakeOutcome::kHandled;
  bool leave_after = false;  // a leave request is there after this exit
};

template <uint32_t kPerTurn>
struct FakeSeam {
  using Exit = int;  // the step's index
  using Outcome = FakeOutcome;
  static constexpr uint32_t kHandledExitsPerTurn = kPerTurn;

  explicit FakeSeam(std::vector<Step> steps) : script(std::move(steps)) {}

  std::vector<Step> script;
  size_t next = 0;
  std::string trace;  // p = pre_enter, e = enter, d = dispatch, l = leave check, x = post_exit

  const Step& current() {
    // Running past the script is a test failure, not a hang.
    if (next >= script.size()) {
      ADD_FAILURE() << "the loop entered more often than scripted; trace " << trace;
      static const Step kLeave{false, false, false, false, FakeOutcome::kToCaller, false};
      return kLeave;
    }
    return script[next];
  }
  Result<bool> pre_enter() {
    trace += 'p';
    if (current().pre_enter_fails) return make_error(ErrorCode::kInvalidState, "pre-enter failed");
    return !current().decline_entry;
  }
  Outcome outcome_without_entry() {
    ++next;
    return FakeOutcome::kSlept;
  }
  Result<void> enter_and_decode(Exit& exit) {
    trace += 'e';
    if (current().enter_fails) return make_error(ErrorCode::kVmxInstructionFailed, "entry failed");
    exit = static_cast<int>(next);
    return ok();
  }
  Result<Outcome> dispatch(Exit& exit) {
    trace += 'd';
    EXPECT_EQ(exit, static_cast<int>(next)) << "dispatch saw another exit than enter decoded";
    const Step& step = current();
    ++next;
    if (step.dispatch_fails) return make_error(ErrorCode::kInvalidState, "handler failed");
    return step.outcome;
  }
  bool handled_inside(const Outcome& outcome) { return outcome == FakeOutcome::kHandled; }
  bool leave_requested() {
    trace += 'l';
    return script[next - 1].leave_after;
  }
  void post_exit() { trace += 'x'; }
};

constexpr Step handled() { return Step{}; }
constexpr Step to_caller() {
  Step s;
  s.outcome = FakeOutcome::kToCaller;
  return s;
}

TEST(GuestRunLoop, HandledExitsGoBackInUntilOneForTheCaller) {
  FakeSeam<0> seam({handled(), handled(), to_caller()});
  const Result<FakeOutcome> outcome = run_vcpu(seam);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(*outcome, FakeOutcome::kToCaller);
  EXPECT_EQ(seam.next, 3u);
  // Each handled exit: leave check, then post-exit, then the next pre-enter. The exit for the
  // caller returns before either.
  EXPECT_EQ(seam.trace, "pedlxpedlxped");
}

TEST(GuestRunLoop, AnEntryErrorReturnsBeforeAnyHandlerRuns) {
  Step failing = handled();
  failing.enter_fails = true;
  FakeSeam<0> seam({handled(), failing});
  const Result<FakeOutcome> outcome = run_vcpu(seam);
  ASSERT_FALSE(outcome.has_value());
  EXPECT_EQ(outcome.error().code, ErrorCode::kVmxInstructionFailed);
  EXPECT_EQ(seam.trace, "pedlxpe");
}

TEST(GuestRunLoop, APreEnterErrorReturnsWithoutEntering) {
  Step failing = handled();
  failing.pre_enter_fails = true;
  FakeSeam<0> seam({failing});
  const Result<FakeOutcome> outcome = run_vcpu(seam);
  ASSERT_FALSE(outcome.has_value());
  EXPECT_STREQ(outcome.error().message, "pre-enter failed");
  EXPECT_EQ(seam.trace, "p");
}

TEST(GuestRunLoop, AHandlerErrorReturnsWithoutLeaveCheckOrPostExit) {
  Step failing = handled();
  failing.dispatch_fails = true;
  FakeSeam<0> seam({failing});
  const Result<FakeOutcome> outcome = run_vcpu(seam);
  ASSERT_FALSE(outcome.has_value());
  EXPECT_STREQ(outcome.error().message, "handler failed");
  EXPECT_EQ(seam.trace, "ped");
}

TEST(GuestRunLoop, ADeclinedEntryReturnsTheBackendsOutcomeWithoutEntering) {
  Step sleeps = handled();
  sleeps.decline_entry = true;
  FakeSeam<0> seam({handled(), sleeps});
  const Result<FakeOutcome> outcome = run_vcpu(seam);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(*outcome, FakeOutcome::kSlept);
  EXPECT_EQ(seam.trace, "pedlxp");
}

TEST(GuestRunLoop, ALeaveRequestReturnsTheHandledExitAndSkipsPostExit) {
  Step leaving = handled();
  leaving.leave_after = true;
  FakeSeam<0> seam({handled(), leaving, handled()});
  const Result<FakeOutcome> outcome = run_vcpu(seam);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(*outcome, FakeOutcome::kHandled);
  EXPECT_EQ(seam.next, 2u);
  EXPECT_EQ(seam.trace, "pedlxpedl");
}

TEST(GuestRunLoop, ALeaveRequestDoesNotHoldBackAnExitForTheCaller) {
  // The caller gets the exit it must see, not a bare "handled".
  Step leaving = to_caller();
  leaving.leave_after = true;
  FakeSeam<0> seam({leaving});
  const Result<FakeOutcome> outcome = run_vcpu(seam);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(*outcome, FakeOutcome::kToCaller);
  EXPECT_EQ(seam.trace, "ped");
}

TEST(GuestRunLoop, ABackendWithATurnBudgetReturnsAfterThatManyHandledExits) {
  FakeSeam<3> seam({handled(), handled(), handled(), handled()});
  const Result<FakeOutcome> outcome = run_vcpu(seam);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(*outcome, FakeOutcome::kHandled);
  EXPECT_EQ(seam.next, 3u);
  EXPECT_EQ(seam.trace, "pedlxpedlxpedlx");
}

TEST(GuestRunLoop, TheTurnBudgetCountsOnlyOneRunAndOnlyHandledExits) {
  FakeSeam<2> seam({handled(), to_caller(), handled(), handled(), handled()});
  Result<FakeOutcome> first = run_vcpu(seam);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(*first, FakeOutcome::kToCaller);
  EXPECT_EQ(seam.next, 2u);
  // A new run() starts its own count: two more handled exits, not one.
  Result<FakeOutcome> second = run_vcpu(seam);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(*second, FakeOutcome::kHandled);
  EXPECT_EQ(seam.next, 4u);
}

TEST(GuestRunLoop, WithoutABudgetAHandledRunGoesOnPastAnyCount) {
  FakeSeam<0> seam(std::vector<Step>(1000, handled()));
  seam.script.push_back(to_caller());
  const Result<FakeOutcome> outcome = run_vcpu(seam);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(*outcome, FakeOutcome::kToCaller);
  EXPECT_EQ(seam.next, 1001u);
}

}  // namespace
}  // namespace lantern::guest
