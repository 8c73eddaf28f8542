#!/usr/bin/env python3
"""Boot a remastered ISO with `selftest` on the command line and check the in-kernel tests.

Expects `SELFTEST <name> ok` lines (among them the vlapic cases, REQUIRED_TESTS), a final
`selftest: N passed, 0 failed` with N > 0, no
LANTERN PANIC, and the kernel ending the emulator: QEMU through isa-debug-exit with value 0 (exit
status 1), Bochs through the shutdown port 0x8900 (Bochs always exits with status 1).
Under Bochs (VMX) the 64-bit long-mode guest test must have run and passed on every core, and
the suite must give back the memory its guest VMs used (free frames and heap before/after).
"""
import re

import harness

# Guest VMs (2 MiB RAM + EPT + VMCS/bitmaps/xstate pages each) are freed when a test ends; what
# stays allocated across the whole suite must be far below one VM's worth.
MAX_SUITE_LEAK_KIB = 1024
MEMORY_RE = re.compile(r"selftest: free memory before (?P<before>\d+) KiB, after (?P<after>\d+) KiB; "
                       r"heap in use before (?P<heap_before>\d+), after (?P<heap_after>\d+) bytes")

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
            memory = MEMORY_RE.search(log)
            harness.check(memory is not None, "no 'selftest: free memory before/after' line")
            leak_kib = int(memory.group("before")) - int(memory.group("after"))
            heap_leak = int(memory.group("heap_after")) - int(memory.group("heap_before"))
            print(f"{args.emulator}: {memory.group(0)}", flush=True)
            harness.check(leak_kib <= MAX_SUITE_LEAK_KIB, f"the suite kept {leak_kib} KiB of frames")
            harness.check(heap_leak <= MAX_SUITE_LEAK_KIB * 1024, f"the suite kept {heap_leak} heap bytes")
            if args.emulator == "bochs":
                harness.check("SELFTEST vmx_long_mode ok" in log, "the long-mode guest test did not pass")
                cores = f"selftest vmx_long_mode: passed on {args.cpus} of {args.cpus} cores at once"
                harness.check(cores in log, f"missing '{cores}'")
                # IA32_EFER.LME (bit 8) and LMA (bit 10) as the vCPU left them (SDM Vol. 3A 2.2.1).
                efers = [int(v, 16) for v in
                         re.findall(r"selftest vmx_long_mode: cpu\d+: vm\d+ in 64-bit mode, EFER 0x([0-9a-f]+)", log)]
                harness.check(len(efers) == args.cpus and all(e & 0x500 == 0x500 for e in efers),
                              f"not every core's long-mode guest reported EFER.LME|LMA: {efers}")
            expected = (harness.qemu_exit_status(0) if args.emulator == "qemu"
                        else BOCHS_SHUTDOWN_STATUS)
            harness.check(status == expected,
                          f"{args.emulator} exited with status {status}, expected {expected}")


if __name__ == "__main__":
    harness.main(test)
