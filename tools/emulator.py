#!/usr/bin/env python3
"""Boot a Lantern ISO under QEMU or Bochs, watch its serial log, and always clean up.

Used by `./lantern run`, `./lantern bench` and tests/integration. Python 3 standard library only.

    from emulator import Config, Emulator, READY_RE
    with Emulator(Config(emulator="bochs", iso="build/lantern.iso", cpus=2)) as emu:
        match, seconds = emu.wait_for(READY_RE, timeout=120)

Rules this module keeps (see /work/shared/emulators.md for why):
- Every run gets a private temporary work directory: bochsrc.txt, slirp.conf, cont.rc, the serial
  log, the emulator's own output, and a symlink to the ISO (so odd characters in paths never reach an
  emulator's option parser). It is deleted on stop unless keep_workdir is set.
- The emulator runs in its own process group (new session) and gets SIGKILL if this Python process
  dies (PR_SET_PDEATHSIG). stop() kills the whole group; it runs from the context manager, from
  atexit, and on SIGTERM/SIGHUP (turned into SystemExit so `with` blocks unwind).
- Forwarded ports bind to 127.0.0.1 only. QEMU's user network also runs with restrict=on, so the guest
  can reach nothing beyond the emulator's own DHCP/DNS; nothing but 127.0.0.1 is ever contacted.
- QEMU never uses KVM unless Config.kvm is set (only `./lantern run` does, after kvm_usable()).
- Bochs' `term` display writes the emulated screen to a pseudo-terminal it opens itself (its output
  says `Bochs connected to screen "/dev/pts/N"`). Nothing else reads that terminal, and once its
  buffers are full Bochs blocks in write() and the whole emulator stops: the console stops
  answering after enough screen output (a Linux guest with two vCPUs under Lantern got there in
  about 8 minutes). A thread opens that terminal in raw mode and reads it for as long as Bochs
  runs (`screen_tail()` keeps its last bytes).
"""
from __future__ import annotations

import argparse
import atexit
import ctypes
import dataclasses
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import termios
import threading
import time
import tty
from typing import IO, Optional, Pattern, Union

# ---- the boot-log contract (docs: /work/shared/design.md) --------------------------------------
READY_RE = re.compile(
    r"^LANTERN READY cpus=(?P<cpus>\d+) vmx=(?P<vmx>\d+) vcpus=(?P<vcpus>\d+)"
    r"(?: hv=(?P<hv>vmx|svm|none) svm=(?P<svm>\d+))? ip=(?P<ip>\S+) console=(?P<console>\S+)[ \t]*$",
    re.M,
)
READY_PREFIX_RE = re.compile(r"^LANTERN READY\b.*$", re.M)
PANIC_RE = re.compile(r"^LANTERN PANIC\b.*$", re.M)
SELFTEST_RE = re.compile(r"^SELFTEST (?P<name>\S+) (?P<result>ok|FAIL)(?: (?P<why>.*))?$", re.M)
SELFTEST_SUMMARY_RE = re.compile(r"^selftest: (?P<passed>\d+) passed, (?P<failed>\d+) failed[ \t]*$", re.M)

# GRUB's serial terminal sends VT100 control sequences (clear screen, cursor moves).
_CSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]")

QEMU_BINARY = "qemu-system-x86_64"
BOCHS_BINARY = "bochs"
DEFAULT_BOCHS_CPU = "corei7_skylake_x"
# Bochs 2.7 models with VMX + EPT + unrestricted guest (emulators.md); others are accepted too.
BOCHS_VMX_CPU_MODELS = (
    "corei7_haswell_4770",
    "broadwell_ult",
    "corei7_skylake_x",
    "corei7_icelake_u",
    "tigerlake",
)
# "virtio-net-modern" is a modern-only device (disable-legacy=on: 1AF4:1041); "virtio-net" is the
# transitional one (1AF4:1000).
NICS = ("e1000", "virtio-net", "virtio-net-modern", "none")
GUEST_HTTP_PORT = 80
# isa-debug-exit: writing v to port 0xf4 ends QEMU with status (v << 1) | 1.
QEMU_DEBUG_EXIT_PORT = 0xF4
# Firmware: "bios" (SeaBIOS, QEMU's default; Bochs' own BIOS) or "uefi" (OVMF from Debian's `ovmf`,
# QEMU only). OVMF's code is read-only; its variable store is copied into each run's work dir.
FIRMWARES = ("bios", "uefi")
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"


