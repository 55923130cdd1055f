"""Detector benchmark: alarm latency (simulated), time and heap per Detector.step(), .mpy sizes.

- Alarm latency: replayed through the real runner (channel, calibration, filters, no
  noise) from gas application to the alarm event, per profile: methane at 1.6 x each set
  point, CO at each table point, and gas-removal to alarm-off.
- Step cost: Detector.step() with the real channels on the simulated board (clean air and
  in a CO alarm), on MicroPython and CPython: microseconds per step and heap bytes per step
  (must be 0 in steady state).
- Sizes: .mpy bytes (xtensawin) of the alarm modules.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from . import BOARDS, FIRMWARE
from .runtime import command

MODULES = ("profiles", "co_rates", "methane_alarm", "co_alarm", "outputs", "button", "selftest",
           "detector")

STEP_SCRIPT = BOARDS / "sim" / "bench_detector.py"


def _run(runtime, script, stdin=None):
    argv, env = command(runtime, script)
    r = subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True, timeout=300)
    if r.returncode:
        raise RuntimeError(r.stderr.strip()[-400:])
    return r.stdout


def _replay(header, rows, end_ms):
    lines = [json.dumps(header)] + [json.dumps(r) for r in rows] + [json.dumps({"end_ms": end_ms})]
    argv, env = command("cpython", BOARDS / "sim" / "replay_detector.py")
    r = subprocess.run(argv, env=env, input="\n".join(lines) + "\n", capture_output=True,
                       text=True, timeout=300)
    return [json.loads(x) for x in r.stdout.splitlines()]


def latency_table():
    sys.path.insert(0, str(FIRMWARE))
    from gasguard import profiles

    noise = {"rel_pct": 0, "ch4_ppm": 0, "co_ppm": 0}
    t0 = 300
    rows_md = ["| profile | stimulus | requirement | alarm after | back to normal after removal |",
               "|---|---|---|---:|---:|"]
    for pname in ("cn", "en", "ul"):
        p = profiles.load({"profile": pname, "tier": "mid"})
        for level, key in ((1, "ch4_low_x10"), (2, "ch4_high_x10")):
            ppm = p[key] * 16 // 100
            hdr = {"device": "detector", "config": {"profile": pname, "tier": "low",
                   "ch4": {"sensor": {"model": "mq4", "range_ppm": 30000}}}, "seed": 0,
                   "noise": noise}
            ev = _replay(hdr, [{"t_ms": 0}, {"t_ms": t0 * 1000, "ch4_ppm_milli": ppm * 1000},
                               {"t_ms": (t0 + 120) * 1000, "ch4_ppm_milli": 0}],
                         (t0 + 240) * 1000)
            on = [e["t"] for e in ev if e.get("event") == "alarm" and e.get("level") == level
                  and e.get("state") == "on"]
            off = [e["t"] for e in ev if e.get("event") == "alarm" and e.get("level") == level
                   and e.get("state") == "off"]
            rows_md.append("| %s | CH4 %d ppm (1.6 x level %d) | 15..30 s | %s s | %s s |" % (
                pname, ppm, level, on[0] - t0 if on else "none",
                off[0] - t0 - 120 if off else "none"))
        for ppm, lo, hi in p["co_windows"]:
            if hi is None:
                continue
            hdr = {"device": "detector", "config": {"profile": pname, "tier": "mid"}, "seed": 0,
                   "noise": noise, "stop_after_alarm": "co"}
            ev = _replay(hdr, [{"t_ms": 0}, {"t_ms": t0 * 1000, "co_ppm_milli": ppm * 1000}],
                         (t0 + hi + 60) * 1000)
            on = [e["t"] for e in ev if e.get("event") == "alarm" and e.get("state") == "on"]
            rows_md.append("| %s | CO %d ppm | %s..%d min | %s | |" % (
                pname, ppm, lo // 60, hi // 60,
                "%.1f min" % ((on[0] - t0) / 60.0) if on else "none"))
    return "\n".join(rows_md)


def step_table():
    rows = ["| runtime | state | us per step | heap bytes per step |", "|---|---|---:|---:|"]
    for rt in ("micropython", "cpython"):
        try:
            res = json.loads(_run(rt, STEP_SCRIPT).strip().splitlines()[-1])
        except (RuntimeError, ValueError) as e:
            rows.append("| %s | failed: %s | | |" % (rt, e))
            continue
        for name in ("clean_air", "co_alarm"):
            t, a = res[name]
            rows.append("| %s | %s | %.0f | %s |" % (rt, name, t, ("%.2f" % a) if rt == "micropython"
                                                         else "n/a"))
    return "\n".join(rows)


def size_table():
    from .runtime import cross_argv

    rows = ["| module | source bytes | .mpy bytes (xtensawin) |", "|---|---:|---:|"]
    tot = 0
    with tempfile.TemporaryDirectory() as tmp:
        for m in MODULES:
            src = FIRMWARE / "gasguard" / (m + ".py")
            out = Path(tmp) / (m + ".mpy")
            subprocess.run(cross_argv(src, "gasguard/%s.py" % m, out, ["-march=xtensawin", "-O3"]),
                           check=True)
            n = out.stat().st_size
            tot += n
            rows.append("| gasguard/%s.py | %d | %d |" % (m, src.stat().st_size, n))
    rows.append("| **total** | | **%d** |" % tot)
    return "\n".join(rows)


def main():
    print("### Alarm latency (simulated, real channel + calibration + filters, no noise)\n")
    print(latency_table())
    print("\n### Detector.step() cost (real channels, simulated board, 1 Hz steps)\n")
    print(step_table())
    print("\n### Alarm modules, .mpy sizes\n")
    print(size_table())


if __name__ == "__main__":
    main()
