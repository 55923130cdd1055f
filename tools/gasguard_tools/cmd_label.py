"""`gasguard label`: printable identifier labels (PNG and SVG) with a QR code.

One device:   gasguard label --id 88.118.8/GDH.240915.00123F --model GG-200 --out labels/
A batch:      gasguard label --prefix 88.118.8 --cat GD --tier H --date 240915 \\
                  --serial-from 123 --count 50 --model GG-200 --out labels/
From a CSV:   gasguard label --csv devices.csv --out labels/   (columns: id, model[, hw_rev])
Factory check: gasguard label --id ID --verify-port /dev/ttyUSB0
              reads the identifier from the device (ID?) and fails when it differs.

The QR payload is the template with {id} replaced (default: the bare identifier; use
--template https://<host>/id/{id} for a resolution URL); labels.csv also carries the same
payload as an NDEF record (hex) for writing NFC tags. Every label is checked: the
identifier validates, and the payload fits a QR code at error correction level M.
Layout and choices: docs/identity.md.
"""

import csv
import io
import json
import sys
from pathlib import Path

from . import FIRMWARE, i18n
from .runtime import ToolError, UsageError

if str(FIRMWARE) not in sys.path:
    sys.path.insert(0, str(FIRMWARE))

from gasguard.identifier import IdentifierError, factory_serial, make, parse  # noqa: E402
from gasguard.id_admin import qr_payload  # noqa: E402
from gasguard.identity import IdentityError  # noqa: E402

BRAND = "GASGUARD"
MM_PER_INCH = 25.4


def label_data(identifier, model, template="{id}", hw_rev=None):
    """Everything printed on one label, checked. Raises ToolError naming the problem."""
    try:
        p = parse(identifier)
    except IdentifierError as e:
        raise UsageError("identifier %r: %s" % (identifier, e))
    if not model or not isinstance(model, str) or len(model) > 32 or not model.isprintable():
        raise UsageError("model %r: 1..32 printable characters needed" % (model,))
    try:
        payload = qr_payload(template, identifier)
    except IdentityError as e:
        raise UsageError(str(e))
    d = p["date"]
    return {
        "id": identifier,
        "model": model,
        "tier": p["tier"],
        "kind": p["kind"],
        "mfg_date": "20%s-%s-%s" % (d[0:2], d[2:4], d[4:6]),
        "serial": factory_serial(identifier),
        "hw_rev": hw_rev,
        "payload": payload,
    }


def ndef_message(payload):
    """The NFC payload as one NDEF record (NFC Forum RTD): a URI record for https:// URLs
    (identifier code 0x04 = "https://"), a Text record ("en", UTF-8) for the bare identifier."""
    if payload.startswith("https://"):
        rtype, body = b"U", b"\x04" + payload[len("https://"):].encode()
    else:
        rtype, body = b"T", b"\x02en" + payload.encode()
    if len(body) > 255:
        raise UsageError("NFC payload too long for a short record")
    # MB=1 ME=1 SR=1 TNF=1 (well-known type)
    return bytes([0xD1, len(rtype), len(body)]) + rtype + body


def _qr(payload):
    import segno

    qr = segno.make(payload, error="m", micro=False, boost_error=False)
    return qr


def file_stem(identifier):
    return identifier.replace("/", "_")


# ---- PNG (Pillow) -------------------------------------------------------------------------


def _font(size, bold=False, cjk=False):
    from PIL import ImageFont

    if cjk:  # Chinese words need a CJK font (label_text() checked there is one)
        return ImageFont.truetype(i18n.cjk_font_file(), size)
    # Pillow's bundled font (needs FreeType, which the Pillow wheels include): the same on
    # every machine, so labels do not depend on the fonts a factory PC happens to have.
    return ImageFont.load_default(size=size)


def _fit(draw, text, max_w, size, min_size=10, cjk=False):
    while size > min_size:
        f = _font(size, cjk=cjk)
        if draw.textlength(text, font=f) <= max_w:
            return f
        size -= 1
    return _font(min_size, cjk=cjk)


