"""The detector's calibration facade (service verb CAL, docs/calibration.md): zero and span
staged per channel, the commit with its plausibility checks (clean air, stability, alarm
points still reached), one level of undo. Loaded by DetectorApp for each call and released
after it (docs/heap-budget.md): none of this is on the alarm path. The reading band it
checks stability against is kept by DetectorApp's loop (app._stab).
"""

import json

from gasguard.service_proto import E_STATE, E_UNSUPPORTED, ServiceError


CAL_BACKUP = "calibration.bak"


def _channel(app, gas):
    ch = app._chans.get(gas)
    if ch is None:
        raise ServiceError(E_UNSUPPORTED, "this device has no %s channel" % gas)
    return ch


def cal_get(app):
    from gasguard import calibration

    rec = calibration.load(app.store)
    chans = {}
    for gas in rec.gases():
        chans[gas] = rec.get(gas).as_dict()
    return {"problem": rec.problem, "channels": chans, "staged": json.loads(json.dumps(app._staged))}


def cal_zero(app, gas):
    from gasguard import calibration

    ch = _channel(app, gas)
    if ch.fault not in (None, "cal_missing", "end_of_life"):
        raise ServiceError(E_STATE, "channel %s is faulted (%s): cannot take zero" % (gas, ch.fault))
    uv = app._reading_uv(ch)
    calibration.compute_zero(ch.model, uv)  # CalibrationError names the reason
    calibration.check_clean_air(ch.model, uv, _alarm_points(app, gas)[0][1] // 2)
    _check_stable(app, gas, uv, "zero")
    app._staged[gas] = {"zero_uv": uv}
    return {"ch": gas, "zero_uv": uv}


def _alarm_points(app, gas):
    """(true ppm x10, must read at least) points a committed calibration must pass,
    against the sensor's own nominal model (docs/calibration.md, "Plausibility")."""
    cfg = app.detector.cfg
    rng = _channel(app, gas).model.range_ppm_x10
    if gas == "ch4":
        l1 = cfg["ch4_low_x10"]
        return ((min(2 * l1, rng), l1), (rng, l1))
    # CO: the UL 2034 / GB 15322.2 points 150 and 400 ppm must read at least 85 % (a lower
    # reading moves the dose-based alarm out of the standard's time window)
    return ((min(1500, rng), min(1275, rng * 85 // 100)),
            (min(4000, rng), min(3400, rng * 85 // 100)))


def _check_stable(app, gas, uv, what):
    """The reading must have stayed within 1 % + 2 mV over the last 10..20 s (right
    after boot there is no such band yet: refused)."""
    from gasguard.calibration import CalibrationError

    st = app._stab.get(gas)
    if st is None:
        return
    moved = max(st[1], st[3]) - min(st[0], st[2])
    if moved > uv // 100 + 2000:
        raise CalibrationError("%s: the reading moved %d µV in the last 10 s: not stable, "
                               "wait and retry" % (what, moved))


def cal_span(app, gas, ppm):
    ch = _channel(app, gas)
    st = app._staged.get(gas)
    if not st or "zero_uv" not in st:
        raise ServiceError(E_STATE, "take CAL ZERO %s before the span" % gas)
    from gasguard import calibration

    if ch.fault not in (None, "cal_missing", "end_of_life"):
        raise ServiceError(E_STATE, "channel %s is faulted (%s): cannot take span" % (gas, ch.fault))
    uv = app._reading_uv(ch)
    _check_stable(app, gas, uv, "span")
    ppm_x10 = int(ppm * 10 + 0.5)
    gain = calibration.compute_span(ch.model, st["zero_uv"], uv, ppm_x10)
    st["span_uv"] = uv
    st["span_ppm_x10"] = ppm_x10
    return {"ch": gas, "zero_uv": st["zero_uv"], "span_uv": uv, "span_ppm_x10": ppm_x10,
            "gain_pct": int(gain * 100 + 0.5)}


def cal_commit(app, meta):
    """Write the staged channels into the record (others kept), read back, apply."""
    from gasguard import calibration

    if not app._staged:
        raise ServiceError(E_STATE, "nothing staged: CAL ZERO/SPAN first")
    for gas, st in app._staged.items():
        if "span_uv" not in st:
            raise ServiceError(E_STATE, "channel %s has a zero but no span" % gas)
    date = calibration.check_date(meta.get("date"))
    op = meta.get("operator", "factory")
    rec = calibration.load(app.store)
    if rec.problem is not None:
        rec = calibration.CalibrationRecord()
    for gas, st in app._staged.items():
        model = _channel(app, gas).model
        rec = rec.with_zero(model, st["zero_uv"], date, op)
        rec = rec.with_span(model, st["span_uv"], st["span_ppm_x10"], date, op)
        # the firmware's own check: with this calibration the alarm points are reached
        calibration.check_alarms(model, rec.get(gas), _alarm_points(app, gas))
    prev = app.store.read(calibration.STORE_NAME)
    app.store.write(CAL_BACKUP, prev if prev is not None else b"")
    calibration.save(app.store, rec)
    back = calibration.load(app.store)
    for gas in app._staged:
        if back.get(gas) != rec.get(gas):
            raise ServiceError(E_STATE, "read-back of the calibration differs")
    gases = sorted(app._staged.keys())
    app._staged = {}
    _reload(app, gases)
    app.emit({"event": "calibration", "channels": gases, "operator": op, "date": date})
    out = {}
    for gas in gases:
        out[gas] = back.get(gas).as_dict()
    return {"committed": out}


def cal_abort(app):
    app._staged = {}


def cal_revert(app):
    """Put back the record that the last CAL COMMIT replaced (one level of undo)."""
    from gasguard import calibration

    bak = app.store.read(CAL_BACKUP)
    if bak is None:
        raise ServiceError(E_STATE, "nothing to revert")
    if bak:
        app.store.write(calibration.STORE_NAME, bak)
    else:
        app.store.remove(calibration.STORE_NAME)
    app.store.remove(CAL_BACKUP)
    app._staged = {}
    gases = sorted(app._gases)
    _reload(app, gases)
    app.emit({"event": "calibration", "channels": gases, "reverted": True})
    return cal_get(app)


def _reload(app, gases):
    from gasguard import calibration

    rec = calibration.load(app.store)
    for gas in gases:
        ch = _channel(app, gas)
        if hasattr(ch, "set_calibration"):
            ch.set_calibration(rec.get(gas))
            continue
        ch.cal = rec.get(gas)
        try:
            calibration.apply(ch.model, ch.cal)
            ch.cal_problem = None
        except calibration.CalibrationError as e:
            ch.cal_problem = str(e)
