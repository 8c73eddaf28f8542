#!/usr/bin/env python3
"""A stock Linux guest under Lantern in Bochs (VMX), to a shell prompt. ctest: linux.bochs (one
vCPU) and linux.bochs.cpus2 (two vCPUs), label slow.

    linux_test.py --emulator bochs --cpus 2 --mem 384 --iso build/lantern.iso \\
        --kernel build/lantern.elf --vm-cpus 1 [--guest-dir build/_deps/linux-guest]

The guest is tools/linux_guest.py's (Debian bookworm's pinned kernel, the project's busybox-static
initramfs; fetched and built here when missing), as one VM the way `./lantern iso --vm` writes it:
    kernel=<vmlinuz>,initrd=<initramfs.cpio.gz>,mem=256,cpus=<N>,append=console=ttyS0 acpi=off
Steps:
  1. READY (Bochs reads about 9 MB of modules from the CD first: minutes), the VM listed and not
     `failed` (a refusal fails the test with Lantern's reason).
  2. Until the prompt (--prompt-timeout, default 30 min): the VM's console is followed with
     `?since=` offsets; every round GET /api/v1/vcpus and GET .../vcpus/0/regs are timed (each
     must answer 200 within --request-bound seconds, default 10: Bochs runs the console core
     and the guest's cores in one host thread); every --exits-every seconds GET .../exits gives
     the exits per second by reason since the previous sample. The VM must stay `running`.
  3. The time to the kernel's banner, the init marker and the prompt are printed, the boot log's
     complaints (warnings, MSR faults, call traces), and the request latencies (count, median,
     max).
  4. `echo $((6*7))` answers 42; with --vm-cpus 2, `nproc` answers 2.
  5. `reboot -f`: the VM restarts: its `resets` in /vms grows (Lantern counts the guest's own
     resets there), then the kernel's banner shows up again on its console; with --vm-cpus 2 the
     second boot brings up both CPUs again (init marker, prompt, `nproc`).
No panic throughout. Only 127.0.0.1 is contacted.
"""
import json
import os
import re
import statistics
import sys
import time

import harness
from api_test import Client

sys.path.insert(0, os.path.join(harness.REPO_ROOT, "tools"))
import linux_guest  # noqa: E402  (tools/linux_guest.py)
import vm_spec  # noqa: E402  (tools/vm_spec.py)

APPEND = "console=ttyS0 acpi=off"
BANNER = "Linux version "
# Boot-log lines that point at something the platform does not give Linux (printed, not failed).
COMPLAINT = re.compile(r"WARNING|unchecked MSR|Call Trace|BUG|\bfailed\b|Invalid|not supported|firmware bug",
                       re.IGNORECASE)
REPLY_TIMEOUT = 600.0  # a command's answer under Bochs (the guest runs at Bochs speed)


