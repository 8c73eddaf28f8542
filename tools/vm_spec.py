#!/usr/bin/env python3
"""VM specs (`--vm SPEC`) for ./lantern run and ./lantern iso: parse, check, and turn into the
tagged GRUB `module2` lines the kernel reads (guest/vm_spec.h parses them; docs/lab-guide.md
documents the syntax for hand-written grub.cfg files).

SPEC is comma-separated key=value pairs; append= must come last and takes the rest verbatim:
    kernel=PATH (required)  initrd=PATH  module=PATH (repeatable)  cpus=N (default 1)
    mem=MiB (default 128)   name=NAME (default: the kernel's file name)  append=ARGS

Module strings written for VM number I (each value percent-encoded, see encode()):
    lantern.vm=I role=kernel name=NAME cpus=N mem=MiB append=ARGS
    lantern.vm=I role=initrd
    lantern.vm=I role=module string=FILENAME
CLI (used by ./lantern; errors print one line and exit 2):
    vm_spec.py check   [--cpus N] [--mem MiB] --vm SPEC...
    vm_spec.py modules --stage DIR [--cpus N] [--mem MiB] --vm SPEC...
        links each file into DIR as vm<I>-kernel, vm<I>-initrd, vm<I>-module<J> and prints one
        `PATH=ARGS` line per module, the form iso/make_iso.sh --module takes.
"""
import argparse
import dataclasses
import os
import re
import sys
from typing import List, Optional

KEYS = ("kernel", "initrd", "module", "cpus", "mem", "name", "append")
DEFAULT_CPUS = 1
DEFAULT_MEM_MIB = 128
# Guest RAM rule (guest/loader/memory_map.h): at least 2 MiB (low memory, the 640 KiB-1 MiB hole
# and room for a kernel), at most 3072 MiB (RAM stays below the 32-bit APIC/IOAPIC windows).
MIN_MEM_MIB = 2
MAX_MEM_MIB = 3072
MAX_CPUS = 64
MAX_MODULES = 16      # multiboot modules per VM (guest/loader/multiboot1.h kMaxModules)
MAX_TOTAL_MODULES = 48  # all VMs' files together: the kernel's multiboot2 parser takes 64
                        # boot modules (kernel/boot/multiboot2.h), the build's own guests use the rest
MAX_APPEND = 4096
# The emulator's RAM must hold every VM plus Lantern itself (kernel, heap, lwIP, page tables,
# the VMs' EPT tables): `sum(mem) + HYPERVISOR_RESERVE_MIB <= --mem`.
HYPERVISOR_RESERVE_MIB = 64
NAME_RE = re.compile(r"^[A-Za-z0-9._+-]{1,32}$")
# Characters that pass through GRUB's parser and grub_create_loader_cmdline() unchanged in every
# GRUB 2 version: no blanks, quotes, backslashes, $ ; & | < > { } # * ? [ ] ~ or %.
SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._,:/+=@-")


class VmSpecError(ValueError):
    """A spec that ./lantern refuses (exit status 2)."""


@dataclasses.dataclass
class VmSpec:
    kernel: str
    initrd: Optional[str] = None
    modules: List[str] = dataclasses.field(default_factory=list)
    cpus: int = DEFAULT_CPUS
    mem: int = DEFAULT_MEM_MIB
    name: Optional[str] = None
    append: str = ""


def encode(value: str) -> str:
    """Percent-encode every byte of `value` (UTF-8) outside SAFE, as %XX (upper-case hex)."""
    out = []
    for b in value.encode("utf-8"):
        c = chr(b)
        out.append(c if c in SAFE else "%%%02X" % b)
    return "".join(out)


