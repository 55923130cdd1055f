"""`gasguard diag --port PORT <status|log|watch|selftest|report>`: field diagnostics.

Everything here is read-only on the device except `selftest` (which sounds the buzzer
and lights the LEDs for a few seconds, exactly like the test button; on a valve
controller it only reads the switch and sensors) — no factory key is needed. A valve
controller (HELLO kind "valve") gets its own status table: valve state, why it closed,
link, pressure, flow, supply, counters. docs/technician-guide.md explains the output.
"""

import argparse
import json
import sys
import time

from . import i18n
from .i18n import fmt_uptime
from .runtime import ToolError, UsageError
from .serialdev import DeviceError, NoAnswer, ServiceClient

GASES = ("ch4", "co")
SPARK = "▁▂▃▄▅▆▇█"


def add_arguments(p):
    p.add_argument("--port", required=True, help="serial port (e.g. /dev/ttyUSB0, /dev/pts/3)")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for each answer")
    i18n.add_argument(p)
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    s = sub.add_parser("status", help="device summary (human table, or --json)")
    _lang_and_json(s)
    s = sub.add_parser("log", help="event log with times and causes")
    s.add_argument("-n", type=int, default=30, help="number of events (1..50)")
    _lang_and_json(s)
    s = sub.add_parser("watch", help="live readings with a small terminal chart")
    s.add_argument("--interval", type=float, default=1.0)
    s.add_argument("--count", type=int, default=0, help="stop after N readings (0 = Ctrl-C)")
    s.add_argument("--width", type=int, default=40, help="chart width in samples")
    _lang_and_json(s, "one JSON object per reading")
    s = sub.add_parser("selftest", help="run the device self-test and print the result")
    s.add_argument("--wait", type=float, default=8.0, help="seconds to wait for the result")
    _lang_and_json(s)
    s = sub.add_parser("report", help="one-page service report for the customer")
    s.add_argument("--lang", choices=i18n.LANGS, default=argparse.SUPPRESS,
                   help="language of the report (default: from the locale, else zh)")
    s.add_argument("--pdf", metavar="FILE", help="also print it to PDF (needs chromium)")
    s.add_argument("--html", required=True, metavar="FILE", help="write the report here")
    s.add_argument("--technician", default="", help="name printed on the report")
    s.add_argument("--notes", default="", help="technician's notes printed on the report")
    s.add_argument("--png", metavar="FILE", help="also render it to PNG (needs chromium)")


def _lang_and_json(s, json_help="machine-readable JSON"):
    s.add_argument("--json", action="store_true", help=json_help)
    # SUPPRESS: `diag --lang en status` and `diag status --lang en` both work
    s.add_argument("--lang", choices=i18n.LANGS, default=argparse.SUPPRESS,
                   help="language: zh or en (default: from the locale, else zh)")


def run(args):
    args.lang = i18n.resolve(getattr(args, "lang", None))
    if not getattr(args, "action", None):
        raise UsageError("choose an action: status, log, watch, selftest or report")
    with ServiceClient.open(args.port, args.baud, args.timeout) as dev:
        try:
            return ACTIONS[args.action](dev, args)
        except NoAnswer as e:
            raise ToolError(str(e))


