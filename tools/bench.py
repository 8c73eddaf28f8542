#!/usr/bin/env python3
"""`./lantern bench`: run the benchmarks and print one `BENCH <name> <value> <unit>` line each.

Boot: wall time from emulator launch to the READY line, with 4 CPUs, under QEMU TCG and Bochs
(the median of --runs boots).

Network, for each NIC under QEMU TCG (`e1000`, `virtio` = transitional virtio-net), one boot each
with 1 CPU (lwIP runs on the BSP only, net/stack/README.md):
  BENCH tcp_rx_<nic> <n> MB/s        bulk upload from the host into the kernel's RFC 863 discard
                                     listener (guest port 9, a second hostfwd); MB = 10^6 bytes;
                                     seconds from the first byte sent to the server's close (EOF)
                                     after our shutdown(SHUT_WR); the kernel's own byte count
                                     (`discard: connection closed after N bytes`) must match.
  BENCH http_rtt_<nic>_p50 <n> ms    sequential `GET /api/v1/system`, a new connection each (with
  BENCH http_rtt_<nic>_p99 <n> ms    `Connection: close`, so the server closes): connect to the last response byte.

Where the time goes (measured on the project's 2-core machine, QEMU 7.2 TCG, 1 vCPU, while
another emulator kept one host core busy; this script prints the per-thread CPU use to stderr, and
`--kernel build/lantern.elf --net-irq poll|intx` repeats the network part with that interrupt mode):
- e1000, ~110 MB/s with 128 RX descriptors. With the earlier 32 (31 usable) it managed ~0.95 MB/s:
  lwIP advertises 32 segments (lwipopts.h TCP_WND), and when the ring is full QEMU's e1000 model
  drops the frame (receiver overrun) instead of queueing it; slirp's TCP then recovers only by
  1-1.5 s retransmission timeouts (a capture of the guest link, -object filter-dump, spent 2.9 s of
  a 2.94 s upload in such gaps, with both QEMU threads at ~1%). The ring now outsizes the window
  (net/e1000/e1000_device.h).
- virtio-net, ~80-90 MB/s: no loss (QEMU queues when the ring is empty). Neither QEMU thread is
  saturated (vCPU thread ~40%, main loop with slirp and the device models ~15-30%, the Python
  client ~2%), and a 38% larger TCP_WND did not change the figure, so it is neither TCG's copy and
  checksum loop (64 MiB cost the vCPU ~0.3 CPU-seconds, i.e. >200 MB/s of guest capacity) nor
  the window: it is the hand-off latency between the main loop (slirp reading the host socket,
  raising the interrupt, virtio TX finishing in a bottom half) and the vCPU thread waking from HLT.
- Interrupts vs polling: with net.irq=poll the stack runs only on the 100 Hz LAPIC tick, so
  virtio-net falls to ~6 MB/s (about one 46720-byte window plus what arrives during the pass, per
  10 ms) and the request time's p99 to ~20 ms (a request waits for the next tick unless it arrives
  while a pass is still draining frames). MSI-X (virtio) vs INTx made no measurable difference.
- HTTP round trip, ~0.3-0.4 ms: a few guest passes (accept, parse, build the JSON, send, close)
  plus slirp and the host loopback. e1000 even looks fine with polling (p50 0.25 ms) because its
  transmit runs slirp synchronously on the vCPU thread and the reply lands in the RX ring before
  the poll pass ends.

VMX exit costs, under Bochs (corei7_skylake_x, 1 CPU), in guest TSC ticks — deterministic there
for a given build and configuration, unlike wall time (emulators.md). The kernel boots with
`bench` on its command line, runs tests/guests/bench.S, and prints the lines itself
(vmx/hw/guest_vm.cpp run_benchmarks: the minimum over the guest's iterations minus an RDTSC
baseline):
  BENCH vmcall_roundtrip <n> ticks   null hypercall (VMCALL, rax=0) out and back
  BENCH cpuid_exit <n> ticks         CPUID emulated by the exit handler
  BENCH io_exit <n> ticks            OUT to a port the hypervisor handles
  BENCH msr_exit <n> ticks           RDMSR emulated by the exit handler
  BENCH inject_interrupt <n> ticks   an interrupt queued and injected at the next entry

SVM exit costs beside them, the same guest program in the SVM backend (svm/hw/svm_guest_vm.cpp
run_benchmarks) under Bochs `ryzen` (NPT, NRIP), 1 CPU, in guest TSC ticks:
  BENCH svm_vmmcall_roundtrip <n> ticks   null hypercall (VMMCALL, rax=0) out and back
  BENCH svm_cpuid_exit <n> ticks          CPUID emulated by the exit handler
  BENCH svm_io_exit <n> ticks             OUT to a port (IOIO intercept through the IOPM)
  BENCH svm_msr_exit <n> ticks            RDMSR emulated by the exit handler (MSRPM)
  BENCH svm_inject_interrupt <n> ticks    an interrupt queued and injected through EVENTINJ

Debug console API (web/), one keep-alive connection, sequential requests:
  BENCH api_vcpus_rps <n> req/s          GET /api/v1/vcpus under Bochs (4 CPUs, demo guests)
  BENCH api_regs_p50 <n> ms              GET .../vcpus/0/regs of a vCPU on another core than the
  BENCH api_regs_p99 <n> ms              BSP (the snapshot goes through that core's mailbox)
  BENCH snapshot_latency_p99 <n> ms      kernel-side time from posting the capture to the owning
                                         core's answer, from the `Server-Timing: snapshot;dur=`
                                         header (kernel TSC time: under Bochs that is emulated
                                         time, see emulators.md)
  BENCH api_vcpus_rps_qemu <n> req/s     GET /api/v1/vcpus under QEMU TCG (-cpu max: 2 SVM demo vCPUs)
  BENCH api_system_rps_qemu <n> req/s    GET /api/v1/system under QEMU TCG

With --browser-tab (`./lantern bench --browser-tab`) the API figures are taken while a headless
chromium tab (tests/browser/open_tab.mjs, playwright-core from build/npm/) polls the console's
overview, and are printed with a `_tab` suffix: the browser console's cost to lab scripts.

Python 3 standard library only; the network benchmarks only talk to 127.0.0.1, and every loop is
bounded by count and by time.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import emulator as emu_mod  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAKE_ISO = os.path.join(REPO_ROOT, "iso", "make_iso.sh")

# name -> (emulator, cpus, timeout in seconds)
BOOT_BENCHMARKS = {
    "boot_qemu_smp4": ("qemu", 4, 30.0),
    "boot_bochs_smp4": ("bochs", 4, 120.0),
}
# bench name -> emulator NIC (QEMU TCG)
VMX_BENCHMARK = "vmx_exits"
VMX_FIGURES = ("vmcall_roundtrip", "cpuid_exit", "io_exit", "msr_exit", "inject_interrupt")
VMX_BENCH_TIMEOUT = 240.0
SVM_BENCHMARK = "svm_exits"
SVM_FIGURES = ("svm_vmmcall_roundtrip", "svm_cpuid_exit", "svm_io_exit", "svm_msr_exit", "svm_inject_interrupt")
SVM_BENCH_CPU = "ryzen"  # Bochs' AMD model with SVM, NPT and NRIP (emulators.md)
API_BENCHMARK_BOCHS = "api_bochs"
API_BENCHMARK_QEMU = "api_qemu"
API_SECONDS = 20.0  # each request-rate or latency loop stops after this long
API_REQUESTS = 400  # ... or after this many requests
# QEMU answers thousands of requests per second: its rate loops run for a fixed time instead, long
# enough that the TCG warm-up and one browser-tab round are averaged in rather than dominating.
API_QEMU_SECONDS = 5.0
API_READY_TIMEOUT = {"qemu": 30.0, "bochs": 180.0}
SERVER_TIMING_RE = re.compile(r"snapshot;dur=(?P<ms>[0-9.]+)")
NET_BENCHMARKS = {
    "net_e1000": ("e1000", "e1000"),
    "net_virtio": ("virtio", "virtio-net"),
}

DISCARD_PORT = 9  # RFC 863; net/stack/discard_listener.h kDiscardPort
UPLOAD_BYTES = 64 << 20  # 64 MiB, unless the time bound ends the upload first
UPLOAD_SEND_SECONDS = 20.0  # stop sending after this long
UPLOAD_DRAIN_SECONDS = 30.0  # then wait at most this long for the server's close
UPLOAD_CHUNK = 64 << 10
RTT_REQUESTS = 200
RTT_SECONDS = 30.0  # stop issuing requests after this long
RTT_MIN_SAMPLES = 20
SOCKET_TIMEOUT = 15.0  # one connect/send/recv stalled this long fails the benchmark
# The console keeps HTTP/1.1 connections open (web/README.md): ask it to close after the answer.
HTTP_REQUEST = b"GET /api/v1/system HTTP/1.1\r\nHost: lantern\r\nConnection: close\r\n\r\n"
DISCARD_CLOSED_RE = re.compile(r"discard: connection closed after (?P<bytes>\d+) bytes(?P<rest>.*)$", re.M)


class BenchError(RuntimeError):
    pass


def boot_to_ready_ms(iso: str, emulator: str, cpus: int, timeout: float) -> float:
    cfg = emu_mod.Config(emulator=emulator, iso=iso, cpus=cpus)
    with emu_mod.Emulator(cfg) as emu:
        try:
            _, seconds = emu.wait_for(emu_mod.READY_RE, timeout)
        except emu_mod.EmulatorError as e:
            raise emu_mod.EmulatorError(f"{e}\n--- serial log tail ---\n{emu.log_tail()}") from e
    return seconds * 1000.0


# ---- network helpers (127.0.0.1 only) ------------------------------------------------------------
def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


def tcp_upload(port: int, total: int, send_seconds: float, drain_seconds: float) -> tuple[int, float]:
    """Sends up to `total` bytes to 127.0.0.1:port, then shuts down the write side and waits for
    the server's close. Returns (bytes sent, seconds from the first byte to the close)."""
    chunk = bytes(range(256)) * (UPLOAD_CHUNK // 256)
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT) as s:
        sent = 0
        start = time.monotonic()
        send_deadline = start + send_seconds
        while sent < total and time.monotonic() < send_deadline:
            n = min(len(chunk), total - sent)
            try:
                s.sendall(chunk[:n])
            except socket.timeout:
                raise BenchError(f"upload stalled for {SOCKET_TIMEOUT:g} s after {sent} bytes") from None
            except OSError as e:
                raise BenchError(f"upload failed after {sent} bytes: {e}") from None
            sent += n
        s.shutdown(socket.SHUT_WR)
        drain_deadline = time.monotonic() + drain_seconds
        while True:  # the discard server sends nothing: wait for its FIN (EOF)
            if time.monotonic() >= drain_deadline:
                raise BenchError(f"no close from the discard server {drain_seconds:g} s after {sent} bytes")
            try:
                data = s.recv(4096)
            except socket.timeout:
                continue
            except OSError as e:
                raise BenchError(f"waiting for the server's close after {sent} bytes: {e}") from None
            if not data:
                break
        return sent, time.monotonic() - start


