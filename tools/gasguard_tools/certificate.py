"""Calibration certificates: a JSON record for the line database and a printable HTML page.

build() makes the JSON document (schema "gasguard-calibration-certificate/1", fields in
docs/calibration-procedure.md); write() stores <out>/<number>.json and <number>.html and
returns the JSON path. The HTML shows the result, the device, the reference gases, the
measured values per channel and the response plot (the reading during zero, span and
verification, with the reference concentration).
"""

import datetime
import hashlib
import json
import math
import os
import re
from pathlib import Path

from . import i18n
from .report import COLORS, badge, esc, gas_name, kv_table, line_chart, page

SCHEMA = "gasguard-calibration-certificate/2"
DEFAULT_INTERVAL_MONTHS = 12  # annual recalibration (the technician guide's annual check)
RESOLUTION_PPM = 0.1  # the device reports ppm x 10

# What a certificate must record before it may release a device (docs/calibration-procedure.md).
RELEASE_NEEDS = (
    ("device_provisioned", "the device has no identity (not provisioned)"),
    ("identity_locked", "the device identity is not locked"),
    ("span_gas_lot", "span gas lot not recorded"),
    ("span_gas_certificate", "span gas certificate not recorded"),
    ("ambient", "ambient temperature and humidity not recorded"),
    ("operator", "operator not named (--operator or GASGUARD_OPERATOR)"),
    ("reference_instrument", "reference instrument not recorded"),
)


def certificate_number(device_id, when, salt=None):
    """GGC-<device identifier>-<UTC time>-<8 hex>: the identifier makes it traceable to the
    device, the time and a random suffix make it unique even for two runs in one second."""
    ident = re.sub(r"[^A-Za-z0-9]+", "_", device_id or "unprovisioned").strip("_")
    salt = os.urandom(8) if salt is None else salt
    tail = hashlib.sha256((ident + when.isoformat()).encode() + salt).hexdigest()[:8].upper()
    return "GGC-%s-%s-%s" % (ident, when.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
                             tail)


def add_months(day, months):
    y, m = divmod(day.month - 1 + months, 12)
    y += day.year
    m += 1
    last = [31, 29 if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 else 28, 31, 30, 31, 30, 31,
            31, 30, 31, 30, 31][m - 1]
    return day.replace(year=y, month=m, day=min(day.day, last))


def expanded_uncertainty_pct(gas_u_pct, verify_error_pct, span_ppm):
    """U (k = 2) of the calibrated reading at the span point, in % of the reading (GUM):
    the span gas (its certificate's U at k = 2, so u = U/2), the verification deviation as a
    rectangular distribution (u = |d|/sqrt 3) and the display resolution (u = r/sqrt 12)."""
    if gas_u_pct is None or verify_error_pct is None or not span_ppm:
        return None
    u_gas = gas_u_pct / 2.0
    u_rep = abs(verify_error_pct) / math.sqrt(3.0)
    u_res = (RESOLUTION_PPM / span_ppm * 100.0) / math.sqrt(12.0)
    return round(2.0 * math.sqrt(u_gas ** 2 + u_rep ** 2 + u_res ** 2), 2)


