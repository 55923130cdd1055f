"""`gasguard replay SCENARIO.csv`: run the real detector (or valve) logic against a timeline.

The host reads and validates the CSV, then streams it as JSON lines to a firmware-side
runner (boards/sim/replay_detector.py or replay_valve.py) started on CPython or
MicroPython; the runner prints one JSON event per line, which is passed through to
stdout. Protocol and event shapes: docs/replay.md.
"""

import csv
import json
import math
import sys
import threading

from . import BOARDS, scenario_path
from .runtime import ToolError, UsageError, add_micropython_argument, popen

DEVICES = {
    "detector": {
        "runner": "replay_detector.py",
        "numeric": ("ch4_ppm", "co_ppm", "temp_c", "rh_pct", "supply_v"),
        "text": {
            "ch4_sensor": ("ok", "open", "short", "stuck"),
            "co_sensor": ("ok", "open", "short", "stuck"),
            "button": ("", "press", "long_press"),
        },
        "ranges": {"ch4_ppm": (0, 1000000), "co_ppm": (0, 100000), "temp_c": (-40, 85),
                   "rh_pct": (0, 100), "supply_v": (0, 30)},
        # columns whose value is an action at that row, not a level that holds
        "actions": ("button",),
    },
    "valve": {
        "runner": "replay_valve.py",
        "numeric": ("pressure_kpa", "flow_m3h"),
        "text": {"valve_switch": ("", "open", "closed", "press", "reset")},
        "ranges": {"pressure_kpa": (-100, 1000), "flow_m3h": (0, 1000)},
        "actions": (),
    },
}

MAX_T_S = 60 * 86400  # 60 days of simulated time at most


def add_arguments(p):
    p.add_argument("scenario", help="CSV timeline (header with t_s and value columns), or the name of a "
                   "shipped scenario (kitchen_leak, co_150ppm, ...)")
    p.add_argument("--profile", choices=("cn", "en", "ul"), default="cn",
                   help="standard profile (default cn)")
    p.add_argument("--tier", choices=("low", "mid", "high"), default="mid",
                   help="product tier (default mid; low = methane only)")
    p.add_argument("--runtime", choices=("cpython", "micropython"), default=None,
                   help="interpreter that runs the firmware logic (default cpython, or "
                        "micropython when --micropython or --heap is given)")
    add_micropython_argument(p)
    p.add_argument("--heap", metavar="SIZE",
                   help="MicroPython heap size, e.g. 112k (the firmware then loads from .mpy "
                        "as deployed)")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated sensor noise")
    p.add_argument("--device", choices=("detector", "valve"), default="detector",
                   help="what to replay (default detector)")
    p.add_argument("--config", metavar="JSON",
                   help="JSON file with extra detector config keys (bounds-checked)")
    p.add_argument("--stop-after-alarm", choices=("any", "ch4", "co"),
                   help="stop at the first alarm of that gas (faster pre-checks)")
    p.add_argument("--no-noise", action="store_true", help="no simulated sensor noise")


def _num(text, col, lineno):
    try:
        v = float(text)
    except ValueError:
        raise ToolError("line %d: column %s: %r is not a number" % (lineno, col, text))
    if math.isnan(v) or math.isinf(v):
        raise ToolError("line %d: column %s: %r is not a finite number" % (lineno, col, text))
    return v


def _cells(text, lineno):
    try:
        return next(csv.reader([text]), [""])
    except csv.Error as e:  # (a line break inside a field of a list given by a caller)
        raise ToolError("line %d: not a CSV line (%s)" % (lineno, e))