def http_round_trip(port: int) -> float:
    """One GET on a new connection; returns seconds from connect to the server's close."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT) as s:
        s.sendall(HTTP_REQUEST)
        chunks = []
        for _ in range(1024):  # bounded: the response is a few hundred bytes
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    elapsed = time.monotonic() - start
    response = b"".join(chunks)
    if not response.startswith(b"HTTP/1.1 200 "):
        raise BenchError(f"GET /api/v1/system answered {response[:60]!r}")
    return elapsed


def http_rtts_ms(port: int, requests: int, seconds: float) -> list[float]:
    samples = []
    deadline = time.monotonic() + seconds
    for _ in range(requests):
        if time.monotonic() >= deadline:
            break
        try:
            samples.append(http_round_trip(port) * 1000.0)
        except OSError as e:
            raise BenchError(f"request {len(samples) + 1} failed: {e}") from None
    if len(samples) < min(RTT_MIN_SAMPLES, requests):
        raise BenchError(f"only {len(samples)} requests completed in {seconds:g} s")
    return samples


def proc_stat_fields(path: str) -> Optional[list[str]]:
    """The fields of a /proc/<pid>[/task/<tid>]/stat file after the command name, or None when it
    is gone. proc(5) numbers them from 1 with the name as 2: ppid (4) is [1], utime, stime,
    cutime and cstime (14-17) are [11:15]."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of QEMU's main-loop thread (the process's first thread: slirp and
    the device models run there) and of all its other threads together (the TCG vCPU thread and
    helpers), from /proc; {} where /proc is missing. QEMU names no threads by default."""
    result: dict[str, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return result
    for tid in tids:
        fields = proc_stat_fields(f"/proc/{pid}/task/{tid}/stat")
        if fields is None:
            continue
        key = "main loop" if tid == str(pid) else "vCPU+other"
        result[key] = result.get(key, 0.0) + (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return result


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds (user + system, with reaped children) of `root` and all its live descendants,
    from /proc (0.0 where /proc is missing): the browser tab's node, chromium and its helpers."""
    parent, busy = {}, {}
    for name in os.listdir("/proc") if os.path.isdir("/proc") else []:
        fields = proc_stat_fields(f"/proc/{name}/stat") if name.isdigit() else None
        if fields is not None:
            parent[int(name)] = int(fields[1])
            busy[int(name)] = sum(int(x) for x in fields[11:15]) / CLOCK_TICKS
    total = 0.0
    for pid, seconds in busy.items():
        p = pid
        while p > 1 and p != root:
            p = parent.get(p, 0)
        if p == root:
            total += seconds
    return total


