"""Replay runner for the valve controller: `gasguard replay --device valve`.

The real gasguard.valve.ValveController on a simulated self-closing valve
(boards/sim/simvalve.py), driven by a pressure / flow / switch timeline streamed on
stdin; events printed as JSON lines on stdout. Runs on CPython and MicroPython alike.
Protocol: docs/replay.md "Runner protocol"; columns and semantics: docs/valve.md.

  stdin  1. header {"device": "valve", "config": {valve config}, "seed": int,
                    "mechanics": true, "step_ms": 20, "travel_ms": 800}
         2. rows   {"t_ms": int, "pressure_kpa_milli": int, "flow_m3h_milli": int,
                    "valve_switch": "open" | "closed" | "press" | "reset"}
         3. end    {"end_ms": int}
  stdout {"t": seconds, "event": ..., other keys sorted}, then {"event": "end", ...}.

pressure_kpa_milli is pascal and flow_m3h_milli is m3/h x 1000: the controller's own
integer units. valve_switch "closed" / "open" force the recorded position (the valve was
seen closed / opened by hand), "reset" is a manual reset (opening) too, "press" is the
controller's local close button. With "mechanics" (default) the simulated valve also
trips by itself at the configured nominal points, as the real mechanism does.
"""

import json
import sys

from replay_format import fmt_event
from simboard import MemStore, SimClock
from simvalve import SimValveBoard

from gasguard.validate import ConfigError
from gasguard.valve import ValveController, valve_config


class Runner:
    def __init__(self, header, out):
        self.out = out
        cfg = dict(header.get("config") or {})
        if "flow_mode" not in cfg:
            cfg["flow_mode"] = "analog"
        c = valve_config(cfg)  # ConfigError names the key
        self.step_ms = header.get("step_ms", 20)
        if not isinstance(self.step_ms, int) or not 1 <= self.step_ms <= c["switch_debounce_ms"]:
            raise ValueError("step_ms must be an int in 1..switch_debounce_ms")
        travel = header.get("travel_ms", 800)
        if not isinstance(travel, int) or not 0 <= travel <= 3000:
            raise ValueError("travel_ms must be an int in 0..3000")
        big = 1 << 29
        mech = header.get("mechanics", True)
        self.clock = SimClock(header.get("clock_start_ms"))
        self.board = SimValveBoard(
            self.clock, None, cfg, travel_ms=travel, pressure_pa=2000, flow_m3h_x1000=0,
            mech_over_pa=c["over_pressure_pa"] if mech else big,
            mech_under_pa=c["under_pressure_pa"] if mech else -big,
            mech_flow_m3h_x1000=c["rated_flow_m3h_x1000"] * c["over_flow_x100"] // 100 if mech else big,
        )
        self.valve = ValveController(self.board, cfg, MemStore(), self.emit)

    def emit(self, ev):
        self.out.write(fmt_event(self.clock.elapsed_ms, ev))

    def advance_to(self, t_ms, inclusive=False):
        """Run the controller up to t_ms (a row applies at t_ms: steps before it see old values)."""
        while self.clock.elapsed_ms + self.step_ms <= t_ms:
            self.clock.advance(self.step_ms)
            self.board.step()
            self.valve.poll()
        rest = t_ms - self.clock.elapsed_ms
        if rest > 0:
            self.clock.advance(rest)
            if inclusive:
                self.board.step()
                self.valve.poll()

    def apply(self, row):
        if "pressure_kpa_milli" in row:
            self.board.pressure_pa = _int(row, "pressure_kpa_milli")
        if "flow_m3h_milli" in row:
            self.board.flow_m3h_x1000 = max(0, _int(row, "flow_m3h_milli"))
        sw = row.get("valve_switch")
        if sw in ("open", "reset"):
            if not self.board.is_open:
                self.board.force(True)
        elif sw == "closed":
            if self.board.is_open:
                self.board.force(False)
        elif sw == "press":
            self.valve.close("manual", "button")
        elif sw not in (None, ""):
            raise ValueError("valve_switch %r is not open, closed, press or reset" % sw)
        self.board.step()
        self.valve.poll()

    def finish(self, end_ms):
        st = self.valve.status()
        self.out.write(fmt_event(end_ms, {
            "event": "end", "valve": st["valve"], "cause": st["cause"], "faults": st["faults"],
            "closes": st["counters"]["closes"], "reopens": st["counters"]["reopens"],
            "trips": st["counters"]["trips"],
        }))


def _int(row, k):
    v = row[k]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError("%s must be an integer" % k)
    return v


def main(inp=None, out=None):
    inp = inp or sys.stdin
    out = out or sys.stdout
    try:
        header = json.loads(inp.readline())
        if header.get("device") != "valve":
            raise ValueError("this runner replays valves, not %r" % header.get("device"))
        r = Runner(header, out)
    except (ValueError, KeyError, TypeError, ConfigError) as e:
        out.write(fmt_event(0, {"event": "error", "message": "header: %s" % e}))
        return 2
    n = 1
    while True:
        line = inp.readline()
        if not line:
            out.write(fmt_event(r.clock.elapsed_ms, {"event": "error", "message": "input ended without end_ms"}))
            return 2
        n += 1
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
            if "end_ms" in msg:
                if msg["end_ms"] < r.clock.elapsed_ms:
                    raise ValueError("end_ms goes back in time")
                r.advance_to(msg["end_ms"], True)
                r.finish(msg["end_ms"])
                return 0
            t = msg["t_ms"]
            if not isinstance(t, int) or t < r.clock.elapsed_ms:
                raise ValueError("t_ms %r goes back in time" % (t,))
            r.advance_to(t)
            r.apply(msg)
        except (ValueError, KeyError, TypeError) as e:
            out.write(fmt_event(r.clock.elapsed_ms, {"event": "error", "message": "input line %d: %s" % (n, e)}))
            return 2


if __name__ == "__main__":
    sys.exit(main())
