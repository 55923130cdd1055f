"""Differential driver for the valve device: same input on both interpreters -> same bytes out.

Input: one JSON list of ops on stdin:
  ["p", pa]        line pressure at the valve      ["f", m3h_x1000]  flow
  ["b", ms]        hold the button for ms          ["h"]             a hand tries to reopen it
  ["c", line]      a console line (reply status only: OK/ERR code)
  ["r", ms]        run ms in 10 ms loop turns
Output: "E <event as sorted key=value>" per event (seq/boot/t included), "C <OK|ERR CODE>"
per reply, then "S <summary>". Integers and strings only (float repr differs).
"""

import json
import sys

from ptest import tmpdir
from valve_app_rig import Rig


def fmt(v):
    if isinstance(v, dict):
        return "{" + ",".join("%s:%s" % (k, fmt(v[k])) for k in sorted(v)) + "}"
    if isinstance(v, list):
        return "[" + ",".join(fmt(x) for x in v) + "]"
    return str(v)


class Printer:
    name = None

    def event(self, ev):
        sys.stdout.write("E %s\n" % fmt(ev))


def main():
    ops = json.loads(sys.stdin.read())
    r = Rig("diff", root=tmpdir("vdiff"))
    r.app.sinks.append(Printer())
    r.app.service.factory = True  # CFG writes too
    for op in ops:
        k = op[0]
        if k == "p":
            r.board.pressure_pa = op[1]
        elif k == "f":
            r.board.flow_m3h_x1000 = op[1]
        elif k == "b":
            r.board.button.set_input(1)
            r.run(op[1] // 10 * 10)
            r.board.button.set_input(0)
        elif k == "h":
            sys.stdout.write("H %s\n" % r.board.manual_reset())
        elif k == "c":
            r.board.console.feed(op[1] + "\n")
            r.run(30)
            out = r.board.console.take_output().decode()
            for ln in out.splitlines():
                w = ln.split(" ")
                sys.stdout.write("C %s\n" % (w[0] if w[0] == "OK" else " ".join(w[:2])))
        elif k == "r":
            r.run(op[1] // 10 * 10)
    st = r.app.status()
    keep = ("valve", "cause", "pressure_pa", "flow_m3h_x1000", "supply_mv", "faults", "counters",
            "uptime_s", "boot_count")
    sys.stdout.write("S %s\n" % fmt(dict((k, st[k]) for k in keep)))


main()