def cpu_seconds(pid: int) -> dict[str, float]:
    """thread_cpu_seconds() of QEMU plus this process (the benchmark client) as "client"."""
    result = thread_cpu_seconds(pid)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["client"] = usage.ru_utime + usage.ru_stime
    return result


def cpu_share(before: dict[str, float], after: dict[str, float], seconds: float) -> str:
    """Busy share of wall time per part, e.g. "vCPU+other 40%, main loop 25%, client 30%"."""
    parts = []
    for key in ("vCPU+other", "main loop", "client"):
        if key in after and seconds > 0:
            parts.append(f"{key} {100.0 * (after[key] - before.get(key, 0.0)) / seconds:.0f}%")
    return ", ".join(parts) or "n/a"


def remaster(kernel: str, out_dir: str, cmdline: str) -> str:
    """An ISO with another command line; the build's guest modules (build/iso/boot/modules) stay."""
    iso = os.path.join(out_dir, "lantern.iso")
    cmd = [MAKE_ISO, "--kernel", kernel, "--stage", os.path.join(out_dir, "stage"),
           "--output", iso, "--cmdline", cmdline]
    staged = os.path.join(os.path.dirname(os.path.abspath(kernel)), "iso", "boot", "modules")
    if os.path.isdir(staged):
        for name in sorted(os.listdir(staged)):
            cmd += ["--module", os.path.join(staged, name)]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    if r.returncode != 0:
        raise BenchError(f"make_iso.sh failed ({r.returncode}):\n{r.stdout}")
    return iso


