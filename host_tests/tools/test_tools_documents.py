"""The printable documents: certificate and service report HTML, and their PNG rendering."""

import json

import pytest

from fixtures.documents import sample_cert
from gasguard_tools import certificate, report


def test_certificate_json_and_html(tmp_path):
    doc = sample_cert()
    p = certificate.write(doc, tmp_path)
    back = json.loads(p.read_text())
    assert back["schema"] == certificate.SCHEMA and back["result"] == "pass"
    assert back["number"].startswith("GGC-88_118_8_GDM_261129_01042S-")
    html = p.with_suffix(".html").read_text()
    assert "Line &lt;3&gt; &amp; co" in html and "<script" not in html
    assert html.count("<svg") == 1 and "reference 100.0 ppm" in html


def test_failed_certificate_says_so():
    doc = sample_cert(result_ok=False)
    assert doc["result"] == "fail"
    html = certificate.render_html(doc)
    assert "FAIL" in html and "previous calibration restored" in html
    assert "Not calibrated: co verification failed" in html


def test_chart_handles_empty_and_flat_series():
    svg = report.line_chart([("flat", "#000", [(0, 0), (1, 0)])], x_label="x", y_label="y")
    assert svg.startswith("<svg") and "nan" not in svg.lower()
    assert report.line_chart([("none", "#000", [])]).startswith("<svg")


@pytest.mark.skipif(report.chromium_exe() is None, reason="chromium not installed")
def test_certificate_renders_to_png(tmp_path):
    h = tmp_path / "c.html"
    h.write_text(certificate.render_html(sample_cert()))
    png = report.html_to_png(h, tmp_path / "c.png")
    data = png.read_bytes() if hasattr(png, "read_bytes") else open(png, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20000


def _blank_device_cert(**kw):
    base = sample_cert()
    args = dict(device={"id": "88.118.8/GDM.261129.01042S", "provisioned": True, "locked": True},
                info={"kind": "detector"}, results={"co": dict(base["channels"]["co"])},
                spans={"co": 100.0}, operator="Wang Li", zero_gas="air", span_lot="C-1",
                settings=base["settings"], trace={}, phases={}, span_cert="GBW-1",
                ambient={"temperature_c": 21, "humidity_pct": 40}, reference_instrument="X")
    args.update(kw)
    return certificate.build(**args)


def test_pass_needs_a_locked_identity_and_every_record():
    assert _blank_device_cert()["result"] == "pass"
    cases = {
        "device": {"id": None, "provisioned": False},
        "span_lot": "", "span_cert": None, "ambient": {"temperature_c": 21},
        "operator": "root", "reference_instrument": "",
    }
    for key, value in cases.items():
        doc = _blank_device_cert(**{key: value})
        assert doc["result"] == "not_valid_for_release" and doc["calibration_passed"], key
        assert len(doc["release_blocked_by"]) >= 1
    doc = _blank_device_cert(device={"id": "88.118.8/GDM.261129.01042S", "provisioned": True,
                                     "locked": False})
    assert doc["release_blocked_by"] == ["the device identity is not locked"]
    # a failed calibration is FAIL, never "not valid for release" (and has no due date)
    failed = sample_cert(result_ok=False)
    assert failed["result"] == "fail" and failed["due"] is None


def test_numbers_are_unique_and_carry_the_device_identifier():
    import datetime

    when = datetime.datetime(2026, 12, 2, 6, 0, 0).astimezone()
    numbers = {certificate.certificate_number("88.118.8/GDM.261129.01042S", when) for _ in range(500)}
    assert len(numbers) == 500
    assert all(n.startswith("GGC-88_118_8_GDM_261129_01042S-") for n in numbers)


def test_due_date_and_uncertainty():
    import datetime

    assert certificate.add_months(datetime.date(2026, 1, 31), 1) == datetime.date(2026, 2, 28)
    assert certificate.add_months(datetime.date(2027, 12, 15), 12) == datetime.date(2028, 12, 15)
    # U grows with the span gas uncertainty and the verification deviation; never below the gas's
    u1 = certificate.expanded_uncertainty_pct(2.0, 0.0, 100.0)
    u2 = certificate.expanded_uncertainty_pct(2.0, 3.0, 100.0)
    assert 2.0 <= u1 < u2
    assert certificate.expanded_uncertainty_pct(None, 1.0, 100.0) is None


def test_the_digest_reveals_an_edited_copy():
    import hashlib

    doc = sample_cert()
    body = {k: v for k, v in doc.items() if k != "digest"}
    assert hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest() == doc["digest"]
    body["result"] = "pass" if doc["result"] != "pass" else "fail"
    assert hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest() != doc["digest"]
