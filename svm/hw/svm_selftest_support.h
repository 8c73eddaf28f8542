// What the SVM self-test files share (svm_selftests.cpp, svm_guest_selftests.cpp). Kernel-only.
#pragma once

#include "kernel/core/core_mailbox.h"
#include "kernel/lib/result.h"

namespace lantern::svm {

// True (after logging "selftest <test>: skipped: no SVM (<reason>)") when this core is not in
// SVM operation: the test then passes without running.
bool skip_without_svm(const char* test);

// Runs `body` on every online core at once through the core mailboxes (kernel/core/core_mailbox.h):
// the APs' copies and this core's own; returns the first failure after every copy ended (each
// failure is logged with its core), or logs "selftest <test>: passed on <n> core(s) at once".
Result<void> run_on_every_core(const char* test, CoreWork body);

}  // namespace lantern::svm
