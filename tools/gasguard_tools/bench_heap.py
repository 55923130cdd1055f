"""Heap budget of every device and tier over a compressed day on the ESP32-like interpreter.

Runs boards/sim/heap_day.py (the device assembled as its main.py assembles it, loading
.mpy as `gasguard flash` deploys it) on the 32-bit interpreter: once at a large heap for
the figures after boot and at each checkpoint, once at the ESP32's 112 KB and once at
112 KB - 40 KB = 72 KB, which proves that the transient peaks between the checkpoints
leave 40 KB free. The harness (heap_day's and the simulated board's code, fake network and
broker; not the firmware modules it shares with the device, nor the board files: those are
the device's, docs/heap-budget.md "How it is measured") is measured first and added to the
heap size, so the device sees exactly 112 KB / 72 KB.

Shared with host_tests/heap/test_heap_budget.py (the budgets are tests: heap figures on this
interpreter are deterministic). Results: docs/heap-budget.md and docs/benchmarks.md.
"""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import BOARDS, FIRMWARE, ROOT
from .runtime import cross_argv

PORTABLE = ROOT / "host_tests" / "portable"
ESP32_HEAP = 111936  # what the ESP32_GENERIC heap grows to with Wi-Fi up (MicroPython PR #13219)
KEEP_FREE = 40 * 1024
MIN_BLOCK = 8 * 1024
DEVICES = (("detector", "low"), ("detector", "mid"), ("detector", "high"), ("valve", "M"))
# the same devices installed without Wi-Fi (no reporting, no active identifier)
LOCAL = (("detector", "low/local"), ("detector", "mid/local"), ("valve", "M/local"))


def esp32_micropython():
    """The ESP32-like 32-bit interpreter (gasguard_tools.runtime: $GASGUARD_ESP32_MICROPYTHON,
    else ../shared/esp32-micropython), or None."""
    from .runtime import esp32_micropython as find

    return find()


def compile_tree(out):
    """firmware, sim board and the fake network as .mpy (-O3, as `gasguard flash` builds),
    plus one firmware folder per device and tier holding only its deploy set."""
    from .cmd_package import DEVICES as SETS, board_sources, deploy_set
    from .prime import write_names

    out = Path(out)
    for name, src, only in (("firmware", FIRMWARE, None), ("sim", BOARDS / "sim", None),
                            ("portable", PORTABLE, ("reporting_fakes.py",))):
        for f in src.rglob("*.py"):
            if f.name == "manifest.py" or (only and f.name not in only):
                continue
            dst = out / name / f.relative_to(src).with_suffix(".mpy")
            dst.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(cross_argv(f, f.relative_to(src).as_posix(), dst, ["-O3"]), check=True)
    for kind, tier in SETS:
        d = out / ("deploy-%s-%s" % (kind, tier)) / "gasguard"
        d.mkdir(parents=True)
        # + what the simulated board itself imports from the package (not device code;
        # a MicroPython package cannot span two folders)
        for f in deploy_set(kind, tier) + ["gasguard/%s.py" % m for m in HARNESS_MODULES]:
            shutil.copy(str(out / "firmware" / f[:-3]) + ".mpy", str(d))
        write_names(d, kind, tier)  # gasguard/names.mpy, as `gasguard flash` deploys it
        # the board files beside the package as `gasguard flash` deploys them: as source
        # (cmd_flash.board_files), so the interpreter compiles them as the chip does
        # (heap_day.board_code: resident on the chip, counted as the device's)
        for f in board_sources(SETS[kind, tier]):
            if f.name != "boot.py":
                shutil.copy(str(f), str(d.parent / f.name))
    return [str(out / n) for n in ("firmware", "sim", "portable")]


HARNESS_MODULES = ("ticks",)


def device_path(path, kind, tier):
    """The module path of one device: its deploy set only (a module missing from the set
    fails the day with ImportError), then the simulated board and the fake network."""
    root = Path(path[0]).parent
    return [str(root / ("deploy-%s-%s" % (kind, tier)))] + path[1:]


