"""Printable documents: the one-page service report, shared SVG charts and PNG rendering.

Everything is self-contained HTML (inline CSS and SVG, no scripts, no network), sized
for A4, so it can be mailed, archived and printed as it is. `html_to_png` renders with
headless chromium when it is installed (used for the screenshots in docs/ and by the
tests that look at the documents).
"""

import datetime
import html
import math
import shutil
import subprocess
from pathlib import Path

from . import VERSION, i18n
from .i18n import fmt_uptime

CSS = """
@page { size: A4; margin: 14mm; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "WenQuanYi Micro Hei", "Noto Sans CJK SC", "Helvetica Neue",
       Arial, sans-serif; color: #1c2430;
       font-size: 9.5pt; margin: 0; background: #fff; }
.page { width: 190mm; margin: 0 auto; padding: 6mm 0; }
header { display: flex; justify-content: space-between; align-items: flex-end;
         border-bottom: 3px solid #12508a; padding-bottom: 3mm; margin-bottom: 4mm; }
header .brand { font-size: 20pt; font-weight: bold; color: #12508a; letter-spacing: .5px; }
header .brand small { display: block; font-size: 9pt; color: #5b6775; font-weight: normal;
                      letter-spacing: 0; }
header .doc { text-align: right; font-size: 13pt; font-weight: bold; }
header .doc small { display: block; font-size: 8.5pt; font-weight: normal; color: #5b6775; }
h2 { font-size: 11pt; color: #12508a; border-bottom: 1px solid #c9d3de; padding-bottom: 1mm;
     margin: 4mm 0 1.5mm; text-transform: uppercase; letter-spacing: .6px; }
table { border-collapse: collapse; width: 100%; }
td, th { padding: 0.8mm 1.6mm; text-align: left; vertical-align: top; }
table.kv td:first-child { color: #5b6775; width: 38%; }
table.grid th { background: #eef2f6; font-size: 9pt; color: #3a4654; }
table.grid td, table.grid th { border: 1px solid #d5dde6; font-size: 9pt; }
.cols { display: flex; gap: 6mm; }
.cols > div { flex: 1; }
.badge { display: inline-block; padding: .6mm 2.5mm; border-radius: 2mm; font-weight: bold;
         font-size: 9pt; }
.ok { background: #dff3e4; color: #1d6b34; }
.warn { background: #fff1cc; color: #7a5a00; }
.bad { background: #fbdada; color: #9b1c1c; }
.result { font-size: 15pt; padding: 2mm 5mm; border-radius: 2mm; font-weight: bold; }
.small { font-size: 8.5pt; color: #5b6775; }
.sign { display: flex; gap: 10mm; margin-top: 9mm; }
.sign div { flex: 1; border-top: 1px solid #1c2430; padding-top: 1mm; font-size: 8.5pt;
            color: #5b6775; }
footer { margin-top: 6mm; border-top: 1px solid #c9d3de; padding-top: 2mm; font-size: 8pt;
         color: #7a8592; display: flex; justify-content: space-between; }
svg text { font-family: "DejaVu Sans", "WenQuanYi Micro Hei", "Noto Sans CJK SC", Arial, sans-serif; }
"""

COLORS = {"ch4": "#d9480f", "co": "#1864ab"}
NAMES = {"ch4": "Methane (CH\u2084)", "co": "Carbon monoxide (CO)"}


def gas_name(gas, lang="en"):
    return i18n.t(gas, lang) if gas in NAMES else gas


def esc(x):
    return html.escape("" if x is None else str(x))


def nice_max(v):
    if v <= 0:
        return 1.0
    mag = 10 ** len(str(int(v))) / 10.0
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * mag:
            return m * mag
    return 10 * mag


def nice_step(raw):
    """1, 2 or 5 times a power of ten, at least raw."""
    if raw <= 0:
        return 1.0
    p = 10.0 ** int(("%e" % raw).split("e")[1])
    for m in (1, 2, 5, 10):
        if raw <= m * p:
            return m * p
    return 10 * p


