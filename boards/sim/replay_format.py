"""The JSON-lines output of `gasguard replay`, shared by the detector and valve runners.

Written by hand rather than with json.dumps of the whole event: key order (t, event,
then sorted) and number formatting must be byte-identical on CPython and MicroPython,
whose dict order and float repr differ (docs/replay.md).
"""

import json


def fmt_t(ms):
    if ms % 1000 == 0:
        return "%d" % (ms // 1000)
    s = "%d.%03d" % (ms // 1000, ms % 1000)
    return s.rstrip("0")


def fmt_val(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return "%d" % v
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt_val(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(json.dumps(k) + ": " + fmt_val(v[k]) for k in sorted(v)) + "}"
    return json.dumps(v)


def fmt_event(ms, ev):
    parts = ['"t": ' + fmt_t(ms), '"event": ' + fmt_val(ev.get("event"))]
    for k in sorted(ev):
        if k != "event" and k != "t":
            parts.append(json.dumps(k) + ": " + fmt_val(ev[k]))
    return "{" + ", ".join(parts) + "}\n"