def label_text(lang):
    """The words on a label in lang. Chinese needs a CJK font on this machine; without one
    the label is printed in English (never with missing-glyph boxes) and a warning says so."""
    if lang == "zh" and i18n.cjk_font_file() is None:
        print("gasguard label: warning: no CJK font (apt-get install fonts-wqy-microhei or set "
              "GASGUARD_CJK_FONT): printing the label in English", file=sys.stderr)
        lang = "en"
    T = lambda k: i18n.t(k, lang)  # noqa: E731
    return {"lang": lang, "cjk": lang == "zh",
            "kind": {"detector": T("label_detector"), "valve": T("label_valve")},
            "tier": {k: T("tier_" + k) for k in ("L", "M", "H")},
            "model": T("label_model"), "mfg": T("label_mfg"), "sn": T("label_sn"),
            "hw": T("label_hw")}


def render_png(data, path, width_mm=50.0, height_mm=30.0, dpi=300, lang="en"):
    from PIL import Image, ImageDraw

    words = label_text(lang)
    cjk = words["cjk"]

    px = dpi / MM_PER_INCH
    W, H = int(round(width_mm * px)), int(round(height_mm * px))
    u = H / 354.0  # layout unit: 1 at 300 dpi, 30 mm high
    img = Image.new("L", (W, H), 255)
    dr = ImageDraw.Draw(img)
    m = int(round(14 * u))
    dr.rounded_rectangle([m // 2, m // 2, W - 1 - m // 2, H - 1 - m // 2],
                         radius=int(18 * u), outline=0, width=max(2, int(3 * u)))

    # bottom band: the human-readable identifier, white on black
    band_h = int(round(64 * u))
    band_top = H - m - band_h
    dr.rounded_rectangle([m, band_top, W - 1 - m, H - 1 - m], radius=int(10 * u), fill=0,
                         corners=(False, False, True, True))
    cap = _font(int(15 * u))
    cap_w = dr.textlength("ID", font=cap)
    idf = _fit(dr, data["id"], W - 2 * m - cap_w - 3 * m, int(36 * u))
    tw = dr.textlength(data["id"], font=idf)
    x0 = m + m
    dr.text((x0, band_top + band_h // 2), "ID", font=cap, fill=255, anchor="lm")
    dr.text((x0 + cap_w + m + (W - 2 * m - cap_w - 3 * m - tw) / 2, band_top + band_h // 2),
            data["id"], font=idf, fill=255, anchor="lm")

    # QR code, integer pixels per module (crisp), quiet zone of 4 modules
    qr = _qr(data["payload"])
    mat = qr.matrix
    n = len(mat)
    qz = 4
    avail = band_top - 2 * m + int(m * 0.6)
    scale = max(1, avail // (n + 2 * qz))
    qsize = (n + 2 * qz) * scale
    qx, qy = m, m + (band_top - m - qsize) // 2
    for r in range(n):
        row = mat[r]
        for c in range(n):
            if row[c]:
                x = qx + (qz + c) * scale
                y = qy + (qz + r) * scale
                dr.rectangle([x, y, x + scale - 1, y + scale - 1], fill=0)

    # text block right of the QR
    tx = qx + qsize + int(6 * u)
    tw_max = W - m - int(10 * u) - tx
    y = m + int(14 * u)
    bf = _fit(dr, BRAND, tw_max, int(34 * u))
    dr.text((tx, y), BRAND, font=bf, fill=0, anchor="lt", stroke_width=max(1, int(u)), stroke_fill=0)
    y += int(42 * u)
    kf = _fit(dr, words["kind"][data["kind"]], tw_max, int(19 * u), cjk=cjk)
    dr.text((tx, y), words["kind"][data["kind"]], font=kf, fill=0, anchor="lt")
    y += int(30 * u)
    dr.line([tx, y, W - m - int(10 * u), y], fill=0, width=max(1, int(2 * u)))
    y += int(12 * u)

    # tier badge: big letter in a black square + the word
    bs = int(58 * u)
    bx = W - m - int(10 * u) - bs
    dr.rectangle([bx, y, bx + bs, y + bs], fill=0)
    dr.text((bx + bs / 2, y + bs / 2 - int(6 * u)), data["tier"], font=_font(int(40 * u)),
            fill=255, anchor="mm", stroke_width=max(1, int(u)), stroke_fill=255)
    dr.text((bx + bs / 2, y + bs - int(8 * u)), words["tier"][data["tier"]],
            font=_font(int(12 * u), cjk=cjk), fill=255, anchor="mm")
    lines = [(words["model"], data["model"]), (words["mfg"], data["mfg_date"]),
             (words["sn"], data["serial"])]
    if data.get("hw_rev"):
        lines.append((words["hw"], data["hw_rev"]))
    lab = _fit(dr, max((k for k, _ in lines), key=len), int(50 * u), int(15 * u), cjk=cjk)
    for i, (k, v) in enumerate(lines):
        ly = y + i * int(28 * u)
        dr.text((tx, ly), k, font=lab, fill=0, anchor="lt")
        vmax = (bx - int(8 * u)) - (tx + int(52 * u))
        vf = _fit(dr, v, vmax, int(21 * u))
        dr.text((tx + int(52 * u), ly - int(2 * u)), v, font=vf, fill=0, anchor="lt")
    img.save(str(path), dpi=(dpi, dpi))
    return path


# ---- SVG -----------------------------------------------------------------------------------


def _esc(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def render_svg(data, path, width_mm=50.0, height_mm=30.0, lang="en"):
    """Vector label in mm units: the QR as one path of unit squares, text as <text>."""
    W, H = width_mm, height_mm
    k = H / 30.0
    m = 1.2 * k
    band_h = 5.4 * k
    band_top = H - m - band_h
    qr = _qr(data["payload"])
    mat = qr.matrix
    n = len(mat)
    qz = 4
    qsize = band_top - m - 0.4 * k
    mod = qsize / (n + 2 * qz)
    qx, qy = m, m + 0.2 * k
    d = []
    for r in range(n):
        for c in range(n):
            if mat[r][c]:
                d.append("M%d %dh1v1h-1z" % (qz + c, qz + r))
    words = label_text(lang)
    font = "DejaVu Sans, WenQuanYi Micro Hei, Noto Sans CJK SC, Helvetica, Arial, sans-serif"
    tx = qx + qsize + 0.5 * k
    right = W - m - 0.8 * k
    bs = 4.9 * k
    bx = right - bs
    y0 = m + 1.2 * k
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<svg xmlns="http://www.w3.org/2000/svg" width="%gmm" height="%gmm" viewBox="0 0 %g %g">'
        % (W, H, W, H),
        '<title>%s</title>' % _esc(data["id"]),
        '<rect x="0" y="0" width="%g" height="%g" fill="#fff"/>' % (W, H),
        '<rect x="%g" y="%g" width="%g" height="%g" rx="%g" fill="none" stroke="#000" '
        'stroke-width="%g"/>' % (m / 2, m / 2, W - m, H - m, 1.5 * k, 0.25 * k),
        '<g transform="translate(%g %g) scale(%g)"><path fill="#000" d="%s"/></g>'
        % (qx, qy, mod, "".join(d)),
        '<g font-family="%s" fill="#000">' % font,
        '<text x="%g" y="%g" font-size="%g" font-weight="bold">%s</text>'
        % (tx, y0 + 2.6 * k, 2.9 * k, BRAND),
        '<text x="%g" y="%g" font-size="%g">%s</text>'
        % (tx, y0 + 5.6 * k, 1.55 * k, _esc(words["kind"][data["kind"]])),
        '<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#000" stroke-width="%g"/>'
        % (tx, y0 + 7.0 * k, right, y0 + 7.0 * k, 0.17 * k),
    ]
    y = y0 + 8.0 * k
    out.append('<rect x="%g" y="%g" width="%g" height="%g" fill="#000"/>' % (bx, y, bs, bs))
    out.append('<text x="%g" y="%g" font-size="%g" font-weight="bold" fill="#fff" '
               'text-anchor="middle">%s</text>' % (bx + bs / 2, y + 3.2 * k, 3.4 * k, data["tier"]))
    out.append('<text x="%g" y="%g" font-size="%g" fill="#fff" text-anchor="middle">%s</text>'
               % (bx + bs / 2, y + bs - 0.45 * k, 1.0 * k, _esc(words["tier"][data["tier"]])))
    lines = [(words["model"], data["model"]), (words["mfg"], data["mfg_date"]),
             (words["sn"], data["serial"])]
    if data.get("hw_rev"):
        lines.append((words["hw"], data["hw_rev"]))
    for i, (key, v) in enumerate(lines):
        ly = y + 1.3 * k + i * 2.35 * k
        out.append('<text x="%g" y="%g" font-size="%g">%s</text>' % (tx, ly, 1.25 * k, _esc(key)))
        out.append('<text x="%g" y="%g" font-size="%g" font-weight="bold">%s</text>'
                   % (tx + 4.4 * k, ly, 1.6 * k, _esc(v)))
    out.append("</g>")
    out.append('<rect x="%g" y="%g" width="%g" height="%g" fill="#000"/>'
               % (m, band_top, W - 2 * m, band_h))
    out.append('<text x="%g" y="%g" font-family="%s" font-size="%g" fill="#fff">ID</text>'
               % (2 * m, band_top + band_h / 2 + 0.45 * k, font, 1.25 * k))
    out.append('<text x="%g" y="%g" font-family="%s" font-size="%g" font-weight="bold" '
               'fill="#fff" text-anchor="middle" textLength="%g" lengthAdjust="spacingAndGlyphs">'
               '%s</text>' % ((W + 2 * m + 1.6 * k) / 2, band_top + band_h / 2 + 1.0 * k, font,
                              2.8 * k, W - 6 * m - 1.6 * k, _esc(data["id"])))
    out.append("</svg>")
    Path(path).write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


# ---- batch input ---------------------------------------------------------------------------


def batch_ids(prefix, cat, tier, date, serial_from, count):
    if count < 1 or count > 100000:
        raise UsageError("--count must be 1..100000")
    if serial_from < 0 or serial_from + count - 1 > 99999:
        raise UsageError("serials %d..%d are outside 0..99999" % (serial_from, serial_from + count - 1))
    try:
        return [make(prefix, cat, tier, date, s) for s in range(serial_from, serial_from + count)]
    except IdentifierError as e:
        raise UsageError(str(e))


def read_csv(path):
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as e:
        raise UsageError("cannot read %s: %s" % (path, e.strerror))
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise UsageError("%s: no rows" % path)
    if "id" not in rows[0]:
        raise UsageError("%s: needs an 'id' column (and 'model')" % path)
    out = []
    for i, r in enumerate(rows, start=2):
        out.append(((r.get("id") or "").strip(), (r.get("model") or "").strip() or None,
                    (r.get("hw_rev") or "").strip() or None, i))
    return out


def add_arguments(p):
    src = p.add_argument_group("which labels")
    src.add_argument("--id", help="one identifier")
    src.add_argument("--csv", help="CSV with columns id, model[, hw_rev]")
    src.add_argument("--prefix", help="enterprise prefix, e.g. 88.118.8 (batch)")
    src.add_argument("--cat", choices=["GD", "GV"], help="GD detector, GV valve (batch)")
    src.add_argument("--tier", choices=["L", "M", "H"], help="batch tier")
    src.add_argument("--date", help="production date YYMMDD (batch)")
    src.add_argument("--serial-from", type=int, help="first serial 0..99999 (batch)")
    src.add_argument("--count", type=int, default=1, help="how many labels (batch)")
    p.add_argument("--model", help="model printed on the label (CSV rows may override)")
    p.add_argument("--hw-rev", help="hardware revision printed on the label (optional)")
    p.add_argument("--template", default="{id}",
                   help="QR payload template: {id} or https://<host>/id/{id} (default {id})")
    p.add_argument("--out", default=".", help="output folder (default .)")
    p.add_argument("--format", default="png,svg", help="png, svg or png,svg (default)")
    p.add_argument("--size", default="50x30", help="label size in mm, WxH (default 50x30)")
    p.add_argument("--dpi", type=int, default=300, help="PNG resolution (default 300)")
    p.add_argument("--verify-port", metavar="PORT",
                   help="read the identifier from the device on PORT and compare it with --id")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--json", action="store_true", help="the result as one JSON line")
    i18n.add_argument(p)


def _size(s):
    try:
        w, h = s.lower().split("x")
        w, h = float(w), float(h)
    except ValueError:
        raise UsageError("--size must be WxH in mm, e.g. 50x30")
    if not (30 <= w <= 150 and 18 <= h <= 100) or w < h * 1.2:
        raise UsageError("--size %s: width 30..150 mm, height 18..100 mm, landscape" % s)
    return w, h


def collect(args):
    """[(identifier, model, hw_rev)] from the arguments, every one checked."""
    batch = [args.prefix, args.cat, args.tier, args.date, args.serial_from]
    modes = (args.id is not None) + (args.csv is not None) + any(b is not None for b in batch)
    if modes != 1:
        raise UsageError("give exactly one of --id, --csv or the batch options "
                        "(--prefix --cat --tier --date --serial-from [--count])")
    if args.id is not None:
        items = [(args.id, args.model, args.hw_rev, None)]
    elif args.csv is not None:
        items = [(i, m or args.model, h or args.hw_rev, line) for i, m, h, line in read_csv(args.csv)]
    else:
        if any(b is None for b in batch):
            raise UsageError("a batch needs --prefix, --cat, --tier, --date and --serial-from")
        items = [(i, args.model, args.hw_rev, None)
                 for i in batch_ids(args.prefix, args.cat, args.tier, args.date,
                                    args.serial_from, args.count)]
    seen = set()
    out = []
    for ident, model, hw, line in items:
        where = "" if line is None else "line %d: " % line
        if not model:
            raise UsageError("%sno model (use --model or a 'model' column)" % where)
        if ident in seen:
            raise UsageError("%sidentifier %s appears twice" % (where, ident))
        seen.add(ident)
        try:
            out.append(label_data(ident, model, args.template, hw))
        except ToolError as e:
            raise UsageError(where + str(e))
    return out


def run(args):
    if args.verify_port:
        if not args.id:
            raise UsageError("--verify-port needs --id (the identifier on the label)")
        from .factory import check_label_data, read_device_info

        label = {"id": args.id, "model": args.model, "hw_rev": args.hw_rev,
                 "qr_template": args.template}
        try:
            label["tier"] = parse(args.id)["tier"]
        except IdentifierError as e:
            raise UsageError("label identifier %r: %s" % (args.id, e))
        info = read_device_info(args.verify_port, args.baud)
        check_label_data(info, label)
        if args.json:
            print(json.dumps({"port": args.verify_port, "id": args.id, "matches": True}))
            return 0
        print("device on %s carries %s%s: matches the label"
              % (args.verify_port, args.id, " (%s)" % args.model if args.model else ""))
        return 0
    lang = i18n.resolve(getattr(args, "lang", None))
    formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
    if not formats or any(f not in ("png", "svg") for f in formats):
        raise UsageError("--format must be png, svg or png,svg")
    if not 100 <= args.dpi <= 1200:
        raise UsageError("--dpi must be 100..1200")
    w, h = _size(args.size)
    labels = collect(args)  # everything is checked before anything is written
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for d in labels:
        stem = out / file_stem(d["id"])
        if "png" in formats:
            render_png(d, stem.with_name(stem.name + ".png"), w, h, args.dpi, lang=lang)
        if "svg" in formats:
            render_svg(d, stem.with_name(stem.name + ".svg"), w, h, lang=lang)
    with open(out / "labels.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["id", "model", "tier", "kind", "mfg_date", "serial", "payload", "ndef_hex",
                     "file"])
        for d in labels:
            wr.writerow([d["id"], d["model"], d["tier"], d["kind"], d["mfg_date"], d["serial"],
                         d["payload"], ndef_message(d["payload"]).hex(), file_stem(d["id"])])
    if getattr(args, "json", False):
        print(json.dumps({"labels": len(labels), "folder": str(out), "formats": formats,
                          "ids": [d["id"] for d in labels]}))
        return 0
    print("%d label(s) written to %s (%s)" % (len(labels), out, ",".join(formats)))
    return 0
