#!/usr/bin/env python3
"""ctest layers.include_up_fails: the kernel's layers are a build fact (cmake/layers.cmake).

For every kernel layer L and every other layer U, compiles (-fsyntax-only) a one-line probe
`#include "U/<a header of U>"` with the exact command line the build uses for a real source of L
(from compile_commands.json). The probe must fail with "No such file or directory" when U is not
among L's allowed layers, and must compile when it is (so the check cannot pass vacuously).
It also refuses an `#include "../...` anywhere in the kernel's layers: a relative path up would
step around the include roots.
"""
import argparse
import json
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

LAYER_TABLE = re.compile(r'^set\(LANTERN_LAYER_DEPS_(\w+)\s*([^)]*)\)', re.M)


def read_layers(source_dir: Path) -> dict[str, set[str]]:
    text = (source_dir / 'cmake/layers.cmake').read_text()
    layers = {}
    for name, deps in LAYER_TABLE.findall(text):
        layers[name] = {d for d in deps.replace('"', '').split() if d}
    if not layers:
        raise SystemExit('no LANTERN_LAYER_DEPS_* table in cmake/layers.cmake')
    return layers


def probe_header(source_dir: Path, layer: str) -> str:
    """A header of `layer` that compiles on its own (the layer's README names none, so take the
    shortest path: a top-level header of the folder)."""
    headers = sorted((source_dir / layer).glob('*.h')) or sorted((source_dir / layer).rglob('*.h'))
    if not headers:
        raise SystemExit(f'layer {layer} has no header to probe')
    return headers[0].relative_to(source_dir).as_posix()


def command_for(entries: list[dict], source_dir: Path, layer: str) -> list[str]:
    for e in entries:
        f = Path(e['file'])
        if f.suffix == '.cpp' and f.is_relative_to(source_dir / layer) and 'lantern_layer_' + layer in e.get('output', e['command']):
            return shlex.split(e['command'])
    raise SystemExit(f'no compile command for a C++ source of layer {layer} in compile_commands.json')


def compile_probe(argv: list[str], header: str, workdir: str) -> subprocess.CompletedProcess:
    probe = Path(workdir) / 'probe.cpp'
    probe.write_text(f'#include "{header}"\n')
    out = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ('-o', '-MF', '-MT', '-c'):
            skip = a != '-c'
            continue
        if a.startswith(('-MD', '-MMD')) or a.endswith('.cpp'):
            continue
        out.append(a)
    return subprocess.run(out + ['-fsyntax-only', str(probe)], capture_output=True, text=True, cwd=workdir)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', required=True, type=Path)
    ap.add_argument('--source', required=True, type=Path)
    args = ap.parse_args()
    source_dir = args.source.resolve()
    layers = read_layers(source_dir)
    entries = json.loads((args.build / 'compile_commands.json').read_text())
    failures = []

    for layer in layers:
        for path in (source_dir / layer).rglob('*'):
            if path.suffix in ('.h', '.cpp', '.S') and re.search(r'#include\s+"\.\./', path.read_text(errors='replace')):
                failures.append(f'{path.relative_to(source_dir)}: #include "../..." steps around the layer include roots')

    with tempfile.TemporaryDirectory() as workdir:
        for layer, allowed in layers.items():
            argv = command_for(entries, source_dir, layer)
            for other in layers:
                if other == layer:
                    continue
                header = probe_header(source_dir, other)
                result = compile_probe(argv, header, workdir)
                if other in allowed:
                    verdict = 'compiles' if result.returncode == 0 else 'FAILED'
                    if result.returncode != 0:
                        failures.append(f'{layer} may include {other}, but "{header}" did not compile:\n{result.stderr[:1500]}')
                else:
                    refused = result.returncode != 0 and f'{header}: No such file or directory' in result.stderr
                    verdict = 'refused' if refused else 'NOT REFUSED'
                    if not refused:
                        failures.append(f'{layer} must not include {other}, but "{header}" '
                                        f'{"compiled" if result.returncode == 0 else "failed otherwise"}:\n{result.stderr[:1500]}')
                    else:
                        first = next(l for l in result.stderr.splitlines() if 'No such file' in l)
                        print(f'  {layer:6} -> {other:6}: {first.split("probe.cpp:")[-1].strip()}')
                print(f'{layer:6} includes {other:6} ({header}): {verdict}')
    for f in failures:
        print('FAIL:', f)
    print(f'{len(failures)} failure(s)')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
