#!/usr/bin/env python3
"""ICMP echo inside the kernel, per NIC: boot a remastered ISO with `selftest` and check that the
net_icmp_echo_reply self-test (net/stack/icmp_selftest.cpp) really ran rather than skipped.

selftest.qemu/selftest.bochs accept the self-test's "skipped: no network" pass; this test does not:
with a NIC it requires `SELFTEST net_icmp_echo_reply ok` and no skip line, and with --nic none it
requires the skip line (the test must pass without a network, and say so).

    icmp_test.py --emulator qemu --kernel build/lantern.elf --iso build/lantern.iso \
                 --nics e1000,virtio-net,virtio-net-modern,none
    icmp_test.py --emulator bochs ... --nics e1000

(slirp cannot forward ping from the host, so the echo is proved by frames injected at netif->input
and caught at netif->linkoutput on their way to the driver.)
"""
import harness

TEST_NAME = "net_icmp_echo_reply"
SKIP_TEXT = f"selftest {TEST_NAME}: skipped: no network"
EXIT_GRACE = 15.0


def run_one(args, iso, nic):
    with harness.boot(args, iso=iso, nic=nic) as emu:
        m, seconds = emu.wait_for(harness.SELFTEST_SUMMARY_RE, harness.timeout_of(args))
        emu.wait_exit(EXIT_GRACE)
        log = emu.log()
        harness.assert_no_panic(emu)
        results = {r.group("name"): r for r in harness.SELFTEST_RE.finditer(log)}
        ours = results.get(TEST_NAME)
        harness.check(ours is not None, f"{nic}: no SELFTEST {TEST_NAME} line")
        harness.check(ours.group("result") == "ok", f"{nic}: {ours.group(0)}")
        skipped = SKIP_TEXT in log
        if nic == "none":
            harness.check(skipped, f"{nic}: expected '{SKIP_TEXT}'")
        else:
            harness.check(not skipped, f"{nic}: the echo test was skipped (no address?)")
            harness.check("net: address 10.0.2.15" in log, f"{nic}: no DHCP lease in the log")
        print(f"{args.emulator}/{nic}: {ours.group(0)}{' (skipped)' if skipped else ''};"
              f" '{m.group(0)}' after {seconds * 1000:.0f} ms", flush=True)


def test(args):
    nics = [n.strip() for n in args.nics.split(",") if n.strip()]
    harness.check(bool(nics), "--nics is empty")
    for nic in nics:
        harness.check(nic in harness.emulator.NICS, f"unknown NIC '{nic}'")
        harness.check(not (args.emulator == "bochs" and nic.startswith("virtio")),
                      "Bochs has no virtio-net")
    with harness.temp_dir("lantern-icmp-") as tmp:
        iso = harness.remaster(args, tmp, cmdline="selftest")
        for nic in nics:
            run_one(args, iso, nic)


def make_parser():
    p = harness.parser(__doc__.splitlines()[0])
    p.add_argument("--nics", default="e1000,virtio-net,none",
                   help="comma-separated NICs to boot in turn (default e1000,virtio-net,none)")
    return p


if __name__ == "__main__":
    harness.main(test, make_parser)