def decode(value: str) -> str:
    """The inverse of encode(); ValueError on a malformed escape."""
    raw = bytearray()
    i = 0
    while i < len(value):
        if value[i] == "%":
            h = value[i + 1:i + 3]
            if len(h) != 2 or not all(c in "0123456789abcdefABCDEF" for c in h):
                raise ValueError(f"bad percent escape at {i} in {value!r}")
            raw.append(int(h, 16))
            i += 3
        else:
            raw += value[i].encode("utf-8")
            i += 1
    return raw.decode("utf-8")


def _number(key: str, text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,10}", text):
        raise VmSpecError(f"{key}={text!r}: not a whole number")
    return int(text)


def _readable(what: str, path: str) -> str:
    if not path:
        raise VmSpecError(f"{what}= needs a file path")
    if not os.path.isfile(path):
        raise VmSpecError(f"{what} file '{path}' does not exist or is not a regular file")
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as e:
        raise VmSpecError(f"cannot read {what} file '{path}': {e.strerror}") from e
    return path


def default_name(kernel: str) -> str:
    """The kernel's file name, with characters outside [A-Za-z0-9._+-] turned into '_'."""
    base = re.sub(r"[^A-Za-z0-9._+-]", "_", os.path.basename(kernel))[:32]
    return base or "vm"


def parse(text: str, check_files: bool = True) -> VmSpec:
    """One --vm SPEC. Raises VmSpecError with a message naming the problem."""
    fields = {}
    modules: List[str] = []
    append = None
    pos = 0
    while pos <= len(text):
        if text.startswith("append=", pos):
            append = text[pos + len("append="):]
            break
        comma = text.find(",", pos)
        item = text[pos:] if comma < 0 else text[pos:comma]
        if not item:
            raise VmSpecError(f"empty item in VM spec '{text}' (two commas, or a comma at an end)")
        key, eq, value = item.partition("=")
        if not eq:
            raise VmSpecError(f"'{item}' in VM spec '{text}' is not key=value")
        if key not in KEYS:
            raise VmSpecError(f"unknown key '{key}' in VM spec '{text}' (keys: {', '.join(KEYS)})")
        if key == "module":
            modules.append(value)
        elif key in fields:
            raise VmSpecError(f"key '{key}' given twice in VM spec '{text}'")
        else:
            fields[key] = value
        if comma < 0:
            break
        pos = comma + 1
    if "kernel" not in fields:
        raise VmSpecError(f"VM spec '{text}' has no kernel= (it is required)")
    spec = VmSpec(kernel=fields["kernel"], initrd=fields.get("initrd"), modules=modules)
    if "cpus" in fields:
        spec.cpus = _number("cpus", fields["cpus"])
        if spec.cpus == 0:
            raise VmSpecError("cpus=0: a VM needs at least one vCPU")
        if spec.cpus > MAX_CPUS:
            raise VmSpecError(f"cpus={spec.cpus}: at most {MAX_CPUS} vCPUs per VM")
    if "mem" in fields:
        spec.mem = _number("mem", fields["mem"])
        if not MIN_MEM_MIB <= spec.mem <= MAX_MEM_MIB:
            raise VmSpecError(f"mem={spec.mem}: guest RAM must be {MIN_MEM_MIB} to {MAX_MEM_MIB} MiB")
    if "name" in fields:
        if not NAME_RE.match(fields["name"]):
            raise VmSpecError(f"name={fields['name']!r}: 1 to 32 characters of A-Z a-z 0-9 . _ + -")
        spec.name = fields["name"]
    else:
        spec.name = default_name(spec.kernel)
    if append is not None:
        if "\0" in append:
            raise VmSpecError("append= holds a NUL byte")
        if len(append.encode("utf-8")) > MAX_APPEND:
            raise VmSpecError(f"append= is longer than {MAX_APPEND} bytes")
        spec.append = append
    if spec.initrd is not None and spec.modules:
        raise VmSpecError("initrd= (Linux) and module= (multiboot) do not mix in one VM")
    if len(spec.modules) > MAX_MODULES:
        raise VmSpecError(f"more than {MAX_MODULES} module= files in one VM")
    if check_files:
        _readable("kernel", spec.kernel)
        if spec.initrd is not None:
            _readable("initrd", spec.initrd)
        for m in spec.modules:
            _readable("module", m)
    return spec


