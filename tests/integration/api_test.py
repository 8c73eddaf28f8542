#!/usr/bin/env python3
"""The console API v1 end to end, through the forwarded port (127.0.0.1 only).

    api_test.py --emulator bochs --cpus 4                          demo guests under VMX (Bochs)
    api_test.py --emulator qemu  --cpus 4 --case svm               demo guests under SVM (QEMU TCG -cpu max)
    api_test.py --emulator qemu  --cpus 2 --cpu-model max,svm=off  QEMU TCG without VMX or SVM

Bochs: READY vmx=N vcpus=N; /vcpus lists N running vCPUs; regs has the 15 general registers and
rsp, rip, rflags, cr0, cr3, cr4, efer as fixed-width hex strings (checked against the vmcs dump of
the same vCPU); vmcs has every supported field with SDM names and encodings (GUEST_RIP 0x681e,
VM_EXIT_REASON 0x4402, EPT_POINTER 0x201a) and ?name= selects; the exit counters grow between two
reads; an interrupt, an NMI and an exception with an error code POSTed to vCPUs on the BSP and on
another core show up on that guest's console (`IRQ 0x..`, `NMI`, `EXC 0x.. ERR 0x........`, as
tests/guests/demo.S prints them); 8 pipelined POSTs beyond a full queue get 429; the error
statuses of the design (400, 404, 405, 415); the server still answers at the end; no panic.

SVM (QEMU TCG -cpu max, or Bochs --cpu-model ryzen): READY hv=svm svm=N vcpus=N; /system says
hv=svm with NPT, and NRIP only under Bochs, /cpus has SVM on; every vCPU runs on the SVM backend, one per core; regs are fixed-width hex
(protected mode, EFER.SVME); the VMCB dump has every field with APM names, offsets, widths and
areas (EXITCODE 0x70, N_CR3 0xb0, RIP 0x578, ...) and ?name= selects; .../vmcs is 404; exit
counters grow and name CPUID/HLT/IOIO/MSR/VMMCALL with their kinds; an interrupt, an NMI, an
exception with and one without an error code, then two NMIs at once (the second waits for the
first handler's IRET intercept) reach the guests on the BSP and on another core and show on their
consoles; 429 on a full queue.

No backend (QEMU TCG without SVM): /system says VMX and SVM are unavailable with reasons, hv=none,
/vcpus and /vms are empty, every per-vCPU route is 404 with the error shape, and /openapi.json
describes the routes.
"""
import json
import re
import socket
import time

import harness

HEX64 = re.compile(r"^0x[0-9a-f]{16}$")
GENERAL = ("rax", "rcx", "rdx", "rbx", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
           "r14", "r15")
CONTROL = ("rsp", "rip", "rflags", "cr0", "cr3", "cr4", "efer")


class Client:
    """HTTP/1.1 keep-alive client on 127.0.0.1:<port> with raw access for pipelining."""

    def __init__(self, port):
        self.port = port

    def request(self, method, path, body=None, headers=None, timeout=30.0):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            hdrs = dict(headers or {})
            data = None
            if body is not None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            raw = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, raw
        finally:
            conn.close()

    def json(self, method, path, expect, body=None, headers=None):
        status, hdrs, raw = self.request(method, path, body, headers)
        harness.check(status == expect, f"{method} {path}: {status}, expected {expect}: {raw[:300]!r}")
        harness.check(hdrs.get("content-type", "").startswith("application/json"),
                      f"{method} {path}: content-type {hdrs.get('content-type')}")
        try:
            doc = json.loads(raw)
        except ValueError as e:
            raise harness.Failure(f"{method} {path}: not JSON ({e}): {raw[:300]!r}")
        if expect >= 400:
            err = doc.get("error") if isinstance(doc, dict) else None
            harness.check(isinstance(err, dict) and isinstance(err.get("code"), str) and
                          isinstance(err.get("message"), str) and err["message"],
                          f"{method} {path}: not the error shape: {doc}")
        return doc, hdrs

    def get(self, path, expect=200):
        return self.json("GET", path, expect)[0]


