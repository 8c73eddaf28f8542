"""Shared helpers for the emulator integration tests (Python 3 standard library only).

A test script is small: parse the common arguments, boot, assert, and let run() report.

    import harness
    def test(args):
        with harness.boot(args, cpus=2) as emu:
            ready, seconds = harness.wait_ready(emu, args)
            harness.check(ready.cpus == 2, f"cpus={ready.cpus}, expected 2")
    if __name__ == "__main__":
        harness.main(test)

Failures raise harness.Failure (or an emulator.EmulatorError); main() prints the reason, the tail
of the serial log and of the emulator's own output, and exits 1. Only 127.0.0.1 is ever contacted.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Callable, Iterator, Optional

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))

import emulator  # noqa: E402  (tools/emulator.py)
from emulator import (  # noqa: E402,F401  (re-exported for the test scripts)
    PANIC_RE, READY_PREFIX_RE, READY_RE, SELFTEST_RE, SELFTEST_SUMMARY_RE, Config, Emulator,
    EmulatorError, qemu_exit_status)

MAKE_ISO = os.path.join(REPO_ROOT, "iso", "make_iso.sh")
# How long each emulator may take to reach a line (the ctest TIMEOUT is a little above).
DEFAULT_TIMEOUT = {"qemu": 30.0, "bochs": 120.0}


class Failure(AssertionError):
    """A test assertion failed; the message says what was expected and what was seen."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failure(message)


@dataclasses.dataclass
class Ready:
    line: str
    cpus: int
    vmx: int
    vcpus: int
    ip: str
    console: str


def parse_ready(match) -> Ready:
    return Ready(match.group(0), int(match.group("cpus")), int(match.group("vmx")),
                 int(match.group("vcpus")), match.group("ip"), match.group("console"))


# ---- arguments ----------------------------------------------------------------------------------
def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--emulator", required=True, choices=("qemu", "bochs"))
    p.add_argument("--iso", required=True, help="the ISO to boot (build/lantern.iso)")
    p.add_argument("--kernel", default=None, help="build/lantern.elf, for tests that remaster")
    p.add_argument("--cpus", type=int, default=1)
    p.add_argument("--mem", type=int, default=256)
    p.add_argument("--nic", default="e1000", choices=emulator.NICS)
    p.add_argument("--cpu-model", default=None, help="Bochs CPU model (default corei7_skylake_x)")
    p.add_argument("--machine", default="pc", choices=("pc", "q35"), help="QEMU machine (q35: PCI ECAM)")
    p.add_argument("--firmware", default="bios", choices=emulator.FIRMWARES, help="QEMU firmware (uefi: OVMF)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds to wait for each expected line (default: qemu 30, bochs 120)")
    p.add_argument("--tcg-thread", default="multi", choices=("multi", "single"),
                   help="QEMU TCG threading (tools/emulator.py Config.tcg_thread)")
    p.add_argument("--keep-workdir", action="store_true", help="keep the emulator's work dir")
    return p


def timeout_of(args) -> float:
    return args.timeout or DEFAULT_TIMEOUT[args.emulator]


# ---- booting ------------------------------------------------------------------------------------
_current: list[Emulator] = []  # the running emulator, for the failure report


@contextlib.contextmanager
def boot(args, iso: Optional[str] = None, **overrides) -> Iterator[Emulator]:
    """Start the emulator from the common arguments (overrides: any Config field)."""
    fields = dict(emulator=args.emulator, iso=iso or args.iso, cpus=args.cpus, mem=args.mem,
                  nic=args.nic, cpu_model=args.cpu_model, machine=args.machine, firmware=args.firmware,
                  keep_workdir=args.keep_workdir, tcg_thread=args.tcg_thread)
    fields.update(overrides)
    emu = Emulator(Config(**fields))
    with emu:
        _current.append(emu)
        try:
            yield emu
        except BaseException:
            _report(emu)
            raise
        finally:
            _current.remove(emu)


# Signals an emulator only dies of by its own fault: the tests never send them.
CRASH_SIGNALS = {signal.SIGSEGV: "SIGSEGV", signal.SIGBUS: "SIGBUS", signal.SIGABRT: "SIGABRT",
                 signal.SIGILL: "SIGILL", signal.SIGFPE: "SIGFPE"}
_crashes: list[str] = []  # emulators that crashed during the current attempt (main())


def _note_crash(emu: Emulator) -> None:
    if emu.alive():
        return
    status = emu.wait_exit(0)
    if status < 0 and -status in CRASH_SIGNALS:
        _crashes.append(f"{emu.cfg.emulator} died of {CRASH_SIGNALS[-status]}")


