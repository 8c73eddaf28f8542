#!/usr/bin/env python3
"""Networking end to end: boot with a NIC behind the emulator's user network (slirp) and a
forwarded port, check the READY line's ip=/console=, then talk HTTP to the console's server
(web/kernel/http_server serving the web/api router) through 127.0.0.1:<port> only.
The server's own limits, keep-alive, pipelining and timeouts are http_test.py's.

    net_test.py --emulator qemu  --nic e1000
    net_test.py --emulator qemu  --nic virtio-net|virtio-net-modern
    net_test.py --emulator bochs --nic e1000
    net_test.py ... --static          (remastered with ip=10.0.2.15/24 gw=10.0.2.2)
    net_test.py ... --cmdline 'net.irq=intx'

Checks: READY ip=10.0.2.15 console=80; GET /api/v1/system -> 200 JSON (name, version, uptime_ms,
cpus == --cpus, vmx.available false under QEMU TCG); unknown path -> 404 not_found; malformed requests
-> 400, an oversized request-target -> 414, and the server keeps serving; 16 concurrent connections all answered;
clients that connect and vanish do not wedge it; no LANTERN PANIC.
"""
import json
import socket
import sys
import threading
import time

import harness
import emulator

GUEST_IP = "10.0.2.15"  # slirp's first DHCP address (emulators.md)
CONCURRENT = 16         # the console issue needs 16 connections at once


