#!/usr/bin/env python3
"""The SVM backend's bring-up under an emulator with AMD SVM (QEMU TCG -cpu max, Bochs ryzen).

1. A `selftest` boot: `SELFTEST <name> ok` for every SVM self-test, no FAIL line and no panic.
   The bring-up vCPU's guest-exit test (real mode: CPUID, OUT, IN, RDMSR, VMMCALL, an intercepted
   VMRUN answered with #UD, HLT and a triple fault that stops only its own vCPU, all with RIP
   advanced without relying on NRIP) and the SvmVcpu tests (svm/hw/svm_guest_selftests.cpp:
   32-bit protected mode, events, xstate, 64-bit long mode, the vlapic) ran on every CPU at once;
   the IPI test sent from a vCPU on cpu0 to one on cpu1.
2. A normal boot: the READY line says `hv=svm svm=<cpus>`.

Under Bochs the self-test boot adds `svm.selftest.triple_fault=0`: Bochs 2.7 ends the whole
emulator on a triple fault inside an SVM guest (its exception() panics before it takes the
guest's SHUTDOWN intercept), so there the bring-up test stops before its triple fault and says so
on every core; QEMU runs it.
"""
import harness

EXIT_GRACE = 15.0
SVM_TESTS = ("svm_every_core_in_svm_operation", "svm_guest_exits", "svm_protected_mode", "svm_event_injection",
             "svm_xstate_isolation", "svm_long_mode", "svm_vlapic", "svm_vlapic_ipi_between_vcpus")
# The tests that run on every core at once and say so.
EVERY_CORE_TESTS = ("svm_guest_exits", "svm_protected_mode", "svm_event_injection", "svm_xstate_isolation",
                    "svm_long_mode", "svm_vlapic")


def test(args):
    with harness.temp_dir("lantern-svm-") as tmp:
        triple_fault = args.emulator != "bochs"
        iso = harness.remaster(args, tmp, cmdline="selftest" if triple_fault else "selftest svm.selftest.triple_fault=0")
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
            for name in EVERY_CORE_TESTS:
                cores = f"selftest {name}: passed on {args.cpus} core(s) at once"
                harness.check(cores in log, f"missing '{cores}'")
            if args.cpus > 1:
                ipi = "selftest svm_vlapic_ipi_between_vcpus: vm925 vcpu0 (cpu0) -> vcpu1 (cpu1): vector 0x45 delivered"
                harness.check(ipi in log, f"missing '{ipi}'")
            long_mode = log.count("selftest svm_long_mode: cpu")
            harness.check(long_mode == args.cpus, f"{long_mode} long-mode guests reported 64-bit mode, expected {args.cpus}")
            if triple_fault:
                stops = log.count("stopped: VMEXIT_SHUTDOWN")
                harness.check(stops == args.cpus, f"{stops} vCPUs stopped on a triple fault, expected {args.cpus}")
            else:
                off = log.count("triple-fault step off (svm.selftest.triple_fault=0)")
                harness.check(off == args.cpus, f"the triple-fault step was off on {off} cores, expected {args.cpus}")
            print(f"{args.emulator}: SVM self-tests passed on {args.cpus} cores", flush=True)

        with harness.boot(args) as emu:
            ready, seconds = harness.wait_ready(emu, args)
            print(f"{args.emulator}: '{ready.line}' after {seconds * 1000:.0f} ms", flush=True)
            harness.check(f" hv=svm svm={args.cpus} " in ready.line, f"READY lacks hv=svm svm={args.cpus}")
            harness.check(ready.cpus == args.cpus, f"cpus={ready.cpus}, expected {args.cpus}")
            harness.assert_no_panic(emu)


if __name__ == "__main__":
    harness.main(test)