# ------------------------------------------------------------------ status
def summary(dev):
    """The normalised status document (`diag status --json`)."""
    hello = dev.hello()
    ident = dev.cmd("ID?")
    st = dev.cmd("STATUS?")
    if hello.get("kind") == "valve":
        return valve_summary(hello, ident, st)
    det = st.get("detector") or {}
    readings = {}
    alarms = {}
    for gas in GASES:
        r = (st.get("readings") or {}).get(gas)
        if r is None:
            continue
        d = det.get(gas) or {}
        readings[gas] = {
            "ppm": r["ppm_x10"] / 10.0,
            "raw_uv": r.get("raw_uv"),
            "fault": r.get("fault"),
            "warming_up": r.get("warming_up"),
            "peak_ppm": (d.get("peak_ppm_x10") or 0) / 10.0,
        }
        if "pct_lel_x10" in d:
            readings[gas]["pct_lel"] = d["pct_lel_x10"] / 10.0
        if "dose_pct" in d:
            readings[gas]["co_dose_pct"] = d["dose_pct"]
        alarms[gas] = d.get("alarm", 0)
    return {
        "device_id": ident.get("id"),
        "serial": ident.get("serial"),
        "model": ident.get("model"),
        "identity_locked": ident.get("locked"),
        "kind": hello.get("kind"),
        "fw_version": hello.get("fw"),
        "protocol": hello.get("proto"),
        "board": hello.get("board"),
        "tier": st.get("tier") or det.get("tier"),
        "profile": st.get("profile") or det.get("profile"),
        "uptime_s": st.get("uptime_s"),
        "reset_cause": st.get("reset_cause"),
        "boot_count": st.get("boot_count"),
        "free_heap": st.get("free_heap"),
        "ready": det.get("ready"),
        "readings": readings,
        "alarms": alarms,
        "faults": det.get("faults", []),
        "hushed": det.get("hushed"),
        "relay": det.get("relay"),
        "interlock_cause": det.get("interlock_cause"),
        "valve_links": st.get("interlocks", []),
        "outbox_depth": st.get("outbox_depth"),
        "last_faults": st.get("last_faults", []),
        "last_errors": st.get("last_errors", []),
        "factory_mode": st.get("factory"),
        "parts": st.get("parts", {}),
    }


def valve_summary(hello, ident, st):
    """`diag status --json` of a valve controller (STATUS? of gasguard.valve_app)."""
    counters = dict(st.get("counters") or {})
    counters.setdefault("rejected_frames", 0)
    flow = st.get("flow_m3h_x1000")
    link_detail = st.get("link_detail") or {}
    return {
        "device_id": ident.get("id"),
        "serial": ident.get("serial"),
        "model": ident.get("model"),
        "identity_locked": ident.get("locked"),
        "kind": "valve",
        "fw_version": hello.get("fw"),
        "protocol": hello.get("proto"),
        "board": hello.get("board"),
        "tier": st.get("tier"),
        "profile": None,
        "uptime_s": st.get("uptime_s"),
        "reset_cause": st.get("reset_cause"),
        "boot_count": st.get("boot_count"),
        "free_heap": st.get("free_heap"),
        "valve": st.get("valve"),
        "cause": st.get("cause"),
        "cause_text": i18n.cause(st.get("cause"), "en") if st.get("cause") else None,
        "last_close": st.get("last_close"),
        "link": st.get("link"),
        "rejected_by_reason": dict((k, v) for k, v in
                                   (link_detail.get("rejected_by_reason") or {}).items() if v),
        "pressure_pa": st.get("pressure_pa"),
        "flow_m3h": None if flow is None else flow / 1000.0,
        "supply_mv": st.get("supply_mv"),
        "counters": counters,
        "faults": st.get("faults", []),
        "button": st.get("button"),
        "outbox_depth": st.get("outbox_depth"),
        "last_faults": st.get("last_faults", []),
        "last_errors": st.get("last_errors", []),
        "factory_mode": st.get("factory"),
        "parts": st.get("parts", {}),
    }


def _status(dev, args):
    s = summary(dev)
    if args.json:
        print(json.dumps(s, indent=2, sort_keys=True))
        return 0
    return _print_rows(status_rows(s, args.lang))


