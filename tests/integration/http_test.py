#!/usr/bin/env python3
"""The console's HTTP/1.1 server end to end (web/http, web/kernel/http_server) under an emulator,
through the forwarded port on 127.0.0.1 only.

    http_test.py --emulator qemu --nic e1000

Checks, each against what the kernel served:
  - error shape and status for framing errors, each followed by a close: malformed -> 400,
    request head > 8 KiB -> 431, Content-Length > 16 KiB -> 413, request-target > 2 KiB -> 414,
    unsupported transfer coding -> 501;
  - keep-alive and pipelining: several requests in one write, answered in order on one
    connection (HEAD with the GET's Content-Length and no body), then more on the same one;
  - a 1 MiB body streamed chunked (BodySource) through lwIP, HEAD of it, a slow reader, and 16
    streams at once (more than lwIP's TCP segments: ERR_MEM and resumption);
  - a slow client (half a request, then silence) gets 408 and a close after the request timeout
    (5 s) while 16 concurrent clients are all answered meanwhile;
  - afterwards the server still answers, its counters moved, and lwIP's pool levels reported by
    /api/v1/system (network.pools) are back to where they started (TCP PCBs in TIME_WAIT, reclaimable
    by lwIP, are counted apart).
"""
import json
import socket
import threading
import time

import harness

CONCURRENT = 16
REQUEST_TIMEOUT_S = 5.0  # ConnectionLimits::request_timeout_ms (web/http/http_connection.h)
# Pools whose `used` must come back to the starting level once every connection is gone.
LEAK_CHECKED = ("TCP_PCB", "TCP_SEG", "PBUF", "PBUF_POOL", "heap")


class Reader:
    """Reads HTTP/1.1 responses from a socket (Content-Length or chunked framing)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def _until(self, marker):
        while marker not in self.buf:
            self._fill()
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self, head_only=False):
        head = self._until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        harness.check(parts[0] == "HTTP/1.1", f"bad status line {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = b""
        if head_only or int(parts[1]) in (204, 304):
            pass
        elif "content-length" in headers:
            body = self._exactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            while True:
                size = int(self._until(b"\r\n")[:-2], 16)
                if size == 0:
                    self._until(b"\r\n")
                    break
                body += self._exactly(size)
                self._exactly(2)
        return int(parts[1]), headers, body

    def closed(self, timeout):
        """True if the peer closes (EOF) within `timeout` with no more bytes."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        harness.check(not data, f"unexpected bytes after the last response: {data[:100]!r}")
        return True


def connect(port, timeout=20.0):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def get_system(port):
    with connect(port) as s:
        s.sendall(b"GET /api/v1/system HTTP/1.1\r\nHost: lantern\r\nConnection: close\r\n\r\n")
        status, headers, body = Reader(s).response()
    harness.check(status == 200, f"GET /api/v1/system: {status} {body[:200]!r}")
    harness.check(headers.get("content-type") == "application/json; charset=utf-8", f"headers {headers}")
    return json.loads(body)


def pool_levels(doc):
    pools = doc.get("network", {}).get("pools")
    harness.check(isinstance(pools, list) and pools, f"no network.pools in {doc}")
    levels = {p["name"]: p for p in pools}
    for name in LEAK_CHECKED + ("TCP_PCB_TIME_WAIT",):
        harness.check(name in levels, f"network.pools has no {name}: {sorted(levels)}")
    return levels


def live_levels(levels):
    """`used` of the leak-checked pools, TCP PCBs in TIME_WAIT taken out."""
    out = {name: levels[name]["used"] for name in LEAK_CHECKED}
    out["TCP_PCB"] -= levels["TCP_PCB_TIME_WAIT"]["used"]
    return out


def expect_error(port, payload, status, code, what):
    with connect(port) as s:
        s.sendall(payload)
        reader = Reader(s)
        got, headers, body = reader.response()
        harness.check(got == status, f"{what}: status {got}, expected {status}: {body[:200]!r}")
        harness.check(headers.get("connection") == "close", f"{what}: no Connection: close in {headers}")
        harness.check(headers.get("content-type") == "application/json; charset=utf-8", f"{what}: {headers}")
        doc = json.loads(body)
        err = doc.get("error", {})
        harness.check(err.get("code") == code and isinstance(err.get("message"), str) and err["message"],
                      f"{what}: error shape {doc}")
        harness.check(reader.closed(10), f"{what}: the server did not close after {status}")
    print(f"{what}: {status} {code}", flush=True)


