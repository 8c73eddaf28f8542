#!/usr/bin/env python3
"""`./lantern bench`: run the benchmarks and print one `BENCH <name> <value> <unit>` line each.

Today: wall time from emulator launch to the READY line, with 4 CPUs, under QEMU TCG and Bochs
(the median of --runs boots). Exit-cost benchmarks (VMCALL round trips and friends) come with the
VMX work; in Bochs they must be measured in guest TSC ticks, never wall time (emulators.md).
Python 3 standard library only.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import emulator as emu_mod  # noqa: E402

# name -> (emulator, cpus, timeout in seconds)
BOOT_BENCHMARKS = {
    "boot_qemu_smp4": ("qemu", 4, 30.0),
    "boot_bochs_smp4": ("bochs", 4, 120.0),
}


def boot_to_ready_ms(iso: str, emulator: str, cpus: int, timeout: float) -> float:
    cfg = emu_mod.Config(emulator=emulator, iso=iso, cpus=cpus)
    with emu_mod.Emulator(cfg) as emu:
        try:
            _, seconds = emu.wait_for(emu_mod.READY_RE, timeout)
        except emu_mod.EmulatorError as e:
            raise emu_mod.EmulatorError(f"{e}\n--- serial log tail ---\n{emu.log_tail()}") from e
    return seconds * 1000.0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench.py", description=__doc__.splitlines()[0])
    p.add_argument("--iso", required=True)
    p.add_argument("--runs", type=int, default=1, help="boots per benchmark (median is printed)")
    p.add_argument("--only", action="append", default=[], choices=sorted(BOOT_BENCHMARKS),
                   help="run only this benchmark (repeatable)")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    status = 0
    for name, (emulator, cpus, timeout) in BOOT_BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        try:
            samples = [boot_to_ready_ms(args.iso, emulator, cpus, timeout) for _ in range(args.runs)]
        except emu_mod.EmulatorError as e:
            print(f"bench.py: {name} failed: {e}", file=sys.stderr)
            status = 1
            continue
        print(f"BENCH {name} {statistics.median(samples):.0f} ms", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
