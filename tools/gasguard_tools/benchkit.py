"""What the area benchmarks share: run a measuring script on an interpreter, print a table.

The MicroPython is the one the runtime rule chooses (`python -m gasguard_tools.bench
--micropython PATH`, or $GASGUARD_MICROPYTHON; gasguard_tools.runtime).

A benchmark script is a file beside the other firmware-side runners (boards/sim/bench_*.py)
and prints `key value` lines; run_script() returns them as a dict, and compare_table() prints
one Markdown row per (key, description, unit) for MicroPython and CPython side by side.
"""

import os
import shutil
import socket
import subprocess
import tempfile

from .runtime import command


def run_script(runtime, script, args=(), timeout=300):
    """Run the script file on 'micropython' or 'cpython' (firmware + sim board on the path).

    args may contain the placeholder "{tmp}", replaced by a scratch folder. The script runs
    as a copy in that folder: MicroPython interns the script's path, so heap figures (qstr
    pools grow in steps) would move with the checkout's path; from a scratch name of fixed
    length they do not."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "bench_run.py")
        shutil.copyfile(script, copy)
        argv, env = command(runtime, copy, [a.replace("{tmp}", tmp) for a in args])
        r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    if r.returncode:
        raise RuntimeError(r.stderr[-500:] or r.stdout[-500:])
    return dict(line.split(None, 1) for line in r.stdout.splitlines() if line.strip())


def compare_table(title, rows, script, args=(), timeout=300):
    mp = run_script("micropython", script, args, timeout)
    cp = run_script("cpython", script, args, timeout)
    print("### %s\n" % title)
    print("| what | MicroPython unix | CPython |")
    print("|---|---:|---:|")
    for key, what, unit in rows:
        print("| %s | %s %s | %s |" % (what, mp.get(key, "-"), unit,
                                      (cp.get(key, "-") + " " + unit) if key in cp else "-"))
    print()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write_section(area, text, seconds, doc=None):
    """Put `text` under "## <area>" in docs/benchmarks.md, replacing that section only, in
    the alphabetical place bench.py gives it, so a long benchmark (the 30-day soak, the heap
    bisections) can refresh its own section without rerunning the others."""
    from pathlib import Path

    from . import ROOT

    doc = Path(doc) if doc else ROOT / "docs" / "benchmarks.md"
    lines = doc.read_text(encoding="utf-8").split("\n")
    body = ("## %s\n\n%s\n\n_(ran in %.1f s)_\n" % (area, text.strip(), seconds)).split("\n")
    heads = [i for i, line in enumerate(lines) if line.startswith("## ")]
    start = end = None
    for n, i in enumerate(heads):
        name = lines[i][3:]
        if name == area:
            start = i
            end = heads[n + 1] if n + 1 < len(heads) else len(lines)
            break
        if start is None and name > area and name[:1].islower():
            start = end = i
            break
    if start is None:
        start = end = len(lines)
    doc.write_text("\n".join(lines[:start] + body + lines[end:]), encoding="utf-8")
