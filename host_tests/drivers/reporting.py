"""Differential driver for reporting: the same operations on CPython and MicroPython.

stdin: one JSON list of operations; stdout: every MQTT packet the firmware sent (as
fields, with the JSON payload printed canonically: sorted keys, since dict order differs
between interpreters), then the outbox keys and counters. Integers only.
"""

import json
import sys

from gasguard.commands import sign
from gasguard.mqtt import packet
from gasguard.reporter import Reporter
from gasguard.store import FileStore
from ptest import tmpdir
from reporting_fakes import AutoBroker, FakeNet
from simboard import SimClock

DEV = "88.118.8/GDH.240915.00123F"
KEY = bytes(range(32))


def canon(v):
    if isinstance(v, dict):
        return "{" + ",".join("%s:%s" % (json.dumps(k), canon(v[k])) for k in sorted(v)) + "}"
    if isinstance(v, list):
        return "[" + ",".join(canon(x) for x in v) + "]"
    return json.dumps(v)


class H:
    def hush(self):
        pass


def main():
    ops = json.loads(sys.stdin.read())
    clock = SimClock()
    net = FakeNet()
    b = AutoBroker(net)
    r = Reporter(clock, FileStore(tmpdir("drv-rep")), {"device_id": DEV, "fw": "0.1.0",
                 "tier": "M", "kind": "detector"},
                 {"mqtt": {"host": "10.0.0.9", "backoff_min_ms": 100}, "telemetry_slots": 3},
                 net, handler=H(), key=KEY, rand=lambda n: n // 3)
    topic = ("gasguard/%s/command" % DEV).encode()
    for op in ops:
        k = op[0]
        if k == "ev":
            r.event({"event": "alarm", "gas": "ch4", "level": op[1], "state": "on", "t": op[2]})
        elif k == "tele":
            r.telemetry({"ch4_ppm_x10": op[1]})
        elif k == "down" and net.last is not None:
            net.last.peer_closed = True
        elif k == "noack":
            b.ack = not b.ack
        elif k == "cmd" and net.last is not None and r.online:
            body = json.dumps(sign(KEY, DEV, "c%d" % op[1], op[1], 0, "hush")).encode()
            net.last.feed(packet(0x32, bytes([0, len(topic)]) + topic + b"\x00\x01" + body))
        for _ in range(op[-1] if k == "run" else 5):
            r.poll()
            b.service()
            clock.advance(37)
    for t, p, q, rt, dup in b.published:
        print(t, q, int(rt), int(dup), canon(json.loads(p)) if p else "(empty)")
    print("outbox", r.outbox.keys(), "ring", len(r.ring), r.ring_dropped)
    print("status", canon(r.status()))


main()
