"""Reports and certificates as PDF, printed by a real browser (headless Chromium) and read
back with pdftotext (poppler-utils): the file is a real PDF of a sensible size and carries
the text a reader needs, in Chinese and in English. `make test` installs both when root;
without them this skips, except under CI (CI=1 or GASGUARD_REQUIRE_DOCS=1), where it fails."""

import os
import shutil
import subprocess

import pytest

from gasguard_tools import certificate, i18n, report
from fixtures.dut import make_virtual_device, virtual_dut  # noqa: F401
from fixtures.documents import sample_cert

REQUIRE = bool(os.environ.get("CI")) or os.environ.get("GASGUARD_REQUIRE_DOCS") == "1"


@pytest.fixture(scope="module")
def tools():
    missing = [n for n, ok in (("chromium", report.chromium_exe()),
                               ("pdftotext", shutil.which("pdftotext")),
                               ("a CJK font", i18n.cjk_font_file())) if not ok]
    if missing:
        msg = "PDF checks need %s (make test installs them as root)" % ", ".join(missing)
        if REQUIRE:
            pytest.fail(msg)
        pytest.skip(msg)


def pdf_text(path):
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          text=True, check=True).stdout


def service_data():
    return {
        "summary": {"device_id": "88.118.8/GDM.261129.01042S", "serial": "GDM26112901042",
                    "model": "GG-D2", "kind": "detector", "tier": "mid", "profile": "cn",
                    "fw_version": "0.1.0", "protocol": "GGSP/1", "uptime_s": 7300,
                    "reset_cause": "power_on", "boot_count": 3, "ready": True,
                    "readings": {"ch4": {"ppm": 120.0, "fault": None, "peak_ppm": 900.0}},
                    "alarms": {"ch4": 0}, "faults": ["ch4:cal_missing"], "relay": False,
                    "valve_links": []},
        "history": {"period_s": 60, "points": 3, "ch4": [10, 9000, 1200]},
        "events": [{"seq": 1, "boot": 3, "t": 5, "event": "fault", "code": "cal_missing",
                    "state": "on", "gas": "ch4"}],
        "calibration": {"problem": "missing"},
    }


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_certificate_pdf(tools, tmp_path, lang):
    doc = sample_cert()
    j = certificate.write(doc, tmp_path, lang=lang, pdf=True)
    pdf = j.with_suffix(".pdf")
    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-" and 20000 < len(data) < 3000000
    text = pdf_text(pdf)
    assert doc["number"] in text.replace("\n", "")
    assert "GBW(E)061234-0457" in text
    if lang == "zh":
        assert "标定证书" in text and "合格" in text and "扩展不确定度" in text
    else:
        assert "Calibration certificate" in text and "PASS" in text and "k = 2" in text


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_service_report_pdf(tools, tmp_path, lang):
    h = tmp_path / "r.html"
    h.write_text(report.render_html(service_data(), technician="Zhang Wei", lang=lang),
                 encoding="utf-8")
    pdf = report.html_to_pdf(h, tmp_path / "r.pdf")
    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-" and 15000 < len(data) < 3000000
    text = pdf_text(pdf)
    assert "Zhang Wei" in text and "(ch4:cal_missing)" in text
    if lang == "zh":
        assert "维修服务报告" in text and "甲烷" in text
    else:
        assert "Service report" in text and "Methane" in text


def test_an_unprovisioned_certificate_pdf_says_not_valid_for_release(tools, tmp_path):
    doc = sample_cert()
    doc = certificate.build(
        device={"id": None, "serial": None, "provisioned": False}, info={"kind": "detector"},
        results={"co": dict(doc["channels"]["co"])}, spans={"co": 100.0}, operator="Wang Li",
        zero_gas="air", span_lot="C-1", settings=doc["settings"], trace={}, phases={})
    j = certificate.write(doc, tmp_path, lang="zh", pdf=True)
    text = pdf_text(j.with_suffix(".pdf"))
    assert "不可放行" in text and "设备未写入标识" in text


def test_diag_report_prints_a_chinese_pdf_from_a_device(tools, virtual_dut, tmp_path):
    import sys

    from conftest import ROOT

    virtual_dut.cmd("SIM ADVANCE 320")
    out = tmp_path / "report.html"
    r = subprocess.run([sys.executable, "-m", "gasguard_tools.cli", "diag", "--port", virtual_dut.port,
                        "report", "--html", str(out), "--pdf", str(tmp_path / "report.pdf"),
                        "--technician", "Zhang Wei", "--lang", "zh"], capture_output=True, text=True,
                       timeout=180, cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT / "tools")))
    assert r.returncode == 0, r.stderr
    text = pdf_text(tmp_path / "report.pdf")
    assert "维修服务报告" in text and "Zhang Wei" in text and "(ch4:cal_missing)" in text