def build(device, info, results, spans, operator, zero_gas, span_lot, settings, trace, phases,
          error=None, tool_version="", span_cert=None, span_gas_u_pct=None, ambient=None,
          reference_instrument=None, interval_months=DEFAULT_INTERVAL_MONTHS, now=None):
    now = (now or datetime.datetime.now()).astimezone()
    number = certificate_number(device.get("id") or device.get("serial"), now)
    channels = {}
    for gas, r in results.items():
        if gas.startswith("_"):
            continue
        channels[gas] = {k: r.get(k) for k in (
            "result", "span_ppm", "zero_uv", "span_uv", "gain_pct", "verify_ppm",
            "verify_error_pct", "record", "reverted", "reason")}
        channels[gas]["uncertainty_pct"] = expanded_uncertainty_pct(
            span_gas_u_pct, r.get("verify_error_pct"), r.get("span_ppm"))
    passed = bool(channels) and error is None and all(c["result"] == "pass" for c in channels.values())
    ambient = dict(ambient or {})
    have = {
        "device_provisioned": bool(device.get("provisioned") or device.get("id")),
        "identity_locked": bool(device.get("locked")),
        "span_gas_lot": bool(span_lot),
        "span_gas_certificate": bool(span_cert),
        "ambient": ambient.get("temperature_c") is not None and ambient.get("humidity_pct") is not None,
        "operator": bool(operator) and operator not in ("root", "admin", "user"),
        "reference_instrument": bool(reference_instrument),
    }
    blocks = [why for key, why in RELEASE_NEEDS if not have[key]]
    # PASS only for a calibration that passed on a device that may be released with it
    result = "fail" if not passed else ("pass" if not blocks else "not_valid_for_release")
    due = add_months(now.date(), interval_months).isoformat() if passed else None
    doc = {
        "schema": SCHEMA,
        "number": number,
        "issued": now.isoformat(timespec="seconds"),
        "due": due,
        "result": result,
        "calibration_passed": passed,
        "valid_for_release": result == "pass",
        "release_blocked_by": blocks if passed else [],
        "error": error,
        "device": {
            "id": device.get("id"), "serial": device.get("serial"), "model": device.get("model"),
            "tier": device.get("tier") or info.get("tier"), "kind": info.get("kind"),
            "fw": info.get("fw"), "board": info.get("board"),
            "provisioned": have["device_provisioned"], "locked": have["identity_locked"],
        },
        "operator": operator,
        "ambient": {"temperature_c": ambient.get("temperature_c"),
                    "humidity_pct": ambient.get("humidity_pct")},
        "reference": {"zero_gas": zero_gas, "span_gas_lot": span_lot or None,
                      "span_gas_certificate": span_cert or None,
                      "span_gas_uncertainty_pct": span_gas_u_pct,
                      "instrument": reference_instrument or None,
                      "span_ppm": {g: spans[g] for g in spans}},
        "uncertainty": (
            "The expanded uncertainty U is the combined standard uncertainty (span gas "
            "certificate, verification deviation, display resolution of %.1f ppm) multiplied "
            "by the coverage factor k = 2, a coverage probability of about 95 %% (JCGM "
            "100:2008, GUM)." % RESOLUTION_PPM),
        "settings": settings,
        "channels": channels,
        "trace": {g: [[round(t, 2), uv, ppm] for t, uv, ppm in pts] for g, pts in trace.items()},
        "phases": {g: [[round(a, 2), round(b, 2), label] for a, b, label in ph]
                   for g, ph in phases.items()},
        "tool": "gasguard " + tool_version,
    }
    # a digest of everything above: a copy that was edited afterwards no longer matches
    doc["digest"] = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    return doc