def check_errors_common(c):
    c.json("GET", "/api/v1/nope", 404)
    doc, hdrs = c.json("DELETE", "/api/v1/vcpus", 405)
    harness.check("GET" in hdrs.get("allow", ""), f"405 without Allow: {hdrs}")
    c.json("GET", "/api/v1/vms/abc", 400)
    c.json("GET", "/api/v1/vms/999999/vcpus/0", 404)
    c.json("GET", "/api/v1/vms/0/vcpus/999/regs", 404)
    c.json("POST", "/api/v1/vms/0/vcpus/999/events", 404, body={"type": "interrupt", "vector": 48})
    openapi = c.get("/api/v1/openapi.json")
    harness.check(str(openapi.get("openapi", "")).startswith("3.0"), f"openapi version: {openapi.get('openapi')}")
    for path in ("/api/v1/system", "/api/v1/vcpus", "/api/v1/vms/{vm}/vcpus/{vcpu}/regs",
                 "/api/v1/vms/{vm}/vcpus/{vcpu}/events", "/api/v1/vms/{vm}/console", "/api/v1/log"):
        harness.check(path in openapi.get("paths", {}), f"openapi.json lacks {path}")
    log = c.get("/api/v1/log?since=0")
    harness.check(isinstance(log.get("lines"), list) and log["lines"], f"empty log: {str(log)[:200]}")
    harness.check(any("READY" in l.get("text", "") or "smp:" in l.get("text", "") for l in log["lines"]) or
                  log.get("missed", 0) > 0, "log lines do not include the boot")


def test_none(args, c, ready):
    harness.check(ready.vmx == 0 and ready.vcpus == 0, f"QEMU TCG has no VMX: {ready.line}")
    harness.check(" hv=none svm=0 " in ready.line, f"expected no backend at all: {ready.line}")
    system = c.get("/api/v1/system")
    vmx = system.get("vmx", {})
    harness.check(vmx.get("available") is False, f"vmx.available: {vmx}")
    harness.check(isinstance(vmx.get("reason"), str) and vmx["reason"], f"no reason for no VMX: {vmx}")
    svm = system.get("svm", {})
    harness.check(system.get("hv") == "none", f"hv: {system.get('hv')}")
    harness.check(svm.get("available") is False and svm.get("cores") == 0, f"svm: {svm}")
    harness.check(isinstance(svm.get("reason"), str) and svm["reason"], f"no reason for no SVM: {svm}")
    harness.check(c.get("/api/v1/vcpus").get("vcpus") == [], "vcpus not empty without VMX")
    harness.check(c.get("/api/v1/vms").get("vms") == [], "vms not empty without VMX")
    cpus = c.get("/api/v1/cpus").get("cpus", [])
    harness.check(len(cpus) == args.cpus, f"{len(cpus)} cpus listed, expected {args.cpus}")
    harness.check(all(cpu.get("svm") == "unsupported" and not cpu.get("vcpus") for cpu in cpus), f"cpus: {cpus}")
    for suffix in ("", "/regs", "/vmcs", "/vmcb", "/events", "/exits"):
        c.json("GET", f"/api/v1/vms/0/vcpus/0{suffix}", 404)
    c.json("POST", "/api/v1/vms/0/vcpus/0/events", 404, body={"type": "nmi", "vector": 2})
    c.json("GET", "/api/v1/vms/0/console", 404)
    check_errors_common(c)