class Boot:
    """The state followed while the guest runs: console text, latencies, exit samples."""

    def __init__(self, client, vm, bound, emu):
        self.c, self.vm, self.bound, self.emu = client, vm, bound, emu
        self.text, self.since, self.missed = "", 0, 0
        self.latency = {"vcpus": [], "regs": [], "console": [], "exits": []}
        self.last_exits = None  # (time, {name: count})
        self.last_regs = {}  # vCPU 0's registers at the last round (rip, cr0, ... as hex strings)
        self.t0 = time.monotonic()

    def get(self, what, path):
        start = time.monotonic()
        try:
            status, _, raw = self.c.request("GET", path, timeout=self.bound + 5)
        except OSError as e:
            took = time.monotonic() - start
            raise harness.Failure(f"GET {path}: no answer after {took:.1f} s ({e!r})\n{self.stall_report()}")
        took = time.monotonic() - start
        self.latency[what].append(took)
        harness.check(status == 200, f"GET {path}: {status} after {took:.2f} s: {raw[:300]!r}")
        harness.check(took <= self.bound, f"GET {path} took {took:.2f} s, above the {self.bound} s bound")
        return json.loads(raw)

    def stall_report(self):
        """What the console says of itself once a request went unanswered: a second connection's
        view of the network pools and console counters, the Lantern log tail and the emulator's own
        log tail (Bochs)."""
        lines = []
        start = time.monotonic()
        try:
            status, _, raw = self.c.request("GET", "/api/v1/system", timeout=120)
            doc = json.loads(raw) if status == 200 else {}
            lines.append(f"GET /api/v1/system after the stall: {status} in {time.monotonic() - start:.1f} s; "
                         f"uptime_ms {doc.get('uptime_ms')}; network {json.dumps(doc.get('network'))}; console {json.dumps(doc.get('console'))}")
        except (OSError, ValueError) as e:
            lines.append(f"GET /api/v1/system after the stall: no answer in {time.monotonic() - start:.1f} s "
                         f"({e!r})")
        serial_before, cpu_before = len(self.emu.raw_log()), self.emu.cpu_seconds()
        time.sleep(5.0)
        serial_after, cpu_after = len(self.emu.raw_log()), self.emu.cpu_seconds()
        if cpu_before is not None and cpu_after is not None:
            lines.append(f"the emulator used {100 * (cpu_after - cpu_before) / 5.0:.0f}% of a host core over 5 s; "
                         f"the serial log grew by {serial_after - serial_before} bytes")
        lines.append("--- Lantern log tail ---\n" + self.emu.log_tail(30))
        emulator_log = self.emu.emulator_log_tail(20)
        if emulator_log:
            lines.append("--- emulator log tail ---\n" + emulator_log)
        return "\n".join(lines)

    def poll_console(self):
        while True:
            doc = self.get("console", f"/api/v1/vms/{self.vm}/console?since={self.since}")
            self.missed += doc["missed"]
            if not doc["text"]:
                return
            self.text += doc["text"]
            self.since = doc["next"]

    def lines(self):
        return self.text.replace("\r", "").split("\n")

    def sample_exits(self, vcpu=0, report=True):
        doc = self.get("exits", f"/api/v1/vms/{self.vm}/vcpus/{vcpu}/exits")
        now = time.monotonic()
        counts = {e["name"]: e["count"] for e in doc["counts"]}
        if self.last_exits and report:
            t, before = self.last_exits
            dt = max(now - t, 1e-6)
            rates = sorted(((n, (c - before.get(n, 0)) / dt) for n, c in counts.items()),
                           key=lambda x: -x[1])
            shown = ", ".join(f"{n} {r:.0f}/s" for n, r in rates if r > 0) or "none"
            where = " ".join(f"{k} {self.last_regs[k]}" for k in ("rip", "rflags", "cr0", "cr3", "efer")
                             if k in self.last_regs)
            print(f"  [{now - self.t0:6.0f} s] vm{self.vm}/vcpu{vcpu} exits {doc['total']}: {shown}; vcpu0 {where}",
                  flush=True)
        self.last_exits = (now, counts)

    def round(self, resetting=False):
        """One polling round: console, the vCPU list, vCPU 0's registers; the VM must run (while
        `resetting`, its vCPUs are stopped between the guest's reset request and the restart)."""
        self.poll_console()
        vcpus = self.get("vcpus", "/api/v1/vcpus")["vcpus"]
        mine = [v for v in vcpus if v["vm"] == self.vm]
        harness.check(mine, f"no vCPU of vm{self.vm} in /vcpus: {vcpus}")
        stopped = [v for v in mine if v["state"] == "stopped"]
        harness.check(resetting or not stopped, f"vm{self.vm} vCPU stopped: {stopped}")
        self.last_regs = self.get("regs", f"/api/v1/vms/{self.vm}/vcpus/0/regs")
        harness.assert_no_panic(self.emu)

    def vm_state(self):
        return self.c.get(f"/api/v1/vms/{self.vm}")

    def wait(self, what, probe, timeout, exits_every, resetting=False):
        """Rounds until probe() is truthy; an exits sample every `exits_every` seconds."""
        deadline = time.monotonic() + timeout
        next_exits = time.monotonic() + exits_every
        while True:
            self.round(resetting)
            found = probe()
            if found:
                return found
            v = self.vm_state()
            harness.check(v["state"] == "running", f"vm{self.vm} is {v['state']} while waiting for {what}: "
                          f"{v.get('failure') or v.get('exit_cause')}\n--- guest console tail ---\n"
                          f"{self.text[-3000:]}")
            if time.monotonic() > deadline:
                raise harness.Failure(f"no {what} within {timeout:.0f} s; guest console tail:\n{self.text[-3000:]}")
            if time.monotonic() >= next_exits:
                self.sample_exits()
                next_exits = time.monotonic() + exits_every
            time.sleep(1.0)

    def type(self, line):
        mark = len(self.text)
        doc, _ = self.c.json("POST", f"/api/v1/vms/{self.vm}/console", 202, body=line.encode(),
                             headers={"Content-Type": "application/octet-stream"})
        harness.check(doc["accepted"] == len(line.encode()), f"console post: {doc}")
        return mark

    def answer(self, line, expect, args):
        """Type `line`, wait for a console line that is exactly `expect` after it, then the prompt."""
        mark = self.type(line + "\n")
        rx = re.compile(rf"^{re.escape(expect)}\r?$", re.M)
        prompt = linux_guest.PROMPT
        self.wait(f"{expect!r} after {line!r}", lambda: (lambda m: m and prompt in self.text[m.end():])(
            rx.search(self.text, mark)), REPLY_TIMEOUT, args.exits_every)

    def latency_report(self):
        for what, xs in self.latency.items():
            if xs:
                print(f"  latency {what:8}: {len(xs)} requests, median {statistics.median(xs) * 1000:.0f} ms,"
                      f" max {max(xs) * 1000:.0f} ms (bound {self.bound * 1000:.0f} ms)", flush=True)