def check_errors(port):
    expect_error(port, b"BLAH /x\r\n\r\n", 400, "bad_request", "malformed request line")
    expect_error(port, b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", 400, "bad_request", "malformed header")
    expect_error(port, b"GET /api/v1/system HTTP/1.1\r\nX-Pad: " + b"p" * 9000 + b"\r\n\r\n", 431,
                 "headers_too_large", "9 KiB header")
    expect_error(port, b"POST /api/v1/system HTTP/1.1\r\nContent-Length: 20000\r\n\r\n" + b"b" * 1000, 413,
                 "body_too_large", "20 KB body")
    expect_error(port, b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\n\r\n", 414, "uri_too_long", "3000-byte URL")
    expect_error(port, b"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "not_implemented",
                 "gzip transfer coding")


def check_keep_alive_and_pipelining(port):
    with connect(port) as s:
        reader = Reader(s)
        s.sendall(b"GET /api/v1/system HTTP/1.1\r\nHost: l\r\n\r\n"
                  b"HEAD /api/v1/system HTTP/1.1\r\nHost: l\r\n\r\n"
                  b"GET /api/v1/nope HTTP/1.1\r\nHost: l\r\n\r\n"
                  b"DELETE /api/v1/system HTTP/1.1\r\nHost: l\r\n\r\n")
        status, headers, body = reader.response()
        harness.check(status == 200 and json.loads(body).get("name") == "lantern", f"pipelined #1: {status} {body[:100]!r}")
        harness.check("connection" not in headers, f"HTTP/1.1 response asked to close: {headers}")
        status, headers, body = reader.response(head_only=True)
        harness.check(status == 200 and int(headers.get("content-length", "0")) > 100,
                      f"pipelined HEAD: {status} {headers}")
        status, _, body = reader.response()
        harness.check(status == 404 and json.loads(body)["error"]["code"] == "not_found", f"pipelined #3: {status} {body!r}")
        status, headers, body = reader.response()
        harness.check(status == 405 and headers.get("allow") == "GET, HEAD", f"pipelined #4: {status} {headers}")
        # The same connection, later: still open.
        for i in range(3):
            s.sendall(b"GET /api/v1/system HTTP/1.1\r\nHost: l\r\n\r\n")
            status, _, body = reader.response()
            harness.check(status == 200, f"keep-alive request {i}: {status}")
        s.sendall(b"GET /api/v1/system HTTP/1.1\r\nConnection: close\r\n\r\n")
        status, headers, _ = reader.response()
        harness.check(status == 200 and headers.get("connection") == "close", f"close request: {status} {headers}")
        harness.check(reader.closed(10), "the server did not close after Connection: close")
    print("keep-alive + pipelining: 4 pipelined + 4 sequential on one connection, in order", flush=True)


def pattern(n):
    return (b"0123456789abcdef" * (n // 16 + 1))[:n]


def check_streaming(port):
    """A large body from a BodySource (the API's /api/v1/debug/stream) goes out
    chunked through lwIP's send buffer, also to a client that reads slowly, and the connection's
    framing survives it."""
    size = 1 << 20
    with connect(port) as s:
        reader = Reader(s)
        started = time.monotonic()
        s.sendall(f"GET /api/v1/debug/stream?bytes={size} HTTP/1.1\r\nHost: l\r\n\r\n".encode())
        status, headers, body = reader.response()
        seconds = time.monotonic() - started
        harness.check(status == 200 and headers.get("transfer-encoding") == "chunked",
                      f"streamed GET: {status} {headers}")
        harness.check(body == pattern(size), f"streamed body: {len(body)} bytes, expected {size} of the pattern")
        s.sendall(b"HEAD /api/v1/debug/stream?bytes=1000 HTTP/1.1\r\nHost: l\r\n\r\n")
        status, headers, _ = reader.response(head_only=True)
        harness.check(status == 200 and headers.get("transfer-encoding") == "chunked", f"streamed HEAD: {headers}")
        # A slow reader: 256 KiB taken 8 KiB at a time with pauses; the server waits on its send buffer.
        s.sendall(b"GET /api/v1/debug/stream?bytes=262144 HTTP/1.1\r\nHost: l\r\n\r\n")
        time.sleep(0.5)
        raw = b""
        while b"0\r\n\r\n" not in raw[-16:]:
            data = s.recv(8192)
            harness.check(bool(data), "the server closed during the slow read")
            raw += data
            time.sleep(0.01)
        head, _, chunked = raw.partition(b"\r\n\r\n")
        harness.check(head.startswith(b"HTTP/1.1 200"), f"slow read: {head[:100]!r}")
        reader.buf = head + b"\r\n\r\n" + chunked
        status, _, body = reader.response()
        harness.check(body == pattern(262144), f"slow read body: {len(body)} bytes")
        s.sendall(b"GET /api/v1/system HTTP/1.1\r\nHost: l\r\n\r\n")
        status, _, body = reader.response()
        harness.check(status == 200 and json.loads(body)["name"] == "lantern", f"after streaming: {status}")
    print(f"streaming: 1 MiB chunked in {seconds:.2f} s, HEAD, a slow 256 KiB reader, keep-alive intact", flush=True)
    # 16 streams at once: together they want more TCP segments than lwIP has (MEMP_NUM_TCP_SEG), so
    # tcp_write() meets ERR_MEM and the server must resume each one later, intact.
    size = 256 << 10
    socks = [connect(port, timeout=60) for _ in range(CONCURRENT)]
    results = [None] * CONCURRENT
    started = time.monotonic()
    try:
        for s in socks:
            s.sendall(f"GET /api/v1/debug/stream?bytes={size} HTTP/1.1\r\nConnection: close\r\n\r\n".encode())

        def read(i, s):
            try:
                status, _, body = Reader(s).response()
                results[i] = status if body == pattern(size) else f"{status}, {len(body)} bytes"
            except (OSError, EOFError) as e:
                results[i] = repr(e)

        threads = [threading.Thread(target=read, args=(i, s)) for i, s in enumerate(socks)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for s in socks:
            s.close()
    harness.check(all(r == 200 for r in results), f"16 concurrent streams: {results}")
    print(f"streaming: {CONCURRENT} concurrent 256 KiB streams intact in {time.monotonic() - started:.2f} s", flush=True)


def check_slow_client_and_concurrency(port):
    # Connect first: the emulator's user network accepts forwarded connections one at a time
    # (slirp listens with a backlog of 1), so 16 connects alone can take seconds of SYN retries.
    socks = [connect(port, timeout=60) for _ in range(CONCURRENT)]
    slow = connect(port, timeout=30)
    slow.sendall(b"GET /api/v1/system HTTP/1.1\r\nHo")  # ... and nothing more
    started = time.monotonic()
    results = [None] * CONCURRENT
    try:
        for s in socks:  # all 16 requests are out before any answer is read
            s.sendall(b"GET /api/v1/system HTTP/1.1\r\nHost: l\r\nConnection: close\r\n\r\n")

        def read(i, s):
            try:
                results[i] = Reader(s).response()[0]
            except (OSError, EOFError) as e:
                results[i] = repr(e)

        threads = [threading.Thread(target=read, args=(i, s)) for i, s in enumerate(socks)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        served_after = time.monotonic() - started
    finally:
        for s in socks:
            s.close()
    ok = sum(1 for r in results if r == 200)
    harness.check(ok == CONCURRENT, f"{ok}/{CONCURRENT} concurrent clients answered 200: {results}")
    # The slow client has had nothing yet: the others did not wait for it.
    slow.setblocking(False)
    try:
        early = slow.recv(1)
    except BlockingIOError:
        early = None
    slow.setblocking(True)
    harness.check(early is None, f"the slow client was answered or closed before its timeout: {early!r}")
    print(f"{CONCURRENT} concurrent clients: all 200 in {served_after:.2f} s while a slow client stalls", flush=True)
    with slow:
        reader = Reader(slow)
        status, headers, body = reader.response()
        waited = time.monotonic() - started
        harness.check(status == 408 and json.loads(body)["error"]["code"] == "request_timeout",
                      f"slow client: {status} {body!r}")
        harness.check(REQUEST_TIMEOUT_S - 0.5 <= waited <= REQUEST_TIMEOUT_S + 5,
                      f"slow client answered after {waited:.1f} s, expected about {REQUEST_TIMEOUT_S} s")
        harness.check(reader.closed(10), "no close after 408")
    print(f"slow client: 408 request_timeout after {waited:.1f} s, then closed", flush=True)


def test(args):
    with harness.boot(args) as emu:
        ready, seconds = harness.wait_ready(emu, args)
        print(f"{args.emulator}/{args.nic}: READY after {seconds * 1000:.0f} ms: {ready.line}", flush=True)
        harness.check(ready.console == "80", f"READY console={ready.console}, expected 80")
        port = emu.port
        first = get_system(port)
        start = live_levels(pool_levels(first))
        print(f"pools at start: {start}", flush=True)

        check_errors(port)
        check_keep_alive_and_pipelining(port)
        check_streaming(port)
        check_slow_client_and_concurrency(port)

        # Lingering closes end within ~2 s; give lwIP a few seconds to finish every handshake.
        deadline = time.monotonic() + 15
        while True:
            doc = get_system(port)
            now = live_levels(pool_levels(doc))
            if now == start or time.monotonic() > deadline:
                break
            time.sleep(1)
        print(f"pools after: {now} (TIME_WAIT {pool_levels(doc)['TCP_PCB_TIME_WAIT']['used']})", flush=True)
        harness.check(now == start, f"lwIP pools not back to their starting level: start {start}, now {now}")
        http = doc.get("console", {})
        print(f"http counters: {http}", flush=True)
        harness.check(http.get("framing_errors", 0) >= 6, f"framing_errors did not count the errors: {http}")
        harness.check(http.get("timeouts", 0) >= 1, f"timeouts did not count the slow client: {http}")
        harness.check(http.get("refused") == 0, f"connections were refused: {http}")
        harness.check(http.get("connections_open") == 1, f"open connections other than this request: {http}")
        harness.assert_no_panic(emu)


if __name__ == "__main__":
    harness.main(test)
