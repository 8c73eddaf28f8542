#!/usr/bin/env python3
"""Hostile guests beside the demo guest (Bochs, VMX): the hypervisor must survive them.

    hostile_test.py --emulator bochs --cpus 4 --programs demo,hostile_instr,hostile_storm,hostile_cli

boots a remastered ISO with `vmx.demo.programs=<programs>` (core i runs the i-th program,
tests/guests/hostile_*.S) and checks, through the console API on 127.0.0.1:
  - the host never panics (no `LANTERN PANIC` in the serial log) and READY counts every vCPU;
  - each hostile guest reaches its own outcome (OUTCOMES below): the console lines it prints and
    the vCPU's end, stopped with the recorded `stop_reason` (and its registers still readable) or
    still running with its exit count growing;
  - every demo VM's exit counter keeps growing, from READY to the end;
  - the console keeps answering: for the interrupts-off spinner (hostile_cli) every register
    snapshot answers 200 within SNAPSHOT_BOUND seconds, with RIP in its loop and RFLAGS.IF = 0.
At the end it prints one table row per VM: program, state, stop reason, exits.

Bochs 2.7 re-evaluates its interrupt masking only when RFLAGS.IF changes or the guest executes
CLI/STI, so a guest that keeps IF = 0 without another CLI takes no exit for host interrupts
(hardware would, with external-interrupt exiting, SDM Vol. 3C 25.2). The console still reaches it
through the vCPU's return backstop (VmxVcpu::set_return_backstop: the VMX preemption timer ends
every exit-free stretch after 10 ms), which is what this test proves, on the BSP too (--programs
hostile_cli,...: the BSP serves the network only between its guest's exits).
"""
import json
import re
import time

import harness
from api_test import Client

# The console's capture bound is 250 ms (vmx/hw/vcpu_capture.h); Bochs' slirp and its emulated
# network add latency of their own, so the answer must come within this many seconds.
SNAPSHOT_BOUND = 10.0
SNAPSHOTS = 5
# How long the hostile guests get to reach their outcome after READY (Bochs wall time).
OUTCOME_TIMEOUT = 150.0
RFLAGS_IF = 1 << 9
SPIN_LOOP_BYTES = 3  # hostile_cli.S: the loop is at most CLI (1 byte) and a short JMP (2)
HEX = r"[0-9a-f]{8}"


class Outcome:
    """What one hostile program must show: console lines (regexes, in order), lines it must never
    print, and its end: `stop_reason` (a regex) or None for "keeps running"."""

    def __init__(self, lines, stop_reason=None, never=()):
        self.lines = [re.compile(l, re.M) for l in lines]
        self.stop_reason = re.compile(stop_reason) if stop_reason else None
        self.never = [re.compile(n, re.M) for n in never]


OUTCOMES = {
    # Privileged, VMX and SVM instructions all come back as faults the guest handles; the random
    # phase runs until a sequence ends the vCPU (a write beyond guest memory, a triple fault, ...) with
    # a recorded reason, or keeps running: either is accepted, the reason must be non-empty.
    "hostile_instr": Outcome([rf"^hostile_instr: privileged done, faults {HEX}$",
                              rf"^hostile_instr: vmx done, faults {HEX}$",
                              rf"^hostile_instr: svm done, faults {HEX}$"],
                             stop_reason=r"^(?!$).+|^$"),
    # Running, its exits growing; with --storm-pass also one whole pass over every range (about
    # 20 s of emulated time beside three other busy cores).
    "hostile_storm": Outcome([r"^hostile_storm: I/O ports and MSRs, every range$"]),
    "hostile_cli": Outcome([rf"^hostile_cli: spinning with IF=0 at {HEX}$"]),
    "hostile_triple": Outcome([r"^hostile_triple: double faults 00000040$", r"^hostile_triple: triple fault now$"],
                              stop_reason=r"^guest triple fault \(shutdown\)$",
                              never=[r"hostile_triple: survived"]),
    "hostile_paging": Outcome([r"^hostile_paging: pte writes 00000010, wrong 00000000, page faults 00000001$",
                               r"^hostile_paging: pae ok 41414141$",
                               rf"^hostile_paging: apic movs done {HEX}$",
                               r"^hostile_paging: apic lock or$"],
                              stop_reason=r"^xAPIC MMIO: unsupported instruction",
                              never=[r"hostile_paging: survived", r"hostile_paging: wrong writers"]),
}
# hostile_instr may end either way; the others must end exactly as OUTCOMES says.
EITHER_END = {"hostile_instr"}