def vmx_benchmarks(kernel: str, out_dir: str, cpu_model: Optional[str] = None,
                   figures: tuple[str, ...] = VMX_FIGURES) -> list[str]:
    """Boots Bochs (`cpu_model`, default the VMX model) with `bench` and returns the kernel's
    `BENCH <name> <n> ticks` lines for `figures`."""
    iso = remaster(kernel, os.path.join(out_dir, cpu_model or "vmx"), "bench")
    cfg = emu_mod.Config(emulator="bochs", iso=iso, cpus=1, nic="none", cpu_model=cpu_model)
    with emu_mod.Emulator(cfg) as emu:
        emu.wait_exit(VMX_BENCH_TIMEOUT)
        log = emu.log()
    found = dict(re.findall(r"^BENCH (\w+) (\d+) ticks$", log, re.M))
    if not found:
        raise BenchError("no BENCH lines from the kernel's bench mode; log tail:\n"
                         + "\n".join(log.splitlines()[-15:]))
    missing = [f for f in figures if f not in found]
    if missing:
        raise BenchError(f"the kernel did not report {', '.join(missing)}")
    return [f"BENCH {name} {found[name]} ticks" for name in figures]


def net_benchmarks(iso: str, label: str, nic: str, suffix: str, upload_bytes: int,
                   requests: int) -> list[str]:
    """Boots QEMU TCG with `nic` and port 9 forwarded; returns the BENCH lines."""
    discard_port = emu_mod.free_port()
    cfg = emu_mod.Config(emulator="qemu", iso=iso, cpus=1, nic=nic,
                         extra_forwards=((discard_port, DISCARD_PORT),))
    lines = []
    with emu_mod.Emulator(cfg) as emu:
        try:
            ready, _ = emu.wait_for(emu_mod.READY_RE, 30.0)
            if ready.group("ip") == "none" or ready.group("console") == "none":
                raise BenchError(f"no network: {ready.group(0)}")
            pid = emu._proc.pid if emu._proc else 0  # noqa: SLF001 - per-thread CPU use only

            before = cpu_seconds(pid)
            sent, seconds = tcp_upload(discard_port, upload_bytes, UPLOAD_SEND_SECONDS, UPLOAD_DRAIN_SECONDS)
            share = cpu_share(before, cpu_seconds(pid), seconds)
            m, _ = emu.wait_for(DISCARD_CLOSED_RE, 10.0, what="the discard server's byte count")
            if int(m.group("bytes")) != sent:
                raise BenchError(f"sent {sent} bytes, the kernel counted {m.group('bytes')}")
            print(f"bench.py: tcp_rx_{label}{suffix}: {sent} bytes in {seconds:.2f} s; CPU busy:"
                  f" {share}; kernel:{m.group('rest')}", file=sys.stderr, flush=True)
            lines.append(f"BENCH tcp_rx_{label}{suffix} {sent / seconds / 1e6:.2f} MB/s")

            before = cpu_seconds(pid)
            started = time.monotonic()
            rtts = http_rtts_ms(emu.port, requests, RTT_SECONDS)
            share = cpu_share(before, cpu_seconds(pid), time.monotonic() - started)
            print(f"bench.py: http_rtt_{label}{suffix}: {len(rtts)} requests, min {min(rtts):.2f} ms,"
                  f" max {max(rtts):.2f} ms; CPU busy: {share}", file=sys.stderr, flush=True)
            lines.append(f"BENCH http_rtt_{label}{suffix}_p50 {statistics.median(rtts):.2f} ms")
            lines.append(f"BENCH http_rtt_{label}{suffix}_p99 {percentile(rtts, 99):.2f} ms")
            m = emu_mod.PANIC_RE.search(emu.log())
            if m:
                raise BenchError(f"kernel panicked: {m.group(0)}")
        except (BenchError, emu_mod.EmulatorError) as e:
            raise BenchError(f"{e}\n--- serial log tail ---\n{emu.log_tail()}") from e
    return lines


