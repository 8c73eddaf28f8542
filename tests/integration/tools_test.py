#!/usr/bin/env python3
"""Unit tests of the host tooling: tools/emulator.py, tools/apt_sources.py, iso/make_iso.sh and
the ./lantern argument handling. No emulator and no Lantern build are needed (ctest: tools.unit).
"""
import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tools"))

import apt_sources  # noqa: E402
import emulator as E  # noqa: E402
import embed_ui  # noqa: E402
import linux_guest  # noqa: E402
import vm_spec  # noqa: E402

READY = "LANTERN READY cpus=4 vmx=4 vcpus=2 ip=10.0.2.15 console=80"


class BootLogTest(unittest.TestCase):
    def test_clean_log_drops_grub_escapes_and_carriage_returns(self):
        raw = b"\x1b[H\x1b[J\x1b[1;1H  Booting `Lantern'\r\n\r\n\rLANTERN READY x\r\n"
        self.assertEqual(E.clean_log(raw), "  Booting `Lantern'\n\nLANTERN READY x\n")

    def test_ready_line_fields(self):
        m = E.READY_RE.search("noise\n" + READY + "\nmore\n")
        self.assertIsNotNone(m)
        self.assertEqual((m["cpus"], m["vmx"], m["vcpus"], m["ip"], m["console"]),
                         ("4", "4", "2", "10.0.2.15", "80"))
        m = E.READY_RE.search("LANTERN READY cpus=1 vmx=0 vcpus=0 ip=none console=none\n")
        self.assertEqual((m["ip"], m["console"]), ("none", "none"))

    def test_malformed_ready_lines_do_not_match(self):
        for bad in ("LANTERN READY cpus=1 vmx=0 vcpus=0 ip=none\n",            # field missing
                    "LANTERN READY cpus=x vmx=0 vcpus=0 ip=none console=none\n",  # not a number
                    "xLANTERN READY cpus=1 vmx=0 vcpus=0 ip=none console=none\n",  # not at start
                    "LANTERN READY cpus=1 vmx=0 vcpus=0 ip=none console=none junk\n",
                    "LANTERN READY cpus=1 vmx=0 vcpus=0 ip=none console=\n"):
            self.assertIsNone(E.READY_RE.search(bad), bad)
        # ...but every one of them counts as a READY line for the "exactly once" check.
        self.assertEqual(len(E.READY_PREFIX_RE.findall(READY + "\n" + READY + " junk\n")), 2)

    def test_selftest_lines(self):
        log = "SELFTEST frames ok\nSELFTEST ept FAIL bad PML4 entry\nselftest: 1 passed, 1 failed\n"
        results = [(m["name"], m["result"], m["why"]) for m in E.SELFTEST_RE.finditer(log)]
        self.assertEqual(results, [("frames", "ok", None), ("ept", "FAIL", "bad PML4 entry")])
        m = E.SELFTEST_SUMMARY_RE.search(log)
        self.assertEqual((m["passed"], m["failed"]), ("1", "1"))
        self.assertIsNone(E.SELFTEST_SUMMARY_RE.search("selftest: 1 passed\n"))

    def test_panic_line(self):
        self.assertIsNotNone(E.PANIC_RE.search("x\nLANTERN PANIC #PF at 0x10\n"))
        self.assertIsNone(E.PANIC_RE.search("no LANTERN PANIC here\n"))

    def test_qemu_debug_exit_status(self):
        self.assertEqual(E.qemu_exit_status(0), 1)
        self.assertEqual(E.qemu_exit_status(1), 3)


class ConfigTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.iso = os.path.join(self.tmp, "x.iso")
        open(self.iso, "wb").close()

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def test_qemu_command_is_tcg_loopback_and_restricted(self):
        cfg = E.Config(emulator="qemu", iso=self.iso, cpus=4, mem=512, port=8123)
        cmd = E.qemu_command(cfg, "lantern.iso", "serial.log")
        joined = " ".join(cmd)
        self.assertEqual(cmd[0], "qemu-system-x86_64")
        self.assertIn("-smp 4", joined)
        self.assertIn("-m 512", joined)
        self.assertIn("-accel tcg -cpu max", joined)
        self.assertNotIn("kvm", joined)
        self.assertIn("user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:8123-:80", joined)
        self.assertIn("-device e1000,netdev=n0", joined)
        self.assertIn("isa-debug-exit,iobase=0xf4,iosize=0x04", joined)
        self.assertIn("file:serial.log", joined)

    def test_qemu_tcg_single_thread(self):
        cfg = E.Config(emulator="qemu", iso=self.iso, cpus=2, port=0, tcg_thread="single")
        self.assertIn("-accel tcg,thread=single -cpu max", " ".join(E.qemu_command(cfg, "i", "s")))
        with self.assertRaisesRegex(E.EmulatorError, "QEMU TCG only"):
            E.Config(emulator="bochs", iso=self.iso, tcg_thread="single").validate()
        with self.assertRaisesRegex(E.EmulatorError, "unknown TCG threading"):
            E.Config(emulator="qemu", iso=self.iso, tcg_thread="two").validate()

    def test_qemu_kvm_and_virtio(self):
        cfg = E.Config(emulator="qemu", iso=self.iso, port=0, nic="virtio-net", kvm=True)
        joined = " ".join(E.qemu_command(cfg, "i", "s"))
        self.assertIn("-accel kvm -cpu host", joined)
        self.assertIn("virtio-net-pci,netdev=n0", joined)
        self.assertNotIn("hostfwd", joined)  # port 0: no forward

    def test_qemu_uefi_uses_ovmf_with_a_private_vars_copy(self):
        cfg = E.Config(emulator="qemu", iso=self.iso, port=0, machine="q35", firmware="uefi")
        cmd = E.qemu_command(cfg, "i", "s")
        joined = " ".join(cmd)
        self.assertIn(f"if=pflash,format=raw,readonly=on,file={E.OVMF_CODE}", joined)
        self.assertIn("if=pflash,format=raw,file=ovmf_vars.fd", joined)  # relative: the work dir's copy
        self.assertNotIn(E.OVMF_VARS, joined)  # the system's variable store is never written
        self.assertIn("-M q35", joined)
        self.assertNotIn("pflash", " ".join(E.qemu_command(E.Config(emulator="qemu", iso=self.iso), "i", "s")))

    def test_bochsrc_matches_the_verified_config(self):
        cfg = E.Config(emulator="bochs", iso=self.iso, cpus=2, mem=128, port=9000,
                       extra_forwards=((9001, 22),))
        rc = E.bochsrc_text(cfg, "lantern.iso", "serial.log")
        self.assertIn("display_library: term\n", rc)
        self.assertIn("memory: guest=128, host=128\n", rc)
        self.assertIn("cpu: model=corei7_skylake_x, count=2, ips=20000000,"
                      " reset_on_triple_fault=0, ignore_bad_msrs=1\n", rc)
        self.assertIn("e1000: enabled=1, mac=52:54:00:12:34:56, ethmod=slirp, script=slirp.conf", rc)
        self.assertIn("ata0-master: type=cdrom, path=lantern.iso, status=inserted\n", rc)
        self.assertIn("com1: enabled=1, mode=file, dev=serial.log\n", rc)
        slirp = E.slirp_conf_text(cfg)
        self.assertTrue(slirp.startswith("# slirp config\n"))
        self.assertIn("hostfwd    = tcp:127.0.0.1:9000-:80\n", slirp)
        self.assertIn("hostfwd    = tcp:127.0.0.1:9001-:22\n", slirp)
        self.assertNotIn("tcp::", slirp)
        self.assertIn("cpu: model=tigerlake,", E.bochsrc_text(
            E.Config(emulator="bochs", iso=self.iso, cpu_model="tigerlake"), "i", "s"))

    def test_invalid_configs_are_refused(self):
        bad = [dict(emulator="bochs", nic="virtio-net"), dict(emulator="bochs", kvm=True),
               dict(emulator="qemu", cpus=0), dict(emulator="qemu", mem=1),
               dict(emulator="qemu", nic="ne2k"), dict(emulator="vbox"),
               dict(emulator="qemu", cpu_model="max -accel kvm"),
               dict(emulator="bochs", firmware="uefi"), dict(emulator="qemu", firmware="coreboot"),
               dict(emulator="qemu", iso=os.path.join(self.tmp, "missing.iso"))]
        for fields in bad:
            fields.setdefault("iso", self.iso)
            with self.assertRaises(E.EmulatorError, msg=str(fields)):
                E.Config(**fields).validate()

    def test_pick_emulator(self):
        self.assertEqual(E.pick_emulator("qemu"), ("qemu", False))
        self.assertEqual(E.pick_emulator("bochs"), ("bochs", False))
        # auto: QEMU always (TCG -cpu max runs the SVM backend), KVM only with nested VMX/SVM.
        self.assertEqual(E.pick_emulator("auto", kvm=False), ("qemu", False))
        self.assertEqual(E.pick_emulator("auto", kvm=True), ("qemu", True))
        self.assertEqual(E.pick_emulator("auto"), ("qemu", E.kvm_usable()))
        with self.assertRaises(ValueError):
            E.pick_emulator("kvm")

    def test_kvm_usable_needs_the_device_a_cpu_flag_and_nested(self):
        cpuinfo = os.path.join(self.tmp, "cpuinfo")
        sysmod = os.path.join(self.tmp, "sys_module")
        dev = os.path.join(self.tmp, "kvm")
        with open(dev, "w"):
            pass

        def setup(flags, module=None, nested=None):
            with open(cpuinfo, "w") as f:
                f.write(f"processor: 0\nflags\t\t: fpu {flags} sse\n")
            shutil.rmtree(sysmod, ignore_errors=True)
            if module:
                os.makedirs(os.path.join(sysmod, module, "parameters"))
                with open(os.path.join(sysmod, module, "parameters", "nested"), "w") as f:
                    f.write(nested + "\n")

        cases = [("vmx", "kvm_intel", "Y", True), ("vmx", "kvm_intel", "N", False), ("vmx", None, None, False),
                 ("svm", "kvm_amd", "1", True), ("svm", "kvm_amd", "0", False), ("svm", "kvm_intel", "Y", False),
                 ("hypervisor", "kvm_intel", "Y", False)]
        for flags, module, nested, expected in cases:
            setup(flags, module, nested)
            self.assertEqual(E.kvm_usable(cpuinfo, sysmod, dev), expected, (flags, module, nested))
        setup("vmx", "kvm_intel", "Y")
        self.assertFalse(E.kvm_usable(cpuinfo, sysmod, os.path.join(self.tmp, "no-such-device")))

    def test_host_has_vmx_reads_the_flags_line(self):
        path = os.path.join(self.tmp, "cpuinfo")
        with open(path, "w") as f:
            f.write("processor: 0\nflags\t\t: fpu vme vmx sse\n")
        self.assertTrue(E.host_has_vmx(path))
        self.assertFalse(E.host_has_svm(path))
        with open(path, "w") as f:
            f.write("processor: 0\nflags\t\t: fpu vmxnot svm\n")
        self.assertFalse(E.host_has_vmx(path))
        self.assertTrue(E.host_has_svm(path))

    def test_free_port_is_bindable_and_busy_port_detected(self):
        port = E.free_port()
        self.assertTrue(E.port_is_free(port))
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
            s.listen()
            self.assertFalse(E.port_is_free(port))


