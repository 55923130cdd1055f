"""The valve controller's self-test (SELFTEST, downlink self_test, Modbus): loaded by
ValveApp.self_test() for the call and released after it (docs/heap-budget.md)."""


def self_test(app):
    """Non-destructive: reads the switch, the sensors, the supply and (where the board
    can sense it) the trip-coil circuit. The coil is never energised (that would close
    the valve); use ITEST for a real close."""
    c = app.controller
    b = app.board
    cfg = c.cfg
    checks = {}
    failed = []
    raw_closed = b.switch.value() == cfg["switch_closed_level"]
    st = c.status()["valve"]
    checks["switch"] = "closed" if raw_closed else "open"
    if st in ("open", "closed") and (st == "closed") != raw_closed:
        checks["switch"] += " (differs from state %s)" % st
        failed.append("switch")
    if c.pressure_in is None:
        checks["pressure"] = "absent"
    else:
        uv = c.pressure_in.read_uv()
        ok = cfg["pressure_uv_min"] <= uv <= cfg["pressure_uv_max"]
        checks["pressure"] = "ok" if ok else "out_of_range (%d uV)" % uv
        if not ok:
            failed.append("pressure_sensor")
    if c.flow_in is None:
        checks["flow"] = "absent"
    else:
        checks["flow"] = "ok" if c.flow_m3h_x1000 is not None else "no reading"
    if c.supply_in is None:
        checks["supply"] = "absent"
    else:
        mv = (c.supply_in.read_uv() // 1000) * cfg["_s_x1000"] // 1000
        checks["supply"] = "%d mV" % mv
        if mv < cfg["supply_low_mv"]:
            failed.append("supply_low")
    sense = getattr(b, "trip_sense", None)
    if sense is None:
        checks["coil"] = "not_available"
    else:
        ok = bool(sense.value())
        checks["coil"] = "ok" if ok else "open_circuit"
        if not ok:
            failed.append("coil_open_circuit")
    for f in c.faults:
        if f not in failed:
            failed.append(f)
    result = "fail" if failed else "pass"
    app.emit({"event": "self_test", "state": "end", "result": result, "faults": failed})
    return {"started": True, "result": result, "checks": checks, "faults": failed}