def line_chart(series, width=640, height=190, x_label="", y_label="", hlines=(), bands=(),
               x_max=None, y_max=None, x_fmt=None):
    """An SVG line chart. series: [(label, color, [(x, y), ...])]; hlines: [(y, label, color)];
    bands: [(x0, x1, label, color)] shaded spans."""
    ml, mr, mt, mb = 58, 14, 20, 34  # the legend sits in the top margin
    pw, ph = width - ml - mr, height - mt - mb
    xs = [x for _, _, pts in series for x, _ in pts] or [0, 1]
    ys = [y for _, _, pts in series for _, y in pts] + [y for y, _, _ in hlines] or [0, 1]
    x0 = min(xs + [0])
    x1 = x_max if x_max is not None else max(xs + [x0 + 1])
    if x1 <= x0:
        x1 = x0 + 1
    y1 = y_max if y_max is not None else nice_max(max(ys) * 1.08 if ys else 1)
    y0 = 0.0

    def sx(x):
        return ml + (x - x0) * pw / (x1 - x0)

    def sy(y):
        y = max(y0, min(y1, y))
        return mt + ph - (y - y0) * ph / (y1 - y0)

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">'
           % (width, height, width, height)]
    out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="#fbfcfd" stroke="#c9d3de"/>'
               % (ml, mt, pw, ph))
    for bx0, bx1, label, color in bands:
        out.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" opacity="0.16"/>'
                   % (sx(bx0), mt, max(1.0, sx(bx1) - sx(bx0)), ph, color))
        out.append('<text x="%.1f" y="%d" font-size="9" fill="#3a4654">%s</text>'
                   % (sx(bx0) + 3, mt + 11, esc(label)))
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        y = sy(yv)
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e3e8ee"/>' % (ml, ml + pw, y, y))
        out.append('<text x="%d" y="%.1f" font-size="9" text-anchor="end" fill="#5b6775">%s</text>'
                   % (ml - 4, y + 3, _num(yv)))
    step = nice_step((x1 - x0) / 5.0)
    first = math.floor(x0 / step) * step
    xticks = [first + k * step for k in range(0, 12)]
    for xv in xticks:
        if xv < x0 - 1e-9 or xv > x1 + 1e-9:
            continue
        x = sx(xv)
        out.append('<text x="%.1f" y="%d" font-size="9" text-anchor="middle" fill="#5b6775">%s</text>'
                   % (x, mt + ph + 12, esc(x_fmt(xv) if x_fmt else _num(xv))))
    for yv, label, color in hlines:
        y = sy(yv)
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="5,3"/>'
                   % (ml, ml + pw, y, y, color))
        out.append('<text x="%d" y="%.1f" font-size="9" text-anchor="end" fill="%s">%s</text>'
                   % (ml + pw - 3, y - 3, color, esc(label)))
    for label, color, pts in series:
        if not pts:
            continue
        d = " ".join("%s%.1f,%.1f" % ("M" if i == 0 else "L", sx(x), sy(y)) for i, (x, y) in enumerate(pts))
        out.append('<path d="%s" fill="none" stroke="%s" stroke-width="1.8"/>' % (d, color))
    # legend: in the top margin, right-aligned, so it never hides a trace or a label
    x = ml + pw
    for label, color, _ in reversed([t for t in series if t[0]]):
        w = 5.4 * len(label) + 18
        x -= w
        out.append('<rect x="%.1f" y="%d" width="10" height="3" fill="%s"/>' % (x, mt - 9, color))
        out.append('<text x="%.1f" y="%d" font-size="9" fill="#3a4654">%s</text>'
                   % (x + 14, mt - 5, esc(label)))
        x -= 10
    out.append('<text x="%d" y="%d" font-size="9.5" text-anchor="middle" fill="#3a4654">%s</text>'
               % (ml + pw / 2, height - 4, esc(x_label)))
    out.append('<text x="12" y="%d" font-size="9.5" text-anchor="middle" fill="#3a4654" '
               'transform="rotate(-90 12 %d)">%s</text>' % (mt + ph / 2, mt + ph / 2, esc(y_label)))
    out.append("</svg>")
    return "\n".join(out)


def _num(v):
    if abs(v) >= 100 or v == int(v):
        return "%d" % round(v)
    return "%.1f" % v


