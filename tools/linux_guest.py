#!/usr/bin/env python3
"""A stock Linux guest for Lantern: Debian bookworm's kernel and a busybox-static initramfs.

Nothing of it is committed: the pinned .debs are downloaded with a PRIVATE apt configuration
(the same mechanism as ./lantern deps --sources; /etc/apt is never touched) and everything lives
under build/_deps/linux-guest/:

    apt/                       the private apt configuration, lists and cache
    debs/<package>.deb         the pinned packages, checked against PINS (size and SHA256)
    vmlinuz-<release>          boot/vmlinuz-<release> from the kernel package (a bzImage)
    busybox                    bin/busybox from busybox-static
    initramfs.cpio.gz          built here (cpio "newc", gzip), deterministic: same input, same bytes

Commands (./lantern linux-guest runs `all`):
    linux_guest.py fetch       download (only when missing or wrong) and extract; idempotent
    linux_guest.py initramfs   build initramfs.cpio.gz from the extracted busybox
    linux_guest.py paths       print `kernel=PATH` and `initrd=PATH`
    linux_guest.py all         fetch + initramfs + paths
    linux_guest.py candidates  list the linux-image-6.1.0-*-amd64-unsigned versions the archive
                               serves now (to move the pin when the archive drops the pinned one)
Options: --dir DIR (default build/_deps/linux-guest under the repository).

The guest's /init mounts proc, sysfs and devtmpfs, prints INIT_MARKER with the CPU count, then
runs an interactive busybox shell with ttyS0 as its controlling terminal (job control works),
prompt PROMPT, restarted whenever it exits. Python 3 standard library only.
"""
from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import io
import os
import shutil
import stat
import subprocess
import sys
import tarfile
from typing import Iterable, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
DEFAULT_DIR = os.path.join(REPO_ROOT, "build", "_deps", "linux-guest")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


# ---- the pins: the one place the guest's versions are written down -------------------------------
@dataclasses.dataclass(frozen=True)
class Pin:
    package: str
    version: str
    size: int       # bytes of the .deb, from the signed Packages index of bookworm (main)
    sha256: str     # the same index's SHA256, equal to what the first download hashed to
    member: str     # the one file taken out of the .deb
    output: str     # its name under the guest directory


# Bookworm's point-release kernel (suite bookworm, not -security: the point release's ABI stays in
# the archive longest). 6.1.0-50 = upstream 6.1.176. When the archive stops serving it, run
# `tools/linux_guest.py candidates`, pick a bookworm-main one and update this block.
KERNEL_RELEASE = "6.1.0-50-amd64"
PINS = (
    Pin("linux-image-6.1.0-50-amd64-unsigned", "6.1.176-1", 70302080,
        "439422e41d2dbb840b60b81e3bf5e5955bfa56b7a8c268aec83c9ff882d421e6",
        f"./boot/vmlinuz-{KERNEL_RELEASE}", f"vmlinuz-{KERNEL_RELEASE}"),
    Pin("busybox-static", "1:1.35.0-4+deb12u1+b1", 928188,
        "3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744",
        "./bin/busybox", "busybox"),
)
KERNEL_PIN, BUSYBOX_PIN = PINS
INITRAMFS = "initramfs.cpio.gz"

# What the guest prints: tests and the lab guide wait for these.
INIT_MARKER = "lantern-linux: init up"
PROMPT = "lantern-linux# "
# Busybox applets linked into /bin (the shell needs no more; `busybox X` reaches the rest).
APPLETS = ("sh", "ash", "echo", "cat", "ls", "mount", "umount", "mkdir", "reboot", "poweroff",
           "halt", "nproc", "setsid", "cttyhack", "uname", "dmesg", "sleep", "ps", "kill", "grep",
           "stty", "tty", "free", "uptime", "true", "false", "test", "[", "printf", "head", "tail",
           "wc", "date", "hostname", "ln", "rm", "cp", "mv", "vi", "less", "env", "mdev", "id")

# /init: a busybox ash script. proc/sys/devtmpfs first (devtmpfs hides the static /dev nodes
# once the kernel's own are there), the marker line, then the shell on the console (cttyhack
# opens the kernel's active console, ttyS0 with console=ttyS0, and makes it the controlling
# terminal of the new session), restarted after it exits.
INIT_SCRIPT = f"""#!/bin/sh
export PATH=/bin HOME=/root TERM=vt100
export PS1='{PROMPT}'
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "{INIT_MARKER} cpus=$(nproc) kernel=$(uname -r)"
cd /root
while true; do
  setsid cttyhack sh
  echo "lantern-linux: the shell exited; starting another"
  sleep 1
done
"""


