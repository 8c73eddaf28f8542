#!/usr/bin/env python3
"""The user's own VMs (--vm) on the SVM backend under QEMU TCG -cpu max, end to end.
ctest: guests.qemu.svm.vms (and guests.bochs.ryzen.svm.vms: Bochs ryzen, with NRIP).

    svm_vms_test.py --emulator qemu --cpus 4 --tcg-thread single --iso build/lantern.iso \\
        --kernel build/lantern.elf --mbguest build/tests/guests/mbguest.elf --mbecho build/tests/guests/mbecho.elf

One ISO carries five VMs as tagged module2 lines (guest/vm_spec.h):
  vm0 mbguest  cpus=2 mem=16, a module, append "exit=7 hello": its UART lines, command line,
               module, fw_cfg, #GP for an MSR that does not exist, IA32_MISC_ENABLE, PAT, TSC and
               TSC_AUX, REP OUTSB / REP INSB, its AP started with INIT/SIPI/SIPI through the
               xAPIC page (NPF, the vlapic); exits through 0xf4 with 7
  vm1 mbecho   mem=16: echoes what POST /vms/1/console sends; resets itself through the i8042
               and 0xCF9
  vm2          refused: a broken multiboot header checksum
  vm3          refused: a truncated ELF
  vm4          refused: mem=1
Checks: READY with hv=svm and the 3 user vCPUs (the demo guests are off with --vm); every refusal
in the log and in GET /api/v1/vms; vm0 `exited` with code 7 (status 15) and its lines; /vcpus
lists both SVM vCPUs, and vm1's /regs and /vmcb answer; console input is echoed, 413/404/409 on
bad input (and 429 once its buffer is full); POST /vms/1/reset and the guest's own resets restart mbecho, which echoes again;
POST /vms/0/reset runs mbguest again to its exit, AP included; no panic.
More than one CPU under QEMU 7.2's multi-threaded TCG hits its SVM race on CPU 0, hence
--tcg-thread single.
"""
import harness
from api_test import Client
from vms_test import (ENV_TXT, broken_checksum, check_console_refusals, check_echo, check_mbecho_resets,
                      check_mbguest_ran, check_refusals, console_text, file_writer, tag, truncated_elf, wait_until)


def test(args):
    mbguest = open(args.mbguest, "rb").read()
    with harness.temp_dir() as d:
        put = file_writer(d)
        env = put("env.txt", ENV_TXT)
        modules = (
            f"{args.mbguest}={tag(0, 'kernel', name='mbguest', cpus=2, mem=16, append='exit%3D7%20hello')}",
            f"{env}={tag(0, 'module', string='env.txt')}",
            f"{args.mbecho}={tag(1, 'kernel', name='mbecho', mem=16)}",
            f"{put('broken.elf', broken_checksum(mbguest))}={tag(2, 'kernel', name='badheader', mem=16)}",
            f"{put('truncated.elf', truncated_elf(mbguest))}={tag(3, 'kernel', name='truncated', mem=16)}",
            f"{put('mbguest4.elf', mbguest)}={tag(4, 'kernel', name='tinymem', mem=1)}",
        )
        iso = harness.remaster(args, d, "", modules)
        with harness.boot(args, iso=iso) as emu:
            ready, seconds = harness.wait_ready(emu, args)
            print(f"READY after {seconds:.1f} s: {ready.line}")
            harness.check(" hv=svm " in ready.line, f"expected the SVM backend: {ready.line}")
            harness.check(ready.vcpus == 3, f"vcpus={ready.vcpus}: expected the user VMs' 2 + 1 only (demo off)")
            harness.check(emu.port, "no forwarded console port")
            c = Client(emu.port)
            check_refusals(c, emu, {2: "checksum", 3: "truncated", 4: "below the 2 MiB"}, 5)

            # vm0: the guest's own output (MSRs, TSC, string I/O, its AP started with INIT/SIPI/SIPI
            # through the xAPIC page), then exited with its code.
            v0 = check_mbguest_ran(c, 0, 2, 30)
            harness.check(len(v0["vcpus"]) == 2 and all(v["state"] == "stopped" for v in v0["vcpus"]),
                          f"vm0 vCPUs: {v0['vcpus']}")

            # The vCPUs: all on the SVM backend, each on a core of its own.
            vcpus = [v for v in c.get("/api/v1/vcpus")["vcpus"] if v["vm"] in (0, 1)]
            harness.check(len(vcpus) == 3 and all(v["backend"] == "svm" for v in vcpus) and
                          len({v["cpu"] for v in vcpus}) == 3, f"user vCPUs: {vcpus}")

            # vm1: console input is echoed back; its registers and VMCB are read on its core.
            check_echo(c, 1, 30)
            regs = c.get("/api/v1/vms/1/vcpus/0/regs")
            harness.check(regs["backend"] == "svm" and regs["segments"]["cs"]["selector"] == "0x0008" and
                          int(regs["cr0"], 16) & 1 == 1, f"vm1 regs: cs {regs['segments']['cs']} cr0 {regs['cr0']}")
            sel = c.get("/api/v1/vms/1/vcpus/0/vmcb?name=RIP,EXITCODE,N_CR3").get("fields", [])
            harness.check([f["name"] for f in sel] == ["RIP", "EXITCODE", "N_CR3"] and int(sel[2]["value"], 16) != 0,
                          f"vm1 vmcb: {sel}")
            c.json("GET", "/api/v1/vms/1/vcpus/0/vmcs", 404)

            # Resets from the console and from the guest itself (the i8042, 0xCF9).
            check_mbecho_resets(c, emu, 1, 30)
            check_console_refusals(c, 1, 0)

            # Reset vm0: it runs again from its boot modules and exits again.
            c.json("POST", "/api/v1/vms/0/reset", 202)
            v0 = wait_until("vm0 reset and exited again", lambda: (lambda v: v if v["resets"] == 1 and
                            v["state"] == "exited" else None)(c.get("/api/v1/vms/0")), 30)
            out0 = console_text(c, 0)
            harness.check(v0["exit_code"] == 7 and out0.count("mbguest: exit 7") == 2 and
                          out0.count("mbguest: aps started=1 of 1") == 2, f"mbguest did not run twice with its AP: {v0}")
            harness.check(c.get("/api/v1/vms/1")["state"] == "running", "vm1 stopped running")
            harness.assert_no_panic(emu)


def make_parser():
    p = harness.parser(__doc__)
    p.add_argument("--mbguest", required=True)
    p.add_argument("--mbecho", required=True)
    return p


if __name__ == "__main__":
    harness.main(test, make_parser)