def _report(emu: Emulator) -> None:
    _note_crash(emu)
    print(f"--- serial log tail ({emu.cfg.emulator}) ---", file=sys.stderr)
    print(emu.log_tail(60) or "(empty)", file=sys.stderr)
    out = emu.output_tail(15)
    if out:
        print(f"--- {emu.cfg.emulator} output tail ---\n{out}", file=sys.stderr)
    if emu.workdir and emu.cfg.keep_workdir:
        print(f"--- work dir kept: {emu.workdir}", file=sys.stderr)


def wait_ready(emu: Emulator, args, timeout: Optional[float] = None) -> tuple[Ready, float]:
    """Wait for the READY line; fail early on a PANIC. Returns (Ready, seconds since launch)."""
    import re
    either = re.compile(f"{READY_RE.pattern}|{PANIC_RE.pattern}", re.M)
    m, seconds = emu.wait_for(either, timeout or timeout_of(args), what="LANTERN READY line")
    check(not m.group(0).startswith("LANTERN PANIC"), f"kernel panicked: {m.group(0)}")
    return parse_ready(READY_RE.search(m.group(0))), seconds


def assert_no_panic(emu: Emulator) -> None:
    m = PANIC_RE.search(emu.log())
    check(m is None, f"kernel panicked: {m.group(0) if m else ''}")


def assert_ready_once(emu: Emulator, settle: float = 1.0) -> None:
    """After `settle` seconds more, the log holds exactly one READY line (any form)."""
    time.sleep(settle)
    lines = READY_PREFIX_RE.findall(emu.log())
    check(len(lines) == 1, f"expected exactly one LANTERN READY line, found {len(lines)}: {lines}")


# ---- ISO remastering ----------------------------------------------------------------------------
def default_modules(kernel: str) -> list[str]:
    """The modules the build put on its own ISO (build/iso/boot/modules/: the guest programs)."""
    staged = os.path.join(os.path.dirname(os.path.abspath(kernel)), "iso", "boot", "modules")
    if not os.path.isdir(staged):
        return []
    return sorted(os.path.join(staged, n) for n in os.listdir(staged)
                  if os.path.isfile(os.path.join(staged, n)))


def remaster(args, out_dir: str, cmdline: str, modules: tuple[str, ...] = ()) -> str:
    """Make <out_dir>/lantern.iso from --kernel with another command line (iso/make_iso.sh).

    The build's own modules (default_modules) come first, then `modules`."""
    check(bool(args.kernel), "this test needs --kernel (build/lantern.elf)")
    check(os.path.isfile(args.kernel), f"kernel {args.kernel} does not exist")
    iso = os.path.join(out_dir, "lantern.iso")
    cmd = [MAKE_ISO, "--kernel", args.kernel, "--stage", os.path.join(out_dir, "stage"),
           "--output", iso, "--cmdline", cmdline]
    for m in default_modules(args.kernel) + list(modules):
        cmd += ["--module", m]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(r.returncode == 0, f"make_iso.sh failed ({r.returncode}):\n{r.stdout}")
    return iso


@contextlib.contextmanager
def temp_dir(prefix: str = "lantern-it-") -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix=prefix) as d:
        yield d


# ---- the console over the forwarded port --------------------------------------------------------
def http_get(port: int, path: str, timeout: float = 10.0) -> tuple[int, dict, bytes]:
    """GET http://127.0.0.1:<port><path>; returns (status, headers, body). Loopback only."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


# ---- entry point --------------------------------------------------------------------------------
def main(test: Callable[[argparse.Namespace], None],
         make_parser: Callable[[], argparse.ArgumentParser] = None) -> None:
    p = make_parser() if make_parser else parser(test.__doc__ or "Lantern integration test")
    args = p.parse_args()
    name = os.path.basename(sys.argv[0])
    # An emulator that crashes (QEMU 7.2 TCG was seen to die of SIGSEGV, rarely, with SVM guests
    # on four vCPUs) gives no verdict on the kernel: the test runs once more, and says so. A
    # second crash, or any other failure, fails the test.
    crashed_before = []
    for attempt in (1, 2):
        _crashes.clear()
        try:
            test(args)
            break
        except Exception as e:
            if attempt == 1 and _crashes:
                crashed_before = list(_crashes)
                print(f"RETRY {name}: {'; '.join(_crashes)} ({type(e).__name__}: {e}); "
                      "an emulator fault, not the kernel's: running the test once more", flush=True)
                print(f"RETRY {name}: {'; '.join(_crashes)}", file=sys.stderr, flush=True)
                continue
            if not isinstance(e, (Failure, EmulatorError)):
                raise
            print(f"FAIL {name}: {e}", file=sys.stderr)
            sys.exit(1)
    print(f"PASS {name}" + (f" on the second run ({'; '.join(crashed_before)} on the first)"
                            if crashed_before else ""))
    sys.exit(0)
