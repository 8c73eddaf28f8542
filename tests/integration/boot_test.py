#!/usr/bin/env python3
"""Boot the ISO and check the READY line: exactly once, cpus= matches, no LANTERN PANIC."""
import harness


def test(args):
    with harness.boot(args) as emu:
        ready, seconds = harness.wait_ready(emu, args)
        print(f"{args.emulator} cpus={args.cpus}: READY after {seconds * 1000:.0f} ms: {ready.line}",
              flush=True)
        harness.assert_ready_once(emu, settle=1.0)
        harness.assert_no_panic(emu)
        harness.check(ready.cpus == args.cpus,
                      f"READY reports cpus={ready.cpus}, the emulator has {args.cpus}")
        harness.check(0 <= ready.vmx <= ready.cpus, f"vmx={ready.vmx} is not within 0..cpus")


if __name__ == "__main__":
    harness.main(test)