FAKE_EMULATOR = """#!/bin/sh
# Stand-in for qemu-system-x86_64: a child process, a serial log, then behaviour from $MODE.
sleep 300 &
echo $! > child.pid
echo $$ > leader.pid
printf 'GRUB\\r\\n' > serial.log
case "$FAKE_MODE" in
  ready) printf 'LANTERN READY cpus=1 vmx=0 vcpus=0 ip=none console=none\\r\\n' >> serial.log ;;
  partial) printf 'LANTERN READY cpus=1 vmx=0 vcpus=0 ip=none console=no' >> serial.log ;;
  exit) exit 3 ;;
  segv) kill -SEGV $$ ;;
  segv-once) if [ ! -e "$FAKE_MARK" ]; then : > "$FAKE_MARK"; kill -SEGV $$; fi
             printf 'LANTERN READY cpus=1 vmx=0 vcpus=0 ip=none console=none\\r\\n' >> serial.log ;;
esac
exec sleep 300
"""


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def _gone(pid: int, timeout: float = 3.0) -> bool:
    """True once `pid` is dead or a zombie (SIGKILL is delivered asynchronously)."""
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


class FakeEmulatorTest(unittest.TestCase):
    """A temporary directory with an empty ISO, and a script standing in for the emulator binary
    named by BINARY_ATTR (an attribute of tools/emulator.py) for the length of each test."""
    BINARY_ATTR = ""
    SCRIPT = ""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.iso = os.path.join(self.tmp, "x.iso")
        open(self.iso, "wb").close()
        fake = os.path.join(self.tmp, "fake-emulator")
        with open(fake, "w") as f:
            f.write(self.SCRIPT)
        os.chmod(fake, stat.S_IRWXU)
        self._saved = getattr(E, self.BINARY_ATTR)
        setattr(E, self.BINARY_ATTR, fake)

    def tearDown(self):
        setattr(E, self.BINARY_ATTR, self._saved)
        shutil.rmtree(self.tmp)


class EmulatorProcessTest(FakeEmulatorTest):
    """Process-group handling, with a shell script standing in for QEMU."""
    BINARY_ATTR = "QEMU_BINARY"
    SCRIPT = FAKE_EMULATOR

    def tearDown(self):
        os.environ.pop("FAKE_MODE", None)
        super().tearDown()

    def _emu(self, mode, **kw):
        os.environ["FAKE_MODE"] = mode
        # Work dirs are kept for the pid files, inside self.tmp so tearDown removes them.
        return E.Emulator(E.Config(emulator="qemu", iso=self.iso, keep_workdir=True,
                                   workdir=self.tmp, **kw))

    def _pids(self, emu):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with open(os.path.join(emu.workdir, "child.pid")) as a, \
                        open(os.path.join(emu.workdir, "leader.pid")) as b:
                    return int(a.read()), int(b.read())
            except (OSError, ValueError):
                time.sleep(0.02)
        self.fail("fake emulator did not start")

    def test_ready_then_stop_kills_the_whole_group(self):
        with self._emu("ready") as emu:
            m, seconds = emu.wait_for(E.READY_RE, 10)
            self.assertEqual(m["cpus"], "1")
            self.assertGreaterEqual(seconds, 0)
            self.assertTrue(emu.alive())
            child, leader = self._pids(emu)
            self.assertTrue(_pid_alive(child) and _pid_alive(leader))
            self.assertEqual(os.getpgid(child), leader)  # its own process group...
            self.assertNotEqual(os.getpgid(child), os.getpgid(0))  # ...not ours
        self.assertTrue(_gone(child))
        self.assertTrue(_gone(leader))
        self.assertFalse(emu.alive())
        self.assertIsNotNone(emu.returncode)

    def test_incomplete_line_does_not_match(self):
        with self._emu("partial") as emu:
            with self.assertRaises(E.BootTimeout):
                emu.wait_for(E.READY_RE, 0.5)

    def test_early_exit_is_reported_with_status(self):
        with self._emu("exit") as emu:
            with self.assertRaises(E.EmulatorExited) as cm:
                emu.wait_for(E.READY_RE, 10, what="READY")
            self.assertIn("status 3", str(cm.exception))
            self.assertEqual(emu.returncode, 3)
            child, _ = self._pids(emu)
        self.assertTrue(_gone(child))  # the leader's leftover child is gone too

    def test_workdir_removed_without_keep(self):
        os.environ["FAKE_MODE"] = "ready"
        emu = E.Emulator(E.Config(emulator="qemu", iso=self.iso, workdir=self.tmp))
        with emu:
            workdir = emu.workdir
            self.assertTrue(os.path.isdir(workdir))
            self.assertTrue(os.path.islink(os.path.join(workdir, "lantern.iso")))
        self.assertFalse(os.path.exists(workdir))
        emu.stop()  # idempotent

    def test_sigterm_to_the_python_side_stops_the_emulator(self):
        script = textwrap.dedent(f"""
            import os, sys, time
            sys.path.insert(0, {os.path.join(REPO, 'tools')!r})
            import emulator as E
            E.QEMU_BINARY = {E.QEMU_BINARY!r}
            emu = E.Emulator(E.Config(emulator="qemu", iso={self.iso!r}, keep_workdir=True,
                                      workdir={self.tmp!r}))
            with emu:
                emu.wait_for(E.READY_RE, 10)
                print(emu.workdir, flush=True)
                time.sleep(60)
        """)
        env = dict(os.environ, FAKE_MODE="ready")
        p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             env=env)
        workdir = p.stdout.readline().strip()
        child, leader = self._pids(type("X", (), {"workdir": workdir})())
        self.assertTrue(_pid_alive(child))
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(10), 128 + signal.SIGTERM)
        p.stdout.close()
        self.assertTrue(_gone(child))
        self.assertTrue(_gone(leader))