# The harness baseline is taken before heap_day is imported (its own code is the harness's)
# and before any gasguard module is loaded: "pre" lists them (a test holds it empty).
RUNNER = ("import gc\nimport micropython\nimport sys\ngc.collect()\nb = gc.mem_alloc()\n"
          "micropython.qstr_info()\n"
          "print('{\"at\": \"pre\", \"alloc\": %d, \"gasguard\": %d}' % (b, "
          "len([m for m in sys.modules if m.split('.')[0] == 'gasguard'])))\n"
          "import heap_day\nheap_day.main(b)\n")


def device_run(path):
    """(env, cwd) to run an interpreter on `path` as the chip finds its files. A device's
    deploy folder (device_path) becomes the working directory and the first path entry is
    "": the chip's sys.path starts with "" and its files are at the filesystem's root, so
    every module it imports interns its path as "gasguard/reporter.mpy" (import keeps
    each module's file name as a name for good, released or not). Run from a long
    temporary folder, each path would charge the device about 50 B more than the chip's
    (measured on the valve's day: about 2 KB). Any other path list (the factory line's
    whole firmware tree) is used as it is."""
    first = Path(path[0])
    if first.name.startswith("deploy-"):
        # the unix port puts the script's folder first and takes a leading "" for it
        return ({"MICROPYPATH": ":".join(["", ""] + list(path[1:])), "PATH": "/usr/bin:/bin"},
                str(first))
    return {"MICROPYPATH": ":".join(path), "PATH": "/usr/bin:/bin"}, None


def _run(exe, path, heap, what, kind, tier, store):
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(RUNNER)
    env, cwd = device_run(path)
    try:
        return subprocess.run([exe, "-X", "heapsize=%d" % heap, f.name, what, kind, tier, store],
                              capture_output=True, text=True, timeout=600, env=env, cwd=cwd)
    finally:
        os.unlink(f.name)


def run_day(exe, path, kind, tier, heap):
    """(points, end, error): checkpoint dicts, the end summary (None if it did not end)."""
    store = tempfile.mkdtemp(prefix="gasguard-heapday-")
    full = [str(Path(path[1]).parent / "firmware")] + path[1:]  # the factory line has it all
    try:
        r = _run(exe, full, 2 * 1024 * 1024, "provision", kind, tier, store)
        if r.returncode:
            raise RuntimeError("provisioning failed: " + (r.stdout + r.stderr)[-500:])
        r = _run(exe, path, heap, "day", kind, tier, store)
    finally:
        shutil.rmtree(store, ignore_errors=True)
    points = []
    end = None
    qstr = None
    pre = None
    names = []
    for line in r.stdout.splitlines():
        if line.startswith("qstr pool:"):  # micropython.qstr_info() before each checkpoint
            qstr = dict((k.strip(), int(v))
                        for k, v in (x.split("=") for x in line[10:].split(",")))
        elif line.startswith("{"):
            d = json.loads(line)
            if d.get("at") == "end":
                end = d
            elif d.get("at") == "pre":
                pre = d
                pre["qstr"] = qstr
                qstr = None
            elif d.get("at") == "shared":  # heap_day's qstr counts around its shared imports
                names.append((d["m"], qstr["n_qstr"]))
                qstr = None
            else:
                if qstr is not None:
                    d["qstr"] = qstr
                    qstr = None
                points.append(d)
    if points:
        points[0]["pre"] = pre  # the runner's baseline: its alloc, the gasguard modules then
        points[0]["names"] = names
    err = None
    if end is None:
        err = ((r.stdout + r.stderr).strip().splitlines() or ["no output"])[-1]
    return points, end, err


# The qstr pools of this interpreter (MicroPython 1.28's unix port, no frozen modules): the
# first pool holds 20 names and each next one twice the last, 32 B + 7 B per name each, so
# a pool can be most of a figure's step (the 7th: 1280 names, 8992 B, allocated whole).
QSTR_FIRST_POOL = 20


def qstr_pool_bytes(n):
    """Bytes of the qstr pools that hold n interned names."""
    total, cap, held = 0, QSTR_FIRST_POOL, 0
    while held < n:
        total += 32 + 7 * cap
        held += cap
        cap *= 2
    return total