class KeepAliveClient:
    """Sequential HTTP/1.1 requests on one connection to 127.0.0.1 (reconnects when closed)."""

    def __init__(self, port: int):
        import http.client
        self._http = http.client
        self.port = port
        self.conn = None

    def get(self, path: str) -> tuple[int, dict, bytes]:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = self._http.HTTPConnection("127.0.0.1", self.port, timeout=SOCKET_TIMEOUT)
            try:
                self.conn.request("GET", path)
                r = self.conn.getresponse()
                body = r.read()
                headers = {k.lower(): v for k, v in r.getheaders()}
                if headers.get("connection", "").lower() == "close":
                    self.close()
                return r.status, headers, body
            except (self._http.HTTPException, OSError) as e:
                self.close()
                if attempt == 2:
                    raise BenchError(f"GET {path}: {e}") from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def request_rate(client: KeepAliveClient, path: str, max_requests: Optional[int] = API_REQUESTS,
                 seconds: float = API_SECONDS) -> tuple[float, int]:
    """Requests per second of sequential GETs of `path`, for `seconds` or `max_requests` requests
    (None: no request bound), whichever ends first."""
    count = 0
    start = time.monotonic()
    while (max_requests is None or count < max_requests) and time.monotonic() - start < seconds:
        status, _, body = client.get(path)
        if status != 200:
            raise BenchError(f"GET {path} answered {status}: {body[:200]!r}")
        count += 1
    return count / (time.monotonic() - start), count