def check_fits(specs: List[VmSpec], cpus: Optional[int], mem: Optional[int]) -> None:
    """Refuse VMs that cannot run on `cpus` emulated CPUs with `mem` MiB (None: not checked)."""
    names = set()
    for s in specs:
        if s.name in names:
            raise VmSpecError(f"two VMs are named '{s.name}': give one a name=")
        names.add(s.name)
        if cpus is not None and s.cpus > cpus:
            raise VmSpecError(f"VM '{s.name}' asks for cpus={s.cpus}, more than the {cpus} emulated CPU(s)"
                              f" (--cpus): each vCPU needs a physical CPU of its own")
    total = sum(1 + (s.initrd is not None) + len(s.modules) for s in specs)
    if total > MAX_TOTAL_MODULES:
        raise VmSpecError(f"the VMs have {total} files (kernels, initrds, modules); at most {MAX_TOTAL_MODULES}")
    if mem is not None:
        need = sum(s.mem for s in specs) + HYPERVISOR_RESERVE_MIB
        if need > mem:
            raise VmSpecError(f"the VMs need {need - HYPERVISOR_RESERVE_MIB} MiB plus {HYPERVISOR_RESERVE_MIB} MiB"
                              f" for Lantern = {need} MiB, more than the emulator's --mem {mem}")
    # The kernel runs each vCPU on an application processor; CPU 0 keeps the network and console.
    vcpus = sum(s.cpus for s in specs)
    if cpus is not None and vcpus + 1 > cpus:
        raise VmSpecError(f"the VMs have {vcpus} vCPU(s) in all and each needs an emulated CPU of its own"
                          f" besides CPU 0, which runs Lantern's console: give --cpus {vcpus + 1} or more"
                          f" (not {cpus})")


def module_strings(index: int, spec: VmSpec) -> List[tuple]:
    """(role, file, module string) for each GRUB module of VM number `index`, in order."""
    tag = f"lantern.vm={index}"
    out = [("kernel", spec.kernel,
            f"{tag} role=kernel name={encode(spec.name)} cpus={spec.cpus} mem={spec.mem}"
            f" append={encode(spec.append)}")]
    if spec.initrd is not None:
        out.append(("initrd", spec.initrd, f"{tag} role=initrd"))
    for j, m in enumerate(spec.modules):
        out.append((f"module{j}", m, f"{tag} role=module string={encode(os.path.basename(m))}"))
    return out


def stage_modules(specs: List[VmSpec], stage: str) -> List[str]:
    """Link every file into `stage` under a safe unique name; return `PATH=ARGS` lines."""
    os.makedirs(stage, exist_ok=True)
    lines = []
    for i, spec in enumerate(specs):
        for role, path, args in module_strings(i, spec):
            link = os.path.join(stage, f"vm{i}-{role}")
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(os.path.abspath(path), link)
            lines.append(f"{link}={args}")
    return lines


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(prog="vm_spec.py")
    p.add_argument("command", choices=("check", "modules"))
    p.add_argument("--vm", action="append", default=[], required=True)
    p.add_argument("--cpus", type=int)
    p.add_argument("--mem", type=int)
    p.add_argument("--stage")
    a = p.parse_args(argv)
    try:
        specs = [parse(text) for text in a.vm]
        check_fits(specs, a.cpus, a.mem)
    except VmSpecError as e:
        print(f"lantern: --vm: {e}", file=sys.stderr)
        return 2
    if a.command == "modules":
        if not a.stage or "=" in a.stage:
            print("lantern: vm_spec.py modules needs --stage DIR (without '=')", file=sys.stderr)
            return 2
        for line in stage_modules(specs, a.stage):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
