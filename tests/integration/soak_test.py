#!/usr/bin/env python3
"""Soak: hours of console traffic must leave the kernel's memory where it started.

    soak_test.py --emulator qemu  --cpus 2 --minutes 30     (ctest soak.qemu, label slow)
    soak_test.py --emulator bochs --cpus 4 --minutes 30     (ctest soak.bochs, label slow)

For --minutes, 16 clients (--clients) each hold a keep-alive connection to the console through the
forwarded loopback port and send the lab script's mix (docs/api.md "A lab script"): GET /vcpus,
.../regs, .../vmcs?name=, .../exits, /vms/{vm}/console?since=, /log?since= and POSTs of interrupt
events, in pipelined batches of 1-6 requests written at once; every 40th batch a client closes and
reconnects. Every response must have the status its route allows (see EXPECTED), be well framed
and carry JSON; no transport error, no LANTERN PANIC.

Before and after, with one connection (this test's own GET /api/v1/system) open, these levels are
read and must be equal at the end (polled for up to 60 s while lingering closes finish):
  - lwIP pools `used` (network.pools: TCP_PCB without those in TIME_WAIT, TCP_SEG, PBUF, PBUF_POOL,
    lwIP's heap);
  - the kernel heap (memory.heap: bytes_in_use, live_allocations);
  - the frame allocator (memory.frames.free).
A warm-up pass of the whole mix runs first so that one-time allocations (first snapshot of each
vCPU, lazily built tables) happen before the starting levels are taken.

Under QEMU TCG with `-cpu max` the SVM demo guests run (VMCB reads instead of VMCS reads) at about
1000 requests/s; with `-cpu max,svm=off` there are no guests and per-vCPU routes answer 404. Under
Bochs the VMX demo guests run; Bochs simulates every CPU on one host thread, so the request rate is
far lower. With guests, their exit counters must grow during the soak, and snapshots and event
injection take their real paths.

A connection the emulator's user network (slirp) stops carrying is not the console's fault and is
counted as a stall (client()); more than 2 + 1 per STALL_PER_CONNECTIONS connections opened fails.
"""
import json
import random
import re
import socket
import threading
import time

import harness

LEAK_CHECKED_POOLS = ("TCP_PCB", "TCP_SEG", "PBUF", "PBUF_POOL", "heap")
RECONNECT_EVERY = 40  # batches
SERVER_CLOSED = "server closed the connection"
# web/kernel/http_server.cpp on_poll(): the console closed a connection that had been idle for 15 s
# with no request unparsed or unanswered.
IDLE_CLOSE_RE = re.compile(r"http: [0-9.]+:\d+: idle: closing \(0 input bytes unparsed, 0 responses queued")


class Stall(Exception):
    """A connection the emulator's network stopped carrying (client())."""
STALL_PER_CONNECTIONS = 500  # client(): at most 1 stalled connection per this many opened, plus 2


def stall_budget(opened):
    return 2 + opened // STALL_PER_CONNECTIONS
MAX_PIPELINE = 6

# Allowed statuses per request kind. With guests (Bochs): a snapshot may time out (503) while a
# core is busy; the event queue may be full (429). Without guests (QEMU TCG): per-vCPU routes 404.
EXPECTED = {
    True: {"vcpus": {200}, "regs": {200, 503}, "vmcs": {200, 503}, "exits": {200, 503},
           "console": {200}, "log": {200}, "event": {202, 429}},
    False: {"vcpus": {200}, "regs": {404}, "vmcs": {404}, "exits": {404},
            "console": {404}, "log": {200}, "event": {404}},
}


def make_parser():
    p = harness.parser(__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30.0, help="traffic duration (default 30)")
    p.add_argument("--clients", type=int, default=16)
    return p


