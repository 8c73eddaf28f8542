#!/usr/bin/env python3
"""The multiboot test guests (tests/guests/multiboot) run natively under QEMU TCG, with QEMU's own
Multiboot v1 loader (-kernel/-append/-initrd), its 16550 UART, fw_cfg and isa-debug-exit. This
proves the guests right before Lantern runs them as --vm kernels. ctest: guests.qemu.native.

    guests_native_test.py --mbguest build/tests/guests/mbguest.elf --mbecho build/tests/guests/mbecho.elf
"""
import argparse
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import unittest

QEMU = "qemu-system-x86_64"
ARGS = None


def qemu_command(kernel, cpus=1, mem=64, append=None, initrd=None, serial=None):
    cmd = [QEMU, "-accel", "tcg", "-M", "pc", "-m", str(mem), "-smp", str(cpus), "-kernel", kernel,
           "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-display", "none", "-monitor", "none",
           "-no-reboot", "-nodefaults"]
    if append is not None:
        cmd += ["-append", append]
    if initrd is not None:
        cmd += ["-initrd", initrd]
    cmd += serial or ["-serial", "stdio"]
    return cmd


class Qemu:
    """QEMU in its own process group, killed (the whole group) on exit from the with block."""

    def __init__(self, cmd, stdin=None):
        self.p = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  start_new_session=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGKILL)
        self.p.wait()

    def read_until(self, needle, timeout):
        buf = b""
        deadline = time.monotonic() + timeout
        while needle not in buf and time.monotonic() < deadline:
            ready, _, _ = select.select([self.p.stdout], [], [], 0.2)
            if ready:
                chunk = self.p.stdout.read1(4096)
                if not chunk:
                    break
                buf += chunk
        return buf

    def finish(self, timeout):
        out, _ = self.p.communicate(timeout=timeout)
        return out, self.p.returncode


def lines(raw):
    return [line.rstrip("\r") for line in raw.decode("utf-8", "replace").split("\n")]


class MultibootGuestNativeTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.module = os.path.join(self.tmp, "env.txt")
        with open(self.module, "w") as f:
            f.write("NR_CPUS=2 MEMSIZE=64\nsecond line\n")

    def tearDown(self):
        for name in os.listdir(self.tmp):
            os.unlink(os.path.join(self.tmp, name))
        os.rmdir(self.tmp)

    def test_two_cpus_module_cmdline_and_exit_code(self):
        cmd = qemu_command(ARGS.mbguest, cpus=2, append="exit=7 a,b  c", initrd=f"{self.module} arg1")
        with Qemu(cmd) as q:
            out, status = q.finish(timeout=30)
        log = lines(out)
        text = "\n".join(log)
        self.assertEqual(status, (7 << 1) | 1, text)  # isa-debug-exit: (code << 1) | 1
        self.assertIn("mbguest: hello from a multiboot guest", log)
        # QEMU puts the kernel's path first on the command line; the rest is ours, verbatim.
        self.assertTrue(any(x.startswith("mbguest: cmdline='") and x.endswith(" exit=7 a,b  c'") for x in log), text)
        self.assertIn("mbguest: modules=1", log)
        self.assertIn(f"mbguest: module 0 bytes=33 string='{self.module} arg1' first-line='NR_CPUS=2 MEMSIZE=64'",
                      log)
        self.assertIn("mbguest: fw_cfg cpus=2 ram_mib=64", log)
        # QEMU TCG reads MSRs it does not know as 0 instead of raising #GP (its helper_rdmsr):
        # natively the probe only has to come back; under Lantern (vms_test.py) it must fault.
        self.assertTrue(any(x in log for x in ("mbguest: rdmsr 0x4c4e5400 raised #GP",
                                               "mbguest: rdmsr 0x4c4e5400 did not fault")), text)
        self.assertIn("mbguest: com2 scratch=255", log)
        # QEMU TCG keeps every bit written to IA32_MISC_ENABLE and raises no #GP for reserved bits.
        self.assertTrue(any(x.startswith("mbguest: misc_enable=") and " limit-cpuid kept=1 " in x for x in log), text)
        self.assertIn("mbguest: pat lo=459782 hi=459782 write kept", log)
        # QEMU TCG ignores a WRMSR of the TSC (RDTSC keeps counting from where it was) and its
        # default CPU has no RDTSCP; Lantern's run (vms_test.py) checks both.
        self.assertTrue(any(x.startswith("mbguest: tsc write ") and
                            x.endswith((", rdtscp aux=42", ", no rdtscp")) for x in log), text)
        self.assertIn("mbguest: rep outsb through COM1", log)
        self.assertIn("mbguest: rep insb down from 0x2fe: 0 255 255 255, edi at buf[0], ecx 0", log)
        self.assertIn("mbguest: aps started=1 of 1", log)
        self.assertIn("mbguest: exit 7", log)

    def test_one_cpu_default_exit_code(self):
        with Qemu(qemu_command(ARGS.mbguest, cpus=1, mem=32)) as q:
            out, status = q.finish(timeout=30)
        log = lines(out)
        self.assertEqual(status, 1, "\n".join(log))
        self.assertIn("mbguest: modules=0", log)
        self.assertIn("mbguest: fw_cfg cpus=1 ram_mib=32", log)
        self.assertIn("mbguest: aps started=0 of 0", log)
        self.assertIn("mbguest: exit 0", log)

    def test_echo_guest_echoes_input_then_exits_on_ctrl_d(self):
        serial = ["-chardev", "stdio,id=s0,signal=off", "-serial", "chardev:s0"]
        with Qemu(qemu_command(ARGS.mbecho, mem=32, serial=serial), stdin=subprocess.PIPE) as q:
            first = q.read_until(b"mbecho: ready", timeout=20)
            self.assertIn(b"mbecho: ready", first)
            q.p.stdin.write(b"hello, echo 42\x04")
            q.p.stdin.flush()
            out, status = q.finish(timeout=20)
        self.assertEqual(status, 1)
        self.assertIn(b"hello, echo 42\r\nmbecho: bye", first + out)


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--mbguest", required=True)
    p.add_argument("--mbecho", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0], "-v", *rest])


if __name__ == "__main__":
    main()
