"""Differential driver for the interlock: same input on both interpreters -> same bytes out.

Input: one JSON object per line.
  {"op": "frame", "key": hex, "type": int, "ctr": int, "echo": int, "body": hex}
      -> "F <frame hex> <decode result>"   (decoded by the matching receiver)
  {"op": "raw", "key": hex, "data": hex, "to": "valve" | "detector"}
      -> "R <reason or fields>"
  {"op": "rig", "seed": int, "loss": int, "dup": int, "alarm_ms": int, "run_ms": int}
      -> "E <t_ms> <who> <event as sorted key=value>" lines, then "S <summary>"
Integers only in the output (float repr differs between interpreters).
"""

import sys
import json
from binascii import hexlify, unhexlify

from gasguard import interlock_frame as F

TO_VALVE = (F.T_HEARTBEAT, F.T_CLOSE)
TO_DET = (F.T_STATUS, F.T_ACK)


def decoded(key, data, accept):
    try:
        t, c, e, fields = F.decode(key, data, accept)
    except F.FrameError as ex:
        return "reject:" + ex.reason
    out = []
    for f in fields:
        out.append(hexlify(f).decode() if isinstance(f, bytes) else str(f))
    return "%d/%d/%d/%s" % (t, c, e, ",".join(out))


def fmt(v):
    if isinstance(v, dict):
        return "{" + ",".join("%s:%s" % (k, fmt(v[k])) for k in sorted(v)) + "}"
    return str(v)


def rig(q):
    import os

    from interlock_rig import InterlockRig
    from ptest import tmpdir

    root = tmpdir("drv-%d" % q["seed"])
    r = InterlockRig(root, seed=q["seed"], loss_pct=q["loss"], dup_pct=q["dup"], delay_ms=(0, 30),
                     reorder_pct=10, link={"heartbeat_ms": 1000, "link_timeout_ms": 8000}, keep_log=False)
    r.run(q["alarm_ms"])
    r.det.close("ch4_high")
    r.run(q["run_ms"])
    for t, who, ev in r.events:
        sys.stdout.write("E %d %s %s\n" % (t, who, fmt(ev)))
    st = r.valve.status()
    sys.stdout.write("S valve=%s cause=%s det=%s attempts=%d sent=%d/%d rej=%d\n" % (
        st["valve"], st["cause"], r.det.state, r.det.attempts, r.det.sent, r.valve.link.sent,
        r.valve.link.rejected_total()))
    del os


for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    q = json.loads(line)
    if q["op"] == "frame":
        key = unhexlify(q["key"])
        t = q["type"]
        frame = F.encode(key, t, q["ctr"], q["echo"], unhexlify(q["body"]))
        accept = TO_DET if t & F.FROM_VALVE else TO_VALVE
        sys.stdout.write("F %s %s\n" % (hexlify(frame).decode(), decoded(key, frame, accept)))
    elif q["op"] == "raw":
        accept = TO_VALVE if q["to"] == "valve" else TO_DET
        sys.stdout.write("R %s\n" % decoded(unhexlify(q["key"]), unhexlify(q["data"]), accept))
    elif q["op"] == "rig":
        rig(q)
