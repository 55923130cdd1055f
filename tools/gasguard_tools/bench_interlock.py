"""Interlock benchmark: how fast a detector alarm closes the valve over a lossy radio.

For each loss rate, N seeded trials of the real firmware (DetectorLink + ValveController
on SimAir, 0-40 ms delay, 10 % reordered, 5 % duplicated): wait for the link to come up,
call close() as the detector does on an alarm, then measure
  trip     alarm -> the valve controller drives the trip coil
  closed   alarm -> the position switch reads closed (800 ms simulated valve travel)
  acked    alarm -> the detector holds an acknowledgement (valve reported closed)
and print p50/p95/p99/max in milliseconds, plus the frames the close cost.
Also: HMAC frame cost on this host, and the flash write budget of the counters.

    PYTHONPATH=firmware:boards/sim:tools python -m gasguard_tools.bench_interlock [trials]
"""

import shutil
import sys
import tempfile
import time

from . import BOARDS, FIRMWARE

for _p in (str(FIRMWARE), str(BOARDS / "sim")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

LINK = {"heartbeat_ms": 2000, "link_timeout_ms": 20000}


def _pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, (len(xs) * p) // 100)]


def trial(seed, loss):
    from interlock_rig import InterlockRig

    tmp = tempfile.mkdtemp(prefix="gg-bench-")
    try:
        rig = InterlockRig(tmp, seed=seed, loss_pct=loss, dup_pct=5, delay_ms=(0, 40), reorder_pct=10,
                           link=LINK, keep_log=False)
        rig.run_until(lambda: rig.det.link == "up" and rig.valve.link.link == "up", 60000)
        rig.run(seed % 2000)  # alarm at a random phase of the heartbeat
        sent0 = rig.det.sent
        rig.det.close("ch4_high")
        t = {"trip": None, "closed": None, "acked": None}
        elapsed = 0
        while elapsed <= 60000 and None in t.values():
            if t["trip"] is None and rig.board.trips_seen:
                t["trip"] = elapsed
            if t["closed"] is None and rig.valve.state == "closed":
                t["closed"] = elapsed
            if t["acked"] is None and rig.det.state == "confirmed":
                t["acked"] = elapsed
            rig.step()
            elapsed += rig.step_ms
        t["frames"] = rig.det.attempts
        t["cause"] = rig.valve.cause
        t["sent"] = rig.det.sent - sent0
        return t
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def latency_table(trials, losses=(0, 10, 30, 50)):
    lines = [
        "| loss | trials | trip p50/p95/p99/max ms | closed p50/p95/p99/max ms | acked p50/p95/p99/max ms "
        "| close frames mean/max | causes |",
        "|---:|---:|---|---|---|---|---|",
    ]
    for loss in losses:
        rows = [trial(1000 * loss + s, loss) for s in range(trials)]
        cells = []
        for k in ("trip", "closed", "acked"):
            xs = [r[k] for r in rows if r[k] is not None]
            missing = len(rows) - len(xs)
            cell = "%d / %d / %d / %d" % (_pct(xs, 50), _pct(xs, 95), _pct(xs, 99), max(xs)) if xs else "-"
            if missing:
                cell += " (%d never)" % missing
            cells.append(cell)
        frames = [r["frames"] for r in rows]
        causes = {}
        for r in rows:
            causes[r["cause"]] = causes.get(r["cause"], 0) + 1
        lines.append("| %d %% | %d | %s | %s | %s | %.1f / %d | %s |" % (
            loss, trials, cells[0], cells[1], cells[2], sum(frames) / len(frames), max(frames),
            ", ".join("%s %d" % kv for kv in sorted(causes.items(), key=lambda kv: str(kv[0])))))
    return "\n".join(lines)


def frame_cost(n=2000):
    from gasguard import interlock_frame as F

    key = bytes(range(32))
    t0 = time.perf_counter()
    for i in range(n):
        f = F.close(key, i + 1, i, i + 1, 1)
        F.decode(key, f, (F.T_CLOSE,))
    dt = time.perf_counter() - t0
    return "encode + authenticate one CLOSE frame on CPython (this host): %.1f us" % (dt / n * 1e6)


_HEAP_SCRIPT = BOARDS / "sim" / "bench_interlock.py"


def heap_cost():
    import os
    import subprocess

    from . import ROOT
    from .runtime import micropython_exe

    env = dict(os.environ, MICROPYPATH=os.pathsep.join(
        [str(FIRMWARE), str(BOARDS / "sim"), str(ROOT / "host_tests" / "portable")]))
    r = subprocess.run([micropython_exe(), "-X", "heapsize=2m", str(_HEAP_SCRIPT)],
                       capture_output=True, text=True, env=env, timeout=120)
    if r.returncode != 0:
        # the unix port prints an uncaught exception on stdout
        return "heap cost: not measured (%s)" % (r.stderr + r.stdout).strip().splitlines()[-1:]
    d, v, run = (int(x) for x in r.stdout.split())
    return ("Heap on the MicroPython unix port (64-bit; the ESP32's 32-bit objects are about half): "
            "a DetectorLink %d bytes, a ValveController with its ValveLink %d bytes; "
            "10 s of running both (heartbeats, HMAC) leaves %d bytes more live." % (d, v, run))


def write_budget():
    hb = LINK["heartbeat_ms"]
    per_day = 86400000 // hb
    lines = ["| counter_block | frames/day at heartbeat %d ms | counter writes/day | writes in 10 years |" % hb,
             "|---:|---:|---:|---:|"]
    for block in (256, 1024, 4096):
        w = per_day / block
        lines.append("| %d | %d | %.1f | %d |" % (block, per_day, w, int(w * 3652)))
    return "\n".join(lines)


def main(trials=1000):
    print("## Interlock (ESP-NOW, simulated air)\n")
    print("Close latency after a detector alarm with the link up; heartbeat %d ms, link timeout %d ms, "
          "retries 100 ms doubling to 1 s, 0-40 ms delay, 10 %% reordered, 5 %% duplicated, valve travel "
          "800 ms.\n" % (LINK["heartbeat_ms"], LINK["link_timeout_ms"]))
    t0 = time.time()
    print(latency_table(trials))
    print("\n(%d trials per row, %.0f s wall time)\n" % (trials, time.time() - t0))
    print(frame_cost() + "\n")
    print(heap_cost() + "\n")
    print("Flash write budget of the frame counter (one write per block, plus one per boot):\n")
    print(write_budget())
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
