#!/usr/bin/env python3
"""`./lantern fuzz [TARGET] [--seconds N]`: run the libFuzzer harnesses built by preset "fuzz".

Each target (tests/fuzz/<target>_fuzz.cpp, binary build/fuzz/tests/fuzz/fuzz_<target>) starts from
its committed seed corpus (tests/fuzz/corpus/<target>/) plus what earlier runs found
(build/fuzz/corpus/<target>/, where new inputs are written), and runs for N seconds. A crash, a
sanitizer report or a broken invariant leaves its reproducer in build/fuzz/crashes/<target>/ and
makes the command exit 1. Per target it prints one line:

    fuzz <target>: <executions> executions in <s> s, no crash
    fuzz <target>: <executions> executions in <s> s, CRASH: build/fuzz/crashes/<target>/crash-...

The full libFuzzer output is kept in build/fuzz/logs/<target>.log. Replay a reproducer with
`build/fuzz/tests/fuzz/fuzz_<target> <file>`. Python 3 standard library only.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXECUTED_RE = re.compile(r"^stat::number_of_executed_units:\s*(\d+)", re.M)
DONE_RE = re.compile(r"^#(\d+)\s+DONE\b", re.M)
ARTIFACT_RE = re.compile(r"Test unit written to (\S+)")
# One input running longer than this is reported as a hang (a timeout-* reproducer).
PER_INPUT_TIMEOUT_S = 10


def targets(build_dir: str) -> list[str]:
    folder = os.path.join(build_dir, "tests", "fuzz")
    if not os.path.isdir(folder):
        return []
    return sorted(n[len("fuzz_"):] for n in os.listdir(folder)
                  if n.startswith("fuzz_") and os.access(os.path.join(folder, n), os.X_OK)
                  and os.path.isfile(os.path.join(folder, n)))


def executions(output: str) -> int:
    m = EXECUTED_RE.search(output)
    if m:
        return int(m.group(1))
    done = DONE_RE.findall(output)
    if done:
        return int(done[-1])
    counts = re.findall(r"^#(\d+)\s", output, re.M)  # a crash ends the run before the stats
    return int(counts[-1]) if counts else 0


def run_target(build_dir: str, target: str, seconds: int) -> tuple[int, str | None, float]:
    """Runs one target; returns (executions, reproducer path or None, seconds taken)."""
    binary = os.path.join(build_dir, "tests", "fuzz", f"fuzz_{target}")
    work = os.path.join(build_dir, "corpus", target)
    crashes = os.path.join(build_dir, "crashes", target)
    logs = os.path.join(build_dir, "logs")
    seeds = os.path.join(REPO_ROOT, "tests", "fuzz", "corpus", target)
    for d in (work, crashes, logs):
        os.makedirs(d, exist_ok=True)
    # The work corpus comes first: libFuzzer writes new inputs there, never into the source tree.
    cmd = [binary, f"-max_total_time={seconds}", f"-timeout={PER_INPUT_TIMEOUT_S}", "-print_final_stats=1",
           f"-artifact_prefix={crashes}/", work, seeds]
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    started = time.monotonic()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                       text=True, errors="replace")
    elapsed = time.monotonic() - started
    with open(os.path.join(logs, f"{target}.log"), "w", encoding="utf-8") as f:
        f.write(r.stdout)
    artifact = None
    m = ARTIFACT_RE.search(r.stdout)
    if m:
        artifact = os.path.relpath(m.group(1), REPO_ROOT)
    elif r.returncode != 0:
        artifact = f"(exit status {r.returncode}, no reproducer; see {os.path.relpath(logs, REPO_ROOT)}/{target}.log)"
    return executions(r.stdout), artifact, elapsed


def main() -> int:
    p = argparse.ArgumentParser(description="Run Lantern's libFuzzer targets")
    p.add_argument("--build-dir", default=os.path.join(REPO_ROOT, "build", "fuzz"))
    p.add_argument("--seconds", type=int, default=60, help="seconds per target (default 60)")
    p.add_argument("target", nargs="?", help="one target (default: all)")
    args = p.parse_args()
    available = targets(args.build_dir)
    if not available:
        print(f"lantern fuzz: no fuzz targets in {args.build_dir} (build preset 'fuzz' first)", file=sys.stderr)
        return 2
    if args.seconds < 1:
        print("lantern fuzz: --seconds needs a positive number", file=sys.stderr)
        return 2
    if args.target and args.target not in available:
        print(f"lantern fuzz: unknown target '{args.target}' (targets: {', '.join(available)})", file=sys.stderr)
        return 2
    chosen = [args.target] if args.target else available
    crashed = 0
    for target in chosen:
        n, artifact, elapsed = run_target(args.build_dir, target, args.seconds)
        verdict = f"CRASH: {artifact}" if artifact else "no crash"
        print(f"fuzz {target}: {n} executions in {elapsed:.0f} s, {verdict}", flush=True)
        crashed += artifact is not None
    if crashed:
        print(f"lantern fuzz: {crashed} of {len(chosen)} targets crashed; reproducers are under "
              f"{os.path.relpath(args.build_dir, REPO_ROOT)}/crashes/", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
