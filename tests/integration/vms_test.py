#!/usr/bin/env python3
"""The user's own VMs (--vm) under Lantern in Bochs (VMX, 4 CPUs), end to end. ctest: guests.bochs.vms.

    vms_test.py --emulator bochs --cpus 4 --iso build/lantern.iso --kernel build/lantern.elf \\
        --mbguest build/tests/guests/mbguest.elf --mbecho build/tests/guests/mbecho.elf

One ISO carries seven VMs as tagged module2 lines (guest/vm_spec.h; hand-built here, since
./lantern refuses some of them itself):
  vm0 mbguest  cpus=2 mem=16, a module, append "exit=7 hello": prints through the UART, shows its
               command line and the module, counts 2 CPUs through fw_cfg, sees #GP for RDMSR of
               an MSR that does not exist, starts its AP with INIT/SIPI/SIPI through the xAPIC
               (vlapic), exits through 0xf4 with 7
  vm1 mbecho   mem=16: echoes what POST /vms/1/console sends
  vm2..vm6     refused with their reasons while the rest boots: a broken multiboot header
               checksum, a truncated ELF, a zero-length module, cpus=0, mem=1
Checks: READY with 3 vCPUs (the demo guests are off with --vm; vm0's two vCPUs on cpu1 and cpu2,
vm1 on cpu3); the log and GET /api/v1/vms show
each refusal; vm0 is `exited` with exit_code 7 (status 15) while vm1 runs; vm0's guest RAM is freed
(frames come back); console input is echoed, 413/429/404/409 on bad input; vm1's registers and
exits are read although it polls with interrupts off; POST /vms/0/reset runs
mbguest again, AP included (resets 1, its lines twice, exited again); a reset of the running
mbecho starts it over and it echoes again; mbecho resets itself through the i8042 (0x64 <- 0xFE)
and through 0xCF9, each time restarting (resets 2, then 3) and echoing again; no panic.
"""
import json
import os
import re
import struct
import time

import harness
from api_test import Client

MB_MAGIC = 0x1BADB002


def tag(vm, role, **kv):
    words = [f"lantern.vm={vm}", f"role={role}"] + [f"{k}={v}" for k, v in kv.items()]
    return " ".join(words)


def broken_checksum(image: bytes) -> bytes:
    """The image with its multiboot header's checksum off by one (MB 3.1.3)."""
    for off in range(0, min(len(image), 8192) - 12, 4):
        magic, flags, checksum = struct.unpack_from("<III", image, off)
        if magic == MB_MAGIC and (magic + flags + checksum) & 0xffffffff == 0:
            out = bytearray(image)
            struct.pack_into("<I", out, off + 8, (checksum + 1) & 0xffffffff)
            return bytes(out)
    raise harness.Failure("no multiboot header in the test guest")


def truncated_elf(image: bytes) -> bytes:
    """The image cut just after its multiboot header: the ELF headers stay, segment data is gone."""
    for off in range(0, min(len(image), 8192) - 12, 4):
        if struct.unpack_from("<I", image, off)[0] == MB_MAGIC:
            return image[:off + 48]
    raise harness.Failure("no multiboot header in the test guest")