# ---- cpio "newc" (the format the kernel unpacks: Documentation/driver-api/early-userspace) ------
NEWC_MAGIC = b"070701"
TRAILER = "TRAILER!!!"


@dataclasses.dataclass
class Entry:
    name: str                 # path inside the archive, no leading slash ("bin/sh")
    mode: int                 # file type | permission bits (stat.S_IFREG | 0o755, ...)
    data: bytes = b""         # file contents, or the symlink's target
    rdev: tuple = (0, 0)      # (major, minor) of a device node
    uid: int = 0
    gid: int = 0


def _pad4(n: int) -> int:
    return (4 - n % 4) % 4


def newc_header(ino: int, e: Entry, namesize: int, mtime: int) -> bytes:
    nlink = 2 if stat.S_ISDIR(e.mode) else 1
    fields = (ino, e.mode, e.uid, e.gid, nlink, mtime, len(e.data), 0, 0, e.rdev[0], e.rdev[1],
              namesize, 0)
    for v in fields:
        if not 0 <= v <= 0xFFFFFFFF:
            raise ValueError(f"cpio field {v} of {e.name!r} does not fit 8 hex digits")
    return NEWC_MAGIC + b"".join(b"%08X" % v for v in fields)


def write_newc(entries: Iterable[Entry], mtime: int = 0) -> bytes:
    """The archive: each entry's 110-byte header, its NUL-terminated name padded so the data
    starts on a 4-byte boundary, the data padded to 4 bytes; then the TRAILER!!! entry.
    Inodes are numbered from 1 in order; every entry has the same mtime (deterministic)."""
    out = io.BytesIO()
    seen = set()
    entries = list(entries) + [Entry(TRAILER, 0)]
    for ino, e in enumerate(entries, start=1):
        if e.name.startswith("/") or not e.name or e.name in seen:
            raise ValueError(f"bad or repeated cpio name {e.name!r}")
        seen.add(e.name)
        if e.data and not (stat.S_ISREG(e.mode) or stat.S_ISLNK(e.mode)):
            raise ValueError(f"{e.name!r}: only regular files and symlinks carry data")
        name = e.name.encode("utf-8") + b"\0"
        is_trailer = e.name == TRAILER
        header = newc_header(0 if is_trailer else ino, e, len(name), 0 if is_trailer else mtime)
        out.write(header + name + b"\0" * _pad4(len(header) + len(name)))
        out.write(e.data + b"\0" * _pad4(len(e.data)))
    return out.getvalue()