def parse_scenario(path_or_lines, device="detector"):
    """Validate a scenario; return (rows, end_ms): rows are JSON-ready dicts for the runner.

    Raises ToolError naming the line for any problem (nothing is run then).
    """
    spec = DEVICES[device]
    if isinstance(path_or_lines, (list, tuple)):
        lines = list(path_or_lines)
    else:
        try:
            with open(scenario_path(path_or_lines), newline="", encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as e:
            raise ToolError("cannot read %s: %s" % (path_or_lines, e.strerror or e))
        except UnicodeDecodeError:
            raise ToolError("%s: not a UTF-8 text file" % path_or_lines)
    # skip leading blank lines and '#' comment lines, keeping line numbers
    numbered = [(i + 1, ln) for i, ln in enumerate(lines)]
    body = [(n, ln) for n, ln in numbered if ln.strip() and not ln.lstrip().startswith("#")]
    if not body:
        raise ToolError("line 1: empty scenario (need a header with t_s)")
    hdr_line, hdr = body[0]
    hdr = hdr.lstrip("\ufeff")  # a spreadsheet's UTF-8 byte-order mark
    header = [h.strip() for h in _cells(hdr, hdr_line)]
    if "t_s" not in header:
        raise ToolError("line %d: header has no t_s column (got %s)" % (hdr_line, ", ".join(header)))
    known = ("t_s",) + spec["numeric"] + tuple(spec["text"])
    seen = set()
    for h in header:
        if h not in known:
            raise ToolError("line %d: unknown column %r (known: %s)" % (hdr_line, h, ", ".join(known)))
        if h in seen:
            raise ToolError("line %d: column %r appears twice" % (hdr_line, h))
        seen.add(h)
    rows = []
    last_t = None
    for lineno, text in body[1:]:
        cells = [c.strip() for c in _cells(text, lineno)]
        if len(cells) != len(header):
            raise ToolError("line %d: %d values for %d columns" % (lineno, len(cells), len(header)))
        row = {}
        for col, cell in zip(header, cells):
            if col == "t_s":
                if cell == "":
                    raise ToolError("line %d: t_s is empty" % lineno)
                t = _num(cell, col, lineno)
                if t < 0 or t > MAX_T_S:
                    raise ToolError("line %d: t_s %s is outside 0..%d" % (lineno, cell, MAX_T_S))
                t_ms = int(round(t * 1000))
                if last_t is not None and t_ms <= last_t:
                    raise ToolError("line %d: t_s %s is not after the previous row (%s)"
                                    % (lineno, cell, _fmt_s(last_t)))
                last_t = t_ms
                row["t_ms"] = t_ms
            elif col in spec["numeric"]:
                if cell == "":
                    continue  # keep the previous value
                v = _num(cell, col, lineno)
                lo, hi = spec["ranges"][col]
                if v < lo or v > hi:
                    raise ToolError("line %d: column %s: %s is outside %s..%s"
                                    % (lineno, col, cell, lo, hi))
                row[col + "_milli"] = int(round(v * 1000))
            else:
                allowed = spec["text"][col]
                if cell == "" and col not in spec["actions"]:
                    continue
                if cell not in allowed:
                    raise ToolError("line %d: column %s: %r is not one of %s"
                                    % (lineno, col, cell, ", ".join(a for a in allowed if a)))
                if cell:
                    row[col] = cell
        rows.append(row)
    if not rows:
        raise ToolError("line %d: the scenario has a header but no rows" % hdr_line)
    return rows, last_t


def _fmt_s(ms):
    return ("%.3f" % (ms / 1000.0)).rstrip("0").rstrip(".")


def build_header(args, device):
    if device == "valve":
        hdr = {"device": "valve", "config": {}, "seed": args.seed}
    else:
        cfg = {"profile": args.profile, "tier": args.tier}
        hdr = {"device": "detector", "config": cfg, "seed": args.seed,
               "stop_after_alarm": getattr(args, "stop_after_alarm", None)}
        if getattr(args, "no_noise", False):
            hdr["noise"] = {"rel_pct": 0, "ch4_ppm": 0, "co_ppm": 0}
    extra = getattr(args, "config", None)
    if extra:
        try:
            with open(extra, encoding="utf-8") as f:
                more = json.load(f)
        except (OSError, ValueError) as e:
            raise ToolError("--config %s: %s" % (extra, e))
        if not isinstance(more, dict):
            raise ToolError("--config %s: expected a JSON object" % extra)
        for k in ("profile", "tier"):
            if k in more and more[k] != hdr["config"].get(k):
                raise ToolError("--config %s: set %s with --%s" % (extra, k, k))
        hdr["config"].update(more)
    return hdr


def stream(runtime, device, header, rows, end_ms, out=None, micropython=None, heap=None):
    """Run the runner; feed it the rows; copy its JSON lines to out. Returns exit code.

    micropython, heap: the MicroPython interpreter's path and heap size (runtime.command)."""
    out = out or sys.stdout
    import subprocess

    script = BOARDS / "sim" / DEVICES[device]["runner"]
    if not script.exists():
        raise ToolError("the %s replay runner (%s) is not available in this version"
                        % (device, script.relative_to(BOARDS.parent)))
    proc = popen(runtime, script, heap=heap, micropython=micropython, stdin=subprocess.PIPE,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def feed():
        try:
            w = proc.stdin
            w.write((json.dumps(header) + "\n").encode())
            for r in rows:
                w.write((json.dumps(r) + "\n").encode())
            w.write((json.dumps({"end_ms": end_ms}) + "\n").encode())
            w.close()
        except (BrokenPipeError, OSError):
            pass

    th = threading.Thread(target=feed, daemon=True)
    th.start()
    err_msg = None
    try:
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace")
            try:
                ev = json.loads(line)
            except ValueError:
                ev = None
            if isinstance(ev, dict) and ev.get("event") == "error":
                err_msg = ev.get("message")
                continue
            out.write(line)
        out.flush()
    except BrokenPipeError:  # e.g. `gasguard replay ... | head`: stop quietly
        proc.kill()
        proc.wait()
        th.join()
        try:
            sys.stdout = None
        except Exception:
            pass
        return 0
    th.join()
    stderr = proc.stderr.read().decode("utf-8", "replace")
    rc = proc.wait()
    if err_msg:
        raise ToolError("%s runner: %s" % (runtime, err_msg))
    if rc != 0:
        tail = stderr.strip().splitlines()[-5:]
        raise ToolError("%s runner failed (exit %d): %s" % (runtime, rc, " | ".join(tail)))
    return 0


def run(args):
    try:  # a scenario or --config the tool refuses before running anything: usage (exit 2)
        rows, end_ms = parse_scenario(args.scenario, args.device)
        header = build_header(args, args.device)
    except ToolError as e:
        raise UsageError(str(e))
    runtime = args.runtime
    if runtime is None:
        runtime = "micropython" if (args.micropython or args.heap) else "cpython"
    if runtime == "cpython" and (args.micropython or args.heap):
        raise UsageError("--micropython and --heap choose the MicroPython runtime, not cpython")
    return stream(runtime, args.device, header, rows, end_ms, micropython=args.micropython,
                  heap=args.heap)