def wait_until(what, probe, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    raise harness.Failure(f"timed out waiting for {what} (last: {last})")


def console_text(c, vm):
    """Everything the VM's console still holds (the API answers at most 16 KiB at a time)."""
    text, since = "", 0
    while True:
        chunk = c.get(f"/api/v1/vms/{vm}/console?since={since}")
        if not chunk["text"]:
            return text
        text += chunk["text"]
        since = chunk["next"]


ENV_TXT = b"hello from a module\nsecond line\n"  # mbguest's module, env.txt


def file_writer(d):
    """put(name, data): writes a file into the directory `d` and returns its path."""
    def put(name, data):
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(data)
        return path
    return put


def check_refusals(c, emu, reasons, vm_count):
    """The VMs 0..vm_count-1 are listed; those in `reasons` (vm -> text of the reason) failed with
    it, in the log too, and refuse a reset (409)."""
    vms = {v["vm"]: v for v in c.get("/api/v1/vms")["vms"]}
    harness.check(sorted(vms) == list(range(vm_count)), f"VMs listed: {sorted(vms)}")
    for vm, needle in reasons.items():
        v = vms[vm]
        harness.check(v["kind"] == "user" and v["state"] == "failed" and needle in (v["failure"] or ""),
                      f"vm{vm}: expected failed with '{needle}': {v}")
        harness.check(re.search(rf"vm{vm} '{v['name']}': failed: .*{re.escape(needle)}", emu.log()),
                      f"vm{vm}: refusal not in the log")
        c.json("POST", f"/api/v1/vms/{vm}/reset", 409)


def check_mbguest_ran(c, vm, cpus, timeout):
    """mbguest (16 MiB, `cpus` CPUs, "exit=7 hello", env.txt) printed its lines and exited with 7;
    returns the VM's summary."""
    wait_until("mbguest's exit line", lambda: "mbguest: exit 7" in console_text(c, vm), timeout)
    out = console_text(c, vm)
    for needle in mbguest_lines(cpus=cpus, mem_mib=16):
        harness.check(needle in out, f"vm{vm} console lacks {needle!r}:\n{out}")
    v = wait_until(f"vm{vm} exited", lambda: (lambda v: v if v["state"] == "exited" else None)(
        c.get(f"/api/v1/vms/{vm}")), 30)
    harness.check(v["exit_code"] == 7 and v["exit_status"] == 15 and v["exit_cause"] == "debug_exit",
                  f"vm{vm} after exit: {v}")
    harness.check(v["kernel_format"] == "multiboot-elf32" and v["cmdline"] == "exit=7 hello" and
                  v["memory_bytes"] == 16 << 20 and v["vcpu_count"] == cpus, f"vm{vm}: {v}")
    harness.check(v["devices"]["uart_bytes_out"] == v["console_bytes"] > 0, f"vm{vm} devices: {v}")
    harness.check("mbguest: com2 scratch=255" in out and
                  {"port": 0x2ff, "reads": 1, "writes": 0} in v["devices"]["unclaimed_ports"] and
                  {"port": 0x2fe, "reads": 3, "writes": 0} in v["devices"]["unclaimed_ports"] and
                  v["devices"]["unclaimed_port_reads"] >= 1, f"vm{vm}: COM2 read not counted: {v['devices']}")
    return v


def check_echo(c, vm, timeout):
    """mbecho, running as `vm`, echoes what POST /vms/{vm}/console sends."""
    wait_until("mbecho ready", lambda: "mbecho: ready" in console_text(c, vm), timeout)
    doc, _ = c.json("POST", f"/api/v1/vms/{vm}/console", 202, body=b"ping-lantern\n",
                    headers={"Content-Type": "application/octet-stream"})
    harness.check(doc["accepted"] == 13, f"accepted: {doc}")
    wait_until("the echo", lambda: "ping-lantern" in console_text(c, vm), timeout)


def check_console_refusals(c, running_vm, exited_vm):
    """Console input: 413 over the UART's buffer, 404 for no VM, 409 for a VM that has exited, 429
    once the running VM's input buffer is full."""
    c.json("POST", f"/api/v1/vms/{running_vm}/console", 413, body=b"x" * 4097)
    c.json("POST", "/api/v1/vms/99/console", 404, body=b"x")
    c.json("POST", f"/api/v1/vms/{exited_vm}/console", 409, body=b"x")
    statuses = []
    for _ in range(6):  # 4096 bytes each: the guest cannot drain one between two posts
        status, _, raw = c.request("POST", f"/api/v1/vms/{running_vm}/console", b"a" * 4096,
                                   {"Content-Type": "application/octet-stream"})
        statuses.append(status)
        if status == 429:
            harness.check(json.loads(raw)["error"]["code"] == "console_input_full", f"429 body {raw!r}")
            break
    harness.check(statuses[0] == 202 and statuses[-1] == 429, f"filling the input buffer: {statuses}")


def mbguest_lines(cpus, mem_mib):
    """What mbguest prints with `cpus` CPUs, `mem_mib` MiB, the command line "exit=7 hello" and
    env.txt as its module."""
    return ("mbguest: hello from a multiboot guest", "mbguest: cmdline='exit=7 hello'",
            f"mbguest: mem_lower=640 mem_upper={(mem_mib - 1) * 1024}",
            "string='env.txt' first-line='hello from a module'", f"mbguest: fw_cfg cpus={cpus} ram_mib={mem_mib}",
            f"mbguest: aps started={cpus - 1} of {cpus - 1}",
            "mbguest: rdmsr 0x4c4e5400 raised #GP", "mbguest: rep outsb through COM1",
            "mbguest: tsc write kept, rdtscp aux=42", "mbguest: pat lo=459782 hi=459782 write kept",
            "mbguest: misc_enable=6145 limit-cpuid kept=1 reserved-bit #GP=1",
            "mbguest: rep insb down from 0x2fe: 0 255 255 255, edi at buf[0], ecx 0")


def check_mbecho_resets(c, emu, vm, timeout):
    """mbecho (running as `vm`, reset 0 times so far) restarts after POST /vms/{vm}/reset, then
    resets itself through the i8042 (0x64 <- 0xFE) and 0xCF9, echoing again after each."""
    def post(body):
        c.json("POST", f"/api/v1/vms/{vm}/console", 202, body=body,
               headers={"Content-Type": "application/octet-stream"})

    # A reset while the guest runs: mbecho starts over (its input buffer emptied) and echoes again.
    # 503 (the core's mailbox still busy) asks for a retry.
    wait_until(f"the reset of the running vm{vm} accepted",
               lambda: c.request("POST", f"/api/v1/vms/{vm}/reset")[0] == 202, 30)
    wait_until("mbecho ready again", lambda: console_text(c, vm).count("mbecho: ready") == 2, timeout)
    v = c.get(f"/api/v1/vms/{vm}")
    harness.check(v["state"] == "running" and v["resets"] == 1, f"vm{vm} after its reset: {v}")
    post(b"after-reset\n")
    wait_until("the echo after the reset", lambda: "after-reset" in console_text(c, vm), timeout)
    # Resets the guest asks for itself: the i8042's pulse-reset command, then 0xCF9.
    for n, (key, how) in enumerate(((b"\x12", "the i8042"), (b"\x10", "0xCF9")), start=2):
        post(key)
        wait_until(f"mbecho ready again after its reset through {how}",
                   lambda: console_text(c, vm).count("mbecho: ready") == n + 1, timeout)
        wait_until(f"vm{vm} running with {n} resets", lambda: (lambda v: v if v["state"] == "running"
                   and v["resets"] == n else None)(c.get(f"/api/v1/vms/{vm}")), 30)
        harness.check(f"mbecho: reset through {how}" in console_text(c, vm),
                      f"vm{vm}'s console has no reset line for {how}")
    harness.check("the guest asked for a reset through i8042 0xFE" in emu.log() and
                  "the guest asked for a reset through 0xCF9" in emu.log(),
                  "Lantern's log names neither guest reset")
    post(b"after-guest-reset\n")
    wait_until("the echo after the guest's resets", lambda: "after-guest-reset" in console_text(c, vm), timeout)


def test(args):
    mbguest = open(args.mbguest, "rb").read()
    with harness.temp_dir() as d:
        put = file_writer(d)
        env = put("env.txt", ENV_TXT)
        broken = put("broken.elf", broken_checksum(mbguest))
        truncated = put("truncated.elf", truncated_elf(mbguest))
        empty = put("empty.bin", b"")
        modules = (
            f"{args.mbguest}={tag(0, 'kernel', name='mbguest', cpus=2, mem=16, append='exit%3D7%20hello')}",
            f"{env}={tag(0, 'module', string='env.txt')}",
            f"{args.mbecho}={tag(1, 'kernel', name='mbecho', cpus=1, mem=16)}",
            f"{broken}={tag(2, 'kernel', name='badheader', mem=16)}",
            f"{truncated}={tag(3, 'kernel', name='truncated', mem=16)}",
            f"{put('mbguest4.elf', mbguest)}={tag(4, 'kernel', name='emptymodule', mem=16)}",
            f"{empty}={tag(4, 'module', string='empty')}",
            f"{put('mbguest5.elf', mbguest)}={tag(5, 'kernel', name='nocpus', cpus=0, mem=16)}",
            f"{put('mbguest6.elf', mbguest)}={tag(6, 'kernel', name='tinymem', mem=1)}",
        )
        iso = harness.remaster(args, d, "", modules)
        with harness.boot(args, iso=iso) as emu:
            ready, seconds = harness.wait_ready(emu, args)
            print(f"READY after {seconds:.1f} s: {ready.line}")
            harness.check(ready.vmx == args.cpus, f"VMX on {ready.vmx} of {args.cpus} cores")
            harness.check(ready.vcpus == 3, f"vcpus={ready.vcpus}: expected the user VMs' 2 + 1 only (demo off)")
            harness.check(emu.port, "no forwarded console port")
            c = Client(emu.port)

            # Refusals: logged and shown, with their reasons.
            reasons = {2: "checksum", 3: "truncated", 4: "empty (zero length)", 5: "cpus=0", 6: "below the 2 MiB"}
            check_refusals(c, emu, reasons, 7)

            # vm0: the guest's own output, then exited with its code while vm1 keeps running.
            v0 = check_mbguest_ran(c, 0, 2, args_timeout(args))
            harness.check(len(v0["vcpus"]) == 2 and all(v["state"] == "stopped" for v in v0["vcpus"]) and
                          v0["vcpus"][0]["cpu"] != v0["vcpus"][1]["cpu"], f"vm0 vCPUs: {v0['vcpus']}")
            harness.check("its memory is freed" in emu.log(), "no log line about vm0's memory")
            v1 = c.get("/api/v1/vms/1")
            harness.check(v1["state"] == "running" and v1["cpu"] != v0["cpu"], f"vm1: {v1}")

            # vm1: console input is echoed back; bad input is refused.
            check_echo(c, 1, 60)
            # Registers and exits of a guest that polls with interrupts off (no host interrupt
            # forces it out under Bochs): read on its core all the same.
            regs = c.get("/api/v1/vms/1/vcpus/0/regs")
            exits = c.get("/api/v1/vms/1/vcpus/0/exits")
            harness.check(regs["segments"]["cs"]["selector"] == "0x0008" and
                          any(e["name"] == "IO_INSTRUCTION" and e["count"] > 0 for e in exits["counts"]),
                          f"vm1 vCPU 0 snapshot: cs {regs['segments']['cs']}, exits {exits['counts'][:3]}")
            v1 = c.get("/api/v1/vms/1")
            harness.check(v1["devices"]["uart_bytes_in"] == 13 and v1["devices"]["uart_bytes_read"] == 13,
                          f"vm1 devices after the echo: {v1['devices']}")
            check_mbecho_resets(c, emu, 1, 60)
            check_console_refusals(c, 1, 0)

            # Reset vm0: it runs again from its boot modules, exits again, its RAM comes and goes.
            free_before = c.get("/api/v1/system")["memory"]["frames"]["free"]
            doc, _ = c.json("POST", "/api/v1/vms/0/reset", 202)
            v0 = wait_until("vm0 reset and exited again", lambda: (lambda v: v if v["resets"] == 1 and
                            v["state"] == "exited" else None)(c.get("/api/v1/vms/0")), 90)
            harness.check(v0["exit_code"] == 7, f"vm0 after the reset: {v0}")
            out0 = console_text(c, 0)
            harness.check(out0.count("mbguest: exit 7") == 2 and out0.count("mbguest: aps started=1 of 1") == 2,
                          f"mbguest did not run twice with its AP:\n{out0}")
            free_after = c.get("/api/v1/system")["memory"]["frames"]["free"]
            harness.check(abs(free_after - free_before) < 1024,
                          f"frames free before the reset {free_before}, after it ended again {free_after}")
            c.json("POST", "/api/v1/vms/99/reset", 404)
            harness.check(c.get("/api/v1/vms/1")["state"] == "running", "vm1 stopped running")
            harness.assert_no_panic(emu)


def args_timeout(args):
    return harness.timeout_of(args)


def make_parser():
    p = harness.parser(__doc__)
    p.add_argument("--mbguest", required=True)
    p.add_argument("--mbecho", required=True)
    return p


if __name__ == "__main__":
    harness.main(test, make_parser)