FAKE_BOCHS = """#!/usr/bin/env python3
# Stand-in for bochs-bin: opens its own screen terminal as Bochs' `term` display does, names it
# on stdout, writes 1 MiB of screen updates to it (write() blocks once the terminal's buffers are
# full and nothing reads the other side), then says READY on the serial log.
import fcntl, os, struct
master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY)  # posix_openpt, grantpt, unlockpt
os.set_inheritable(master, True)  # open for as long as the "emulator" runs, as in Bochs
TIOCSPTLCK, TIOCGPTN = 0x40045431, 0x80045430  # <asm-generic/ioctls.h>: unlockpt, ptsname
fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
name = "/dev/pts/%d" % struct.unpack("i", fcntl.ioctl(master, TIOCGPTN, b"\\0" * 4))[0]
print(f'Bochs connected to screen "{name}"', flush=True)
chunk = b"\\x1b[?25l\\x1b[?25h" * 64
for _ in range((1 << 20) // len(chunk) + 1):
    os.write(master, chunk)
os.write(master, b"LAST-SCREEN-BYTES")
with open("serial.log", "ab") as f:
    f.write(b"LANTERN READY cpus=1 vmx=0 vcpus=0 ip=none console=none\\r\\n")
os.execvp("sleep", ["sleep", "300"])
"""


class BochsScreenDrainTest(FakeEmulatorTest):
    """Bochs' screen terminal is read for as long as Bochs runs, so its writes never block."""
    BINARY_ATTR = "BOCHS_BINARY"
    SCRIPT = FAKE_BOCHS

    def test_a_megabyte_of_screen_output_does_not_stop_the_emulator(self):
        with E.Emulator(E.Config(emulator="bochs", iso=self.iso, workdir=self.tmp)) as emu:
            emu.wait_for(E.READY_RE, 30)
            deadline = time.monotonic() + 10
            while not emu.screen_tail().endswith(b"LAST-SCREEN-BYTES") and time.monotonic() < deadline:
                time.sleep(0.02)
            tail = emu.screen_tail()
            self.assertTrue(tail.endswith(b"LAST-SCREEN-BYTES"), tail[-64:])
            self.assertEqual(len(tail), E.Emulator.SCREEN_TAIL_BYTES)


class HarnessCrashRetryTest(unittest.TestCase):
    """harness.main(): an emulator that dies of a crash signal gets the test one more run."""

    SCRIPT = textwrap.dedent("""
        import sys
        sys.path.insert(0, {here!r})
        import harness
        harness.emulator.QEMU_BINARY = {fake!r}
        def test(args):
            with harness.boot(args) as emu:
                harness.wait_ready(emu, args, timeout=10)
        harness.main(test)
    """)

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.iso = os.path.join(self.tmp, "x.iso")
        open(self.iso, "wb").close()
        self.fake = os.path.join(self.tmp, "fake-qemu")
        with open(self.fake, "w") as f:
            f.write(FAKE_EMULATOR)
        os.chmod(self.fake, stat.S_IRWXU)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def _run(self, mode):
        env = dict(os.environ, FAKE_MODE=mode, FAKE_MARK=os.path.join(self.tmp, "crashed-once"))
        script = self.SCRIPT.format(here=HERE, fake=self.fake)
        return subprocess.run([sys.executable, "-c", script, "--emulator", "qemu", "--iso", self.iso],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                              timeout=60)

    def test_one_crash_then_a_pass_passes_and_says_so(self):
        r = self._run("segv-once")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("RETRY", r.stdout)
        self.assertIn("qemu died of SIGSEGV", r.stdout)
        self.assertIn("PASS -c on the second run (qemu died of SIGSEGV on the first)", r.stdout)

    def test_two_crashes_fail(self):
        r = self._run("segv")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("RETRY", r.stdout)
        self.assertIn("FAIL -c: qemu exited with status -11", r.stderr)

    def test_an_ordinary_exit_is_not_retried(self):
        r = self._run("exit")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertNotIn("RETRY", r.stdout + r.stderr)
        self.assertIn("FAIL -c: qemu exited with status 3", r.stderr)


