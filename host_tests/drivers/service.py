"""Differential driver for the service console: bytes in, reply status lines out.

Input lines: {"chunks": [hex, ...], "gap_ms": int, "button": bool}
Each chunk is fed to the console, then the service is polled until it has consumed it and
the clock advances gap_ms. Output per request line: the status part of every reply
("OK" or "ERR <code>", with its tag) joined by "|", then the counters. JSON bodies are
not printed: dict order differs between the interpreters.
"""

import json
import sys
from binascii import unhexlify

from gasguard.service import Service
from simboard import SimClock, SimConsole
from service_facade import FacadeStub


class Dev(FacadeStub):
    def __init__(self):
        self.changes = 0

    def config_set(self, key, value):
        self.changes += 1

    def cal_zero(self, ch):
        self.changes += 1
        return {}

    def cal_span(self, ch, ppm):
        self.changes += 1
        return {}

    def cal_commit(self, meta):
        self.changes += 1
        return {}

    def cal_abort(self):
        pass


def status_of(line):
    words = line.split(" ")
    tag = ""
    if words and words[0].startswith("#"):
        tag = words[0] + " "
        words = words[1:]
    if words[0] == "OK":
        return tag + "OK"
    return tag + "ERR " + (words[1] if len(words) > 1 else "?")


for raw in sys.stdin:
    raw = raw.strip()
    if not raw:
        continue
    q = json.loads(raw)
    clock = SimClock()
    con = SimConsole()
    dev = Dev()
    svc = Service(con, dev, clock, {"line_max": 64, "chunk": 16}, rng=lambda n: bytes(n),
                  button_at_boot=q.get("button", False))
    for h in q["chunks"]:
        con.feed(unhexlify(h))
        while con.any():
            svc.poll()
        svc.poll()
        clock.advance(q.get("gap_ms", 0))
    out = con.take_output().decode()
    replies = [status_of(x) for x in out.split("\n") if x]
    sys.stdout.write("%s ; lines=%d errors=%d dropped=%d changes=%d\n" % (
        "|".join(replies), svc.lines, svc.errors, svc.dropped_partial, dev.changes))