def page(title, subtitle, body, doc_no="", lang="en"):
    now = datetime.datetime.now().astimezone()
    generated = i18n.t("generated", lang, when=now.strftime("%Y-%m-%d %H:%M %Z"), version=VERSION)
    return """<!DOCTYPE html>
<html lang="%s"><head><meta charset="utf-8"><title>%s</title><style>%s</style></head>
<body><div class="page">
<header><div class="brand">gasguard<small>%s</small></div>
<div class="doc">%s<small>%s</small></div></header>
%s
<footer><span>%s</span><span>%s</span></footer>
</div></body></html>
""" % ("zh-CN" if lang == "zh" else "en", esc(title), CSS, esc(i18n.t("brand_sub", lang)),
       esc(title), esc(subtitle), body, esc(generated), esc(doc_no))


def kv_table(rows):
    return '<table class="kv">%s</table>' % "".join(
        "<tr><td>%s</td><td>%s</td></tr>" % (esc(k), v) for k, v in rows)


def badge(text, kind):
    return '<span class="badge %s">%s</span>' % (kind, esc(text))


# ---------------------------------------------------------------------- service report
def render_html(data, technician="", notes="", lang="en"):
    def T(key, **kw):
        return i18n.t(key, lang, **kw)

    s = data["summary"]
    hist = data.get("history") or {}
    faults = s.get("faults") or []
    alarms = {g: a for g, a in (s.get("alarms") or {}).items() if a}
    if alarms:
        overall = badge(T("alarm_active"), "bad")
    elif faults:
        overall = badge(T("fault_badge") + ": " + "; ".join(i18n.fault(f, lang) for f in faults), "warn")
    elif not s.get("ready"):
        overall = badge(T("warming_badge"), "warn")
    else:
        overall = badge(T("normal"), "ok")
    not_prov = T("not_provisioned").strip("（）()")
    ident = kv_table([
        (T("device_id"), "<b>%s</b>" % esc(s.get("device_id") or not_prov)),
        (T("serial_number"), esc(s.get("serial") or "-")),
        (T("model_kind"), esc("%s / %s" % (s.get("model") or "-", s.get("kind")))),
        (T("tier_profile"), esc("%s / %s" % (s.get("tier"), s.get("profile")))),
        (T("firmware"), esc("%s (%s)" % (s.get("fw_version"), s.get("protocol")))),
    ])
    state = kv_table([
        (T("overall"), overall),
        (T("uptime"), esc(fmt_uptime(s.get("uptime_s")))),
        (T("last_reset_cause"), esc(s.get("reset_cause"))),
        (T("boot_count"), esc(s.get("boot_count"))),
        (T("relay_interlock"), esc("%s / %s" % (T("on") if s.get("relay") else T("off"),
                                                s.get("interlock_cause") or T("no_shutoff")))),
        (T("valve_links"), esc(", ".join("%s: %s" % (x.get("type"), x.get("state"))
                                         for x in s.get("valve_links") or []) or T("none_configured"))),
    ])
    rrows = []
    for gas, r in (s.get("readings") or {}).items():
        st = badge("%s %s" % (i18n.event_name("alarm", lang), s["alarms"].get(gas)), "bad") \
            if s["alarms"].get(gas) else (
            badge(i18n.fault(r["fault"], lang), "warn") if r.get("fault") else badge("ok", "ok"))
        rrows.append("<tr><td>%s</td><td>%.1f ppm%s</td><td>%.1f ppm</td><td>%s</td></tr>" % (
            esc(gas_name(gas, lang)), r["ppm"],
            " (%.1f %%LEL)" % r["pct_lel"] if "pct_lel" in r else "",
            r.get("peak_ppm") or 0, st))
    readings = ('<table class="grid"><tr><th>%s</th><th>%s</th><th>%s</th><th>%s</th></tr>%s</table>'
                % (T("gas"), T("now"), T("peak_since_reset"), T("state"), "".join(rrows)))
    period = hist.get("period_s") or 60
    n = hist.get("points") or 0
    charts = []
    for gas in ("ch4", "co"):
        vals = hist.get(gas)
        if vals is None:
            continue
        pts = [((i - n + 1) * period / 60.0, v / 10.0) for i, v in enumerate(vals) if v >= 0]
        charts.append(line_chart(
            [("%s (%s)" % (gas_name(gas, lang), T("peak_per", period=period)), COLORS[gas], pts)],
            width=700, height=118, x_label=T("minutes_now"), y_label="ppm",
            x_max=0, x_fmt=lambda x: "%d" % round(x)))
    if not charts or n == 0:
        charts = ['<p class="small">%s</p>' % esc(T("no_history", period=period))]
    ev_rows = []
    for ev in (data.get("events") or [])[-10:]:
        ev_rows.append("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>" % (
            esc(ev.get("boot")), esc(i18n.when(ev)), esc(i18n.event_name(ev.get("event"), lang)),
            esc(i18n.describe(ev, lang))))
    events = ('<table class="grid"><tr><th>%s</th><th>%s</th><th>%s</th><th>%s</th></tr>%s</table>'
              % (T("boot"), T("time"), T("event"), T("details"), "".join(ev_rows)))
    cal = data.get("calibration") or {}
    crow = []
    for gas, c in sorted((cal.get("channels") or {}).items()):
        crow.append("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s ppm</td></tr>" % (
            esc(gas_name(gas, lang)), esc(_date(c.get("date"))), esc(c.get("operator")),
            esc((c.get("span_ppm_x10") or 0) / 10.0)))
    calib = ('<table class="grid"><tr><th>%s</th><th>%s</th><th>%s</th><th>%s</th></tr>%s</table>'
             % (T("channel"), T("calibrated"), T("by"), T("span_gas"), "".join(crow))) if crow else (
        '<p>%s</p>' % badge("%s: %s" % (T("no_valid_cal"), cal.get("problem") or "missing"), "warn"))
    body = """
<div class="cols"><div><h2>%s</h2>%s</div><div><h2>%s</h2>%s</div></div>
<h2>%s</h2>%s
<h2>%s</h2>%s
<div class="cols"><div style="flex:1.6"><h2>%s</h2>%s</div>
<div><h2>%s</h2>%s<h2>%s</h2><p>%s</p></div></div>
<div class="sign"><div>%s: %s</div><div>%s</div><div>%s</div></div>
""" % (T("device"), ident, T("state"), state, T("gas_readings"), readings, T("history"),
       "\n".join(charts), T("recent_events"), events, T("calibration"), calib, T("notes"),
       esc(notes) or '<span class="small">%s</span>' % T("none"), T("technician"), esc(technician),
       T("date"), T("customer_signature"))
    return page(T("service_report"), "%s %s" % (T("device_id"), s.get("device_id") or not_prov), body,
                doc_no="%s: %s" % (T("faults"), ", ".join(faults) or T("none")), lang=lang)