def harness_names(h):
    """Names the harness's own code interned (heap_day, simboard, the fakes; not the
    interpreter's before the baseline, not the credited firmware modules'): h is the harness
    point of run_day."""
    before = h["pre"]["qstr"]["n_qstr"]
    credited = 0
    last = None
    for m, n in h["names"]:
        if m in h["shared"]:
            credited += n - last
        last = n
    return h["qstr"]["n_qstr"] - before - credited


def qstr_shift(h, p):
    """The bytes of qstr pools at checkpoint p the device is charged only because the
    harness's own names came first (negative: a pool the harness opened that the device
    fills for free). Reported, not subtracted: the chip's pools follow its image's frozen
    modules, not this interpreter's, so neither placement is the chip's (a new pool is
    allocated whole: a name more or less moves a figure by up to a pool)."""
    own = harness_names(h)
    n_h, n_p = h["qstr"]["n_qstr"], p["qstr"]["n_qstr"]
    measured = qstr_pool_bytes(n_p) - qstr_pool_bytes(n_h)
    alone = qstr_pool_bytes(n_p - own) - qstr_pool_bytes(n_h - own)
    return measured - alone


def smallest_heap(exe, path, kind, tier, harness, peak, clean=False):
    """The smallest heap (device's own bytes, within 2 KB) in which the whole day runs: the
    live peak plus what fragmentation costs. ESP32_HEAP minus it is the true minimum free.
    Not strictly monotonic (the heap size moves the collections, so the holes): a figure
    within a few KB. clean: the day must also end with no part failed (no MemoryError
    counted by the app); without, a day whose pollers failed on the way still counts."""
    path = device_path(path, kind, tier.split("/")[0])
    lo, hi = peak, peak + 128 * 1024
    while hi - lo > 2048:
        mid = (lo + hi) // 2
        end = run_day(exe, path, kind, tier, mid + harness)[1]
        if _clean(end) if clean else end is not None:
            hi = mid
        else:
            lo = mid
    return hi


def measure(exe, path, kind, tier):
    """Everything the budget needs about one device, heap figures relative to the device."""
    path = device_path(path, kind, tier.split("/")[0])
    big, end, err = run_day(exe, path, kind, tier, 2 * 1024 * 1024)
    if end is None:
        raise RuntimeError("%s %s: the day did not end at 2 MB: %s" % (kind, tier, err))
    # the harness: heap_day's and the sim's code and objects, not the firmware modules they
    # loaded that the device keeps (heap_day.device_shared: counted as the device's)
    harness = big[0]["harness"]
    pts = {p["at"]: p["alloc"] - harness for p in big[1:]}
    # reported, not subtracted: what the harness's own names did to the device's qstr pools
    # (docs/heap-budget.md, "qstr pools")
    shift = {p["at"]: qstr_shift(big[0], p) for p in big[1:]}
    allowance = harness
    extra = allowance  # exact bytes: rounded up to the KB, the device would get up to 1 KB more
    res = {"kind": kind, "tier": tier, "harness": harness, "points": pts,
           "shared": big[0]["shared"], "harness_gasguard": big[0]["gasguard"],
           "pre_gasguard": big[0]["pre"]["gasguard"], "board": end["board"],
           "qstr": {p["at"]: p["qstr"] for p in big}, "qstr_shift": shift,
           "harness_names": harness_names(big[0]), "allowance": allowance,
           "boot": pts["boot"], "peak_live": max(pts.values()), "modules": end["modules"],
           "published": end["published"], "console_failed": end.get("console_failed")}
    at112, end112, err112 = run_day(exe, path, kind, tier, ESP32_HEAP + extra)
    # a day that reaches its end while parts failed with MemoryError (counted by the app:
    # a poller, the console, a config that could not be built at boot) did not fit
    res["fits_112k"] = _clean(end112)
    res["error_112k"] = err112 or _errors(end112)
    res["errors_112k"] = end112.get("error_count") if end112 is not None else None
    res["ended_112k"] = end112 is not None
    res["console_failed_112k"] = end112.get("console_failed") if end112 is not None else None
    if end112 is not None:
        res["min_free_112k"] = end112["min_free"] - (extra - allowance)
        res["min_block_112k"] = end112["min_block"]
        res["boot_free_112k"] = at112[1]["free"] - (extra - allowance)
    _p, end72, err72 = run_day(exe, path, kind, tier, ESP32_HEAP - KEEP_FREE + extra)
    res["fits_72k"] = _clean(end72)
    res["error_72k"] = err72 or _errors(end72)
    res["errors_72k"] = end72.get("error_count") if end72 is not None else None
    return res


