#!/usr/bin/env python3
"""The network never stops the boot: without a NIC the kernel says why and reaches READY with
ip=none console=none; with interrupts turned off (net.irq=poll) it still serves from its idle loop."""
import harness


def test(args):
    if args.case == "no_nic":
        with harness.boot(args, nic="none") as emu:
            ready, seconds = harness.wait_ready(emu, args)
            print(f"{args.emulator} without a NIC: READY after {seconds * 1000:.0f} ms: {ready.line}")
            harness.assert_no_panic(emu)
            harness.check(ready.ip == "none", f"READY ip={ready.ip}, expected none")
            harness.check(ready.console == "none", f"READY console={ready.console}, expected none")
            harness.check("net: no network: " in emu.log(), "no 'net: no network:' line saying why")
        return
    with harness.temp_dir() as d:
        iso = harness.remaster(args, d, "net.irq=poll")
        with harness.boot(args, iso=iso) as emu:
            ready, seconds = harness.wait_ready(emu, args)
            print(f"{args.emulator} polled NIC: READY after {seconds * 1000:.0f} ms: {ready.line}")
            harness.assert_no_panic(emu)
            harness.check(ready.ip == "10.0.2.15", f"READY ip={ready.ip}, expected 10.0.2.15")
            harness.check("polled from the idle loop" in emu.log(), "no log line saying the NIC is polled")
            for _ in range(5):
                status, _, body = harness.http_get(emu.port, "/api/v1/system")
                harness.check(status == 200, f"GET /api/v1/system answered {status}: {body[:80]!r}")


def make_parser():
    p = harness.parser(__doc__)
    p.add_argument("--case", choices=("no_nic", "polled"), required=True)
    return p


if __name__ == "__main__":
    harness.main(test, make_parser)
