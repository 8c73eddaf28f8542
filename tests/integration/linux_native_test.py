#!/usr/bin/env python3
"""The stock Linux guest (Debian's kernel + the project's busybox initramfs, tools/linux_guest.py)
boots natively under QEMU TCG to its shell: proof that the guest itself is right before Lantern
runs it (linux_test.py). ctest: linux.qemu.native (label slow: it downloads the pinned packages
into build/_deps/linux-guest/ the first time).

    linux_native_test.py [--guest-dir build/_deps/linux-guest]

Cases:
- 1 CPU, `console=ttyS0 acpi=off` (the command line Lantern's test uses): the init marker, the
  prompt (time to it printed), `echo $((6*7))` answers 42, `reboot -f` restarts the machine
  (QEMU runs with -no-reboot, so it exits with status 0 after the kernel's restart line).
- 2 CPUs: `nproc` answers 2. With ACPI on: QEMU 7.2's SeaBIOS lists only the boot CPU in its MP
  table, so with acpi=off Linux finds one CPU there (seen here: "Processor #0 (Bootup-CPU)" only).
QEMU is TCG (-accel tcg, never KVM), in its own process group, killed with the group at the end.
"""
import argparse
import os
import re
import select
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tools"))
import linux_guest  # noqa: E402  (tools/linux_guest.py)

QEMU = "qemu-system-x86_64"
ARGS = None
PROMPT = linux_guest.PROMPT.encode()
BOOT_TIMEOUT = 300.0   # seconds to each boot line (--boot-timeout; 37 s to the prompt on a loaded machine)
REPLY_TIMEOUT = 30.0


class Guest:
    """QEMU booting the Linux guest, serial on stdin/stdout; the whole process group is killed
    on leaving the with block, whatever happened."""

    def __init__(self, kernel, initrd, cpus, append):
        self.cmd = [QEMU, "-accel", "tcg", "-M", "pc", "-cpu", "max", "-m", "256", "-smp", str(cpus),
                    "-kernel", kernel, "-initrd", initrd, "-append", append,
                    "-display", "none", "-monitor", "none", "-nodefaults", "-no-reboot",
                    "-chardev", "stdio,id=s0,signal=off", "-serial", "chardev:s0"]
        self.out = b""
        self.started = time.monotonic()

    def __enter__(self):
        self.p = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGKILL)
        self.p.wait()
        self.p.stdin.close()
        self.p.stdout.close()
        if exc[0] is not None:
            sys.stderr.write("--- guest serial tail ---\n" + self.text()[-3000:] + "\n")

    def text(self):
        return self.out.decode("utf-8", "replace").replace("\r", "")

    def pump(self, timeout=0.2):
        """Read what QEMU printed; False once it closed its output."""
        ready, _, _ = select.select([self.p.stdout], [], [], timeout)
        if ready:
            chunk = self.p.stdout.read1(65536)
            if not chunk:
                return False
            self.out += chunk
        return True

    def wait_for(self, pattern, start, timeout, what):
        """Wait until `pattern` (bytes regex) matches the output from offset `start` on."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern, re.M)
        while True:
            m = rx.search(self.out, start)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout:.0f} s")
            if not self.pump() and not rx.search(self.out, start):
                raise AssertionError(f"QEMU ended (status {self.p.wait()}) before {what}")

    def send(self, line):
        mark = len(self.out)
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()
        return mark

    def command(self, line, expect, what):
        """Type `line` at the prompt; wait for `expect` (a line of its own) and the next prompt."""
        mark = self.send(line)
        self.wait_for(rb"^" + re.escape(expect.encode()) + rb"\r?$", mark, REPLY_TIMEOUT, what)
        self.wait_for(re.escape(PROMPT), mark, REPLY_TIMEOUT, f"the prompt after {line!r}")


class LinuxNativeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kernel, cls.initrd = linux_guest.ensure(ARGS.guest_dir)

    def boot_to_prompt(self, g, cpus):
        g.wait_for(rb"Linux version \d", 0, ARGS.boot_timeout, "kernel banner")
        m = g.wait_for(rb"^" + re.escape(linux_guest.INIT_MARKER.encode()) + rb" cpus=(\d+)", 0,
                       ARGS.boot_timeout, "init marker")
        self.assertEqual(int(m.group(1)), cpus, g.text()[-2000:])
        g.wait_for(re.escape(PROMPT), m.end(), ARGS.boot_timeout, "shell prompt")
        seconds = time.monotonic() - g.started
        print(f"linux native (QEMU TCG, {cpus} CPU(s)): prompt after {seconds:.1f} s", flush=True)
        return seconds

    def test_one_cpu_acpi_off_answers_and_reboots(self):
        with Guest(self.kernel, self.initrd, 1, "console=ttyS0 acpi=off") as g:
            self.boot_to_prompt(g, 1)
            g.command("echo $((6*7))", "42", "42 from echo $((6*7))")
            g.command("nproc", "1", "nproc = 1")
            mark = g.send("reboot -f")
            g.wait_for(rb"reboot: Restarting system", mark, REPLY_TIMEOUT, "the kernel's restart line")
            # -no-reboot: QEMU exits instead of resetting the machine.
            deadline = time.monotonic() + REPLY_TIMEOUT
            while g.p.poll() is None and time.monotonic() < deadline:
                g.pump()
            self.assertEqual(g.p.poll(), 0, "QEMU did not exit on the guest's reboot")

    def test_two_cpus_nproc(self):
        with Guest(self.kernel, self.initrd, 2, "console=ttyS0") as g:
            self.boot_to_prompt(g, 2)
            g.command("nproc", "2", "nproc = 2")
            g.command("echo $((6*7))", "42", "42 from echo $((6*7))")


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--guest-dir", default=linux_guest.DEFAULT_DIR)
    p.add_argument("--boot-timeout", type=float, default=BOOT_TIMEOUT,
                   help="seconds to each boot milestone (banner, init marker, prompt)")
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0], "-v", *rest])


if __name__ == "__main__":
    main()