def parser():
    p = harness.parser(__doc__)
    p.add_argument("--programs", required=True,
                   help="comma-separated guest program per core (vmx.demo.programs=)")
    p.add_argument("--storm-pass", action="store_true",
                   help="wait until hostile_storm has finished one pass over every port and MSR range")
    return p


def console_text(c, vm, state):
    """Appends what vm wrote since the last call to state[vm]; returns the whole text."""
    since, text = state.get(vm, (0, ""))
    doc = c.get(f"/api/v1/vms/{vm}/console?since={since}")
    text += doc.get("text", "")
    state[vm] = (doc.get("next", since), text[-65536:])
    return state[vm][1]


def vcpu_of(c, vm):
    for v in c.get("/api/v1/vcpus").get("vcpus", []):
        if v["vm"] == vm and v["vcpu"] == 0:
            return v
    raise harness.Failure(f"vm{vm} has no vCPU 0 in /api/v1/vcpus")


def spinner_snapshots(c, vm, text):
    """The interrupts-off spinner: each GET .../regs answers 200 (RIP in the loop, IF = 0) within
    SNAPSHOT_BOUND seconds. Returns the statuses."""
    m = re.search(rf"hostile_cli: spinning with IF=0 at ({HEX})", text)
    spin = int(m.group(1), 16)
    statuses = []
    for _ in range(SNAPSHOTS):
        start = time.monotonic()
        status, _, raw = c.request("GET", f"/api/v1/vms/{vm}/vcpus/0/regs", timeout=SNAPSHOT_BOUND + 5)
        took = time.monotonic() - start
        harness.check(took <= SNAPSHOT_BOUND, f"vm{vm} regs took {took:.1f} s (bound {SNAPSHOT_BOUND} s)")
        harness.check(status == 200, f"vm{vm} regs: {status}: {raw[:200]!r}")
        regs = json.loads(raw)
        rip, rflags = int(regs["rip"], 16), int(regs["rflags"], 16)
        harness.check(spin <= rip < spin + SPIN_LOOP_BYTES, f"vm{vm}: RIP 0x{rip:x}, the spin loop is at 0x{spin:x}")
        harness.check(rflags & RFLAGS_IF == 0, f"vm{vm}: RFLAGS 0x{rflags:x} has IF set")
        statuses.append(status)
    return statuses