def status_rows(s, lang):
    """The `diag status` table as (label, value) rows in the chosen language."""
    def T(key, **kw):
        return i18n.t(key, lang, **kw)

    if s["kind"] == "valve":
        return _valve_rows(s, lang)
    rows = _common_rows(s, lang, ("tier_profile", "%s / %s" % (s["tier"], s["profile"])))
    rows.append((T("state"), T("ready") if s["ready"] else T("warming")))
    for gas, r in s["readings"].items():
        extra = []
        if "pct_lel" in r:
            extra.append("%.1f %%LEL" % r["pct_lel"])
        if "co_dose_pct" in r:
            extra.append("%s %d %%" % (T("dose"), r["co_dose_pct"]))
        if r["warming_up"]:
            extra.append(T("warming_up"))
        rows.append(("%s" % gas.upper(), "%8.1f ppm  %s  (%s %s uV, %s %.1f ppm)" % (
            r["ppm"], " ".join(extra), T("raw"), r["raw_uv"], T("peak"), r["peak_ppm"])))
        rows.append((T("alarm_fault"), "%s / %s" % (
            _alarm_name(s["alarms"].get(gas), lang),
            i18n.fault(r["fault"], lang) if r["fault"] else T("none"))))
    rows.append((T("faults"), _faults(s["faults"], lang)))
    rows.append((T("relay"), T("on") if s["relay"] else T("off")))
    links = s["valve_links"]
    rows.append((T("valve_links"), ", ".join(
        "%s:%s%s" % (x.get("type"), x.get("state"),
                     " (%s)" % i18n.fault(x["fault"], lang) if x.get("fault") else "")
        for x in links) or T("none_configured")))
    rows.append((T("interlock_cause"), s["interlock_cause"] or "-"))
    rows.extend(_pair_note_rows(s, lang))
    rows.append((T("outbox_depth"), "-" if s["outbox_depth"] is None else s["outbox_depth"]))
    rep = s["parts"].get("reporter")
    if isinstance(rep, dict):
        rows.append((T("platform"), "%s (mqtt %s, %s)" % (
            T("online") if rep.get("online") else T("offline"), rep.get("mqtt"),
            T("time_synced") if rep.get("time_synced") else T("time_not_synced"))))
    rows.append((T("last_errors"), "; ".join(s["last_errors"]) or T("none")))
    return rows


def _pair_note_rows(s, lang):
    """While a device shows that its pairing window failed (STATUS? parts.pair_note): why."""
    n = s.get("parts", {}).get("pair_note")
    if not isinstance(n, dict):
        return []
    return [(i18n.t("pairing_failed", lang), i18n.pair_reason(n.get("failed"), lang))]


def _faults(codes, lang):
    sep = "；" if lang == "zh" else "; "
    return sep.join(i18n.fault(c, lang) for c in codes) or i18n.t("none", lang)


