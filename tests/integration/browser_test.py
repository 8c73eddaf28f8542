#!/usr/bin/env python3
"""The browser console end to end: boots Lantern, then runs tests/browser/console.mjs (headless
Debian chromium driven by playwright-core) against the forwarded port and passes its verdict on.

  --case vmx    Bochs, demo guests running, console.token= set: the token prompt (wrong token
                refused, right one accepted), the overview's vCPUs = /api/v1/vcpus, a growing exit
                chart, registers = a /regs read right after, the VMCS groups and filter, an
                interrupt queued through the form seen on the guest console view, the log's level
                filter, the first-load budget, no JavaScript errors.
  --case novmx  QEMU TCG without VMX or SVM (-cpu max,svm=off): the page says why there are no guests; the log view; three
                polling tabs leave a lab script every request it makes (none refused).
Screenshots go to --screenshots (build/screenshots/). The emulator is always killed (harness).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import harness

TOKEN = "lantern-browser-test"
CONSOLE_MJS = os.path.join(harness.REPO_ROOT, "tests", "browser", "console.mjs")
NODE_SECONDS = 300.0  # default for --node-seconds; keep it below the ctest TIMEOUT


def parser():
    p = harness.parser(__doc__.splitlines()[0])
    p.add_argument("--case", required=True, choices=("vmx", "novmx"))
    p.add_argument("--screenshots", required=True)
    p.add_argument("--modules", required=True, help="the folder npm ci installed into (build/npm)")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--node-seconds", type=float, default=NODE_SECONDS,
                   help="how long console.mjs may take; below the ctest TIMEOUT, so that a slow run "
                        "fails with console.mjs's output instead of being killed silently")
    return p


def wait_guests_running(port: int, cpus: int, token: str, seconds: float = 120.0) -> None:
    """Until every core's demo vCPU has launched (asked with the token)."""
    import http.client
    import json
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        try:
            conn.request("GET", "/api/v1/vcpus", headers={"Authorization": f"Bearer {token}"})
            r = conn.getresponse()
            body = r.read()
            last = (r.status, body[:300])
            if r.status == 200:
                vcpus = json.loads(body).get("vcpus", [])
                if sum(1 for v in vcpus if v.get("launched")) >= cpus:
                    return
        except (OSError, ValueError) as e:
            last = e
        finally:
            conn.close()
        time.sleep(1.0)
    raise harness.Failure(f"demo vCPUs not all launched within {seconds:g} s: {last}")


def test(args):
    harness.check(os.path.isfile(args.chromium), f"{args.chromium} is missing: run ./lantern deps")
    harness.check(os.path.isdir(os.path.join(args.modules, "node_modules", "playwright-core")),
                  f"playwright-core is not installed in {args.modules}: run ./lantern deps")
    node = shutil.which("node")
    harness.check(node is not None, "node is missing: run ./lantern deps")
    with harness.temp_dir() as tmp:
        iso = args.iso
        token = ""
        if args.case == "vmx":
            token = TOKEN
            iso = harness.remaster(args, tmp, f"console.token={TOKEN}")
        with harness.boot(args, iso=iso) as emu:
            ready, _ = harness.wait_ready(emu, args, timeout=180 if args.emulator == "bochs" else None)
            harness.check(ready.console != "none" and emu.port, f"no console: {ready.line}")
            if args.case == "vmx":
                harness.check(ready.vmx == args.cpus, f"expected VMX on {args.cpus} cores: {ready.line}")
                wait_guests_running(emu.port, args.cpus, token)
            cmd = [node, CONSOLE_MJS, "--port", str(emu.port), "--case", args.case,
                   "--screenshots", args.screenshots, "--modules", args.modules, "--chromium", args.chromium]
            if token:
                cmd += ["--token", token]
            try:
                r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   timeout=args.node_seconds)
            except subprocess.TimeoutExpired as e:
                out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
                raise harness.Failure(f"console.mjs did not finish in {args.node_seconds:g} s:\n{out}")
            sys.stdout.write(r.stdout)
            harness.check(r.returncode == 0, f"console.mjs failed ({r.returncode}); see its output above")
            harness.assert_no_panic(emu)


if __name__ == "__main__":
    harness.main(test, parser)
