#!/usr/bin/env python3
"""Boot a remastered ISO with `selftest` on the command line and check the in-kernel tests.

Expects `SELFTEST <name> ok` lines (among them the vlapic cases, REQUIRED_TESTS), a final
`selftest: N passed, 0 failed` with N > 0, no
LANTERN PANIC, and the kernel ending the emulator: QEMU through isa-debug-exit with value 0 (exit
status 1), Bochs through the shutdown port 0x8900 (Bochs always exits with status 1).
"""
import harness

# Seconds the emulator may take to exit after the summary line.
EXIT_GRACE = 15.0
# Bochs exits with status 1 through port 0x8900 whatever the result (emulators.md).
BOCHS_SHUTDOWN_STATUS = 1
# Self-tests that must be present and pass (they log "skipped: no VMX" and pass without VMX):
# the vlapic wired into the exit path (xAPIC MMIO and x2APIC MSRs, one-shot/TSC-deadline timers
# waking HLT, the periodic timer, self-IPIs), a fixed IPI and INIT + SIPI between two vCPUs of a VM,
# and the demo guest's console line per queued event.
REQUIRED_TESTS = ("vmx_vlapic", "vmx_vlapic_ipi_between_vcpus", "vmx_demo_event_lines")


def test(args):
    with harness.temp_dir("lantern-selftest-") as tmp:
        iso = harness.remaster(args, tmp, cmdline="selftest")
        with harness.boot(args, iso=iso) as emu:
            m, seconds = emu.wait_for(harness.SELFTEST_SUMMARY_RE, harness.timeout_of(args))
            passed, failed = int(m.group("passed")), int(m.group("failed"))
            print(f"{args.emulator}: '{m.group(0)}' after {seconds * 1000:.0f} ms", flush=True)
            status = emu.wait_exit(EXIT_GRACE)
            log = emu.log()
            results = list(harness.SELFTEST_RE.finditer(log))
            fails = [r.group(0) for r in results if r.group("result") == "FAIL"]
            harness.assert_no_panic(emu)
            harness.check(not fails, "failing self-tests:\n  " + "\n  ".join(fails))
            names = {r.group("name"): r.group("result") for r in results}
            for name in REQUIRED_TESTS:
                harness.check(names.get(name) == "ok", f"SELFTEST {name} ok is missing")
            harness.check(failed == 0, f"summary reports {failed} failed")
            harness.check(passed > 0, "summary reports no test passed")
            harness.check(len(results) == passed + failed,
                          f"{len(results)} SELFTEST lines, but the summary counts {passed + failed}")
            expected = (harness.qemu_exit_status(0) if args.emulator == "qemu"
                        else BOCHS_SHUTDOWN_STATUS)
            harness.check(status == expected,
                          f"{args.emulator} exited with status {status}, expected {expected}")


if __name__ == "__main__":
    harness.main(test)