def _width(text):
    """Columns a string takes in a terminal (CJK characters take two)."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _print_rows(rows):
    w = max(_width(str(k)) for k, _ in rows)
    for k, v in rows:
        print("%s%s  %s" % (k, " " * (w - _width(str(k))), v))
    return 0


def _valve_rows(s, lang):
    def T(key, **kw):
        return i18n.t(key, lang, **kw)

    rows = _common_rows(s, lang, ("kind_tier", "%s / %s" % (s["kind"], s["tier"])))
    state = i18n.word(s["valve"] or "?", lang).upper()
    if s["cause"]:
        state += " - %s %s" % (i18n.FIELDS["cause"][0 if lang == "zh" else 1], s["cause"])
    rows.append((T("valve"), state))
    lc = s["last_close"]
    if lc:
        src = " (source %s)" % lc["source"] if lc.get("source") else ""
        rows.append((T("last_close"), "%s %s%s" % (
            lc.get("cause"), T("at_boot_after", boot=lc.get("boot"), t=fmt_uptime(lc.get("t"))), src)))
    if s["cause"] and s["valve"] != "open" and i18n.cause(s["cause"], lang):
        rows.append((T("why"), i18n.cause(s["cause"], lang)))
    rej = s["rejected_by_reason"]
    rows.append((T("link"), "%s%s" % (s["link"], " (%s: %s)" % (T("rejected"), ", ".join(
        "%s %d" % kv for kv in sorted(rej.items()))) if rej else "")))
    p = s["pressure_pa"]
    rows.append((T("pressure"), "-" if p is None else "%.2f kPa" % (p / 1000.0)))
    rows.append((T("flow"), "- " + T("no_flow_input") if s["flow_m3h"] is None
                 else "%.3f m3/h" % s["flow_m3h"]))
    rows.append((T("supply"), "-" if s["supply_mv"] is None else "%d mV" % s["supply_mv"]))
    rows.extend(_pair_note_rows(s, lang))
    c = s["counters"]
    rows.append((T("counters"), ", ".join("%s %s" % (k.replace("_", " "), c[k]) for k in (
        "closes", "reopens", "trips", "trip_retries", "remote_closes", "rejected_frames") if k in c)))
    rows.append((T("faults"), _faults(s["faults"], lang)))
    rows.append((T("outbox_depth"), "-" if s["outbox_depth"] is None else s["outbox_depth"]))
    rep = s["parts"].get("reporter")
    if isinstance(rep, dict):
        rows.append((T("platform"), "%s (mqtt %s)" % (
            T("online") if rep.get("online") else T("offline"), rep.get("mqtt"))))
    rows.append((T("last_errors"), "; ".join(s["last_errors"]) or T("none")))
    return rows


def _common_rows(s, lang, kind_row):
    def T(key, **kw):
        return i18n.t(key, lang, **kw)

    return [
        (T("device_id"), s["device_id"] or T("not_provisioned")),
        (T("serial_model"), "%s / %s" % (s["serial"] or "-", s["model"] or "-")),
        (T("firmware"), "%s (%s, %s)" % (s["fw_version"], s["protocol"], s["board"])),
        (T(kind_row[0]), kind_row[1]),
        (T("uptime"), fmt_uptime(s["uptime_s"])),
        (T("reset_boots"), "%s / %s" % (s["reset_cause"], s["boot_count"])),
        (T("free_heap"), "%s %s" % (s["free_heap"], T("bytes"))),
    ]


def _alarm_name(level, lang="en"):
    key = {0: "alarm_none", 1: "alarm_low", 2: "alarm_high"}.get(level)
    return i18n.t(key, lang) if key else str(level)


# ------------------------------------------------------------------ log
def anchor_wall_times(evs, status):
    """Wall-clock times for this boot's events: the device counts time since boot, so the
    host's clock at the moment of reading anchors them (now - (uptime - t)). Events of
    earlier boots keep their time since boot (the device has no wall clock for them)."""
    up = status.get("uptime_s")
    boots = status.get("boot_count")
    if up is None or boots is None:
        return evs
    now = time.time()
    out = []
    for ev in evs:
        if ev.get("boot") == boots and isinstance(ev.get("t"), (int, float)) and "wall" not in ev:
            ev = dict(ev, wall=round(now - (up - ev["t"])))
        out.append(ev)
    return out


def _log(dev, args):
    if not 1 <= args.n <= 50:
        raise UsageError("-n must be in 1..50")
    evs = dev.cmd("LOG? %d" % args.n)["events"]
    try:
        evs = anchor_wall_times(evs, dev.cmd("STATUS?"))
    except DeviceError:
        pass
    if args.json:
        print(json.dumps(evs, indent=2, sort_keys=True))
        return 0
    lang = args.lang
    for ev in reversed(evs):
        if ev.get("event") == "valve" and ev.get("state") == "closed":
            print("%s: %s (%s) - %s" % (
                i18n.t("last_close_in_log", lang), ev.get("cause"),
                i18n.t("at_boot_after", lang, boot=ev.get("boot"), t=fmt_uptime(ev.get("t"))),
                i18n.cause(ev.get("cause"), lang) or "?"))
            break
    T = lambda k: i18n.t(k, lang)  # noqa: E731
    print("%5s %5s %19s  %-16s %s" % (T("seq"), T("boot"), T("time"), T("event"), T("details")))
    for ev in evs:
        print("%5s %5s %19s  %-16s %s" % (ev.get("seq"), ev.get("boot"), i18n.when(ev),
                                          i18n.event_name(ev.get("event"), lang),
                                          i18n.describe(ev, lang)))
    return 0


def describe(ev, lang="en"):
    return i18n.describe(ev, lang)


# ------------------------------------------------------------------ watch
def sparkline(values, width):
    vals = values[-width:]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    span = (hi - lo) or 1
    return "".join(SPARK[int((v - lo) * (len(SPARK) - 1) / span)] for v in vals)


def _watch(dev, args):
    hist = {g: [] for g in GASES}
    n = 0
    try:
        while True:
            r = dev.cmd("READ?")
            if args.json:
                print(json.dumps(r, sort_keys=True), flush=True)
                n += 1
                if args.count and n >= args.count:
                    return 0
                time.sleep(args.interval)
                continue
            parts = ["%8s" % fmt_uptime(r.get("uptime_s"))]
            if "pressure_pa" in r:  # a valve controller
                p = r.get("pressure_pa")
                hist.setdefault("p", []).append(p or 0)
                parts.append("%-7s" % str(r.get("valve")).upper())
                parts.append("%6s kPa %-*s" % ("-" if p is None else "%.2f" % (p / 1000.0), args.width,
                                               sparkline(hist["p"], args.width)))
                f = r.get("flow_m3h_x1000")
                parts.append("flow %s m3/h" % ("-" if f is None else "%.3f" % (f / 1000.0)))
            for gas in GASES:
                if gas not in r:
                    continue
                v = r[gas]["ppm_x10"] / 10.0
                hist[gas].append(v)
                flag = " " + r[gas]["fault"] if r[gas].get("fault") else ""
                parts.append("%s %8.1f ppm %-*s%s" % (gas.upper(), v, args.width,
                                                     sparkline(hist[gas], args.width), flag))
            print("  ".join(parts), flush=True)
            n += 1
            if args.count and n >= args.count:
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0


# ------------------------------------------------------------------ selftest
def _selftest(dev, args):
    if args.json:
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = _selftest_text(dev, args)
        lines = buf.getvalue().splitlines()
        print(json.dumps({"result": "pass" if rc == 0 else "fail", "log": lines}))
        return rc
    return _selftest_text(dev, args)


def _selftest_text(dev, args):
    before = dev.cmd("LOG? 1")["events"]
    seq0 = before[-1]["seq"] if before else -1
    r = dev.cmd("SELFTEST")
    if not r.get("started", True):
        print("self-test not started: %s" % r.get("reason", "?"))
        return 1
    if "checks" in r:  # a valve controller: immediate, read-only checks
        for k in sorted(r["checks"]):
            print("  %-9s %s" % (k, r["checks"][k]))
        faults = r.get("faults") or []
        print("self-test %s%s" % (str(r.get("result")).upper(), (": " + ", ".join(faults)) if faults else ""))
        return 0 if r.get("result") == "pass" else 1
    if r.get("faults"):
        print("faults found at start: %s" % ", ".join(r["faults"]))
    print("self-test running: LEDs and buzzer should come on now ...", flush=True)
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        time.sleep(0.5)
        for ev in dev.cmd("LOG? 10")["events"]:
            if ev["seq"] > seq0 and ev.get("event") == "self_test" and ev.get("state") == "end":
                result = ev.get("result")
                faults = ev.get("faults") or []
                print("self-test %s%s" % (str(result).upper(),
                                          (": " + ", ".join(faults)) if faults else ""))
                return 0 if result == "pass" else 1
    print("self-test started; no result event within %.0f s (check the device)" % args.wait)
    return 1


# ------------------------------------------------------------------ report
def collect(dev):
    s = summary(dev)
    try:
        hist = dev.cmd("HIST?")
    except DeviceError:
        hist = {"period_s": 60, "points": 0}
    evs = dev.cmd("LOG? 50")["events"]
    cal = dev.cmd("CAL?")
    return {"summary": s, "history": hist, "events": evs, "calibration": cal}


def _report(dev, args):
    from . import report

    if dev.hello().get("kind") == "valve":
        raise ToolError("the customer report is for detectors; for a valve controller use "
                        "`diag status` and `diag log` (--json for tickets)")
    data = collect(dev)
    html = report.render_html(data, technician=args.technician, notes=args.notes, lang=args.lang)
    with open(args.html, "w", encoding="utf-8") as f:
        f.write(html)
    print("service report written: %s" % args.html)
    if args.png:
        report.html_to_png(args.html, args.png)
        print("rendered: %s" % args.png)
    if args.pdf:
        report.html_to_pdf(args.html, args.pdf)
        print("PDF: %s" % args.pdf)
    return 0


ACTIONS = {"status": _status, "log": _log, "watch": _watch, "selftest": _selftest,
           "report": _report}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(2)