def _clean(end):
    """The day ended and no part of the device failed on the way (the app's error count,
    and every console request answered: heap_day's end line)."""
    return (end is not None and not end.get("error_count") and not end.get("errors")
            and not end.get("console_failed"))


def _errors(end):
    if end is None or _clean(end):
        return None
    return "ended with %s errors: %s" % (
        end.get("error_count"), "; ".join(list(end.get("errors") or ())
                                          + list(end.get("console_failed") or ())))


def measure_all(devices=DEVICES, smallest=False):
    exe = esp32_micropython()
    if exe is None:
        return None
    tmp = tempfile.mkdtemp(prefix="gasguard-heap-mpy-")
    try:
        path = compile_tree(tmp)
        out = [measure(exe, path, k, t) for k, t in devices]
        if smallest:
            for r in out:
                r["smallest_heap"] = smallest_heap(exe, path, r["kind"], r["tier"],
                                                   r["allowance"], r["peak_live"])
                r["smallest_clean_heap"] = smallest_heap(exe, path, r["kind"], r["tier"],
                                                         r["allowance"], r["peak_live"], True)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


MODULE_SCRIPT = BOARDS / "sim" / "bench_modules.py"


def module_costs(exe, path, modules):
    """Heap each resident module adds when imported after its own imports (topological
    order: so a module's figure is its own bytecode, globals and new interned names)."""
    from .cmd_package import _imports

    names = [m.split(".", 1)[1] for m in modules if "." in m]
    deps = {m: [d for d in _imports(FIRMWARE / "gasguard" / (m + ".py")) if d in names]
            for m in names}
    order = []
    visiting = set()

    def visit(m):
        if m in order or m in visiting:  # an import cycle: the first one met goes first
            return
        visiting.add(m)
        for d in deps.get(m, ()):
            visit(d)
        order.append(m)

    for m in names:
        visit(m)
    with tempfile.TemporaryDirectory() as tmp:
        lst = Path(tmp) / "mods.txt"
        lst.write_text("\n".join(["gasguard"] + ["gasguard." + m for m in order]))
        # run as a copy in the scratch folder: the script's path is interned, and heap figures
        # (qstr pools grow in steps) would move with the checkout's path
        script = Path(tmp) / "mods.py"
        shutil.copyfile(MODULE_SCRIPT, script)
        r = subprocess.run([exe, "-X", "heapsize=2m", str(script), str(lst)], capture_output=True,
                           text=True, timeout=120, env={"MICROPYPATH": ":".join(path)})
    out = {}
    for line in r.stdout.splitlines():
        m, n = line.split()
        out[m] = int(n)
    return out


def _kb(n):
    return "%.1f KB" % (n / 1024.0) if isinstance(n, int) else "-"


def table(results):
    lines = ["| device | tier | resident after boot | live peak at a checkpoint | smallest heap the "
             "day runs in | ... with no part failing | free after boot (112k) | min free over "
             "the day (112k) | min largest block (112k) | day at 112k - 40 KB |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        bad = "%s errors" % r["errors_112k"] if r.get("errors_112k") else "MemoryError"
        # a day that ended with console requests refused (MemoryError answered E_DEVICE):
        # its figures, and which requests
        ended = r["fits_112k"] or (r.get("ended_112k") and not r.get("errors_112k"))
        refused = "; refused: " + ", ".join(f.split(":")[0] for f in r["console_failed_112k"]) \
            if ended and r.get("console_failed_112k") else ""
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["kind"], r["tier"], _kb(r["boot"]), _kb(r["peak_live"]), _kb(r.get("smallest_heap")),
            _kb(r.get("smallest_clean_heap")),
            _kb(r.get("boot_free_112k")) if ended else bad,
            _kb(r.get("min_free_112k")) + refused if ended else "-",
            _kb(r.get("min_block_112k")) if ended else "-",
            "runs to the end" if r["fits_72k"] else "fails: " + (r["error_72k"] or "")[:60]))
    return "\n".join(lines)


