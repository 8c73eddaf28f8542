#!/usr/bin/env python3
"""VMX at boot. Under Bochs (which emulates VMX): READY says vmx=<cpus> vcpus=<cpus>, every core's
demo guest prints its banner through the guest UART, and the guests keep running on their
periodic vlapic timer (a `demo: rounds <n> ticks <t>` line per VM, printed every 256 timer
interrupts). Under QEMU TCG (no VMX): READY says vmx=0 vcpus=0, the log
says why, and the console still answers."""
import re

import harness


def test(args):
    with harness.boot(args) as emu:
        ready, seconds = harness.wait_ready(emu, args)
        model = args.cpu_model or "default"
        print(f"{args.emulator}/{model} cpus={args.cpus}: READY after {seconds * 1000:.0f} ms: {ready.line}",
              flush=True)
        harness.assert_no_panic(emu)
        if args.emulator == "qemu":
            harness.check(ready.vmx == 0 and ready.vcpus == 0, f"QEMU TCG has no VMX, READY says {ready.line}")
            harness.check("vmx: unavailable: CPUID.01H:ECX[5]" in emu.log(), "the log does not say why VMX is off")
            status, _, body = harness.http_get(emu.port, "/api/v1/system")
            harness.check(status == 200, f"the console answered {status} without VMX: {body[:80]!r}")
            return
        harness.check(ready.vmx == args.cpus, f"vmx={ready.vmx}, expected every core ({args.cpus})")
        harness.check(ready.vcpus == args.cpus, f"vcpus={ready.vcpus}, expected one per core ({args.cpus})")
        # The BSP's guest starts after READY (the APs' before it): wait for every banner.
        for vm in range(args.cpus):
            emu.wait_for(re.compile(rf"guest vm{vm}: Lantern demo guest"), harness.timeout_of(args),
                         what=f"the banner of guest vm{vm}")
        # Guests keep running after READY: each VM prints `demo: rounds N ticks T` every 256 ticks
        # of its x2APIC periodic timer (the vlapic's interrupts end its HLTs).
        for vm in range(args.cpus):
            emu.wait_for(re.compile(rf"guest vm{vm}: demo: rounds 0*[1-9a-f][0-9a-f]* ticks 0*[1-9a-f][0-9a-f]*"),
                         harness.timeout_of(args), what=f"guest vm{vm} still running on its vlapic timer")
        harness.check(not re.search(r"vcpu\d+ stopped", emu.log()), "a demo vCPU stopped")
        harness.assert_no_panic(emu)


if __name__ == "__main__":
    harness.main(test)