def raw_exchange(port, payload, timeout=20.0):
    """Sends raw bytes, reads until the server closes; returns the response bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def status_of(response):
    head = response.split(b"\r\n", 1)[0]
    parts = head.split(b" ")
    harness.check(len(parts) >= 2 and parts[0] == b"HTTP/1.1", f"bad status line {head!r}")
    return int(parts[1])


def body_json(response):
    head, _, body = response.partition(b"\r\n\r\n")
    harness.check(b"\r\nConnection: close" in head, f"no Connection: close in {head!r}")
    doc = json.loads(body)
    return doc


def check_system(args, port):
    status, headers, body = harness.http_get(port, "/api/v1/system", timeout=30)
    harness.check(status == 200, f"GET /api/v1/system: {status} {body[:200]!r}")
    harness.check(headers.get("Content-Type") == "application/json; charset=utf-8", f"Content-Type {headers}")
    doc = json.loads(body)
    harness.check(doc.get("name") == "lantern", f"name: {doc}")
    harness.check(isinstance(doc.get("version"), str) and doc["version"], f"version: {doc}")
    harness.check(isinstance(doc.get("uptime_ms"), int) and doc["uptime_ms"] > 0, f"uptime_ms: {doc}")
    harness.check(doc.get("cpus_online") == args.cpus, f"cpus_online {doc.get('cpus_online')} != {args.cpus}")
    vmx = doc.get("vmx")
    harness.check(isinstance(vmx, dict) and isinstance(vmx.get("available"), bool), f"vmx: {doc}")
    if args.emulator == "qemu":
        harness.check(vmx["available"] is False, f"QEMU TCG has no VMX, got {vmx}")
    return doc


def check_not_found(port):
    status, _, body = harness.http_get(port, "/api/v1/nope", timeout=30)
    harness.check(status == 404, f"GET /api/v1/nope: {status}")
    doc = json.loads(body)
    harness.check(doc.get("error", {}).get("code") == "not_found", f"404 body: {doc}")


def check_bad_requests(port):
    for payload in (b"BLAH\r\n\r\n", b"GET /api/v1/system HTTP/9.9\r\n\r\n", b"\x00\xff\xfe\r\n\r\n"):
        r = raw_exchange(port, payload)
        harness.check(status_of(r) == 400, f"{payload!r} -> {r[:80]!r}")
        harness.check(body_json(r)["error"]["code"] == "bad_request", f"{payload!r} -> {r!r}")
    # A request-target over the server's 2 KiB limit (web/http/http_connection.h).
    r = raw_exchange(port, b"GET /" + b"a" * 6000 + b" HTTP/1.1\r\n")
    harness.check(status_of(r) == 414, f"oversized request-target -> {r[:80]!r}")
    harness.check(body_json(r)["error"]["code"] == "uri_too_long", f"oversized request-target -> {r!r}")
    # Clients that connect and vanish, or send half a request and close.
    for _ in range(4):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /api/v1/sys")


def check_concurrent(port, n, gap):
    """n sockets open at once, all requests sent before any response is read (each asks the server
    to close after its response, so reading to EOF ends).

    `gap` seconds between connects: the emulators' user network (slirp) listens on the forwarded
    port with a backlog of 1, and Bochs' slirp accepts slowly; a burst of connects then loses
    handshakes in the host kernel and some clients wait out SYN/data retransmission back-off
    (tens of seconds) before slirp even forwards them to the guest."""
    socks = []
    for _ in range(n):
        socks.append(socket.create_connection(("127.0.0.1", port), timeout=60))
        time.sleep(gap)
    try:
        for s in socks:
            s.sendall(b"GET /api/v1/system HTTP/1.1\r\nHost: lantern\r\nConnection: close\r\n\r\n")
        results = [None] * n

        def read(i, s):
            chunks = []
            try:
                while True:
                    data = s.recv(65536)
                    if not data:
                        break
                    chunks.append(data)
                results[i] = b"".join(chunks)
            except OSError as e:
                results[i] = repr(e).encode()

        threads = [threading.Thread(target=read, args=(i, s)) for i, s in enumerate(socks)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
    finally:
        for s in socks:
            s.close()
    ok = sum(1 for r in results if r and r.startswith(b"HTTP/1.1 200 "))
    harness.check(ok == n, f"{ok}/{n} concurrent requests answered 200: {[r[:40] for r in results if r]}")


def test(args):
    cmdline = args.cmdline or ""
    if args.static:
        cmdline = (cmdline + f" ip={GUEST_IP}/24 gw=10.0.2.2").strip()
    with harness.temp_dir() as d:
        iso = harness.remaster(args, d, cmdline) if cmdline else args.iso
        with harness.boot(args, iso=iso) as emu:
            ready, seconds = harness.wait_ready(emu, args)
            print(f"{args.emulator}/{args.nic}: READY after "
                  f"{seconds * 1000:.0f} ms: {ready.line}", flush=True)
            harness.check(ready.ip == GUEST_IP, f"READY ip={ready.ip}, expected {GUEST_IP}")
            harness.check(ready.console == "80", f"READY console={ready.console}, expected 80")
            log = emu.log()
            nic_line = "net: e1000 " if args.nic == "e1000" else "net: virtio-net 1af4:"
            harness.check(nic_line in log, f"no '{nic_line}' line in the log")
            if args.machine == "q35":
                harness.check("pci: ECAM at 0x" in log and "functions (ECAM)" in log,
                              "q35 has an MCFG table, but PCI was not reached through ECAM")
            if args.nic == "virtio-net-modern":
                harness.check("virtio-net 1af4:1041" in log, "modern device not probed as 1af4:1041")
            doc = check_system(args, emu.port)
            print(f"GET /api/v1/system: 200 {json.dumps(doc)}", flush=True)
            check_not_found(emu.port)
            check_bad_requests(emu.port)
            check_concurrent(emu.port, args.concurrent, 0.15 if args.emulator == "bochs" else 0.0)
            check_system(args, emu.port)  # still serving after all of the above
            harness.assert_no_panic(emu)
            harness.assert_ready_once(emu, settle=0.5)


def make_parser():
    p = harness.parser(__doc__.splitlines()[0])
    p.add_argument("--static", action="store_true", help="boot with ip=10.0.2.15/24 gw=10.0.2.2")
    p.add_argument("--cmdline", default="", help="extra kernel command line (remasters the ISO)")
    p.add_argument("--concurrent", type=int, default=CONCURRENT,
                   help=f"connections opened at once (default {CONCURRENT})")
    return p


if __name__ == "__main__":
    harness.main(test, make_parser)
