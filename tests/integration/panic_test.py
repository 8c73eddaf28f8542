#!/usr/bin/env python3
"""Boot with `debug.crash=<fault>` and check the panic report the IDT prints.

The kernel faults on purpose before READY; the report must name the exception, carry the vector
and error code, a full register dump with control registers, and a frame-pointer backtrace whose
first address lies in the kernel image. READY must never appear.
"""
import re

import harness

FAULTS = {
    # fault word: (exception name in the report, vector, extra line that must appear)
    "page_fault": ("page fault (#PF)", 14, re.compile(r"cr2=0x000000000dead000")),
    "invalid_opcode": ("invalid opcode (#UD)", 6, None),
}
REGISTER_NAMES = ("rip", "rsp", "rflags", "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp",
                  "r8 ", "r9 ", "r10", "r11", "r12", "r13", "r14", "r15", "cr0", "cr3", "cr4")


def test(args):
    name, vector, extra = FAULTS[args.fault]
    with harness.temp_dir("lantern-panic-") as tmp:
        iso = harness.remaster(args, tmp, cmdline=f"debug.crash={args.fault}")
        with harness.boot(args, iso=iso) as emu:
            _, seconds = emu.wait_for(re.compile(r"backtrace:\n(?:.*\n)*?\(resolve with"),
                                      harness.timeout_of(args), what="the panic backtrace")
            log = emu.log()
            print(f"{args.emulator}: panic report after {seconds * 1000:.0f} ms", flush=True)
            harness.check(f"LANTERN PANIC {name}" in log, f"no 'LANTERN PANIC {name}' line")
            harness.check(re.search(rf"vector={vector} error_code=0x[0-9a-f]+", log) is not None,
                          f"no 'vector={vector} error_code=' line")
            for reg in REGISTER_NAMES:
                harness.check(re.search(rf"{re.escape(reg)}=0x[0-9a-f]{{16}}", log) is not None,
                              f"register {reg.strip()} missing from the dump")
            if extra is not None:
                harness.check(extra.search(log) is not None, f"'{extra.pattern}' missing")
            frames = re.findall(r"#0 0x(ffffffff8[0-9a-f]{7})", log)
            harness.check(len(frames) == 1, "the backtrace has no frame #0 inside the kernel image")
            harness.check("LANTERN READY" not in log, "READY printed although the boot panicked")


def make_parser():
    p = harness.parser(__doc__)
    p.add_argument("--fault", choices=sorted(FAULTS), default="page_fault")
    return p


if __name__ == "__main__":
    harness.main(test, make_parser)