class VmSpecTest(unittest.TestCase):
    """tools/vm_spec.py: the --vm SPEC syntax, its refusals, and the module2 tags it writes."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.kernel = self.file("apic.flat", b"\x7fELF")
        self.env = self.file("env.txt", b"NR_CPUS=2\n")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def file(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_keys_defaults_and_verbatim_append(self):
        s = vm_spec.parse(f"kernel={self.kernel},cpus=2,module={self.env},module={self.kernel},"
                          f"append=apic.flat a,b  'c' key=x,cpus=9")
        self.assertEqual((s.kernel, s.cpus, s.mem, s.name), (self.kernel, 2, 128, "apic.flat"))
        self.assertEqual(s.modules, [self.env, self.kernel])
        self.assertEqual(s.append, "apic.flat a,b  'c' key=x,cpus=9")  # the rest, verbatim
        s = vm_spec.parse(f"name=mine,mem=3072,kernel={self.kernel}")
        self.assertEqual((s.name, s.mem, s.cpus, s.append, s.initrd), ("mine", 3072, 1, "", None))
        self.assertEqual(vm_spec.parse(f"kernel={self.kernel},append=").append, "")

    def test_refusals_name_the_problem(self):
        unreadable = self.file("locked.elf", b"x")
        os.chmod(unreadable, 0)
        cases = [
            ("cpus=2", "has no kernel="),
            (f"kernel={self.kernel},cpus=0", "cpus=0"),
            (f"kernel={self.kernel},cpus=two", "not a whole number"),
            (f"kernel={self.kernel},cpus=-1", "not a whole number"),
            (f"kernel={self.kernel},mem=1", "2 to 3072 MiB"),
            (f"kernel={self.kernel},mem=4096", "2 to 3072 MiB"),
            (f"kernel={self.kernel},colour=red", "unknown key 'colour'"),
            (f"kernel={self.kernel},cpus=1,cpus=2", "given twice"),
            (f"kernel={self.kernel},,cpus=1", "empty item"),
            (f"kernel={self.kernel},cpus", "is not key=value"),
            (f"kernel={self.kernel},name=a b", "1 to 32 characters"),
            (f"kernel={os.path.join(self.tmp, 'missing.elf')}", "does not exist"),
            (f"kernel={self.tmp}", "not a regular file"),
            (f"kernel={self.kernel},module={self.env},initrd={self.env}", "do not mix"),
            (f"kernel={self.kernel},append=a\0b", "NUL"),
        ]
        if os.geteuid() != 0:  # root reads a mode-0 file anyway
            cases.append((f"kernel={unreadable}", "cannot read kernel file"))
        for text, words in cases:
            with self.assertRaises(vm_spec.VmSpecError, msg=text) as cm:
                vm_spec.parse(text)
            self.assertIn(words, str(cm.exception), text)

    def test_fit_rules_against_the_emulated_machine(self):
        a = vm_spec.parse(f"kernel={self.kernel},cpus=2,mem=128")
        b = vm_spec.parse(f"kernel={self.kernel},name=b,mem=64")
        vm_spec.check_fits([a, b], cpus=4, mem=256)  # 128 + 64 + 64 reserved = 256; 3 vCPUs + CPU 0
        with self.assertRaisesRegex(vm_spec.VmSpecError, "more than the 1 emulated CPU"):
            vm_spec.check_fits([a], cpus=1, mem=None)
        with self.assertRaisesRegex(vm_spec.VmSpecError, "3 vCPU\\(s\\) in all .* give --cpus 4 or more \\(not 3\\)"):
            vm_spec.check_fits([a, b], cpus=3, mem=None)  # every vCPU fits, but not besides CPU 0
        with self.assertRaisesRegex(vm_spec.VmSpecError, "= 257 MiB, more than the emulator's --mem 256"):
            vm_spec.check_fits([a, vm_spec.parse(f"kernel={self.kernel},name=b,mem=65")], cpus=4, mem=256)
        with self.assertRaisesRegex(vm_spec.VmSpecError, "two VMs are named 'apic.flat'"):
            vm_spec.check_fits([a, a], cpus=None, mem=None)

    def test_encoding_passes_grub_unchanged_and_round_trips(self):
        text = "apic.flat a,b  'c'"
        # guest/vm_spec.cpp's host test decodes exactly this string.
        self.assertEqual(vm_spec.encode(text), "apic.flat%20a,b%20%20%27c%27")
        for s in ["", "x=1,y", "100%", "\"\\$;&|<>{}#*?[]~\t\n", "caf\u00e9"]:
            enc = vm_spec.encode(s)
            self.assertTrue(set(enc) <= vm_spec.SAFE | {"%"}, enc)
            self.assertEqual(vm_spec.decode(enc), s)

    def test_module_lines_are_tagged_and_files_linked(self):
        spec = vm_spec.parse(f"kernel={self.kernel},cpus=2,module={self.env},append=apic.flat x")
        other = vm_spec.parse(f"kernel={self.kernel},name=two,mem=16")
        stage = os.path.join(self.tmp, "stage")
        lines = vm_spec.stage_modules([spec, other], stage)
        self.assertEqual(lines, [
            f"{stage}/vm0-kernel=lantern.vm=0 role=kernel name=apic.flat cpus=2 mem=128 append=apic.flat%20x",
            f"{stage}/vm0-module0=lantern.vm=0 role=module string=env.txt",
            f"{stage}/vm1-kernel=lantern.vm=1 role=kernel name=two cpus=1 mem=16 append=",
        ])
        with open(os.path.join(stage, "vm0-module0"), "rb") as f:
            self.assertEqual(f.read(), b"NR_CPUS=2\n")

    def test_cli_exit_status(self):
        script = os.path.join(REPO, "tools", "vm_spec.py")
        r = subprocess.run([sys.executable, script, "check", "--cpus", "1", "--vm",
                            f"kernel={self.kernel},cpus=2"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("lantern: --vm: VM 'apic.flat' asks for cpus=2", r.stdout)
        r = subprocess.run([sys.executable, script, "check", "--vm", f"kernel={self.kernel}"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.assertEqual(r.returncode, 0, r.stdout)


class AptSourcesTest(unittest.TestCase):
    DEB822 = textwrap.dedent("""\
        Types: deb
        URIs: http://mirror.example/debian-security
        Suites: bookworm-security
        Components: main
        Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

        Types: deb
        URIs: http://disabled.example/debian
        Suites: bookworm
        Components: main
        Enabled: no

        # a comment
        Types: deb deb-src
        URIs: http://mirror.example/debian/
        Suites: bookworm bookworm-updates
        Components: main contrib
        Signed-By: /etc/keys/k.gpg
        """)

    def test_deb822_picks_the_release_suite_with_main(self):
        entries = list(apt_sources.parse_deb822(self.DEB822))
        self.assertEqual(len(entries), 3)
        self.assertEqual(apt_sources.pick(entries, "bookworm"),
                         ("http://mirror.example/debian", "bookworm", "/etc/keys/k.gpg"))
        self.assertIsNone(apt_sources.pick(entries, "trixie"))

    def test_one_line_format(self):
        text = ("# deb http://commented.example/debian bookworm main\n"
                "deb http://sec.example/debian-security bookworm-security main\n"
                "deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm contrib main\n")
        self.assertEqual(apt_sources.pick(apt_sources.parse_one_line(text), "bookworm"),
                         ("http://m.example/debian", "bookworm", "/k.gpg"))
        text = "deb http://m.example/debian bookworm contrib\ndeb-src http://s.example bookworm main\n"
        self.assertIsNone(apt_sources.pick(apt_sources.parse_one_line(text), "bookworm"))

    def test_truncated_entries_are_skipped(self):
        self.assertEqual(list(apt_sources.parse_one_line("deb\ndeb http://x\ndeb [a=b\n")), [])
        entries = list(apt_sources.parse_deb822("Types: deb\nURIs:\nSuites: bookworm\n"))
        self.assertIsNone(apt_sources.pick(entries, "bookworm"))

    def test_default_keyring(self):
        e = list(apt_sources.parse_one_line("deb http://m.example/debian bookworm main\n"))
        self.assertEqual(apt_sources.pick(e, "bookworm")[2], apt_sources.DEFAULT_KEYRING)


def multiboot2_blob() -> bytes:
    """The smallest file grub-file accepts as Multiboot2: a header with a valid checksum."""
    magic, arch, length = 0xE85250D6, 0, 24
    checksum = (-(magic + arch + length)) & 0xFFFFFFFF
    return struct.pack("<IIIIHHI", magic, arch, length, checksum, 0, 0, 8) + bytes(64)


@unittest.skipUnless(shutil.which("grub-mkrescue") and shutil.which("grub-file"),
                     "grub-mkrescue not installed (./lantern deps)")
class EmbedUiTest(unittest.TestCase):
    """tools/embed_ui.py: the browser console's files as a generated C++ table."""

    def make_tree(self, d):
        os.makedirs(os.path.join(d, "js"))
        os.makedirs(os.path.join(d, "test"))
        files = {"index.html": "<!doctype html>", "app.css": "body{}", "js/main.mjs": "export {};",
                 "test/x.test.mjs": "unit test", "README.md": "notes"}
        for name, text in files.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)

    def test_paths_types_and_skipped_files(self):
        with tempfile.TemporaryDirectory() as d:
            self.make_tree(d)
            source, total = embed_ui.generate(d, None)
            self.assertIn('{"/", "text/html; charset=utf-8"', source)
            self.assertIn('{"/ui/app.css", "text/css; charset=utf-8"', source)
            self.assertIn('{"/ui/js/main.mjs", "text/javascript; charset=utf-8"', source)
            self.assertNotIn("test/x.test.mjs", source)
            self.assertNotIn("README", source)
            self.assertGreater(total, 3 * 18)  # three gzip members, each at least header + trailer

    def test_output_depends_on_contents_only(self):
        with tempfile.TemporaryDirectory() as d:
            self.make_tree(d)
            first, _ = embed_ui.generate(d, None)
            os.utime(os.path.join(d, "app.css"), (1, 1))
            self.assertEqual(embed_ui.generate(d, None)[0], first)
            with open(os.path.join(d, "app.css"), "w") as f:
                f.write("body{color:red}")
            self.assertNotEqual(embed_ui.generate(d, None)[0], first)

    def test_over_budget_and_unknown_types_fail_with_status_2(self):
        with tempfile.TemporaryDirectory() as d:
            self.make_tree(d)
            out = os.path.join(d, "out.cpp")
            self.assertEqual(embed_ui.main(["--root", d, "--output", out, "--budget", "10"]), 2)
            self.assertFalse(os.path.exists(out))
            self.assertEqual(embed_ui.main(["--root", d, "--output", out]), 0)
            with open(os.path.join(d, "logo.bmp"), "wb") as f:
                f.write(b"BM")
            self.assertEqual(embed_ui.main(["--root", d, "--output", out]), 2)


