"""The calibration verb of the service console (CAL ZERO|SPAN|COMMIT|ABORT|REVERT; CAL with
no argument reads, as CAL?). Loaded for a request by gasguard.service_cmds, released once
it is answered.
"""

import json

from gasguard.service_proto import E_ARG, ServiceError
from gasguard.service_read import args, call


def _channel(name):
    ch = name.lower()
    if ch not in ("ch4", "co"):
        raise ServiceError(E_ARG, "channel must be ch4 or co, not %r" % name)
    return ch


def _cmd_cal(svc, rest):
    a = rest.split()
    if not a:
        return call(svc, "cal_get")
    sub = a[0].upper()
    if sub == "ZERO":
        a = args(rest, 2, 2, "CAL ZERO <ch4|co>")
        return call(svc, "cal_zero", _channel(a[1]))
    if sub == "SPAN":
        a = args(rest, 3, 3, "CAL SPAN <ch4|co> <ppm>")
        try:
            ppm = float(a[2])
        except ValueError:
            raise ServiceError(E_ARG, "ppm must be a number")
        if not (ppm > 0 and ppm < 1000000):
            raise ServiceError(E_ARG, "ppm must be in (0, 1000000)")
        return call(svc, "cal_span", _channel(a[1]), ppm)
    if sub == "COMMIT":
        meta = {}
        if len(a) > 1:
            try:
                meta = json.loads(rest.split(None, 1)[1])
            except Exception:
                raise ServiceError(E_ARG, "usage: CAL COMMIT [json metadata]")
            if not isinstance(meta, dict):
                raise ServiceError(E_ARG, "metadata must be a JSON object")
        return call(svc, "cal_commit", meta)
    if sub == "REVERT":
        args(rest, 1, 1, "CAL REVERT")
        return call(svc, "cal_revert")
    if sub == "ABORT":
        args(rest, 1, 1, "CAL ABORT")
        call(svc, "cal_abort")
        return {"aborted": True}
    raise ServiceError(E_ARG, "usage: CAL ZERO|SPAN|COMMIT|ABORT|REVERT ...  (read with CAL?)")


VERBS = {"CAL": _cmd_cal}
