"""`gasguard label`: PNG and SVG labels whose QR codes scan back to the payload."""

import csv
import re
import subprocess
import sys

import pytest
import zxingcpp
from PIL import Image, ImageDraw

from conftest import ROOT
from gasguard_tools import cmd_label
from gasguard_tools.cli import main as cli_main

ID = "88.118.8/GDH.240915.00123F"


def scan(img):
    res = zxingcpp.read_barcodes(img)
    return [r.text for r in res if r.format == zxingcpp.BarcodeFormat.QRCode]


def rasterize_svg_qr(svg_text, scale=8):
    """Draw the QR path of our SVG (unit squares 'Mx yh1v1h-1z') to a bitmap."""
    d = re.search(r'<path fill="#000" d="([^"]+)"', svg_text).group(1)
    cells = [(int(x), int(y)) for x, y in re.findall(r"M(\d+) (\d+)h1v1h-1z", d)]
    n = max(max(x for x, _ in cells), max(y for _, y in cells)) + 5
    img = Image.new("L", (n * scale, n * scale), 255)
    dr = ImageDraw.Draw(img)
    for x, y in cells:
        dr.rectangle([x * scale, y * scale, (x + 1) * scale - 1, (y + 1) * scale - 1], fill=0)
    return img


@pytest.mark.parametrize("template", ["{id}", "https://id.example.com/id/{id}"])
def test_single_label_png_and_svg_scan_back(tmp_path, template, capsys):
    rc = cli_main(["label", "--id", ID, "--model", "GG-200", "--hw-rev", "1.2",
                   "--template", template, "--out", str(tmp_path)])
    assert rc == 0
    want = template.replace("{id}", ID)
    png = tmp_path / "88.118.8_GDH.240915.00123F.png"
    img = Image.open(png)
    assert img.size == (591, 354)  # 50 x 30 mm at 300 dpi
    assert scan(img) == [want]
    svg = (tmp_path / "88.118.8_GDH.240915.00123F.svg").read_text()
    assert svg.startswith("<?xml") and 'width="50mm"' in svg
    assert ">%s</text>" % ID in svg and ">GG-200</text>" in svg and ">H</text>" in svg
    assert scan(rasterize_svg_qr(svg)) == [want]
    rows = list(csv.DictReader(open(tmp_path / "labels.csv")))
    assert rows[0]["id"] == ID and rows[0]["payload"] == want and rows[0]["serial"] == "GDH24091500123"


def test_batch_labels_each_scan_to_its_own_id(tmp_path):
    rc = cli_main(["label", "--prefix", "88.118.8", "--cat", "GV", "--tier", "M", "--date",
                   "250301", "--serial-from", "98", "--count", "3", "--model", "GV-50",
                   "--out", str(tmp_path), "--format", "png", "--dpi", "200"])
    assert rc == 0
    rows = list(csv.DictReader(open(tmp_path / "labels.csv")))
    assert [r["serial"] for r in rows] == ["GVM25030100098", "GVM25030100099", "GVM25030100100"]
    for r in rows:
        assert scan(Image.open(tmp_path / (r["file"] + ".png"))) == [r["id"]]
    assert not list(tmp_path.glob("*.svg"))


def test_csv_input_and_its_errors(tmp_path, capsys):
    good = tmp_path / "in.csv"
    good.write_text("id,model,hw_rev\n%s,GG-200,1.2\n88.118.8/GVM.240915.00077G,GV-50,\n" % ID)
    out = tmp_path / "out"
    assert cli_main(["label", "--csv", str(good), "--out", str(out), "--format", "svg"]) == 0
    assert len(list(out.glob("*.svg"))) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("id,model\n%s,GG-200\n88.118.8/GVM.240915.00077H,GV-50\n" % ID)
    out2 = tmp_path / "out2"
    assert cli_main(["label", "--csv", str(bad), "--out", str(out2)]) == 2
    err = capsys.readouterr().err
    assert "line 3" in err and "check character" in err
    assert not out2.exists()  # nothing written when any row is bad


@pytest.mark.parametrize("argv, word", [
    (["--id", "88.118.8/GDH.240915.00123G", "--model", "X"], "check character"),
    (["--id", ID], "no model"),
    (["--id", ID, "--model", "X", "--template", "http://x/{id}"], "qr_template"),
    (["--id", ID, "--model", "X", "--prefix", "88.118.8"], "exactly one"),
    (["--prefix", "88.118.8", "--cat", "GD", "--tier", "H", "--model", "X"], "batch needs"),
    (["--prefix", "88.118.8", "--cat", "GD", "--tier", "H", "--date", "240915",
      "--serial-from", "99999", "--count", "2", "--model", "X"], "outside"),
    (["--prefix", "88.118", "--cat", "GD", "--tier", "H", "--date", "240915",
      "--serial-from", "1", "--model", "X"], "segments"),
    (["--id", ID, "--model", "X", "--size", "20x40"], "--size"),
    (["--id", ID, "--model", "X", "--format", "jpg"], "--format"),
    (["--id", ID, "--model", "X", "--id", ID, "--csv", "x.csv"], "exactly one"),
])
def test_bad_arguments_are_clear_errors(tmp_path, capsys, argv, word):
    assert cli_main(["label"] + argv + ["--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert word in err, err
    assert not (tmp_path / "o").exists()


def test_label_sizes_stay_scannable(tmp_path):
    d = cmd_label.label_data(ID, "GG-200", "https://id.example.com/id/{id}")
    for w, h, dpi in ((40, 24, 203), (60, 36, 300), (100, 60, 600)):
        p = tmp_path / ("l%d.png" % w)
        cmd_label.render_png(d, p, w, h, dpi)
        assert scan(Image.open(p)) == [d["payload"]], (w, h, dpi)


def test_console_script_runs(tmp_path):
    r = subprocess.run([sys.executable, "-m", "gasguard_tools.cli", "label", "--id", ID,
                        "--model", "GG-200", "--out", str(tmp_path), "--format", "svg"],
                       capture_output=True, text=True, env={"PYTHONPATH": str(ROOT / "tools"),
                                                           "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert "1 label(s)" in r.stdout


def test_ndef_records_decode_back_to_the_payload():
    uri = cmd_label.ndef_message("https://id.example.com/id/" + ID)
    assert uri[0] == 0xD1 and uri[1] == 1 and uri[3:4] == b"U" and uri[2] == len(uri) - 4
    assert uri[4] == 0x04 and uri[5:].decode() == "id.example.com/id/" + ID
    txt = cmd_label.ndef_message(ID)
    assert txt[3:4] == b"T" and txt[4] == 2 and txt[5:7] == b"en" and txt[7:].decode() == ID


def test_labels_csv_has_the_ndef_payload(tmp_path):
    assert cli_main(["label", "--id", ID, "--model", "GG-200", "--out", str(tmp_path),
                     "--format", "svg"]) == 0
    row = list(csv.DictReader(open(tmp_path / "labels.csv")))[0]
    assert bytes.fromhex(row["ndef_hex"]) == cmd_label.ndef_message(ID)