def test(args):
    kernel, initrd = linux_guest.ensure(args.guest_dir)
    spec_text = f"kernel={kernel},initrd={initrd},mem={args.vm_mem},cpus={args.vm_cpus},append={args.append}"
    spec = vm_spec.parse(spec_text)
    try:
        vm_spec.check_fits([spec], args.cpus, args.mem)
    except vm_spec.VmSpecError as e:
        raise harness.Failure(f"--vm {spec_text}: {e}")
    with harness.temp_dir() as d:
        modules = tuple(vm_spec.stage_modules([spec], os.path.join(d, "vms")))
        iso = harness.remaster(args, d, "", modules)
        print(f"ISO with --vm {spec_text}", flush=True)
        with harness.boot(args, iso=iso) as emu:
            ready, seconds = harness.wait_ready(emu, args)
            print(f"READY after {seconds:.1f} s: {ready.line}", flush=True)
            harness.check(emu.port, "no forwarded console port")
            c = Client(emu.port)
            vms = c.get("/api/v1/vms")["vms"]
            harness.check(len(vms) == 1, f"expected one VM: {vms}")
            v = vms[0]
            print(f"vm{v['vm']} {v['name']}: state {v['state']}, kernel_format {v['kernel_format']}, "
                  f"cmdline {v['cmdline']!r}, failure {v['failure']!r}", flush=True)
            harness.check(v["state"] == "running",
                          f"vm{v['vm']} is {v['state']}: {v['failure'] or v['exit_cause']}")
            harness.check(v["cmdline"] == args.append, f"cmdline {v['cmdline']!r}, expected {args.append!r}")
            b = Boot(c, v["vm"], args.request_bound, emu)
            b.t0 = time.monotonic()
            b.sample_exits(report=False)
            try:
                b.wait("the kernel banner", lambda: BANNER in b.text, args.prompt_timeout, args.exits_every)
                print(f"kernel banner {time.monotonic() - b.t0:.0f} s after READY", flush=True)
                b.wait("the init marker", lambda: linux_guest.INIT_MARKER in b.text, args.prompt_timeout,
                       args.exits_every)
                m = re.search(re.escape(linux_guest.INIT_MARKER) + r" cpus=(\d+)", b.text)
                print(f"init marker {time.monotonic() - b.t0:.0f} s after READY: {m.group(0) if m else '?'}",
                      flush=True)
                b.wait("the shell prompt", lambda: linux_guest.PROMPT in b.text, args.prompt_timeout,
                       args.exits_every)
                print(f"PROMPT {time.monotonic() - b.t0:.0f} s after READY "
                      f"({time.monotonic() - b.t0 + seconds:.0f} s after the emulator started)", flush=True)
                b.sample_exits()
                complaints = [line for line in b.lines() if COMPLAINT.search(line)]
                print(f"kernel complaints in the boot log ({len(complaints)}):", flush=True)
                for line in complaints:
                    print(f"  {line}", flush=True)
                b.answer("echo $((6*7))", "42", args)
                print("echo $((6*7)) -> 42", flush=True)
                if args.vm_cpus > 1:
                    b.answer("nproc", str(args.vm_cpus), args)
                    print(f"nproc -> {args.vm_cpus}", flush=True)
                resets = b.vm_state()["resets"]
                banners = b.text.count(BANNER)
                b.type("reboot -f\n")
                t_reboot = time.monotonic()
                b.wait("the VM's restart (resets in /vms growing)", lambda: b.vm_state()["resets"] > resets,
                       REPLY_TIMEOUT, args.exits_every, resetting=True)
                print(f"reboot -f: vm{b.vm} reset by Lantern {time.monotonic() - t_reboot:.0f} s later "
                      f"(resets {resets} -> {b.vm_state()['resets']})", flush=True)
                b.wait("the kernel banner again after the reset", lambda: b.text.count(BANNER) > banners,
                       args.prompt_timeout, args.exits_every)
                print(f"reboot -f: the kernel banner again {time.monotonic() - t_reboot:.0f} s after the reboot",
                      flush=True)
                if args.vm_cpus > 1:
                    # The application processors restart too: Linux starts them again (INIT/SIPI to
                    # vCPUs that the reset parked) and the second boot counts them.
                    mark = b.text.rindex(BANNER)
                    marker = re.compile(re.escape(linux_guest.INIT_MARKER) + rf" cpus={args.vm_cpus}\b")
                    b.wait("the init marker again", lambda: marker.search(b.text, mark), args.prompt_timeout,
                           args.exits_every)
                    b.wait("the shell prompt again", lambda: linux_guest.PROMPT in b.text[mark:],
                           args.prompt_timeout, args.exits_every)
                    b.answer("nproc", str(args.vm_cpus), args)
                    print(f"after the reboot: init marker with cpus={args.vm_cpus}, prompt "
                          f"{time.monotonic() - t_reboot:.0f} s after the reboot, nproc -> {args.vm_cpus}",
                          flush=True)
            finally:
                b.latency_report()
                if b.missed:
                    print(f"  console bytes missed (ring overrun): {b.missed}", flush=True)
                print("--- guest console tail ---\n" + b.text[-2500:], flush=True)
                print("--- Lantern log tail ---\n" + emu.log_tail(40), flush=True)
            harness.assert_no_panic(emu)


def make_parser():
    p = harness.parser(__doc__)
    p.add_argument("--vm-cpus", type=int, default=1, help="the Linux VM's vCPUs (nproc must say so)")
    p.add_argument("--vm-mem", type=int, default=256, help="the Linux VM's RAM in MiB")
    p.add_argument("--guest-dir", default=linux_guest.DEFAULT_DIR)
    p.add_argument("--append", default=APPEND, help=f"the kernel command line (default {APPEND!r})")
    p.add_argument("--prompt-timeout", type=float, default=1800.0,
                   help="seconds from READY to each boot milestone (default 30 min)")
    p.add_argument("--request-bound", type=float, default=10.0,
                   help="seconds each polled API request may take (default 10)")
    p.add_argument("--exits-every", type=float, default=30.0,
                   help="seconds between exit-rate samples (default 30)")
    return p


if __name__ == "__main__":
    harness.main(test, make_parser)