def read_newc(blob: bytes) -> List[dict]:
    """Parse a newc archive back (for the tests and for checking what was built). Each entry is
    a dict of the header fields plus name and data; stops at TRAILER!!! (included)."""
    names = ("ino", "mode", "uid", "gid", "nlink", "mtime", "filesize", "devmajor", "devminor",
             "rdevmajor", "rdevminor", "namesize", "check")
    pos, out = 0, []
    while True:
        if blob[pos:pos + 6] != NEWC_MAGIC:
            raise ValueError(f"no newc magic at offset {pos}")
        h = {k: int(blob[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i, k in enumerate(names)}
        h["offset"] = pos
        pos += 110
        raw = blob[pos:pos + h["namesize"]]
        if not raw.endswith(b"\0"):
            raise ValueError(f"name at {pos} is not NUL-terminated")
        h["name"] = raw[:-1].decode("utf-8")
        pos += h["namesize"]
        h["name_padding"] = blob[pos:pos + _pad4(pos)]
        pos += _pad4(pos)
        h["data"] = blob[pos:pos + h["filesize"]]
        pos += h["filesize"]
        h["data_padding"] = blob[pos:pos + _pad4(pos)]
        pos += _pad4(pos)
        out.append(h)
        if h["name"] == TRAILER:
            h["end"] = pos
            return out


def initramfs_entries(busybox: bytes, init_script: str = INIT_SCRIPT,
                      applets: Iterable[str] = APPLETS) -> List[Entry]:
    """The guest's root file system: directories before their contents."""
    d = stat.S_IFDIR
    entries = [Entry(".", d | 0o755)]
    for name, perm in (("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("proc", 0o555),
                       ("root", 0o700), ("sys", 0o555), ("tmp", 0o1777)):
        entries.append(Entry(name, d | perm))
    entries += [Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),
                Entry("dev/ttyS0", stat.S_IFCHR | 0o660, rdev=(4, 64)),
                Entry("dev/null", stat.S_IFCHR | 0o666, rdev=(1, 3)),
                Entry("bin/busybox", stat.S_IFREG | 0o755, busybox)]
    for a in sorted(set(applets)):
        entries.append(Entry(f"bin/{a}", stat.S_IFLNK | 0o777, b"busybox"))
    entries += [Entry("etc/hostname", stat.S_IFREG | 0o644, b"lantern-linux\n"),
                Entry("init", stat.S_IFREG | 0o755, init_script.encode("utf-8"))]
    return entries


def gzip_deterministic(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as g:
        g.write(data)
    return buf.getvalue()


# ---- fetching the pinned packages ---------------------------------------------------------------
class FetchError(RuntimeError):
    pass


def deb_name(pin: Pin) -> str:
    return f"{pin.package}.deb"


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verified(path: str, pin: Pin) -> bool:
    return (os.path.isfile(path) and os.path.getsize(path) == pin.size and
            sha256_of(path) == pin.sha256)


def archive_lines(etc_apt: str = "/etc/apt") -> List[str]:
    """`deb` lines for bookworm, -updates and -security, with the mirrors this machine already
    uses (tools/apt_sources.py reads them) and Debian's own hosts where it names none."""
    sys.path.insert(0, HERE)
    import apt_sources  # noqa: E402  (tools/apt_sources.py)
    codename = apt_sources.read_codename() or "bookworm"
    wanted = {codename: None, f"{codename}-updates": None, f"{codename}-security": None}
    for e in apt_sources.system_entries(etc_apt):
        if not e.enabled or "deb" not in e.types or "main" not in e.components or not e.uris:
            continue
        for suite in e.suites:
            if suite in wanted and wanted[suite] is None:
                wanted[suite] = (e.uris[0].rstrip("/"), e.signed_by or KEYRING)
    defaults = {codename: "http://deb.debian.org/debian",
                f"{codename}-updates": "http://deb.debian.org/debian",
                f"{codename}-security": "http://security.debian.org/debian-security"}
    lines = []
    for suite, found in wanted.items():
        uri, keyring = found or (defaults[suite], KEYRING)
        lines.append(f"deb [signed-by={keyring}] {uri} {suite} main")
    return lines


def apt_options(apt_dir: str) -> List[str]:
    return ["-o", f"Dir::Etc::SourceList={apt_dir}/sources.list",
            "-o", f"Dir::Etc::SourceParts={apt_dir}/parts",
            "-o", f"Dir::State::Lists={apt_dir}/lists",
            "-o", f"Dir::Cache={apt_dir}/cache",
            "-o", "APT::Sandbox::User=root"]


def apt_update(guest_dir: str) -> List[str]:
    apt_dir = os.path.join(guest_dir, "apt")
    for sub in ("lists/partial", "parts", "cache/archives/partial"):
        os.makedirs(os.path.join(apt_dir, sub), exist_ok=True)
    with open(os.path.join(apt_dir, "sources.list"), "w", encoding="utf-8") as f:
        f.write("\n".join(archive_lines()) + "\n")
    opts = apt_options(apt_dir)
    r = subprocess.run(["apt-get", *opts, "-qq", "update"])
    if r.returncode != 0:
        raise FetchError("apt-get update with the private list (build/_deps/linux-guest/apt) failed")
    return opts


def download(guest_dir: str, pins: Iterable[Pin]) -> None:
    """`apt-get download` each pin into debs/ (apt checks it against the signed index), then
    check size and SHA256 against the pin itself."""
    pins = list(pins)
    opts = apt_update(guest_dir)
    debs = os.path.join(guest_dir, "debs")
    work = os.path.join(debs, "partial")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    specs = [f"{p.package}={p.version}" for p in pins]
    print(f"linux_guest: apt-get download {' '.join(specs)}", flush=True)
    r = subprocess.run(["apt-get", *opts, "-q", "download", *specs], cwd=work)
    if r.returncode != 0:
        raise FetchError(f"apt-get download {' '.join(specs)} failed: if the archive no longer serves "
                         "a pinned version, run `tools/linux_guest.py candidates` and move the pin")
    for p in pins:
        got = [n for n in os.listdir(work) if n.startswith(p.package + "_") and n.endswith(".deb")]
        if len(got) != 1:
            raise FetchError(f"apt-get download left {got} for {p.package}")
        path = os.path.join(work, got[0])
        if not verified(path, p):
            raise FetchError(f"{got[0]}: size {os.path.getsize(path)} / SHA256 {sha256_of(path)} "
                             f"differ from the pin ({p.size} / {p.sha256})")
        os.replace(path, os.path.join(debs, deb_name(p)))
    shutil.rmtree(work, ignore_errors=True)


def extract_member(deb: str, member: str, dest: str) -> None:
    """One file out of a .deb's data archive (`dpkg-deb --fsys-tarfile`), written atomically."""
    p = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
    found = False
    with tarfile.open(fileobj=p.stdout, mode="r|") as tar:
        for info in tar:
            if info.name == member and info.isfile():
                src = tar.extractfile(info)
                tmp = dest + ".tmp"
                with open(tmp, "wb") as f:
                    shutil.copyfileobj(src, f)
                os.chmod(tmp, 0o755 if info.mode & 0o111 else 0o644)
                os.replace(tmp, dest)
                found = True
                break
    p.stdout.close()
    p.kill()  # stop reading the rest of a 400 MB data archive
    p.wait()
    if not found:
        raise FetchError(f"{deb} has no {member}")


def _read(path: str, mode: str):
    with open(path, mode) as f:
        return f.read()


def fetch(guest_dir: str = DEFAULT_DIR) -> None:
    os.makedirs(os.path.join(guest_dir, "debs"), exist_ok=True)
    missing = [p for p in PINS if not verified(os.path.join(guest_dir, "debs", deb_name(p)), p)]
    if missing:
        download(guest_dir, missing)
    for p in PINS:
        deb = os.path.join(guest_dir, "debs", deb_name(p))
        out = os.path.join(guest_dir, p.output)
        stamp = out + ".from"
        source = f"{p.package}={p.version} {p.sha256}\n"
        if os.path.isfile(out) and os.path.isfile(stamp) and _read(stamp, "r") == source:
            continue
        extract_member(deb, p.member, out)
        with open(stamp, "w") as f:
            f.write(source)
    print(f"linux_guest: {KERNEL_PIN.package}={KERNEL_PIN.version} and "
          f"{BUSYBOX_PIN.package}={BUSYBOX_PIN.version} in {guest_dir}")


def build_initramfs(guest_dir: str = DEFAULT_DIR) -> str:
    busybox = os.path.join(guest_dir, BUSYBOX_PIN.output)
    if not os.path.isfile(busybox):
        raise FetchError(f"{busybox} is missing: run `tools/linux_guest.py fetch` first")
    with open(busybox, "rb") as f:
        blob = gzip_deterministic(write_newc(initramfs_entries(f.read())))
    out = os.path.join(guest_dir, INITRAMFS)
    if not (os.path.isfile(out) and _read(out, "rb") == blob):
        with open(out + ".tmp", "wb") as f:
            f.write(blob)
        os.replace(out + ".tmp", out)
    return out


def paths(guest_dir: str = DEFAULT_DIR) -> tuple:
    return os.path.join(guest_dir, KERNEL_PIN.output), os.path.join(guest_dir, INITRAMFS)


def ensure(guest_dir: str = DEFAULT_DIR) -> tuple:
    """fetch + initramfs; returns (kernel, initrd). For the tests."""
    fetch(guest_dir)
    build_initramfs(guest_dir)
    return paths(guest_dir)


def candidates(guest_dir: str = DEFAULT_DIR) -> List[str]:
    opts = apt_update(guest_dir)
    names = subprocess.run(["apt-cache", *opts, "pkgnames", "linux-image-6.1.0-"], check=True,
                           stdout=subprocess.PIPE, text=True).stdout.split()
    names = sorted(n for n in names if n.endswith("-amd64-unsigned") and n.count("-") == 5)
    out = []
    for n in names:
        policy = subprocess.run(["apt-cache", *opts, "policy", n], stdout=subprocess.PIPE,
                                text=True).stdout
        lines = policy.splitlines()
        for i, line in enumerate(lines):
            words = line.split()
            if len(words) == 2 and words[1] == "500" and i + 1 < len(lines):
                out.append(f"{n}={words[0]}  ({' '.join(lines[i + 1].split()[1:3])})")
    return out


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="linux_guest.py", description=__doc__.split("\n")[0])
    p.add_argument("command", choices=("fetch", "initramfs", "paths", "all", "candidates"))
    p.add_argument("--dir", default=DEFAULT_DIR, help="default: build/_deps/linux-guest")
    a = p.parse_args(argv)
    try:
        if a.command in ("fetch", "all"):
            fetch(a.dir)
        if a.command in ("initramfs", "all"):
            out = build_initramfs(a.dir)
            print(f"linux_guest: {out} ({os.path.getsize(out)} bytes)")
        if a.command in ("paths", "all"):
            kernel, initrd = paths(a.dir)
            print(f"kernel={kernel}")
            print(f"initrd={initrd}")
        if a.command == "candidates":
            print("\n".join(candidates(a.dir)))
    except (FetchError, subprocess.CalledProcessError, OSError) as e:
        print(f"linux_guest: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