class MakeIsoTest(unittest.TestCase):
    SCRIPT = os.path.join(REPO, "iso", "make_iso.sh")

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.kernel = os.path.join(self.tmp, "k.elf")
        with open(self.kernel, "wb") as f:
            f.write(multiboot2_blob())
        self.stage = os.path.join(self.tmp, "stage")
        self.iso = os.path.join(self.tmp, "out", "l.iso")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def run_script(self, *extra, kernel=None):
        args = [self.SCRIPT, "--kernel", kernel or self.kernel, "--stage", self.stage,
                "--output", self.iso, *extra]
        return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def cfg(self):
        with open(os.path.join(self.stage, "boot", "grub", "grub.cfg")) as f:
            return f.read()

    def test_iso_and_grub_cfg(self):
        mod = os.path.join(self.tmp, "guest.bin")
        with open(mod, "wb") as f:
            f.write(b"guest")
        # The same file name twice is a clash.
        r = self.run_script("--module", f"{mod}=a", "--module", mod)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("two modules are named 'guest.bin'", r.stdout)
        r = self.run_script("--cmdline", "  selftest  a=$b;c ", "--module", f"{mod}=role=x  y&z")
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertGreater(os.path.getsize(self.iso), 100_000)
        cfg = self.cfg()
        self.assertIn("  multiboot2 /boot/lantern.elf 'selftest' 'a=$b;c'\n", cfg)
        self.assertIn("  module2 /boot/modules/guest.bin 'role=x' 'y&z'\n", cfg)
        self.assertIn("set timeout=0\n", cfg)
        self.assertIn("serial --unit=0 --speed=115200", cfg)
        self.assertIn("terminal_output serial console\n", cfg)
        self.assertNotIn("@", cfg)  # every placeholder filled, template-only (##) comments gone
        self.assertTrue(cfg.startswith("# Generated by iso/make_iso.sh"))
        self.assertTrue(os.path.isfile(os.path.join(self.stage, "boot", "modules", "guest.bin")))
        # A second run without modules empties boot/modules and drops the arguments.
        r = self.run_script()
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertEqual(os.listdir(os.path.join(self.stage, "boot", "modules")), [])
        self.assertIn("  multiboot2 /boot/lantern.elf\n", self.cfg())
        self.assertNotIn("module2", self.cfg())

    def test_vm_modules_become_tagged_module2_lines(self):
        kernel = os.path.join(self.tmp, "my kernel.elf")  # a blank in the name: linked as vm0-kernel
        with open(kernel, "wb") as f:
            f.write(b"k")
        spec = vm_spec.parse(f"kernel={kernel},cpus=2,append=a,b  $c;'d'")
        lines = vm_spec.stage_modules([spec], os.path.join(self.tmp, "vms"))
        extra = [arg for line in lines for arg in ("--module", line)]
        r = self.run_script(*extra)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("  module2 /boot/modules/vm0-kernel 'lantern.vm=0' 'role=kernel' 'name=my_kernel.elf'"
                      " 'cpus=2' 'mem=128' 'append=a,b%20%20%24c%3B%27d%27'\n", self.cfg())
        with open(os.path.join(self.stage, "boot", "modules", "vm0-kernel"), "rb") as f:
            self.assertEqual(f.read(), b"k")

    def test_errors(self):
        cases = [
            (["--cmdline", "a'b"], 1, "GRUB would rewrite"),
            (["--cmdline", 'a"b'], 1, "GRUB would rewrite"),
            (["--cmdline", "a\\b"], 1, "GRUB would rewrite"),
            (["--cmdline", "a\nb"], 1, "single line"),
            (["--module", "/nonexistent/m.bin"], 1, "does not exist"),
            (["--module", "=args"], 1, "empty path"),
            (["--bogus"], 2, "unknown argument"),
            (["--cmdline"], 2, "needs a value"),
        ]
        for extra, status, text in cases:
            r = self.run_script(*extra)
            self.assertEqual(r.returncode, status, f"{extra}: {r.stdout}")
            self.assertIn(text, r.stdout, extra)
            self.assertFalse(os.path.exists(self.iso), extra)
        r = self.run_script(kernel=os.path.join(self.tmp, "missing.elf"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("does not exist", r.stdout)
        not_mb2 = os.path.join(self.tmp, "plain.elf")
        with open(not_mb2, "wb") as f:
            f.write(bytes(4096))
        r = self.run_script(kernel=not_mb2)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no Multiboot2 header", r.stdout)
        odd = os.path.join(self.tmp, "bad name.bin")
        open(odd, "wb").close()
        r = self.run_script("--module", odd)
        self.assertEqual(r.returncode, 1)
        self.assertIn("may only use", r.stdout)


class LinuxGuestCpioTest(unittest.TestCase):
    """tools/linux_guest.py's cpio "newc" writer, read back field by field (no cpio binary)."""

    def archive(self, entries, mtime=0):
        blob = linux_guest.write_newc(entries, mtime=mtime)
        return blob, linux_guest.read_newc(blob)

    def test_header_layout_names_padding_and_trailer(self):
        blob, parsed = self.archive([linux_guest.Entry(".", stat.S_IFDIR | 0o755),
                                     linux_guest.Entry("a", stat.S_IFREG | 0o644, b"xyz"),
                                     linux_guest.Entry("dir", stat.S_IFDIR | 0o700)], mtime=1234)
        self.assertEqual(blob[:6], b"070701")
        # 110-byte header: magic + 13 fields of 8 upper-case hex digits.
        self.assertRegex(blob[:110].decode(), r"^070701[0-9A-F]{104}$")
        self.assertEqual([e["name"] for e in parsed], [".", "a", "dir", "TRAILER!!!"])
        self.assertEqual(parsed[-1]["end"], len(blob))
        self.assertEqual(len(blob) % 4, 0)
        for e in parsed:
            self.assertEqual(e["offset"] % 4, 0, e["name"])
            self.assertEqual(e["namesize"], len(e["name"].encode()) + 1)
            self.assertEqual(e["name_padding"], b"\0" * len(e["name_padding"]))
            self.assertEqual((e["offset"] + 110 + e["namesize"] + len(e["name_padding"])) % 4, 0)
            self.assertEqual(e["data_padding"], b"\0" * len(e["data_padding"]))
            self.assertEqual(e["check"], 0)
        a = parsed[1]
        self.assertEqual((a["mode"], a["filesize"], a["data"], a["mtime"], a["nlink"]),
                         (stat.S_IFREG | 0o644, 3, b"xyz", 1234, 1))
        self.assertEqual(len(a["data_padding"]), 1)  # 3 bytes of data + 1 of padding
        self.assertEqual((parsed[2]["mode"], parsed[2]["nlink"]), (stat.S_IFDIR | 0o700, 2))
        # Inodes are distinct and non-zero; the trailer is all zeros but its name size (11).
        inos = [e["ino"] for e in parsed[:-1]]
        self.assertEqual(len(set(inos)), len(inos))
        self.assertNotIn(0, inos)
        t = parsed[-1]
        self.assertEqual((t["ino"], t["mode"], t["filesize"], t["mtime"], t["namesize"]), (0, 0, 0, 0, 11))

    def test_symlinks_and_device_nodes(self):
        _, parsed = self.archive([linux_guest.Entry("bin/sh", stat.S_IFLNK | 0o777, b"busybox"),
                                  linux_guest.Entry("dev/ttyS0", stat.S_IFCHR | 0o660, rdev=(4, 64))])
        sh, tty = parsed[0], parsed[1]
        self.assertTrue(stat.S_ISLNK(sh["mode"]))
        self.assertEqual((sh["data"], sh["filesize"]), (b"busybox", 7))
        self.assertTrue(stat.S_ISCHR(tty["mode"]))
        self.assertEqual((tty["rdevmajor"], tty["rdevminor"], tty["filesize"]), (4, 64, 0))
        self.assertEqual((tty["devmajor"], tty["devminor"]), (0, 0))

    def test_refuses_what_the_kernel_would_misread(self):
        for bad in ([linux_guest.Entry("/init", stat.S_IFREG | 0o755)],
                    [linux_guest.Entry("a", stat.S_IFREG), linux_guest.Entry("a", stat.S_IFREG)],
                    [linux_guest.Entry("d", stat.S_IFDIR | 0o755, b"data")]):
            with self.assertRaises(ValueError):
                linux_guest.write_newc(bad)

    def test_initramfs_contents_and_determinism(self):
        entries = linux_guest.initramfs_entries(b"\x7fELF-busybox")
        blob = linux_guest.write_newc(entries)
        parsed = {e["name"]: e for e in linux_guest.read_newc(blob)}
        names = list(parsed)
        for d in ("proc", "sys", "dev", "tmp", "bin"):
            self.assertTrue(stat.S_ISDIR(parsed[d]["mode"]), d)
        for i, n in enumerate(names):  # a directory comes before what it holds
            if "/" in n:
                self.assertLess(names.index(n.rsplit("/", 1)[0]), i, n)
        self.assertEqual(stat.S_IMODE(parsed["tmp"]["mode"]), 0o1777)
        self.assertEqual((parsed["dev/console"]["rdevmajor"], parsed["dev/console"]["rdevminor"]), (5, 1))
        self.assertEqual((parsed["dev/ttyS0"]["rdevmajor"], parsed["dev/ttyS0"]["rdevminor"]), (4, 64))
        self.assertTrue(stat.S_ISCHR(parsed["dev/console"]["mode"]))
        self.assertEqual(parsed["bin/busybox"]["data"], b"\x7fELF-busybox")
        self.assertEqual(stat.S_IMODE(parsed["bin/busybox"]["mode"]), 0o755)
        for applet in ("sh", "echo", "mount", "reboot", "nproc", "cat", "poweroff", "setsid", "cttyhack"):
            e = parsed[f"bin/{applet}"]
            self.assertTrue(stat.S_ISLNK(e["mode"]) and e["data"] == b"busybox", applet)
        init = parsed["init"]
        self.assertEqual(stat.S_IMODE(init["mode"]), 0o755)
        text = init["data"].decode()
        self.assertTrue(text.startswith("#!/bin/sh\n"))
        for needle in ("mount -t proc", "mount -t sysfs", "mount -t devtmpfs", linux_guest.INIT_MARKER,
                       "$(nproc)", f"PS1='{linux_guest.PROMPT}'", "setsid cttyhack sh", "while true"):
            self.assertIn(needle, text)
        self.assertTrue(all(e["mtime"] == 0 for e in parsed.values()))
        # Same input, same bytes, gzip included (no timestamp in the gzip header either).
        gz = linux_guest.gzip_deterministic(blob)
        self.assertEqual(gz, linux_guest.gzip_deterministic(linux_guest.write_newc(
            linux_guest.initramfs_entries(b"\x7fELF-busybox"))))
        self.assertEqual(gz[4:8], b"\0\0\0\0")
        import gzip as _gzip
        self.assertEqual(_gzip.decompress(gz), blob)

    def test_pins_are_complete(self):
        for pin in linux_guest.PINS:
            self.assertRegex(pin.sha256, r"^[0-9a-f]{64}$")
            self.assertGreater(pin.size, 0)
            self.assertTrue(pin.member.startswith("./"))
        self.assertTrue(linux_guest.KERNEL_PIN.package.startswith("linux-image-6.1.0-"))
        self.assertTrue(linux_guest.KERNEL_PIN.package.endswith("-amd64-unsigned"))
        self.assertIn(linux_guest.KERNEL_RELEASE, linux_guest.KERNEL_PIN.member)

    def test_archive_lines_use_the_machines_mirrors(self):
        codename = apt_sources.read_codename() or "bookworm"
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(os.path.join(d, "sources.list.d"))
            with open(os.path.join(d, "sources.list.d", "debian.sources"), "w") as f:
                f.write(f"Types: deb\nURIs: http://mirror.example/debian\nSuites: {codename} {codename}-updates\n"
                        "Components: main\nSigned-By: /k.gpg\n")
            lines = linux_guest.archive_lines(d)
        self.assertEqual(lines[0], f"deb [signed-by=/k.gpg] http://mirror.example/debian {codename} main")
        self.assertTrue(lines[2].endswith(f"{codename}-security main"))
        self.assertIn(linux_guest.KEYRING, lines[2])


class LanternCliTest(unittest.TestCase):
    """Argument errors exit 2 with usage, before anything is built or installed."""

    def lantern(self, *args):
        return subprocess.run([os.path.join(REPO, "lantern"), *args], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=30)

    def test_usage_errors(self):
        for args, text in [((), "usage:"), (("frobnicate",), "unknown command 'frobnicate'"),
                           (("run", "--bogus"), "unknown option '--bogus'"),
                           (("run", "--cpus", "zero"), "positive number"),
                           (("run", "--cpus"), "needs a value"),
                           (("run", "--emulator", "vbox"), "auto, bochs or qemu"),
                           (("run", "--port", "70000"), "at most 65535"),
                           (("iso",), "-o FILE is required"), (("iso", "-x"), "unknown option"),
                           (("test", "now"), "unknown option"), (("bench", "-v"), "unknown option"),
                           (("fuzz", "--seconds", "0"), "positive number"), (("fuzz", "--verbose"), "unknown option"),
                           (("fuzz", "api", "acpi"), "one target at most"),
                           (("deps", "--everything"), "unknown option"),
                           (("linux-guest", "--now"), "unknown option '--now'"),
                           (("run", "--vm", "cpus=2"), "has no kernel="),
                           (("run", "--vm", "kernel=/nonexistent/k.elf"), "does not exist"),
                           (("run", "--vm", f"kernel={__file__},cpus=0"), "cpus=0"),
                           (("run", "--vm", f"kernel={__file__},cpus=2"), "more than the 1 emulated CPU"),
                           (("run", "--vm", f"kernel={__file__}"), "give --cpus 2 or more (not 1)"),
                           (("run", "--mem", "128", "--vm", f"kernel={__file__}"),
                            "more than the emulator's --mem 128"),
                           (("run", "--vm", f"kernel={__file__},mem=1"), "2 to 3072 MiB"),
                           (("run", "--vm", f"kernel={__file__},speed=9"), "unknown key 'speed'"),
                           (("run", "--iso", __file__, "--vm", f"kernel={__file__}"), "do not mix"),
                           (("iso", "-o", "/tmp/x.iso", "--vm", f"kernel={__file__},cpus=x"),
                            "not a whole number"),
                           (("iso", "-o", "/tmp/x.iso", "--check-cpus", "1", "--vm",
                             f"kernel={__file__},cpus=3"), "more than the 1 emulated CPU")]:
            r = self.lantern(*args)
            self.assertEqual(r.returncode, 2, f"{args}: {r.stdout}")
            self.assertIn(text, r.stdout, args)

    def test_help(self):
        r = self.lantern("help")
        self.assertEqual(r.returncode, 0)
        for command in ("run", "test", "fuzz", "build", "iso", "bench", "deps", "linux-guest"):
            self.assertIn(f"\n  {command}", r.stdout)


if __name__ == "__main__":
    unittest.main()