def wait_console(c, vm, since, pattern, timeout=120.0):
    """Polls /vms/{vm}/console?since= until `pattern` appears; returns the matching text."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        doc = c.get(f"/api/v1/vms/{vm}/console?since={since}")
        harness.check(doc.get("missed", 0) == 0, f"console of vm{vm} missed {doc.get('missed')} bytes")
        text += doc.get("text", "")
        since = doc.get("next", since)
        m = re.search(pattern, text, re.M)
        if m:
            return m.group(0), since
        time.sleep(0.5)
    raise harness.Failure(f"vm{vm} console never showed {pattern!r}; got {text[-400:]!r}")


def inject_and_see(c, vm, event, pattern):
    since = c.get(f"/api/v1/vms/{vm}/console").get("next", 0)
    doc, _ = c.json("POST", f"/api/v1/vms/{vm}/vcpus/0/events", 202, body=event)
    harness.check(isinstance(doc.get("position"), int) and 0 <= doc["position"] < 8, f"position: {doc}")
    line, _ = wait_console(c, vm, since, pattern)
    return line


def pipelined_posts(port, vm, count, event):
    """Sends `count` POSTs in one write on one connection; returns their status codes in order."""
    body = json.dumps(event).encode()
    one = (f"POST /api/v1/vms/{vm}/vcpus/0/events HTTP/1.1\r\nHost: lantern\r\n"
           f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    statuses = []
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(one * count)
        buf = b""
        while len(statuses) < count:
            while b"\r\n\r\n" not in buf:
                data = s.recv(65536)
                harness.check(bool(data), f"connection closed after {len(statuses)} of {count} responses")
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            statuses.append(int(head.split(b" ")[1]))
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            while len(buf) < length:
                data = s.recv(65536)
                harness.check(bool(data), "connection closed inside a body")
                buf += data
            buf = buf[length:]
    return statuses


def test_bochs(args, c, ready):
    n = args.cpus
    harness.check(ready.vmx == n and ready.vcpus >= n, f"expected vmx={n} vcpus>={n}: {ready.line}")
    vcpus = c.get("/api/v1/vcpus").get("vcpus", [])
    harness.check(len(vcpus) == ready.vcpus, f"{len(vcpus)} vCPUs listed, READY said {ready.vcpus}")
    running = [v for v in vcpus if v.get("state") in ("running", "halted") and v.get("launched")]
    harness.check(len(running) == n, f"{len(running)} of {n} vCPUs running: {vcpus}")
    harness.check(sorted(v["cpu"] for v in vcpus) == list(range(n)), f"one vCPU per core: {vcpus}")

    for v in vcpus:
        base = f"/api/v1/vms/{v['vm']}/vcpus/{v['vcpu']}"
        regs = c.get(f"{base}/regs")
        for name in GENERAL + CONTROL:
            harness.check(isinstance(regs.get(name), str) and HEX64.match(regs[name]),
                          f"{base}/regs: {name}={regs.get(name)!r}")
        harness.check(int(regs["cr0"], 16) & 1 == 1, f"demo guest runs in protected mode: cr0={regs['cr0']}")

        dump = c.get(f"{base}/vmcs").get("fields", [])
        by_name = {f["name"]: f for f in dump}
        for name, enc in (("GUEST_RIP", "0x681e"), ("VM_EXIT_REASON", "0x4402"), ("EPT_POINTER", "0x201a"),
                          ("GUEST_CR0", "0x6800"), ("VM_INSTRUCTION_ERROR", "0x4400")):
            harness.check(name in by_name, f"{base}/vmcs lacks {name} ({len(dump)} fields)")
            harness.check(by_name[name]["encoding"] == enc, f"{name} encoding {by_name[name]['encoding']}")
        harness.check(len(dump) >= 100, f"only {len(dump)} VMCS fields")
        harness.check(int(by_name["EPT_POINTER"]["value"], 16) & 7 == 6, "EPT_POINTER memory type is not WB")
        one = c.get(f"{base}/vmcs?name=GUEST_RIP").get("fields", [])
        harness.check(len(one) == 1 and one[0]["name"] == "GUEST_RIP", f"?name=GUEST_RIP: {one}")
        c.json("GET", f"{base}/vmcs?name=NOT_A_FIELD", 400)

        first = c.get(f"{base}/exits")
        time.sleep(2.0)
        second = c.get(f"{base}/exits")
        harness.check(second.get("total", 0) > first.get("total", 0),
                      f"{base}: exits did not grow: {first.get('total')} -> {second.get('total')}")
        harness.check(isinstance(second.get("recent"), list) and second["recent"], f"{base}: no recent exits")
        # The demo guest writes its UART (port I/O) and halts between timer ticks: both counted
        # under their SDM names with the vendor-neutral kind.
        kinds = {e["name"]: e.get("kind") for e in second.get("counts", [])}
        harness.check(kinds.get("IO_INSTRUCTION") == "io" and kinds.get("HLT") == "hlt",
                      f"{base}: exit kinds {kinds}")
        harness.check(all(r.get("kind") for r in second["recent"]), f"{base}: recent exits {second['recent'][:2]}")

    # Events into the BSP's guest (vm 0) and into one on another core.
    for vm in sorted({0, n - 1}):
        line = inject_and_see(c, vm, {"type": "interrupt", "vector": 0x30}, r"^IRQ 0x30\b")
        line = inject_and_see(c, vm, {"type": "nmi", "vector": 2}, r"^NMI\b")
        line = inject_and_see(c, vm, {"type": "exception", "vector": 13, "error_code": 0x1234},
                              r"^EXC 0x0d ERR 0x0*1234\b")
        harness.check("1234" in line, line)
    # Validation of the body.
    ev = "/api/v1/vms/0/vcpus/0/events"
    c.json("POST", ev, 400, body=b"{not json")
    c.json("POST", ev, 400, body={"type": "nmi", "vector": 3})
    c.json("POST", ev, 400, body={"type": "exception", "vector": 13})            # #GP needs an error code
    c.json("POST", ev, 400, body={"type": "exception", "vector": 6, "error_code": 0})  # #UD has none
    c.json("POST", ev, 400, body={"type": "interrupt", "vector": 15})
    c.json("POST", ev, 415, body=b'{"type":"nmi","vector":2}', headers={"Content-Type": "text/plain"})
    # 9 POSTs in one segment: the BSP handles them between two guest exits, so the 9th finds the
    # queue of 8 full.
    statuses = pipelined_posts(c.port, 0, 9, {"type": "interrupt", "vector": 0x31})
    # Accepted until the queue is full, refused from then on: never a gap, never anything else.
    accepted = statuses.count(202)
    harness.check(1 <= accepted <= 8 and statuses == [202] * accepted + [429] * (9 - accepted),
                  f"9 pipelined POSTs: {statuses}")
    check_errors_common(c)


def test_svm(args, c, ready):
    n = args.cpus
    harness.check(f" hv=svm svm={n} " in ready.line and ready.vmx == 0 and ready.vcpus == n,
                  f"expected hv=svm svm={n} vcpus={n}: {ready.line}")
    system = c.get("/api/v1/system")
    svm = system.get("svm", {})
    harness.check(system.get("hv") == "svm" and svm.get("available") is True and svm.get("cores") == n,
                  f"/system: hv={system.get('hv')} svm={svm}")
    caps = svm.get("capabilities", {})
    # QEMU TCG's SVM: NPT and VGIF, no next-RIP (CPUID 8000_000AH:EDX = 0x10010001); Bochs ryzen:
    # NPT and next-RIP (0x44f).
    nrip = args.emulator == "bochs"
    harness.check(caps.get("nested_paging") is True and caps.get("next_rip_save") is nrip, f"svm caps: {caps}")
    harness.check(system.get("vmx", {}).get("available") is False, "QEMU TCG has no VMX")
    cpus = c.get("/api/v1/cpus").get("cpus", [])
    harness.check(len(cpus) == n and all(cpu.get("svm") == "on" and len(cpu.get("vcpus", [])) == 1 for cpu in cpus),
                  f"cpus: {cpus}")

    vcpus = c.get("/api/v1/vcpus").get("vcpus", [])
    harness.check(len(vcpus) == n, f"{len(vcpus)} vCPUs listed, READY said {n}")
    harness.check(all(v.get("backend") == "svm" and v.get("state") == "running" and v.get("launched")
                      for v in vcpus), f"vcpus: {vcpus}")
    harness.check(sorted(v["cpu"] for v in vcpus) == list(range(n)), f"one vCPU per core: {vcpus}")

    for v in vcpus:
        base = f"/api/v1/vms/{v['vm']}/vcpus/{v['vcpu']}"
        regs = c.get(f"{base}/regs")
        harness.check(regs.get("backend") == "svm", f"{base}/regs backend: {regs.get('backend')}")
        for name in GENERAL + CONTROL:
            harness.check(isinstance(regs.get(name), str) and HEX64.match(regs[name]),
                          f"{base}/regs: {name}={regs.get(name)!r}")
        harness.check(int(regs["cr0"], 16) & 1 == 1, f"demo guest runs in protected mode: cr0={regs['cr0']}")
        harness.check(int(regs["efer"], 16) & 0x1000, f"the VMCB's EFER has SVME: efer={regs['efer']}")
        harness.check(regs["segments"]["cs"]["selector"] == "0x0008", f"cs: {regs['segments']['cs']}")

        dump = c.get(f"{base}/vmcb")
        fields = dump.get("fields", [])
        by_name = {f["name"]: f for f in fields}
        harness.check(dump.get("count") == len(fields) and len(fields) >= 90, f"only {len(fields)} VMCB fields")
        for name, offset, width, area in (("EXITCODE", 0x70, 64, "control"), ("N_CR3", 0xb0, 64, "control"),
                                          ("GUEST_ASID", 0x58, 32, "control"), ("TLB_CONTROL", 0x5c, 8, "control"),
                                          ("CS_SELECTOR", 0x410, 16, "save"), ("RIP", 0x578, 64, "save"),
                                          ("EFER", 0x4d0, 64, "save")):
            f = by_name.get(name)
            harness.check(f is not None, f"{base}/vmcb lacks {name}")
            harness.check((f["offset"], f["width"], f["area"]) == (offset, width, area), f"{name}: {f}")
            harness.check(re.match(r"^0x[0-9a-f]{%d}$" % (width // 4), f["value"]), f"{name} value {f['value']}")
        harness.check(int(by_name["NP_ENABLE"]["value"], 16) & 1 == 1, "NP_ENABLE is off")
        harness.check(int(by_name["GUEST_ASID"]["value"], 16) != 0, "guest ASID 0 is the host's")
        harness.check(int(by_name["TLB_CONTROL"]["value"], 16) in (0, 1), f"TLB_CONTROL {by_name['TLB_CONTROL']}")
        intercepts = int(by_name["INTERCEPT_VECTOR_3"]["value"], 16)
        for bit, what in ((0, "INTR"), (18, "CPUID"), (24, "HLT"), (27, "IOIO_PROT"), (28, "MSR_PROT"),
                          (31, "SHUTDOWN")):
            harness.check(intercepts >> bit & 1, f"{what} is not intercepted: {intercepts:#x}")
        sel = c.get(f"{base}/vmcb?name=RIP,EXITCODE").get("fields", [])
        harness.check([f["name"] for f in sel] == ["RIP", "EXITCODE"], f"?name=RIP,EXITCODE: {sel}")
        c.json("GET", f"{base}/vmcb?name=GUEST_RIP", 400)
        err, _ = c.json("GET", f"{base}/vmcs", 404)
        harness.check(err["error"]["code"] == "no_vmcs", f"vmcs on an SVM vCPU: {err}")

        first = c.get(f"{base}/exits")
        time.sleep(2.0)
        second = c.get(f"{base}/exits")
        harness.check(second.get("backend") == "svm", f"{base}/exits backend {second.get('backend')}")
        harness.check(second.get("total", 0) > first.get("total", 0),
                      f"{base}: exits did not grow: {first.get('total')} -> {second.get('total')}")
        counts = {e["name"]: e for e in second.get("counts", [])}
        for name, code, kind in (("VMEXIT_CPUID", 0x72, "cpuid"), ("VMEXIT_HLT", 0x78, "hlt"),
                                 ("VMEXIT_IOIO", 0x7b, "io"), ("VMEXIT_MSR", 0x7c, "msr"),
                                 ("VMEXIT_VMMCALL", 0x81, "hypercall")):
            e = counts.get(name)
            harness.check(e is not None and e["reason"] == code and e["kind"] == kind and e["count"] > 0,
                          f"{base}/exits: {name}: {e}")
            before = {x["name"]: x["count"] for x in first.get("counts", [])}.get(name, 0)
            harness.check(e["count"] > before, f"{base}: {name} did not grow ({before} -> {e['count']})")
        recent = second.get("recent", [])
        harness.check(recent and all(HEX64.match(r["exitinfo1"]) and HEX64.match(r["exitinfo2"]) and r["kind"]
                                     for r in recent), f"{base}: recent exits: {recent[:2]}")

    for vm in sorted({0, n - 1}):
        inject_and_see(c, vm, {"type": "interrupt", "vector": 0x30}, r"^IRQ 0x30\b")
        inject_and_see(c, vm, {"type": "nmi", "vector": 2}, r"^NMI\b")
        line = inject_and_see(c, vm, {"type": "exception", "vector": 13, "error_code": 0x1234},
                              r"^EXC 0x0d ERR 0x0*1234\b")
        harness.check("1234" in line, line)
        inject_and_see(c, vm, {"type": "exception", "vector": 6}, r"^EXC 0x06$")
        # Two NMIs queued together: the second waits for the first handler's IRET (the NMI window
        # through the IRET intercept), then both reach the guest.
        since = c.get(f"/api/v1/vms/{vm}/console").get("next", 0)
        for _ in range(2):
            c.json("POST", f"/api/v1/vms/{vm}/vcpus/0/events", 202, body={"type": "nmi", "vector": 2})
        wait_console(c, vm, since, r"^NMI\n(?:.*\n)*?NMI$")
        exits = c.get(f"/api/v1/vms/{vm}/vcpus/0/exits")
        iret = {e["name"]: e["count"] for e in exits.get("counts", [])}.get("VMEXIT_IRET", 0)
        harness.check(iret >= 3, f"vm{vm}: {iret} IRET intercepts for 3 NMIs (NMI window)")
        summary = c.get(f"/api/v1/vms/{vm}/vcpus/0")
        harness.check(summary.get("events_injected", 0) >= 6, f"vm{vm}: events_injected {summary}")
    statuses = pipelined_posts(c.port, 0, 9, {"type": "interrupt", "vector": 0x31})
    accepted = statuses.count(202)
    harness.check(1 <= accepted <= 8 and statuses == [202] * accepted + [429] * (9 - accepted),
                  f"9 pipelined POSTs: {statuses}")
    check_errors_common(c)


def make_parser():
    p = harness.parser(__doc__)
    p.add_argument("--case", choices=("vmx", "svm", "none"), default=None,
                   help="what to expect (default: vmx under Bochs, none under QEMU)")
    return p


def test(args):
    with harness.boot(args) as emu:
        ready, _ = harness.wait_ready(emu, args, timeout=180 if args.emulator == "bochs" else None)
        harness.check(ready.console != "none" and emu.port, f"no console: {ready.line}")
        c = Client(emu.port)
        case = args.case or ("vmx" if args.emulator == "bochs" else "none")
        if case == "vmx":
            test_bochs(args, c, ready)
        elif case == "svm":
            test_svm(args, c, ready)
        else:
            test_none(args, c, ready)
        harness.check(c.get("/api/v1/system").get("name") == "lantern", "server stopped answering")
        harness.assert_no_panic(emu)


if __name__ == "__main__":
    harness.main(test, make_parser)
