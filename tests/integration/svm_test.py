#!/usr/bin/env python3
"""The SVM backend's bring-up under an emulator with AMD SVM (QEMU TCG -cpu max, Bochs ryzen).

1. A `selftest` boot: `SELFTEST svm_every_core_in_svm_operation ok` and `SELFTEST svm_guest_exits ok`,
   the guest-exit test ran on every CPU at once (CPUID, OUT, IN, RDMSR, VMMCALL, an intercepted
   VMRUN answered with #UD, HLT and a triple fault that stops only its own vCPU, all with RIP
   advanced without relying on NRIP), no FAIL line and no panic.
2. A normal boot: the READY line says `hv=svm svm=<cpus>`.
"""
import harness

EXIT_GRACE = 15.0
SVM_TESTS = ("svm_every_core_in_svm_operation", "svm_guest_exits")


def test(args):
    with harness.temp_dir("lantern-svm-") as tmp:
        iso = harness.remaster(args, tmp, cmdline="selftest")
        with harness.boot(args, iso=iso) as emu:
            m, seconds = emu.wait_for(harness.SELFTEST_SUMMARY_RE, harness.timeout_of(args))
            print(f"{args.emulator}: '{m.group(0)}' after {seconds * 1000:.0f} ms", flush=True)
            emu.wait_exit(EXIT_GRACE)
            log = emu.log()
            harness.assert_no_panic(emu)
            results = {r.group("name"): r.group(0) for r in harness.SELFTEST_RE.finditer(log)}
            for name in SVM_TESTS:
                harness.check(results.get(name) == f"SELFTEST {name} ok",
                              f"{name}: {results.get(name, 'missing')}")
            harness.check("skipped: no SVM" not in log, "the SVM tests were skipped: " +
                          next((line for line in log.splitlines() if "no SVM" in line), ""))
            cores = f"selftest svm_guest_exits: passed on {args.cpus} core(s) at once"
            harness.check(cores in log, f"missing '{cores}'")
            stops = log.count("stopped: VMEXIT_SHUTDOWN")
            harness.check(stops == args.cpus, f"{stops} vCPUs stopped on a triple fault, expected {args.cpus}")
            print(f"{args.emulator}: SVM self-tests passed on {args.cpus} cores", flush=True)

        with harness.boot(args) as emu:
            ready, seconds = harness.wait_ready(emu, args)
            print(f"{args.emulator}: '{ready.line}' after {seconds * 1000:.0f} ms", flush=True)
            harness.check(f" hv=svm svm={args.cpus} " in ready.line, f"READY lacks hv=svm svm={args.cpus}")
            harness.check(ready.cpus == args.cpus, f"cpus={ready.cpus}, expected {args.cpus}")
            harness.assert_no_panic(emu)


if __name__ == "__main__":
    harness.main(test)