def write(doc, out, lang="en", pdf=False):
    """<out>/<number>.json and .html (+ .pdf with pdf=True); returns the JSON path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jp = out / (doc["number"] + ".json")
    jp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    hp = out / (doc["number"] + ".html")
    hp.write_text(render_html(doc, lang), encoding="utf-8")
    if pdf:
        from .report import html_to_pdf

        html_to_pdf(hp, out / (doc["number"] + ".pdf"))
    return jp


PHASE_COLORS = {"zero": "#868e96", "span": "#f08c00", "verify": "#2b8a3e"}


def render_html(doc, lang="en"):
    def T(key, **kw):
        return i18n.t(key, lang, **kw)

    dev = doc["device"]
    kind = {"pass": "ok", "fail": "bad"}.get(doc["result"], "warn")
    res = '<span class="result %s">%s</span>' % (kind, esc(T("cert_" + doc["result"])))
    blocked = ""
    if doc.get("release_blocked_by"):
        blocked = '<p>%s</p><ul>%s</ul>' % (
            badge(T("cert_not_valid_for_release"), "bad"),
            "".join("<li>%s</li>" % esc(_why(w, lang)) for w in doc["release_blocked_by"]))
    amb = doc.get("ambient") or {}
    head = kv_table([
        (T("cert_result"), res),
        (T("cert_number"), "<b>%s</b>" % esc(doc["number"])),
        (T("cert_issued"), esc(doc["issued"].replace("T", " "))),
        (T("cert_due"), esc(doc.get("due") or "-")),
        (T("cert_operator"), esc(doc["operator"] or T("cert_not_recorded"))),
        (T("cert_ambient"), esc("%s °C, %s %%RH" % (
            _v(amb.get("temperature_c"), "%.1f"), _v(amb.get("humidity_pct"), "%.0f"))
            if amb.get("temperature_c") is not None else T("cert_not_recorded"))),
    ])
    not_prov = T("not_provisioned").strip("（）()")
    device = kv_table([
        (T("device_id"), "<b>%s</b>" % esc(dev.get("id") or not_prov)),
        (T("serial_model"), esc("%s / %s" % (dev.get("serial") or "-", dev.get("model") or "-"))),
        (T("kind_tier"), esc("%s / %s" % (dev.get("kind"), dev.get("tier")))),
        (T("firmware"), esc("%s (%s)" % (dev.get("fw"), dev.get("board")))),
        (T("cert_identity"), esc(T("cert_locked") if dev.get("locked") else T("cert_unlocked"))),
    ])
    ref = doc["reference"]
    nr = T("cert_not_recorded")
    reference = kv_table([
        (T("cert_zero_gas"), esc(ref.get("zero_gas"))),
        (T("span_gas"), esc(", ".join("%s %s ppm" % (gas_name(g, lang), v)
                                      for g, v in sorted(ref["span_ppm"].items())))),
        (T("cert_lot"), esc(ref.get("span_gas_lot") or nr)),
        (T("cert_gas_cert"), esc(ref.get("span_gas_certificate") or nr)),
        (T("cert_gas_u"), esc("%s %% (k = 2)" % ref["span_gas_uncertainty_pct"]
                              if ref.get("span_gas_uncertainty_pct") is not None else nr)),
        (T("cert_instrument"), esc(ref.get("instrument") or nr)),
        (T("cert_stability"), esc(T("cert_stability_text", uv=doc["settings"].get("tolerance_uv"),
                                    s=doc["settings"].get("window_s")))),
        (T("cert_acceptance"), esc(T("cert_acceptance_text", pct=doc["settings"].get("verify_pct")))),
    ])
    rows = []
    for gas, c in sorted(doc["channels"].items()):
        state = badge("PASS", "ok") if c["result"] == "pass" else badge(
            "FAIL" + (" (%s)" % T("cert_restored") if c.get("reverted") else ""), "bad")
        rows.append("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
                    "<td>%s</td><td>%s</td><td>%s</td></tr>" % (
                        esc(gas_name(gas, lang)), _v(c.get("span_ppm"), "%.1f"),
                        _v(c.get("zero_uv"), "%d"), _v(c.get("span_uv"), "%d"),
                        _v(c.get("gain_pct"), "%d %%"), _v(c.get("verify_ppm"), "%.1f"),
                        _v(c.get("verify_error_pct"), "%.2f %%"),
                        _v(c.get("uncertainty_pct"), "± %.2f %%"), state))
    table = ('<table class="grid"><tr><th>%s</th><th>%s (ppm)</th><th>%s (µV)</th><th>%s (µV)</th>'
             '<th>%s</th><th>%s (ppm)</th><th>%s</th><th>U (k=2)</th><th>%s</th></tr>%s</table>'
             % (T("channel"), T("cert_reference"), T("cert_zero"), T("cert_span"),
                T("cert_correction"), T("cert_reads"), T("cert_deviation"), T("cert_result"),
                "".join(rows)))
    charts = []
    for gas, pts in sorted(doc["trace"].items()):
        if not pts:
            continue
        t0 = pts[0][0]
        series = [("%s (ppm)" % gas_name(gas, lang), COLORS.get(gas, "#333"),
                   [(t - t0, ppm) for t, _uv, ppm in pts])]
        bands = [(a - t0, b - t0, label, PHASE_COLORS.get(label, "#999"))
                 for a, b, label in doc["phases"].get(gas, [])]
        span = doc["reference"]["span_ppm"].get(gas)
        hl = [(span, "reference %s ppm" % span, "#2b8a3e")] if span else []
        charts.append(line_chart(series, width=700, height=170, x_label=T("cert_seconds"),
                                 y_label="ppm", hlines=hl, bands=bands))
    plot = "\n".join(charts) or '<p class="small">-</p>'
    err = ('<p>%s</p>' % badge("%s: %s" % (T("cert_not_calibrated"), doc["error"]), "bad")) \
        if doc.get("error") else ""
    body = """
<div class="cols"><div><h2>%s</h2>%s</div><div><h2>%s</h2>%s</div></div>
%s%s
<h2>%s</h2>%s
<h2>%s</h2>%s
<p class="small">%s</p>
<h2>%s</h2>
%s
<p class="small">%s %s</p>
<div class="sign"><div>%s: %s</div><div>%s</div><div>%s</div></div>
""" % (T("cert_certificate"), head, T("cert_dut"), device, blocked, err,
       T("cert_method"), reference, T("cert_results"), table, esc(_uncertainty(doc, lang)),
       T("cert_response"), plot, T("cert_traceable"), esc(doc.get("digest", "")),
       T("cert_calibrated_by"), esc(doc["operator"]), T("cert_checked_by"), T("date"))
    return page(T("cert_title"), T("cert_subtitle"), body, doc_no=doc["number"], lang=lang)


def _why(text, lang):
    key = {why: "cert_block_" + k for k, why in RELEASE_NEEDS}.get(text)
    return i18n.t(key, lang) if key and lang == "zh" else text


def _uncertainty(doc, lang):
    return i18n.t("cert_uncertainty_text", lang) if lang == "zh" else doc.get("uncertainty", "")


def _v(x, fmt):
    if x is None:
        return "-"
    try:
        return esc(fmt % x)
    except TypeError:
        return esc(x)
