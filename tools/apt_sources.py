#!/usr/bin/env python3
"""Find the Debian archive mirror this machine already uses, for the private deb-src list.

`./lantern deps --sources` needs a `deb-src` line for the pinned source packages without editing
/etc/apt (see /work/shared/dependencies.md). This reads the machine's apt sources, one-line
(`*.list`) and deb822 (`*.sources`), and prints the deb-src line to use:

    deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main

It picks the first enabled `deb` entry whose suite is the release codename itself (not -updates or
-security) and that has the `main` component. Exit 1 with a message when there is none.
Python 3 standard library only.
"""
from __future__ import annotations

import glob
import os
import sys
from typing import Iterator, Optional

DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


class Entry:
    def __init__(self, types, uris, suites, components, signed_by=None, enabled=True):
        self.types, self.uris, self.suites = list(types), list(uris), list(suites)
        self.components, self.signed_by, self.enabled = list(components), signed_by, enabled

    def __repr__(self) -> str:  # for test failure messages
        return f"Entry({self.types}, {self.uris}, {self.suites}, {self.components}, {self.signed_by})"


def parse_one_line(text: str) -> Iterator[Entry]:
    """`deb [opt=val ...] URI SUITE COMPONENT...` lines (sources.list(5), one-line style)."""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        kind, rest = words[0], words[1:]
        if kind not in ("deb", "deb-src"):
            continue
        options = {}
        if rest and rest[0].startswith("["):
            opt_words = []
            while rest:
                w = rest.pop(0)
                opt_words.append(w)
                if w.endswith("]"):
                    break
            for w in " ".join(opt_words).strip("[]").split():
                if "=" in w:
                    k, v = w.split("=", 1)
                    options[k.lower()] = v
        if len(rest) < 2:
            continue
        yield Entry([kind], [rest[0]], [rest[1]], rest[2:], options.get("signed-by"))


def parse_deb822(text: str) -> Iterator[Entry]:
    """deb822 stanzas (`Types:`, `URIs:`, `Suites:`, `Components:`, `Signed-By:`, `Enabled:`)."""
    stanza: dict[str, str] = {}
    last: Optional[str] = None

    def flush():
        if stanza:
            enabled = stanza.get("enabled", "yes").strip().lower() not in ("no", "false", "0")
            signed = stanza.get("signed-by", "").strip()
            # An inline key block starts with a line break; only a file path is useful to us.
            signed_path = signed if signed.startswith("/") and "\n" not in signed else None
            yield Entry(stanza.get("types", "").split(), stanza.get("uris", "").split(),
                        stanza.get("suites", "").split(), stanza.get("components", "").split(),
                        signed_path, enabled)

    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if not raw.strip():
            yield from flush()
            stanza, last = {}, None
            continue
        if raw[0] in " \t" and last:
            stanza[last] += "\n" + raw.strip()
            continue
        if ":" in raw:
            key, value = raw.split(":", 1)
            last = key.strip().lower()
            stanza[last] = value.strip()
    yield from flush()


def read_codename(os_release: str = "/etc/os-release") -> Optional[str]:
    try:
        with open(os_release, encoding="utf-8") as f:
            for line in f:
                if line.startswith("VERSION_CODENAME="):
                    return line.split("=", 1)[1].strip().strip('"') or None
    except OSError:
        pass
    return None


def system_entries(etc_apt: str = "/etc/apt") -> Iterator[Entry]:
    files = [os.path.join(etc_apt, "sources.list")]
    files += sorted(glob.glob(os.path.join(etc_apt, "sources.list.d", "*.list")))
    files += sorted(glob.glob(os.path.join(etc_apt, "sources.list.d", "*.sources")))
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        yield from (parse_deb822(text) if path.endswith(".sources") else parse_one_line(text))


def pick(entries, codename: str) -> Optional[tuple[str, str, str]]:
    """(uri, suite, keyring) of the first enabled `deb` entry for `codename` with `main`."""
    for e in entries:
        if not e.enabled or "deb" not in e.types or "main" not in e.components:
            continue
        if codename in e.suites and e.uris:
            return e.uris[0].rstrip("/"), codename, e.signed_by or DEFAULT_KEYRING
    return None


def main(argv: list[str]) -> int:
    etc_apt = argv[1] if len(argv) > 1 else "/etc/apt"
    codename = read_codename()
    if not codename:
        print("apt_sources.py: cannot read VERSION_CODENAME from /etc/os-release", file=sys.stderr)
        return 1
    found = pick(system_entries(etc_apt), codename)
    if not found:
        print(f"apt_sources.py: no enabled 'deb ... {codename} main' entry in {etc_apt}",
              file=sys.stderr)
        return 1
    uri, suite, keyring = found
    print(f"deb-src [signed-by={keyring}] {uri} {suite} main")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