def test(args):
    programs = args.programs.split(",")
    harness.check(len(programs) == args.cpus, f"{len(programs)} programs for {args.cpus} CPUs")
    if args.storm_pass:
        OUTCOMES["hostile_storm"].lines.append(re.compile(rf"hostile_storm: pass 00000001 done, faults {HEX}$", re.M))
    unknown = [p for p in programs if p != "demo" and p not in OUTCOMES]
    harness.check(not unknown, f"no expected outcome for {unknown}")
    with harness.temp_dir("lantern-hostile-") as tmp:
        iso = harness.remaster(args, tmp, cmdline=f"vmx.demo.programs={args.programs}")
        with harness.boot(args, iso=iso) as emu:
            ready, seconds = harness.wait_ready(emu, args, timeout=180)
            print(f"READY after {seconds:.0f} s: {ready.line}", flush=True)
            harness.check(ready.vmx == args.cpus and ready.vcpus == args.cpus, f"expected one vCPU per core: {ready.line}")
            harness.check(ready.console != "none" and emu.port, f"no console: {ready.line}")
            c = Client(emu.port)
            vms = {v["vm"]: v for v in c.get("/api/v1/vms").get("vms", [])}
            for cpu, program in enumerate(programs):
                # The demo VM of core i is vm i (vmx/hw/guest_vm.cpp).
                harness.check(vms.get(cpu, {}).get("program") == program,
                              f"vm{cpu} runs {vms.get(cpu, {}).get('program')!r}, expected {program!r}")
            demos = [vm for vm, p in enumerate(programs) if p == "demo"]
            demo_start = {vm: vcpu_of(c, vm)["exits"] for vm in demos}

            consoles, done, ends, snapshots = {}, set(), {}, {}
            deadline = time.monotonic() + OUTCOME_TIMEOUT
            hostile = [vm for vm, p in enumerate(programs) if p != "demo"]
            while len(done) < len(hostile) and time.monotonic() < deadline:
                harness.assert_no_panic(emu)
                for vm in hostile:
                    if vm in done:
                        continue
                    outcome = OUTCOMES[programs[vm]]
                    text = console_text(c, vm, consoles)
                    if not all(l.search(text) for l in outcome.lines):
                        continue
                    v = vcpu_of(c, vm)
                    if programs[vm] == "hostile_cli":
                        snapshots[vm] = spinner_snapshots(c, vm, text)
                    if outcome.stop_reason is not None and v["state"] != "stopped" and \
                            programs[vm] not in EITHER_END:
                        continue  # the lines are there; the stop follows
                    ends[vm] = v
                    done.add(vm)
                time.sleep(1.0)
            missing = [f"vm{vm} ({programs[vm]})" for vm in hostile if vm not in done]
            if missing:
                for vm in hostile:
                    print(f"--- vm{vm} ({programs[vm]}) console tail ---\n{consoles.get(vm, (0, ''))[1][-600:]}")
            harness.check(not missing, f"no outcome within {OUTCOME_TIMEOUT:.0f} s for {', '.join(missing)}")

            # Each hostile vCPU's end, a few seconds later: stopped ones stay stopped with their
            # reason; running ones keep exiting.
            time.sleep(3.0)
            rows = []
            for vm in hostile:
                program, outcome = programs[vm], OUTCOMES[programs[vm]]
                before, now = ends[vm], vcpu_of(c, vm)
                text = console_text(c, vm, consoles)
                for n in outcome.never:
                    harness.check(not n.search(text), f"vm{vm} ({program}) printed {n.pattern!r}")
                if now["state"] == "stopped":
                    harness.check(bool(now.get("stop_reason")), f"vm{vm} ({program}) stopped without a reason: {now}")
                    harness.check(outcome.stop_reason is not None,
                                  f"vm{vm} ({program}) must keep running, but stopped: {now['stop_reason']}")
                    harness.check(outcome.stop_reason.search(now["stop_reason"]) is not None,
                                  f"vm{vm} ({program}) stop reason {now['stop_reason']!r}, "
                                  f"expected /{outcome.stop_reason.pattern}/")
                    harness.check(now["exits"] == before["exits"] or before["state"] != "stopped",
                                  f"vm{vm} ({program}) exits changed after it stopped")
                    # Its core idles (or, the BSP, serves the network) and still answers snapshots.
                    regs = c.get(f"/api/v1/vms/{vm}/vcpus/0/regs")
                    harness.check(re.fullmatch(r"0x[0-9a-f]{16}", str(regs.get("rip"))) is not None,
                                  f"vm{vm} ({program}) regs after the stop: {str(regs)[:200]}")
                else:
                    harness.check(outcome.stop_reason is None or program in EITHER_END,
                                  f"vm{vm} ({program}) should have stopped (/{outcome.stop_reason.pattern if outcome.stop_reason else ''}/), "
                                  f"state {now['state']}")
                    harness.check(now["exits"] > before["exits"],
                                  f"vm{vm} ({program}) runs but its exits did not grow: {before['exits']} -> {now['exits']}")
                last = (now.get("last_exit") or {}).get("name", "-")
                progress = re.findall(r"^hostile_\w+: (?:random|pass) [^\n]*$", text, re.M)
                rows.append((vm, program, now["state"], now.get("stop_reason") or "-", now["exits"],
                             last, progress[-1] if progress else "-"))
            if any(p == "hostile_cli" for p in programs):
                vm = programs.index("hostile_cli")
                if vm not in snapshots:
                    snapshots[vm] = spinner_snapshots(c, vm, console_text(c, vm, consoles))

            # The demo guests kept exiting through all of it, and the console still answers.
            for vm in demos:
                v = vcpu_of(c, vm)
                harness.check(v["state"] == "running" and v["exits"] > demo_start[vm],
                              f"demo vm{vm}: {v['state']}, exits {demo_start[vm]} -> {v['exits']}")
                rows.append((vm, "demo", v["state"], v.get("stop_reason") or "-", v["exits"],
                             (v.get("last_exit") or {}).get("name", "-"), f"exits {demo_start[vm]} -> {v['exits']}"))
            harness.check(c.get("/api/v1/system").get("name") == "lantern", "the console stopped answering")
            harness.assert_no_panic(emu)
            rows.sort()
            print("| vm | program | state | stop reason | exits | last exit | progress |")
            print("|---|---|---|---|---|---|---|")
            for row in rows:
                print("| " + " | ".join(str(x) for x in row) + " |")
            for vm, statuses in snapshots.items():
                print(f"hostile_cli vm{vm}: regs snapshots {statuses}")
            print("host: no LANTERN PANIC; console answering", flush=True)


if __name__ == "__main__":
    harness.main(test, parser)
