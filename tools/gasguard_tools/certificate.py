"""Calibration certificates: a JSON record for the line database and a printable HTML page.

build() makes the JSON document (schema "gasguard-calibration-certificate/1", fields in
docs/calibration-procedure.md); write() stores <out>/<number>.json and <number>.html and
returns the JSON path. The HTML shows the result, the device, the reference gases, the
measured values per channel and the response plot (the reading during zero, span and
verification, with the reference concentration).
"""

import datetime
import json
import re
from pathlib import Path

from .report import COLORS, NAMES, badge, esc, kv_table, line_chart, page

SCHEMA = "gasguard-calibration-certificate/1"


def build(device, info, results, spans, operator, zero_gas, span_lot, settings, trace, phases,
          error=None, tool_version=""):
    now = datetime.datetime.now().astimezone()
    ident = device.get("id") or device.get("serial") or "unprovisioned"
    number = "CAL-%s-%s" % (re.sub(r"[^A-Za-z0-9]+", "_", ident).strip("_"),
                            now.strftime("%Y%m%dT%H%M%S"))
    channels = {}
    for gas, r in results.items():
        if gas.startswith("_"):
            continue
        channels[gas] = {k: r.get(k) for k in (
            "result", "span_ppm", "zero_uv", "span_uv", "gain_pct", "verify_ppm",
            "verify_error_pct", "record", "reverted", "reason")}
    passed = bool(channels) and error is None and all(c["result"] == "pass" for c in channels.values())
    return {
        "schema": SCHEMA,
        "number": number,
        "issued": now.isoformat(timespec="seconds"),
        "result": "pass" if passed else "fail",
        "error": error,
        "device": {
            "id": device.get("id"), "serial": device.get("serial"), "model": device.get("model"),
            "tier": device.get("tier") or info.get("tier"), "kind": info.get("kind"),
            "fw": info.get("fw"), "board": info.get("board"),
            "provisioned": bool(device.get("provisioned")),
        },
        "operator": operator,
        "reference": {"zero_gas": zero_gas, "span_gas_lot": span_lot or None,
                      "span_ppm": {g: spans[g] for g in spans}},
        "settings": settings,
        "channels": channels,
        "trace": {g: [[round(t, 2), uv, ppm] for t, uv, ppm in pts] for g, pts in trace.items()},
        "phases": {g: [[round(a, 2), round(b, 2), label] for a, b, label in ph]
                   for g, ph in phases.items()},
        "tool": "gasguard " + tool_version,
    }


def write(doc, out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jp = out / (doc["number"] + ".json")
    jp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    (out / (doc["number"] + ".html")).write_text(render_html(doc), encoding="utf-8")
    return jp


PHASE_COLORS = {"zero": "#868e96", "span": "#f08c00", "verify": "#2b8a3e"}


def render_html(doc):
    dev = doc["device"]
    ok = doc["result"] == "pass"
    res = '<span class="result %s">%s</span>' % ("ok" if ok else "bad", "PASS" if ok else "FAIL")
    head = kv_table([
        ("Result", res),
        ("Certificate no.", "<b>%s</b>" % esc(doc["number"])),
        ("Issued", esc(doc["issued"].replace("T", " "))),
        ("Operator", esc(doc["operator"])),
    ])
    device = kv_table([
        ("Device identifier", "<b>%s</b>" % esc(dev.get("id") or "not provisioned")),
        ("Serial / model", esc("%s / %s" % (dev.get("serial") or "-", dev.get("model") or "-"))),
        ("Kind / tier", esc("%s / %s" % (dev.get("kind"), dev.get("tier")))),
        ("Firmware", esc("%s (%s)" % (dev.get("fw"), dev.get("board")))),
    ])
    ref = doc["reference"]
    reference = kv_table([
        ("Zero gas", esc(ref.get("zero_gas"))),
        ("Span gas", esc(", ".join("%s %s ppm" % (NAMES.get(g, g), v)
                                   for g, v in sorted(ref["span_ppm"].items())))),
        ("Span gas lot / certificate", esc(ref.get("span_gas_lot") or "not recorded")),
        ("Stability criterion", esc("signal within %s µV over %s s" % (
            doc["settings"].get("tolerance_uv"), doc["settings"].get("window_s")))),
        ("Acceptance", esc("reading at span gas within %s %% of the reference"
                           % doc["settings"].get("verify_pct"))),
    ])
    rows = []
    for gas, c in sorted(doc["channels"].items()):
        state = badge("PASS", "ok") if c["result"] == "pass" else badge(
            "FAIL" + (" (previous calibration restored)" if c.get("reverted") else ""), "bad")
        rows.append("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
                    "<td>%s</td><td>%s</td></tr>" % (
                        esc(NAMES.get(gas, gas)), _v(c.get("span_ppm"), "%.1f"),
                        _v(c.get("zero_uv"), "%d"), _v(c.get("span_uv"), "%d"),
                        _v(c.get("gain_pct"), "%d %%"), _v(c.get("verify_ppm"), "%.1f"),
                        _v(c.get("verify_error_pct"), "%.2f %%"), state))
    table = ('<table class="grid"><tr><th>Channel</th><th>Reference (ppm)</th><th>Zero (µV)</th>'
             '<th>Span (µV)</th><th>Span correction</th><th>Reads (ppm)</th>'
             '<th>Deviation</th><th>Result</th></tr>%s</table>' % "".join(rows))
    charts = []
    for gas, pts in sorted(doc["trace"].items()):
        if not pts:
            continue
        t0 = pts[0][0]
        series = [("%s reading (ppm)" % NAMES.get(gas, gas), COLORS.get(gas, "#333"),
                   [(t - t0, ppm) for t, _uv, ppm in pts])]
        bands = [(a - t0, b - t0, label, PHASE_COLORS.get(label, "#999"))
                 for a, b, label in doc["phases"].get(gas, [])]
        span = doc["reference"]["span_ppm"].get(gas)
        hl = [(span, "reference %s ppm" % span, "#2b8a3e")] if span else []
        charts.append(line_chart(series, width=700, height=190, x_label="seconds since start of channel",
                                 y_label="ppm", hlines=hl, bands=bands))
    plot = "\n".join(charts) or '<p class="small">no readings recorded</p>'
    err = ('<p>%s</p>' % badge("Not calibrated: " + doc["error"], "bad")) if doc.get("error") else ""
    body = """
<div class="cols"><div><h2>Certificate</h2>%s</div><div><h2>Device under calibration</h2>%s</div></div>
%s
<h2>Reference gases and method</h2>%s
<h2>Results</h2>%s
<h2>Response during calibration</h2>
<p class="small">The device reading while zero gas, span gas and the verification were applied.
Shaded: the windows in which the signal was stable and the value was taken. Before the commit
the reading uses the previous (or nominal) calibration; afterwards it must match the reference.</p>
%s
<div class="sign"><div>Calibrated by: %s</div><div>Checked by (QA)</div><div>Date</div></div>
""" % (head, device, err, reference, table, plot, esc(doc["operator"]))
    return page("Calibration certificate", "two-point zero/span calibration", body,
                doc_no=doc["number"])


def _v(x, fmt):
    if x is None:
        return "-"
    try:
        return esc(fmt % x)
    except TypeError:
        return esc(x)