class Connection:
    """One raw keep-alive connection that can pipeline and read Content-Length or chunked bodies."""

    def __init__(self, port, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError(SERVER_CLOSED)
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self):
        """Reads one response: (status, headers, body)."""
        status_line = self._line()
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or parts[0] != b"HTTP/1.1" or not parts[1].isdigit():
            raise harness.Failure(f"bad status line {status_line!r}")
        headers = {}
        while True:
            line = self._line()
            if not line:
                break
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode()] = value.strip().decode()
        status = int(parts[1])
        if "content-length" in headers:
            body = self._take(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                body += self._take(size)
                self._take(2)
                if size == 0:
                    break
        else:
            raise harness.Failure(f"response without framing: {status_line!r} {headers}")
        return status, headers, body


def request_bytes(method, path, body=None):
    head = f"{method} {path} HTTP/1.1\r\nHost: lantern\r\n"
    if body is None:
        return (head + "\r\n").encode()
    data = json.dumps(body).encode()
    return (head + f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data


def get_system(port, stats=None):
    """GET /api/v1/system on a new connection; a stalled connection (client()) is recorded in
    `stats` and tried once more."""
    for attempt in (1, 2):
        count_open()
        conn = None
        try:
            conn = Connection(port, 60)
            conn.sock.sendall(b"GET /api/v1/system HTTP/1.1\r\nHost: lantern\r\nConnection: close\r\n\r\n")
            status, _, body = conn.response()
            break
        except (TimeoutError, ConnectionError) as e:
            if attempt == 2 or stats is None or (isinstance(e, ConnectionError) and str(e) != SERVER_CLOSED):
                raise
            with stats.lock:
                stats.stalls.append(f"GET /api/v1/system: {type(e).__name__}: {e}")
                stats.first_batch_stalls += 1
        finally:
            if conn is not None:
                conn.close()
    harness.check(status == 200, f"GET /api/v1/system: {status} {body[:200]!r}")
    return json.loads(body)


def levels(doc):
    """The leak-checked levels from a /api/v1/system document."""
    pools = {p["name"]: p for p in doc.get("network", {}).get("pools", [])}
    for name in LEAK_CHECKED_POOLS + ("TCP_PCB_TIME_WAIT",):
        harness.check(name in pools, f"network.pools has no {name}: {sorted(pools)}")
    memory = doc.get("memory")
    harness.check(isinstance(memory, dict) and "heap" in memory and "frames" in memory,
                  f"/api/v1/system has no memory levels: {sorted(doc)}")
    out = {f"pool.{name}": pools[name]["used"] for name in LEAK_CHECKED_POOLS}
    out["pool.TCP_PCB"] -= pools["TCP_PCB_TIME_WAIT"]["used"]
    out["heap.bytes_in_use"] = memory["heap"]["bytes_in_use"]
    out["heap.live_allocations"] = memory["heap"]["live_allocations"]
    out["frames.free"] = memory["frames"]["free"]
    return out


class Mix:
    """The lab script's requests against the vCPUs that exist (or vm 0 / vcpu 0 when none do)."""

    def __init__(self, vcpus):
        self.targets = [(v["vm"], v["vcpu"]) for v in vcpus if v.get("state") != "stopped"] or [(0, 0)]
        self.svm = {(v["vm"], v["vcpu"]) for v in vcpus if v.get("backend") == "svm"}
        self.console_since = {}
        self.log_since = 0

    def pick(self, rng):
        vm, vcpu = rng.choice(self.targets)
        base = f"/api/v1/vms/{vm}/vcpus/{vcpu}"
        kind = rng.choice(("vcpus", "regs", "vmcs", "exits", "console", "log", "event"))
        if kind == "vcpus":
            return kind, request_bytes("GET", "/api/v1/vcpus")
        if kind == "regs":
            return kind, request_bytes("GET", f"{base}/regs")
        if kind == "vmcs" and (vm, vcpu) in self.svm:
            return kind, request_bytes("GET", f"{base}/vmcb?name=RIP,EXITCODE,N_CR3")
        if kind == "vmcs":
            return kind, request_bytes("GET", f"{base}/vmcs?name=GUEST_RIP,VM_EXIT_REASON,EPT_POINTER")
        if kind == "exits":
            return kind, request_bytes("GET", f"{base}/exits")
        if kind == "console":
            return kind, request_bytes("GET", f"/api/v1/vms/{vm}/console?since={self.console_since.get(vm, 0)}")
        if kind == "log":
            return kind, request_bytes("GET", f"/api/v1/log?since={self.log_since}")
        return kind, request_bytes("POST", f"{base}/events", {"type": "interrupt", "vector": 48})

    def saw(self, kind, path_vm, doc):
        if kind == "console" and isinstance(doc, dict) and isinstance(doc.get("next"), int):
            self.console_since[path_vm] = doc["next"]
        if kind == "log" and isinstance(doc, dict) and isinstance(doc.get("next"), int):
            self.log_since = doc["next"]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.batches = 0
        self.reconnects = 0
        self.by_status = {}
        self.failures = []
        self.stalls = []  # connections the emulator's user network stopped carrying (see client())
        self.first_batch_stalls = 0  # of those, connections that never carried an answer

    def add(self, kind, status):
        with self.lock:
            self.requests += 1
            key = f"{kind} {status}"
            self.by_status[key] = self.by_status.get(key, 0) + 1

    def fail(self, message):
        with self.lock:
            if len(self.failures) < 20:
                self.failures.append(message)


def listen_overflows():
    """The host's TcpExt ListenOverflows + ListenDrops counters (/proc/net/netstat, Linux), or None.

    The emulators' user network (slirp) listens on the forwarded port with a backlog of 1
    (net_test.py): a connection whose handshake overflowed it waits out retransmission back-off
    before slirp hands it to the guest. Host-wide: other programs' listeners count too."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            row = dict(zip(names.split()[1:], values.split()[1:]))
            return int(row.get("ListenOverflows", 0)) + int(row.get("ListenDrops", 0))
    return None


# TCP connections this test opened to the forwarded port; the console's connections_total must
# match it when every connection reached the guest (a stalled connection that slirp never handed
# to the guest is the difference).
OPENED = [0]
OPENED_LOCK = threading.Lock()


def count_open():
    with OPENED_LOCK:
        OPENED[0] += 1


def client(index, port, mix, expected, stop, stats, timeout):
    rng = random.Random(index)
    conn = None
    on_conn = 0  # batches answered on the current connection
    where = "connecting"
    try:
        while not stop.is_set() and not stats.failures:
            try:
                if conn is None:
                    where = "connecting"
                    count_open()
                    conn = Connection(port, timeout)
                    on_conn = 0
                if not run_batch(index, conn, rng, mix, expected, stats, on_conn):
                    return
            except (Stall, TimeoutError) as e:
                # No byte for `timeout` s on this connection, or the console's FIN before an answer. Both emulators' user networks
                # (slirp) were seen to stop carrying one connection in thousands under this load
                # while all the others went on: the console had handed slirp everything (all of
                # it acknowledged, or one segment waiting for an ACK that never came), closed the
                # connection as idle 15 s later (serial log: "http: <peer>: idle: closing (...)")
                # and that FIN never reached this socket either; or slirp never handed the
                # connection to the console at all (its listen backlog of 1 overflowed); or the
                # requests never reached the console, which closed the connection as idle with
                # nothing unanswered (and that FIN did arrive). Such a stall is recorded and the
                # client goes on with a new connection; test() fails when there are more than the
                # stall budget, or more than test() can account for (idle closes with nothing
                # unanswered, connections that never reached the console, listen overflows).
                with stats.lock:
                    stats.stalls.append(f"client {index}: {e} (batch {on_conn} on its connection)")
                    stats.first_batch_stalls += on_conn == 0
                conn.close() if conn is not None else None
                conn = None
                continue
            on_conn += 1
            with stats.lock:
                stats.batches += 1
            if on_conn == RECONNECT_EVERY:
                conn.close()
                conn = None
                with stats.lock:
                    stats.reconnects += 1
    except (OSError, ConnectionError, harness.Failure) as e:
        stats.fail(f"client {index}: {type(e).__name__}: {e} while {where}")
    finally:
        if conn is not None:
            conn.close()


def run_batch(index, conn, rng, mix, expected, stats, on_conn):
    """One pipelined batch of 1-MAX_PIPELINE requests; False after recording a failure."""
    depth = rng.randint(1, MAX_PIPELINE)
    picks = [mix.pick(rng) for _ in range(depth)]
    conn.sock.sendall(b"".join(raw for _, raw in picks))
    for n, (kind, raw) in enumerate(picks):
        what = f"response {n + 1} of {depth} ({raw.split(b' HTTP')[0].decode()})"
        try:
            status, headers, body = conn.response()
        except TimeoutError as e:
            raise Stall(f"no byte for {conn.sock.gettimeout():g} s reading {what}") from e
        except ConnectionError as e:
            if str(e) == SERVER_CLOSED:
                raise Stall(f"the console closed the connection before {what}") from e
            raise
        except (OSError, ConnectionError, harness.Failure) as e:
            stats.fail(f"client {index}: {type(e).__name__}: {e} while reading {what}; "
                       f"batch {on_conn} on this connection")
            return False
        stats.add(kind, status)
        if status not in expected[kind]:
            stats.fail(f"client {index}: {raw.split(b' HTTP')[0].decode()} -> {status} {body[:200]!r}")
            return False
        try:
            doc = json.loads(body)
        except ValueError:
            stats.fail(f"client {index}: {kind} {status}: not JSON: {body[:200]!r}")
            return False
        if status >= 400 and not (isinstance(doc, dict) and isinstance(doc.get("error"), dict)):
            stats.fail(f"client {index}: {kind} {status}: not the error shape: {doc}")
            return False
        if status == 200:
            m = re.search(rb"^GET /api/v1/vms/(\d+)/console", raw)
            mix.saw(kind, int(m.group(1)) if m else 0, doc)
    return True


def total_exits(port):
    count_open()
    doc = json.loads(harness.http_get(port, "/api/v1/vcpus", timeout=60)[2])
    return {(v["vm"], v["vcpu"]): v["exits"] for v in doc.get("vcpus", [])}


def run_mix_once(port, mix, expected):
    """The warm-up: every kind of request once per target, on one connection."""
    count_open()
    conn = Connection(port, 120)
    try:
        for vm, vcpu in mix.targets:
            for kind in ("vcpus", "regs", "vmcs", "exits", "console", "log", "event"):
                rng = random.Random(0)
                while True:
                    k, raw = mix.pick(rng)
                    if k == kind:
                        break
                conn.sock.sendall(raw)
                status, _, body = conn.response()
                harness.check(status in expected[kind], f"warm-up {kind}: {status} {body[:200]!r}")
    finally:
        conn.close()


def test(args):
    with harness.boot(args) as emu:
        ready, seconds = harness.wait_ready(emu, args)
        print(f"{args.emulator} cpus={args.cpus}: READY after {seconds:.1f} s: {ready.line}", flush=True)
        harness.check(ready.console == "80", f"READY console={ready.console}, expected 80")
        port = emu.port
        timeout = 60.0  # per read; the console answers every request within its own bounds (seconds)
        count_open()
        vcpus = json.loads(harness.http_get(port, "/api/v1/vcpus", timeout=timeout)[2]).get("vcpus", [])
        guests = bool(vcpus)
        if args.emulator == "bochs":
            harness.check(guests, "no vCPUs under Bochs: the demo guests should run")
        mix = Mix(vcpus)
        expected = EXPECTED[guests]
        run_mix_once(port, mix, expected)
        time.sleep(2)
        start_doc = get_system(port)
        start = levels(start_doc)
        exits_start = total_exits(port) if guests else {}
        print(f"levels at start: {start}", flush=True)
        print(f"traffic: {args.clients} clients, {args.minutes:g} min, vCPUs {mix.targets if guests else 'none'}",
              flush=True)

        overflows_start = listen_overflows()
        stats = Stats()
        stop = threading.Event()
        threads = []
        for i in range(args.clients):
            t = threading.Thread(target=client, args=(i, port, mix, expected, stop, stats, timeout), daemon=True)
            t.start()
            threads.append(t)
            if args.emulator == "bochs":
                time.sleep(0.15)  # slirp's listen backlog is 1 and Bochs accepts slowly (net_test.py)
        began = time.monotonic()
        deadline = began + args.minutes * 60
        next_report = began + 60
        while time.monotonic() < deadline and not stats.failures:
            time.sleep(1)
            if time.monotonic() >= next_report:
                next_report += 60
                doc = get_system(port, stats)
                with stats.lock:
                    n = stats.requests
                print(f"  {time.monotonic() - began:5.0f} s: {n} requests "
                      f"({n / (time.monotonic() - began):.0f}/s), levels {levels(doc)}", flush=True)
        stop.set()
        for t in threads:
            t.join(timeout + 10)
        elapsed = time.monotonic() - began
        print(f"traffic done: {stats.requests} requests in {stats.batches} pipelined batches over {elapsed:.0f} s "
              f"({stats.requests / max(elapsed, 1):.0f}/s), {stats.reconnects} reconnects", flush=True)
        print(f"statuses: {dict(sorted(stats.by_status.items()))}", flush=True)
        overflows_end = listen_overflows()
        if overflows_start is not None and overflows_end is not None:
            # Host-wide: other programs' listeners count too.
            print(f"host TCP listen overflows/drops during the traffic: {overflows_end - overflows_start}",
                  flush=True)
        if stats.failures:
            with OPENED_LOCK:
                opened = OPENED[0] + 1  # with the get_system() below
            doc = get_system(port)
            print(f"console counters: {doc.get('console')}", flush=True)
            print(f"connections this test opened: {opened}; the console accepted "
                  f"{doc.get('console', {}).get('connections_total')}", flush=True)
            print(f"lwIP pools: {doc.get('network', {}).get('pools')}", flush=True)
        harness.check(not stats.failures, "client failures:\n  " + "\n  ".join(stats.failures))
        with OPENED_LOCK:
            opened = OPENED[0]
        budget = stall_budget(opened)
        print(f"stalled connections (the emulator's network stopped carrying them): {len(stats.stalls)} "
              f"of {opened} opened (budget {budget})", flush=True)
        for line in stats.stalls:
            print(f"  {line}", flush=True)
        harness.check(len(stats.stalls) <= budget,
                      f"{len(stats.stalls)} stalled connections, more than the budget of {budget}")
        # Each stall is accounted for by one of: the console closed the connection as idle with
        # nothing unanswered; slirp never handed the connection to the console (opened -
        # connections_total); or, for a connection that never carried an answer, a host listen
        # overflow (its handshake waited out back-off and slirp may hand it over after the client
        # gave up, so it still counts in connections_total).
        end_counters = get_system(port).get("console", {})
        with OPENED_LOCK:
            opened_now = OPENED[0]
        never_arrived = max(0, opened_now - end_counters.get("connections_total", 0))
        idle_closes = len(IDLE_CLOSE_RE.findall(emu.log()))
        overflows = (overflows_end - overflows_start
                     if overflows_start is not None and overflows_end is not None else 0)
        handshake_stalls = max(never_arrived, min(stats.first_batch_stalls, overflows))
        print(f"console idle closes with nothing unanswered: {idle_closes}; connections that never "
              f"reached the console: {never_arrived}; stalls before a first answer: "
              f"{stats.first_batch_stalls} (host listen overflows {overflows})", flush=True)
        harness.check(len(stats.stalls) <= idle_closes + handshake_stalls,
                      f"{len(stats.stalls)} stalls but only {idle_closes} idle closes with nothing unanswered, "
                      f"{never_arrived} connections that never reached the console and "
                      f"{min(stats.first_batch_stalls, overflows)} first-answer stalls matched by host listen "
                      "overflows: a request went unanswered inside the console")
        harness.check(all(not t.is_alive() for t in threads), "a client did not finish")
        harness.check(stats.requests > 0, "no requests were answered")

        # Lingering closes end within a few seconds; lwIP's TIME_WAIT PCBs are taken out.
        settle_deadline = time.monotonic() + 60
        while True:
            end_doc = get_system(port)
            end = levels(end_doc)
            if end == start or time.monotonic() > settle_deadline:
                break
            time.sleep(2)
        print(f"levels at end:   {end}", flush=True)
        print(f"memory at start: {start_doc['memory']}", flush=True)
        print(f"memory at end:   {end_doc['memory']}", flush=True)
        print(f"console counters: {end_doc.get('console')}", flush=True)
        diff = {k: (start[k], end[k]) for k in start if start[k] != end[k]}
        harness.check(not diff, f"levels not back to their start (start, end): {diff}")
        if guests:
            exits_end = total_exits(port)
            grown = {k: exits_end.get(k, 0) - v for k, v in exits_start.items()}
            print(f"vCPU exits during the soak: {grown}", flush=True)
            harness.check(any(g > 0 for g in grown.values()), f"no vCPU exit counter grew: {grown}")
        harness.check(end_doc.get("console", {}).get("refused", 0) == 0, f"refused connections: {end_doc.get('console')}")
        harness.assert_ready_once(emu, settle=0)
        harness.assert_no_panic(emu)


if __name__ == "__main__":
    harness.main(test, make_parser)