def _date(d):
    d = str(d or "")
    return "%s-%s-%s" % (d[:4], d[4:6], d[6:]) if len(d) == 8 else d


# ---------------------------------------------------------------------- PNG
def chromium_exe():
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def _chromium(extra, html_path, out_path, what):
    import tempfile

    from .runtime import ToolError

    exe = chromium_exe()
    if exe is None:
        raise ToolError("rendering to %s needs chromium (apt-get install chromium)" % what)
    out_path = Path(out_path)
    if out_path.exists():
        out_path.unlink()
    with tempfile.TemporaryDirectory(prefix="gasguard-chromium-") as profile:
        cmd = [exe] + CHROMIUM_FLAGS + ["--user-data-dir=" + profile] + extra + [
            Path(html_path).resolve().as_uri()]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0 or not out_path.exists():
        raise ToolError("chromium could not render %s: %s" % (html_path, r.stderr[-300:]))
    return out_path


def html_to_pdf(html_path, pdf_path):
    """Print the page to an A4 PDF with headless chromium (the @page rule sets the size)."""
    return _chromium(["--no-pdf-header-footer", "--print-to-pdf=%s" % Path(pdf_path).resolve()],
                     html_path, pdf_path, "PDF")


def html_to_png(html_path, png_path, width=794, height=1123):
    _chromium(["--hide-scrollbars", "--force-device-scale-factor=1",
               "--window-size=%d,%d" % (width, height), "--screenshot=%s" % Path(png_path).resolve()],
              html_path, png_path, "PNG")
    return png_path
