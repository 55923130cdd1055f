"""The text catalogue (gasguard_tools.i18n): both languages for every entry, the locale rule,
codes beside their sentences, unknown codes shown as they are."""

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from gasguard_tools import i18n


def test_every_entry_has_both_languages():
    for table in (i18n.TEXT, i18n.FAULTS, i18n.CAUSES, i18n.EVENTS, i18n.WORDS, i18n.FIELDS,
                  i18n.PAIR_REASONS):
        for key, pair in table.items():
            assert len(pair) == 2 and all(isinstance(s, str) and s for s in pair), key
    # the Chinese text really is Chinese (someone pasting English twice is caught)
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in zh) for zh, _ in i18n.FAULTS.values())
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in zh) for zh, _ in i18n.PAIR_REASONS.values())


def test_every_pairing_failure_the_firmware_reports_is_expanded_in_both_languages():
    """The reasons of the link event pair_failed (gasguard.link_pair, link_core) are
    sentences in diag log / diag status, with the code beside them."""
    import re

    from conftest import FIRMWARE

    codes = set()
    for name in ("link_pair.py", "link_core.py", "valve_link.py", "detector_link.py"):
        text = (FIRMWARE / "gasguard" / name).read_text()
        codes.update(re.findall(r'failed\(l, "(\w+)"\)', text))
        codes.update(re.findall(r'_rare\("failed", "(\w+)"\)', text))
        codes.update(re.findall(r'"pair_failed", "reason": "(\w+)"', text))
    assert {"no_answer", "conflict", "forged", "linked", "no_confirm", "no_memory",
            "no_address"} <= codes, codes
    for code in codes:
        for lang in i18n.LANGS:
            assert i18n.pair_reason(code, lang).endswith("(%s)" % code), code
            assert i18n.pair_reason(code, lang) != code
    ev = {"event": "link", "state": "pair_failed", "reason": "conflict", "seq": 9, "t": 4}
    assert i18n.describe(ev, "en").startswith("pairing failed: a second device answered")
    assert i18n.describe(ev, "zh").startswith("配对失败：") and "(conflict)" in i18n.describe(ev, "zh")
    assert i18n.pair_reason("new_code", "zh") == "new_code"  # unknown: shown as it is


def test_language_comes_from_the_locale_then_chinese():
    assert i18n.default_lang({}) == "zh"
    assert i18n.default_lang({"LANG": "C.UTF-8"}) == "zh"
    assert i18n.default_lang({"LANG": "en_GB.UTF-8"}) == "en"
    assert i18n.default_lang({"LANG": "en_US.UTF-8", "LC_ALL": "zh_CN.UTF-8"}) == "zh"
    assert i18n.default_lang({"LC_MESSAGES": "de_DE.UTF-8"}) == "zh"
    assert i18n.resolve("en") == "en"


def test_fault_sentence_keeps_the_code_and_the_gas():
    assert i18n.fault("cal_missing", "en").endswith("(cal_missing)")
    assert i18n.fault("co:sensor_open", "zh") == "一氧化碳：传感器开路（接线断开或元件损坏） (co:sensor_open)"


def test_every_refusal_the_firmware_shows_has_a_sentence_in_both_languages():
    """The codes of what a device refused at boot (app.refuse, app.attach: STATUS? faults)
    are expanded like the sensor faults, not shown as bare codes."""
    import re

    from conftest import FIRMWARE

    codes = set()
    for f in (FIRMWARE / "gasguard").glob("*.py"):
        text = f.read_text()
        codes.update(re.findall(r'refuse\(\s*"(\w+)"', text))
        codes.update(re.findall(r'"(\w+)" if isinstance\(e, MemoryError\)', text))
        codes.update(c + "_invalid" for c in re.findall(r'\.attach\(\s*"(\w+)"', text))
    assert {"config_invalid", "config_nomem", "identity_invalid", "identity_corrupt",
            "link_invalid", "platform_invalid", "modbus_invalid"} <= codes, codes
    for code in codes:
        for lang in i18n.LANGS:
            assert i18n.fault(code, lang) != code, (code, lang)


@given(st.text(min_size=1, max_size=20))
def test_an_unknown_code_is_shown_as_it_is(code):
    if code.rpartition(":")[2] in i18n.FAULTS:
        return
    for lang in i18n.LANGS:
        assert i18n.fault(code, lang) == code


def test_events_are_sentences_with_codes():
    ev = {"event": "fault", "code": "supply_low", "state": "on", "seq": 3, "boot": 1, "t": 5}
    assert i18n.describe(ev, "en") == "supply voltage low (supply_low) on"
    assert i18n.event_name("fault", "zh") == "故障 (fault)"
    assert i18n.when({"t": 3661}) == "01:01:01"


def test_labels_in_chinese_need_a_cjk_font_or_fall_back_to_english(tmp_path, monkeypatch, capsys):
    import pytest

    from gasguard_tools import cmd_label

    data = cmd_label.label_data("88.118.8/GDH.240915.00123F", "GG-200", "{id}", "1.2")
    if i18n.cjk_font_file() is None:
        pytest.skip("no CJK font here (make test installs fonts-wqy-microhei as root)")
    from PIL import ImageFont

    font = ImageFont.truetype(i18n.cjk_font_file(), 40)
    assert font.getmask("探").getbbox() is not None  # the font really has the glyph
    zh = Path(cmd_label.render_png(data, tmp_path / "zh.png", lang="zh"))
    en = Path(cmd_label.render_png(data, tmp_path / "en.png", lang="en"))
    assert zh.read_bytes() != en.read_bytes()
    svg = Path(cmd_label.render_svg(data, tmp_path / "zh.svg", lang="zh"))
    assert "可燃气体探测器" in svg.read_text(encoding="utf-8")
    monkeypatch.setattr(i18n, "cjk_font_file", lambda: None)
    assert cmd_label.label_text("zh")["lang"] == "en"
    assert "no CJK font" in capsys.readouterr().err
