#!/usr/bin/env python3
"""The boot matrix under QEMU TCG: one combination of firmware (SeaBIOS or OVMF UEFI), chipset
(i440FX `-M pc` or Q35), NIC (e1000, transitional virtio-net, modern-only virtio-net) and CPU count.

    boot_matrix_test.py --emulator qemu --firmware uefi --machine q35 --nic virtio-net --cpus 4

Checks: LANTERN READY exactly once with cpus= the CPU count and a DHCP lease (ip=10.0.2.15,
console=80); GET /api/v1/system through the forwarded loopback port answers 200 with
cpus_online == the CPU count and network.nic naming the NIC's driver; no LANTERN PANIC.
tests/integration/CMakeLists.txt registers every combination (label `slow`) and a pairwise
subset (every pair of values at least once) in the default run.
"""
import json

import harness

GUEST_IP = "10.0.2.15"  # slirp's first DHCP address (emulators.md)
# The driver's name in /api/v1/system network.nic: both virtio-net flavours use the virtio driver.
NIC_NAME = {"e1000": "e1000", "virtio-net": "virtio-net", "virtio-net-modern": "virtio-net"}


def test(args):
    harness.check(args.emulator == "qemu", "the boot matrix runs under QEMU")
    harness.check(args.nic in NIC_NAME, f"the matrix needs a NIC, not {args.nic}")
    label = f"{args.firmware}/{args.machine}/{args.nic}/cpus{args.cpus}"
    with harness.boot(args) as emu:
        ready, seconds = harness.wait_ready(emu, args)
        print(f"{label}: READY after {seconds * 1000:.0f} ms: {ready.line}", flush=True)
        harness.check(ready.cpus == args.cpus, f"READY reports cpus={ready.cpus}, the emulator has {args.cpus}")
        harness.check(ready.ip == GUEST_IP, f"READY ip={ready.ip}, expected {GUEST_IP} (DHCP)")
        harness.check(ready.console == "80", f"READY console={ready.console}, expected 80")
        status, headers, body = harness.http_get(emu.port, "/api/v1/system", timeout=30)
        harness.check(status == 200, f"GET /api/v1/system: {status} {body[:200]!r}")
        doc = json.loads(body)
        harness.check(doc.get("cpus_online") == args.cpus,
                      f"cpus_online {doc.get('cpus_online')} != {args.cpus}")
        nic = doc.get("network", {}).get("nic")
        harness.check(nic == NIC_NAME[args.nic], f"network.nic {nic!r}, expected {NIC_NAME[args.nic]!r}")
        harness.assert_ready_once(emu, settle=0.5)
        harness.assert_no_panic(emu)
        print(f"{label}: console 200, cpus_online={doc['cpus_online']}, nic={nic}", flush=True)


if __name__ == "__main__":
    harness.main(test)