def open_browser_tab(port: int) -> subprocess.Popen:
    """A headless chromium tab on the console's overview (tests/browser/open_tab.mjs), polling
    as a person's tab would; stopped by the caller (SIGTERM, then SIGKILL)."""
    script = os.path.join(REPO_ROOT, "tests", "browser", "open_tab.mjs")
    tab = subprocess.Popen(["node", script, "--port", str(port), "--modules", os.path.join(REPO_ROOT, "build", "npm")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    line = tab.stdout.readline()
    if "tab open" not in line:
        tab.kill()
        raise BenchError(f"the browser tab did not open: {line}{tab.stdout.read()[:2000]}")
    time.sleep(10.0)  # past the page load, into steady polling
    return tab


def close_browser_tab(tab: subprocess.Popen) -> str:
    """Stops the tab; returns its last report line (the requests its page made)."""
    tab.terminate()
    try:
        out, _ = tab.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(tab.pid, 9)
        out, _ = tab.communicate()
    lines = [line for line in (out or "").splitlines() if line.startswith("open_tab.mjs:")]
    return lines[-1].removeprefix("open_tab.mjs: ") if lines else "no report"


def api_benchmarks(iso: str, emulator: str, browser_tab: bool = False) -> list[str]:
    """Boots `emulator` with 4 CPUs (Bochs) or 2 (QEMU TCG) and the demo guests; returns BENCH lines.
    With browser_tab, a chromium tab stays open on the console's overview meanwhile (names get a
    _tab suffix)."""
    cpus = 4 if emulator == "bochs" else 2
    cfg = emu_mod.Config(emulator=emulator, iso=iso, cpus=cpus)
    lines = []
    with emu_mod.Emulator(cfg) as emu:
        try:
            ready, _ = emu.wait_for(emu_mod.READY_RE, API_READY_TIMEOUT[emulator])
            if ready.group("console") == "none":
                raise BenchError(f"no console: {ready.group(0)}")
            tab = open_browser_tab(emu.port) if browser_tab else None
            emulator_pid = emu._proc.pid if emu._proc else 0  # noqa: SLF001 - CPU use only
            started, emulator_before = time.monotonic(), tree_cpu_seconds(emulator_pid)
            tab_before = tree_cpu_seconds(tab.pid) if tab is not None else 0.0
            try:
                lines = api_measurements(emu, ready, emulator)
            finally:
                seconds = time.monotonic() - started
                emulator_share = (tree_cpu_seconds(emulator_pid) - emulator_before) / seconds
                tab_share = (tree_cpu_seconds(tab.pid) - tab_before) / seconds if tab is not None else 0.0
                tab_report = close_browser_tab(tab) if tab is not None else ""
            # Bochs runs every emulated CPU on one host thread: anything else busy on a 2-core
            # host (the browser) can slow its wall-clock rate.
            print(f"bench.py: API measurements {seconds:.0f} s: {emulator} {100 * emulator_share:.0f}% of a core"
                  + (f", browser tab {100 * tab_share:.0f}% ({tab_report})" if tab is not None else ""),
                  file=sys.stderr, flush=True)
            if browser_tab:
                lines = [re.sub(r"^(BENCH \S+)", r"\1_tab", line) for line in lines]
            m = emu_mod.PANIC_RE.search(emu.log())
            if m:
                raise BenchError(f"kernel panicked: {m.group(0)}")
        except (BenchError, emu_mod.EmulatorError) as e:
            raise BenchError(f"{e}\n--- serial log tail ---\n{emu.log_tail()}") from e
    return lines


def api_measurements(emu, ready, emulator: str) -> list[str]:
    """The API figures against a booted emulator (api_benchmarks)."""
    lines = []
    client = KeepAliveClient(emu.port)
    if emulator == "qemu":
        rate, n = request_rate(client, "/api/v1/vcpus", None, API_QEMU_SECONDS)
        print(f"bench.py: api_vcpus_rps_qemu: {n} requests", file=sys.stderr, flush=True)
        lines.append(f"BENCH api_vcpus_rps_qemu {rate:.1f} req/s")
        rate, n = request_rate(client, "/api/v1/system", None, API_QEMU_SECONDS)
        print(f"bench.py: api_system_rps_qemu: {n} requests", file=sys.stderr, flush=True)
        lines.append(f"BENCH api_system_rps_qemu {rate:.1f} req/s")
        return lines
    if int(ready.group("vcpus")) < 2:
        raise BenchError(f"needs demo vCPUs on at least 2 cores: {ready.group(0)}")
    rate, n = request_rate(client, "/api/v1/vcpus")
    print(f"bench.py: api_vcpus_rps: {n} requests", file=sys.stderr, flush=True)
    lines.append(f"BENCH api_vcpus_rps {rate:.1f} req/s")
    # vm 1 runs on core 1 (one demo VM per core, vm id = core index): a remote capture.
    path = "/api/v1/vms/1/vcpus/0/regs"
    wall, kernel = [], []
    start = time.monotonic()
    while len(wall) < API_REQUESTS and time.monotonic() - start < API_SECONDS:
        t0 = time.monotonic()
        status, headers, body = client.get(path)
        wall.append((time.monotonic() - t0) * 1000.0)
        if status != 200:
            raise BenchError(f"GET {path} answered {status}: {body[:200]!r}")
        m = SERVER_TIMING_RE.search(headers.get("server-timing", ""))
        if m is None:
            raise BenchError(f"GET {path}: no Server-Timing snapshot;dur= header: {headers}")
        kernel.append(float(m.group("ms")))
    if len(wall) < RTT_MIN_SAMPLES:
        raise BenchError(f"only {len(wall)} regs requests completed in {API_SECONDS:g} s")
    print(f"bench.py: api_regs: {len(wall)} requests, min {min(wall):.2f} ms, max {max(wall):.2f} ms;"
          f" snapshot min {min(kernel):.3f} ms max {max(kernel):.3f} ms", file=sys.stderr, flush=True)
    lines.append(f"BENCH api_regs_p50 {statistics.median(wall):.2f} ms")
    lines.append(f"BENCH api_regs_p99 {percentile(wall, 99):.2f} ms")
    lines.append(f"BENCH snapshot_latency_p99 {percentile(kernel, 99):.3f} ms")
    client.close()
    return lines


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="bench.py", description=__doc__.splitlines()[0])
    p.add_argument("--iso", required=True)
    p.add_argument("--kernel", default=None,
                   help="lantern.elf: with --net-irq other than auto, the ISO is remastered from it")
    p.add_argument("--runs", type=int, default=1, help="boots per boot benchmark (median is printed)")
    p.add_argument("--only", action="append", default=[],
                   choices=sorted(BOOT_BENCHMARKS) + sorted(NET_BENCHMARKS)
                   + [VMX_BENCHMARK, SVM_BENCHMARK, API_BENCHMARK_BOCHS, API_BENCHMARK_QEMU],
                   help="run only this benchmark (repeatable)")
    p.add_argument("--net-irq", default="auto", choices=("auto", "intx", "poll"),
                   help="network benchmarks with net.irq=<this> (names get a _<this> suffix)")
    p.add_argument("--upload-mib", type=int, default=UPLOAD_BYTES >> 20,
                   help="bytes to upload per NIC, MiB (the time bound may stop it first)")
    p.add_argument("--requests", type=int, default=RTT_REQUESTS, help="HTTP requests per NIC")
    p.add_argument("--browser-tab", action="store_true",
                   help="api_bochs/api_qemu with a headless chromium tab open on the console (figures _tab)")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    if not 1 <= args.upload_mib <= 1024:
        p.error("--upload-mib must be 1..1024")
    if not 1 <= args.requests <= 10000:
        p.error("--requests must be 1..10000")
    if args.net_irq != "auto" and not args.kernel:
        p.error("--net-irq needs --kernel (the ISO is remastered with net.irq=...)")
    status = 0
    for name, (emulator, cpus, timeout) in BOOT_BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        try:
            samples = [boot_to_ready_ms(args.iso, emulator, cpus, timeout) for _ in range(args.runs)]
        except emu_mod.EmulatorError as e:
            print(f"bench.py: {name} failed: {e}", file=sys.stderr)
            status = 1
            continue
        print(f"BENCH {name} {statistics.median(samples):.0f} ms", flush=True)

    with tempfile.TemporaryDirectory(prefix="lantern-bench-") as tmp:
        for name, cpu_model, figures in ((VMX_BENCHMARK, None, VMX_FIGURES),
                                         (SVM_BENCHMARK, SVM_BENCH_CPU, SVM_FIGURES)):
            if args.only and name not in args.only:
                continue
            try:
                if not args.kernel:
                    raise BenchError("needs --kernel (build/lantern.elf): the ISO is remastered with `bench`")
                for line in vmx_benchmarks(args.kernel, tmp, cpu_model, figures):
                    print(line, flush=True)
            except (BenchError, emu_mod.EmulatorError, OSError, subprocess.SubprocessError) as e:
                print(f"bench.py: {name} failed: {e}", file=sys.stderr)
                status = 1
        for name, emulator in ((API_BENCHMARK_BOCHS, "bochs"), (API_BENCHMARK_QEMU, "qemu")):
            if args.only and name not in args.only:
                continue
            try:
                for line in api_benchmarks(args.iso, emulator, args.browser_tab):
                    print(line, flush=True)
            except (BenchError, emu_mod.EmulatorError, OSError) as e:
                print(f"bench.py: {name} failed: {e}", file=sys.stderr)
                status = 1
        iso, suffix = args.iso, ""
        for name, (label, nic) in NET_BENCHMARKS.items():
            if args.only and name not in args.only:
                continue
            try:
                if args.net_irq != "auto" and iso == args.iso:
                    iso, suffix = remaster(args.kernel, tmp, f"net.irq={args.net_irq}"), f"_{args.net_irq}"
                for line in net_benchmarks(iso, label, nic, suffix, args.upload_mib << 20, args.requests):
                    print(line, flush=True)
            except (BenchError, emu_mod.EmulatorError, OSError, subprocess.SubprocessError) as e:
                print(f"bench.py: {name} failed: {e}", file=sys.stderr)
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