def main():
    results = measure_all(DEVICES + LOCAL, smallest=True)
    if results is None:
        print("The ESP32-like interpreter is missing (set GASGUARD_ESP32_MICROPYTHON): not measured.")
        return
    print("Each device assembled as its board main.py assembles it, loading .mpy (-O3) as "
          "`gasguard flash` deploys them, on the ESP32-like 32-bit interpreter, over the "
          "compressed day of boards/sim/heap_day.py (warm-up, registration and heartbeats, "
          "methane and CO alarms or a valve closing, a console session with a CFG write, a "
          "broker outage with an alarm queued, the reconnect, a quiet hour). Goal: at least "
          "40 KB free at every moment and a largest free block of at least 8 KB at 112 KB "
          "(111936 bytes). Figures are the device's own, its board files and the firmware "
          "modules the harness also uses included (the harness's code and objects are "
          "subtracted). *Smallest "
          "heap the day runs in* (bisection, 2 KB; near the edge the outcome moves by a few KB with the layout) is the live peak plus what fragmentation "
          "costs; 112 KB minus it is the true minimum free. The last column is the goal's "
          "proof for the moments between checkpoints: the same day with 112 KB - 40 KB. "
          "`/local`: the same device installed without Wi-Fi (no reporting, no active "
          "identifier). Budget and what is resident: docs/heap-budget.md.\n")
    print(table(results))
    print()
    print("Where the resident bytes are: each module resident at the end of the day, imported "
          "after its own imports (its bytecode, function objects, globals and the names it "
          "interns; qstr pools grow in doubling steps, so a module that opens a new pool shows "
          "the pool). Code, not objects, is most of every device's heap.\n")
    exe = esp32_micropython()
    tmp = tempfile.mkdtemp(prefix="gasguard-heap-mpy-")
    try:
        path = compile_tree(tmp)
        cols = [(r["kind"], r["tier"]) for r in results if r["tier"] in ("low", "mid", "M")]
        costs = {c: module_costs(exe, device_path(path, *c), next(
            r["modules"] for r in results if (r["kind"], r["tier"]) == c)) for c in cols}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    mods = sorted({m for c in costs.values() for m in c}, key=lambda m: -max(
        c.get(m, 0) for c in costs.values()))
    print("| module | " + " | ".join("%s %s" % c for c in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for m in mods:
        print("| %s | %s |" % (m, " | ".join(str(costs[c][m]) if m in costs[c] else ""
                                              for c in cols)))
    print("| **modules total** | %s |" % " | ".join(str(sum(costs[c].values())) for c in cols))
    print("| **device after boot** | %s |" % " | ".join(
        str(next(r["boot"] for r in results if (r["kind"], r["tier"]) == c)) for c in cols))


def cli(argv=None):
    """`python -m gasguard_tools.bench_heap [--write]`: the heap section alone (its
    bisections take minutes); --write puts it into docs/benchmarks.md, section heap."""
    import argparse
    import contextlib
    import io
    import time

    from .benchkit import write_section

    ap = argparse.ArgumentParser(prog="python -m gasguard_tools.bench_heap", description=cli.__doc__)
    ap.add_argument("--write", action="store_true",
                    help="also write the tables into docs/benchmarks.md, section heap")
    args = ap.parse_args(argv)
    t0 = time.time()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        main()
    print(buf.getvalue())
    if args.write:
        write_section("heap", buf.getvalue(), time.time() - t0)


if __name__ == "__main__":
    import sys

    cli(sys.argv[1:])