def qemu_exit_status(value: int) -> int:
    """Exit status of QEMU after the guest writes `value` to the isa-debug-exit port."""
    return ((value << 1) | 1) & 0xFF


def clean_log(raw: Union[bytes, str]) -> str:
    """Serial bytes -> text: drop terminal control sequences and carriage returns."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    return _CSI_RE.sub("", text).replace("\r", "")


class EmulatorError(RuntimeError):
    """The emulator could not start, died, or did not print what was expected in time."""


class BootTimeout(EmulatorError):
    pass


class EmulatorExited(EmulatorError):
    pass


# ---- host facts ---------------------------------------------------------------------------------
def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the kernel picks it: bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def host_has_flag(flag: str, cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when the first CPU's `flags` line in /proc/cpuinfo lists `flag` as a whole word."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return flag in line.split(":", 1)[-1].split()
    except OSError:
        pass
    return False


def host_has_vmx(cpuinfo: str = "/proc/cpuinfo") -> bool:
    return host_has_flag("vmx", cpuinfo)


def host_has_svm(cpuinfo: str = "/proc/cpuinfo") -> bool:
    return host_has_flag("svm", cpuinfo)


def kvm_nested(module: str, sys_module: str = "/sys/module") -> bool:
    """True when KVM's `module` (kvm_intel or kvm_amd) offers nested virtualization to its guests
    (/sys/module/<module>/parameters/nested reads Y or 1)."""
    try:
        with open(os.path.join(sys_module, module, "parameters", "nested"), encoding="ascii") as f:
            return f.read().strip() in ("Y", "1")
    except OSError:
        return False


def kvm_usable(cpuinfo: str = "/proc/cpuinfo", sys_module: str = "/sys/module", dev: str = "/dev/kvm") -> bool:
    """True when /dev/kvm opens read-write AND KVM would give Lantern a hypervisor of its own:
    a host CPU with vmx and kvm_intel's nested=Y, or with svm and kvm_amd's nested=1.

    A usable /dev/kvm alone is not enough: on the project's machines it is a paravirtual flavour
    without nested VMX or SVM (emulators.md), so Lantern would find no backend inside it.
    """
    try:
        fd = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return ((host_has_vmx(cpuinfo) and kvm_nested("kvm_intel", sys_module)) or
            (host_has_svm(cpuinfo) and kvm_nested("kvm_amd", sys_module)))


def pick_emulator(choice: str, kvm: Optional[bool] = None) -> tuple[str, bool]:
    """Resolve --emulator auto|bochs|qemu to (emulator, use_kvm). auto: QEMU + KVM when KVM offers
    nested VMX or SVM (kvm_usable(), or `kvm` when given), otherwise QEMU TCG with -cpu max, where
    the SVM backend runs the guests; Bochs only on request."""
    if choice == "auto":
        return ("qemu", kvm_usable() if kvm is None else kvm)
    if choice in ("qemu", "bochs"):
        return choice, False
    raise ValueError(f"unknown emulator '{choice}' (expected auto, bochs or qemu)")


# ---- configuration ------------------------------------------------------------------------------
@dataclasses.dataclass
class Config:
    emulator: str  # "qemu" or "bochs"
    iso: str
    cpus: int = 1
    mem: int = 256  # MiB
    # Host port on 127.0.0.1 forwarded to the guest's port 80. None: pick a free one. 0: no forward.
    port: Optional[int] = None
    nic: str = "e1000"  # "e1000", "virtio-net", "virtio-net-modern" (QEMU only) or "none"
    kvm: bool = False  # QEMU only; only for `./lantern run` on a host with usable VMX
    cpu_model: Optional[str] = None  # QEMU: "max" (TCG) / "host" (KVM); Bochs: DEFAULT_BOCHS_CPU
    machine: str = "pc"  # QEMU: "pc" (i440FX, PCI through 0xCF8/0xCFC) or "q35" (ECAM from ACPI MCFG)
    firmware: str = "bios"  # "bios" or "uefi" (OVMF, QEMU only)
    # QEMU TCG: "multi" (a host thread per vCPU, QEMU's default) or "single" (one thread runs every
    # vCPU in turn). QEMU 7.2's multi-threaded TCG races on CPU 0's hflags2 when another vCPU's
    # thread executes FXRSTOR/XRSTOR/FRSTOR/FLDENV (target/i386/tcg/sysemu/fpu_helper.c
    # cpu_clear_ignne writes first_cpu's hflags2 unlocked), which can undo CPU 0's #VMEXIT of its
    # nested-paging bit: rare, but fatal for SVM guests on CPU 0 over long runs
    # (docs/emulators.md "QEMU TCG and SVM on CPU 0").
    tcg_thread: str = "multi"
    bochs_ips: int = 20_000_000  # emulators.md: 4M..20M is the sweet spot with clock sync=none
    extra_forwards: tuple[tuple[int, int], ...] = ()  # more (host_port, guest_port) pairs
    serial_log: Optional[str] = None  # also expose the serial log at this path (symlink)
    workdir: Optional[str] = None  # parent for the private work directory
    keep_workdir: bool = False
    mac: str = "52:54:00:12:34:56"

    def validate(self) -> None:
        if self.emulator not in ("qemu", "bochs"):
            raise EmulatorError(f"unknown emulator '{self.emulator}' (expected qemu or bochs)")
        if not os.path.isfile(self.iso):
            raise EmulatorError(f"ISO '{self.iso}' does not exist (build it: ./lantern build)")
        if not 1 <= self.cpus <= 64:
            raise EmulatorError(f"cpus must be 1..64, not {self.cpus}")
        if not 32 <= self.mem <= 65536:
            raise EmulatorError(f"mem must be 32..65536 MiB, not {self.mem}")
        if self.machine not in ("pc", "q35"):
            raise EmulatorError(f"unknown machine '{self.machine}' (expected pc or q35)")
        if self.emulator == "bochs" and self.machine != "pc":
            raise EmulatorError("Bochs emulates only the i440FX PC; --machine q35 is QEMU only")
        if self.tcg_thread not in ("multi", "single"):
            raise EmulatorError(f"unknown TCG threading '{self.tcg_thread}' (expected multi or single)")
        if self.tcg_thread != "multi" and (self.emulator != "qemu" or self.kvm):
            raise EmulatorError("--tcg-thread is for QEMU TCG only")
        if self.firmware not in FIRMWARES:
            raise EmulatorError(f"unknown firmware '{self.firmware}' (expected bios or uefi)")
        if self.firmware == "uefi":
            if self.emulator != "qemu":
                raise EmulatorError("UEFI (OVMF) boots under QEMU only")
            for path in (OVMF_CODE, OVMF_VARS):
                if not os.path.isfile(path):
                    raise EmulatorError(f"{path} is missing (install Debian's ovmf: ./lantern deps)")
        if self.nic not in NICS:
            raise EmulatorError(f"unknown NIC '{self.nic}' (expected one of {', '.join(NICS)})")
        if self.emulator == "bochs":
            if self.nic.startswith("virtio-net"):
                raise EmulatorError("Bochs has no virtio-net device: use --nic e1000 or QEMU")
            if self.kvm:
                raise EmulatorError("KVM is a QEMU accelerator; Bochs cannot use it")
        model = self.cpu_model or ""
        if model and not re.fullmatch(r"[A-Za-z0-9_.,+=-]+", model):
            raise EmulatorError(f"bad CPU model '{model}'")
        if self.emulator == "bochs" and "," in model:
            raise EmulatorError(f"bad Bochs CPU model '{model}'")
        for host, guest in self.forwards():
            if not (1 <= host <= 65535 and 1 <= guest <= 65535):
                raise EmulatorError(f"bad port forward {host}->{guest}")

    def forwards(self) -> list[tuple[int, int]]:
        result = []
        if self.port:
            result.append((self.port, GUEST_HTTP_PORT))
        result.extend(self.extra_forwards)
        return result if self.nic != "none" else []


# ---- command lines and config files -------------------------------------------------------------
def qemu_command(cfg: Config, iso: str, serial: str) -> list[str]:
    cmd = [
        QEMU_BINARY, "-M", cfg.machine, "-m", str(cfg.mem), "-smp", str(cfg.cpus),
        "-cdrom", iso, "-boot", "d", "-display", "none", "-monitor", "none",
        "-no-reboot", "-serial", f"file:{serial}",
        "-device", f"isa-debug-exit,iobase={QEMU_DEBUG_EXIT_PORT:#x},iosize=0x04",
    ]
    if cfg.firmware == "uefi":
        # OVMF as two pflash devices: code read-only, the variable store a private copy
        # (ovmf_vars.fd, written into the work dir by Emulator.start()).
        cmd += ["-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
                "-drive", "if=pflash,format=raw,file=ovmf_vars.fd"]
    if cfg.kvm:
        cmd += ["-accel", "kvm", "-cpu", cfg.cpu_model or "host"]
    else:
        accel = "tcg" if cfg.tcg_thread == "multi" else "tcg,thread=single"  # multi: QEMU's default
        cmd += ["-accel", accel, "-cpu", cfg.cpu_model or "max"]
    if cfg.nic != "none":
        netdev = "user,id=n0,restrict=on"
        for host, guest in cfg.forwards():
            netdev += f",hostfwd=tcp:127.0.0.1:{host}-:{guest}"
        device = {"e1000": "e1000", "virtio-net": "virtio-net-pci",
                  "virtio-net-modern": "virtio-net-pci,disable-legacy=on"}[cfg.nic]
        cmd += ["-netdev", netdev, "-device", f"{device},netdev=n0,mac={cfg.mac}"]
    else:
        cmd += ["-nic", "none"]
    return cmd


def bochsrc_text(cfg: Config, iso: str, serial: str) -> str:
    """The bochsrc verified in emulators.md, with count/memory/model/paths filled in."""
    model = cfg.cpu_model or DEFAULT_BOCHS_CPU
    lines = [
        "display_library: term",
        f"memory: guest={cfg.mem}, host={cfg.mem}",
        "romimage: file=/usr/share/bochs/BIOS-bochs-latest, options=fastboot",
        "vgaromimage: file=/usr/share/vgabios/vgabios.bin",
        f"cpu: model={model}, count={cfg.cpus}, ips={cfg.bochs_ips},"
        " reset_on_triple_fault=0, ignore_bad_msrs=1",
        "pci: enabled=1, chipset=i440fx",
    ]
    if cfg.nic == "e1000":
        lines.append(f"e1000: enabled=1, mac={cfg.mac}, ethmod=slirp, script=slirp.conf")
    lines += [
        "ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14",
        f"ata0-master: type=cdrom, path={iso}, status=inserted",
        "boot: cdrom",
        f"com1: enabled=1, mode=file, dev={serial}",
        "clock: sync=none, time0=local",
        "log: bochs.log",
        "panic: action=fatal",
        "error: action=report",
        "info: action=report",
        "debug: action=ignore",
        "mouse: enabled=0",
        "sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy",
        "speaker: enabled=0",
    ]
    return "\n".join(lines) + "\n"


def slirp_conf_text(cfg: Config) -> str:
    # The first line, a comment, is required by Bochs (emulators.md).
    lines = [
        "# slirp config",
        "restricted = 0",
        "net        = 10.0.2.0",
        "mask       = 255.255.255.0",
        "host       = 10.0.2.2",
        "dhcpstart  = 10.0.2.15",
        "dns        = 10.0.2.3",
    ]
    for host, guest in cfg.forwards():
        lines.append(f"hostfwd    = tcp:127.0.0.1:{host}-:{guest}")
    return "\n".join(lines) + "\n"


# Bochs' debugger is compiled into Debian's build: without `c` it stops at the first instruction.
BOCHS_CONT_RC = "c\nquit\n"


# ---- process bookkeeping ------------------------------------------------------------------------
_live: "set[Emulator]" = set()
_live_lock = threading.Lock()
_handlers_installed = False


def _stop_all() -> None:
    with _live_lock:
        emus = list(_live)
    for emu in emus:
        emu.stop()


def _on_signal(signum, _frame):
    # Unwind `with` blocks and finally clauses; atexit stops whatever is still running.
    raise SystemExit(128 + signum)


def _install_handlers() -> None:
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(_stop_all)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _on_signal)


def _child_setup() -> None:
    # Runs in the child between fork and exec: die with the parent (PR_SET_PDEATHSIG = 1).
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)
    except Exception:  # noqa: BLE001 - best effort; the group kill still applies
        pass


class Emulator:
    """One emulator run. Use as a context manager; stop() is idempotent."""

    def __init__(self, cfg: Config):
        cfg.validate()
        if cfg.port is None and cfg.nic != "none":
            cfg.port = free_port()
        self.cfg = cfg
        self.workdir: Optional[str] = None
        self.serial_path: Optional[str] = None
        self.output_path: Optional[str] = None
        self.command: list[str] = []
        self.started_at: Optional[float] = None  # time.monotonic() just before launch
        self.returncode: Optional[int] = None
        self._proc: Optional[subprocess.Popen] = None
        self._output_file: Optional[IO[bytes]] = None
        self._screen = bytearray()  # the last bytes Bochs wrote to its screen terminal
        self._screen_lock = threading.Lock()

    # -- lifecycle --
    def __enter__(self) -> "Emulator":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> Optional[int]:
        return self.cfg.port if self.cfg.nic != "none" else None

    @property
    def console_url(self) -> Optional[str]:
        return f"http://127.0.0.1:{self.port}/" if self.port else None

    def start(self) -> "Emulator":
        if self._proc is not None:
            raise EmulatorError("emulator already started")
        cfg = self.cfg
        binary = QEMU_BINARY if cfg.emulator == "qemu" else BOCHS_BINARY
        if shutil.which(binary) is None:
            raise EmulatorError(f"'{binary}' not found (install it: ./lantern deps)")
        _install_handlers()
        self.workdir = tempfile.mkdtemp(prefix=f"lantern-{cfg.emulator}-", dir=cfg.workdir)
        iso_link = os.path.join(self.workdir, "lantern.iso")
        os.symlink(os.path.abspath(cfg.iso), iso_link)
        self.serial_path = os.path.join(self.workdir, "serial.log")
        if cfg.serial_log:
            target = os.path.abspath(cfg.serial_log)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "wb").close()
            os.symlink(target, self.serial_path)
        else:
            open(self.serial_path, "wb").close()
        if cfg.emulator == "qemu":
            if cfg.firmware == "uefi":
                shutil.copyfile(OVMF_VARS, os.path.join(self.workdir, "ovmf_vars.fd"))
            self.command = qemu_command(cfg, "lantern.iso", "serial.log")
        else:
            for name, text in (
                ("bochsrc.txt", bochsrc_text(cfg, "lantern.iso", "serial.log")),
                ("slirp.conf", slirp_conf_text(cfg)),
                ("cont.rc", BOCHS_CONT_RC),
            ):
                with open(os.path.join(self.workdir, name), "w", encoding="ascii") as f:
                    f.write(text)
            self.command = [BOCHS_BINARY, "-q", "-f", "bochsrc.txt", "-rc", "cont.rc"]
        self.output_path = os.path.join(self.workdir, f"{cfg.emulator}.out")
        self._output_file = open(self.output_path, "wb")
        env = dict(os.environ)
        env.setdefault("TERM", "dumb")  # Bochs' term display wants a terminal type, not a tty
        with _live_lock:
            _live.add(self)
        self.started_at = time.monotonic()
        try:
            self._proc = subprocess.Popen(
                self.command, cwd=self.workdir, stdin=subprocess.DEVNULL,
                stdout=self._output_file, stderr=subprocess.STDOUT, env=env,
                start_new_session=True, preexec_fn=_child_setup,
            )
        except OSError as e:
            self.stop()
            raise EmulatorError(f"cannot start {binary}: {e}") from e
        if cfg.emulator == "bochs":
            threading.Thread(target=self._drain_bochs_screen, name="bochs-screen", daemon=True).start()
        return self

    _SCREEN_RE = re.compile(rb'Bochs connected to screen "(/dev/pts/[0-9]+)"')
    SCREEN_TAIL_BYTES = 16384

    def _drain_bochs_screen(self) -> None:
        """Reads Bochs' screen terminal until Bochs closes it (see the module docstring)."""
        path = None
        deadline = time.monotonic() + 120.0
        while path is None and time.monotonic() < deadline and self.alive():
            try:
                with open(self.output_path, "rb") as f:
                    m = self._SCREEN_RE.search(f.read(65536))
            except (OSError, TypeError):
                m = None
            if m:
                path = m.group(1).decode()
            else:
                time.sleep(0.05)
        if path is None:
            return
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOCTTY)
        except OSError:
            return
        try:
            tty.setraw(fd, termios.TCSANOW)  # no echo back to Bochs, no line editing
            while True:
                data = os.read(fd, 65536)
                if not data:
                    break
                with self._screen_lock:
                    self._screen += data
                    del self._screen[:-self.SCREEN_TAIL_BYTES]
        except OSError:
            pass  # EIO once Bochs has closed its side
        finally:
            os.close(fd)

    def screen_tail(self) -> bytes:
        """The last bytes (up to SCREEN_TAIL_BYTES) Bochs wrote to its screen terminal: curses
        output of the emulated VGA text screen; empty for QEMU."""
        with self._screen_lock:
            return bytes(self._screen)

    def alive(self) -> bool:
        """True while the emulator runs. Does not reap it, so its process group stays valid."""
        if self._proc is None or self.returncode is not None:
            return False
        try:
            info = os.waitid(os.P_PID, self._proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return False
        return info is None

    def _reap(self) -> int:
        assert self._proc is not None
        # The leader may be a zombie: its group id is still ours, so clear out any stragglers.
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.returncode = self._proc.wait()
        return self.returncode

    def wait_exit(self, timeout: float) -> int:
        """Wait for the emulator to end by itself; returns its exit status."""
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() >= deadline:
                raise BootTimeout(f"{self.cfg.emulator} still running after {timeout:.0f} s")
            time.sleep(0.05)
        return self.returncode if self.returncode is not None else self._reap()

    def stop(self) -> None:
        """Kill the emulator's whole process group and remove the work dir.

        QEMU gets SIGTERM and up to 3 s to go; then (and for Bochs at once) the group gets SIGKILL.
        """
        proc = self._proc
        if proc is not None and self.returncode is None:
            # Bochs (debugger build) ignores SIGTERM: it only gets the SIGKILL in _reap().
            if self.alive() and self.cfg.emulator == "qemu":
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
                deadline = time.monotonic() + 3.0
                while self.alive() and time.monotonic() < deadline:
                    time.sleep(0.02)
            self._reap()
        if self._output_file is not None:
            self._output_file.close()
            self._output_file = None
        with _live_lock:
            _live.discard(self)
        if self.workdir and not self.cfg.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    # -- serial log --
    def raw_log(self) -> bytes:
        if not self.serial_path:
            return b""
        try:
            with open(self.serial_path, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def log(self) -> str:
        """The serial log so far, as clean text (no control sequences, no CRs)."""
        return clean_log(self.raw_log())

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def output_tail(self, lines: int = 20) -> str:
        """The tail of the emulator's own stdout/stderr (errors about options, Bochs panics)."""
        if not self.output_path:
            return ""
        try:
            with open(self.output_path, "rb") as f:
                text = clean_log(f.read())
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def cpu_seconds(self) -> Optional[float]:
        """The emulator process's user + system CPU time so far (from /proc), None when unknown:
        a stalled guest inside a busy emulator and a stopped emulator look alike on the network."""
        if self._proc is None:
            return None
        try:
            with open(f"/proc/{self._proc.pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None

    def emulator_log_tail(self, lines: int = 20) -> str:
        """The tail of Bochs' own log file (bochs.log: its panics, errors and infos); empty for
        QEMU, which has none."""
        if not self.workdir:
            return ""
        try:
            with open(os.path.join(self.workdir, "bochs.log"), "rb") as f:
                text = clean_log(f.read())
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_for(self, pattern: Union[str, Pattern[str]], timeout: float,
                 poll: float = 0.02, what: Optional[str] = None) -> tuple[re.Match, float]:
        """Wait until `pattern` (re.M) matches a complete line of the clean serial log.

        Only text up to the last newline is searched while the emulator runs, so `...$` never
        matches a line that is still arriving. Returns (match, seconds since launch). Raises
        BootTimeout, or EmulatorExited when the emulator ends first (after a last look at the
        whole log, since an emulator can lose the final newline when it quits).
        """
        regex = re.compile(pattern, re.M) if isinstance(pattern, str) else pattern
        what = what or f"/{regex.pattern}/"
        deadline = time.monotonic() + timeout
        while True:
            running = self.alive()
            text = self.log()
            if running:
                text = text[: text.rfind("\n") + 1]
            m = regex.search(text)
            if m:
                return m, time.monotonic() - (self.started_at or 0.0)
            if not running:
                status = self.returncode if self.returncode is not None else self._reap()
                raise EmulatorExited(f"{self.cfg.emulator} exited with status {status} before {what}")
            if time.monotonic() >= deadline:
                raise BootTimeout(f"no {what} within {timeout:g} s")
            time.sleep(poll)

    def stream(self, out: IO[str], stop_when_exited: bool = True, poll: float = 0.05) -> int:
        """Copy the clean serial log to `out` as it grows until the emulator exits."""
        pos = 0
        pending = b""
        while True:
            running = self.alive()
            raw = self.raw_log()
            if len(raw) < pos:
                pos = 0
            chunk, pos = raw[pos:], len(raw)
            if chunk:
                pending += chunk
                # Hold back an incomplete escape sequence or UTF-8 sequence at the end.
                cut = max(pending.rfind(b"\x1b"), 0) if b"\x1b" in pending[-8:] else len(pending)
                emit, pending = pending[:cut], pending[cut:]
                if emit:
                    out.write(clean_log(emit))
                    out.flush()
            if not running:
                if pending:
                    out.write(clean_log(pending))
                    out.flush()
                return self.returncode if self.returncode is not None else self._reap()
            time.sleep(poll)


# ---- command line -------------------------------------------------------------------------------
def _positive(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be positive")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # exit 2 with usage, like ./lantern
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: Optional[list[str]] = None) -> int:
    p = _Parser(prog="emulator.py", description="Boot a Lantern ISO under QEMU or Bochs.")
    p.add_argument("--emulator", default="auto", choices=("auto", "bochs", "qemu"))
    p.add_argument("--iso", required=True)
    p.add_argument("--cpus", type=_positive, default=1)
    p.add_argument("--mem", type=_positive, default=256, help="MiB")
    p.add_argument("--port", type=int, default=None,
                   help="host port on 127.0.0.1 forwarded to the guest's :80 (default: free port)")
    p.add_argument("--default-port", type=int, default=None,
                   help="use this port when it is free, otherwise pick a free one")
    p.add_argument("--nic", default="e1000", choices=NICS)
    p.add_argument("--cpu-model", default=None)
    p.add_argument("--kvm", action="store_true", help="QEMU with -accel kvm (needs usable VMX)")
    p.add_argument("--tcg-thread", default="multi", choices=("multi", "single"),
                   help="QEMU TCG: a thread per vCPU (multi) or one for all (single)")
    p.add_argument("--serial", default=None, help="also write the serial log to this file")
    p.add_argument("--keep-workdir", action="store_true")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--wait", metavar="REGEX", default=None,
                      help="exit 0 once REGEX appears in the serial log (1 on timeout/exit)")
    mode.add_argument("--wait-ready", action="store_true", help="--wait for the READY line")
    p.add_argument("--timeout", type=float, default=None, help="seconds for --wait/--wait-ready")
    p.add_argument("--quiet", action="store_true", help="do not stream the serial log")
    args = p.parse_args(argv)

    emulator, auto_kvm = pick_emulator(args.emulator)
    port = args.port
    if port is not None and port != 0 and not port_is_free(port):
        print(f"emulator.py: port 127.0.0.1:{port} is in use; pick another with --port", file=sys.stderr)
        return 2
    if port is None and args.default_port is not None:
        if port_is_free(args.default_port):
            port = args.default_port
        else:
            port = free_port()
            print(f"emulator.py: port {args.default_port} is in use, using {port}", file=sys.stderr)
    cfg = Config(emulator=emulator, iso=args.iso, cpus=args.cpus, mem=args.mem, port=port,
                 nic=args.nic, kvm=args.kvm or auto_kvm, cpu_model=args.cpu_model, tcg_thread=args.tcg_thread,
                 serial_log=args.serial, keep_workdir=args.keep_workdir)
    try:
        emu = Emulator(cfg)
    except EmulatorError as e:
        print(f"emulator.py: {e}", file=sys.stderr)
        return 2
    accel = " + KVM" if cfg.kvm else (" (TCG)" if emulator == "qemu" else "")
    model = cfg.cpu_model or ("host" if cfg.kvm else "max" if emulator == "qemu" else DEFAULT_BOCHS_CPU)
    try:
        with emu:
            print(f"Lantern: {emulator}{accel}, cpu={model}, cpus={cfg.cpus}, mem={cfg.mem} MiB,"
                  f" nic={cfg.nic}, iso={cfg.iso}", flush=True)
            if emu.console_url:
                print(f"Lantern console: {emu.console_url}", flush=True)
            if args.keep_workdir:
                print(f"Lantern work dir: {emu.workdir}", flush=True)
            if args.wait or args.wait_ready:
                regex = READY_RE if args.wait_ready else re.compile(args.wait, re.M)
                timeout = args.timeout or (30.0 if emulator == "qemu" else 120.0)
                try:
                    m, secs = emu.wait_for(regex, timeout)
                except EmulatorError as e:
                    print(f"emulator.py: {e}\n--- serial log tail ---\n{emu.log_tail()}",
                          file=sys.stderr)
                    return 1
                if not args.quiet:
                    sys.stdout.write(emu.log())
                print(f"emulator.py: matched '{m.group(0)}' after {secs * 1000:.0f} ms", flush=True)
                return 0
            if args.quiet:
                return emu.wait_exit(float("inf"))
            status = emu.stream(sys.stdout)
            print(f"\nLantern: {emulator} exited with status {status}", flush=True)
            if status != 0 and emulator == "qemu" and status != qemu_exit_status(0):
                print(f"--- {emulator} output ---\n{emu.output_tail()}", file=sys.stderr)
            return 0
    except KeyboardInterrupt:
        print("\nLantern: interrupted, emulator stopped", flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
