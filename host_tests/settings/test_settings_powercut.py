"""Power cuts at every byte of a CFG write, a CAL COMMIT (calibration and its backup) and a
CAL REVERT (including its remove()), and a hypothesis fuzz of the console's CFG / CAL
argument parsing (issue 15 item 6).

Power cuts: simboard.PowerCutStore cuts after N written bytes (a remove counts as one); the
reboot is a new app on the same folder. Invariant: the device boots with nothing refused,
and each record is the old one or the new one, never a mix and never lost.

Fuzz: any CFG / CAL line in factory mode gets exactly one reply line (OK or ERR), poll()
never raises, and a refused CFG changes neither the stored record nor the running config.
"""

import json

from hypothesis import HealthCheck, given, settings, strategies as st

from gasguard import calibration, record
from gasguard.app import DetectorApp
from simboard import PowerCutStore
from fixtures.detector import EC, MOS, DetectorBoard, pct_lel, run


def boot(root, budget=None):
    board = DetectorBoard()
    board.adc_ch4.source = MOS.uv(0)
    board.adc_co.source = EC.uv(0)
    store = PowerCutStore(str(root), budget)
    return DetectorApp(board, store, {}, button_at_boot=True), board, store


def _cfg(store):
    raw = store.read("config.rec")
    return None if raw is None else json.loads(record.unseal(raw))


def _cal(store, name="calibration"):
    rec = calibration.load(store, name)
    return None if rec.problem else rec.encode()


def _calibrate(app, board, gas="ch4", span=10, said=5000):
    run(app, board, 25)
    app.cal_zero(gas)
    adc = board.adc_ch4 if gas == "ch4" else board.adc_co
    adc.source = MOS.uv(pct_lel(span)) if gas == "ch4" else EC.uv(said * 10)
    run(app, board, 25)
    app.cal_span(gas, said)
    app.cal_commit({"date": 20260101, "operator": "cut"})
    adc.source = MOS.uv(0) if gas == "ch4" else EC.uv(0)


def _every_cut(tmp_path, prepare, act, check):
    """prepare(app, board) once per cut point on a fresh folder, then act with a budget of
    n bytes for n = 0..(bytes act writes uncut); check(before, after_store, app2) each time."""
    root = tmp_path / "full"
    root.mkdir()
    app, board, store = boot(root)
    prepare(app, board)
    w0 = store.written
    act(app, board)
    total = store.written - w0
    assert total > 0
    for n in range(total + 1):
        root = tmp_path / ("cut%d" % n)
        root.mkdir()
        app, board, store = boot(root)
        prepare(app, board)
        before = {"cfg": _cfg(store), "cal": _cal(store), "bak": store.read("calibration.bak")}
        store.budget = n
        try:
            act(app, board)
        except OSError:
            pass  # the power went at byte n
        app2, board2, store2 = boot(root)
        assert app2.refused == [], (n, app2.refused)
        check(before, store2, app2, n)
    return total


def test_cfg_write_cut_at_every_byte_leaves_the_old_or_the_new_config(tmp_path):
    def prepare(app, board):
        app.config_set("detector.ch4_delay_s", 20)

    def act(app, board):
        app.config_set("detector.ch4_delay_s", 30)

    def check(before, store, app2, n):
        assert _cfg(store) in (before["cfg"], {"detector": {"ch4_delay_s": 30}}), n
        assert app2.detector.cfg["ch4_delay_s"] in (20, 30)

    total = _every_cut(tmp_path, prepare, act, check)
    print("CFG: %d cut points" % total)


def test_cal_commit_cut_at_every_byte_keeps_a_valid_calibration_and_backup(tmp_path):
    new = {}

    def prepare(app, board):
        _calibrate(app, board, span=10, said=5000)

    def act(app, board):
        _calibrate(app, board, span=10, said=4000)
        new["cal"] = _cal(app.store)

    def check(before, store, app2, n):
        cal = _cal(store)
        assert cal in (before["cal"], new.get("cal")) and cal is not None, n
        bak = store.read("calibration.bak")
        # the backup is the record the commit replaced (or still the older backup)
        assert bak in (before["bak"], before["cal"]), n
        assert app2.detector.channels["ch4"].fault != "cal_missing"

    total = _every_cut(tmp_path, prepare, act, check)
    print("CAL COMMIT: %d cut points" % total)


def test_cal_revert_cut_at_every_byte_including_remove(tmp_path):
    def prepare(app, board):
        _calibrate(app, board, span=10, said=5000)
        _calibrate(app, board, span=10, said=4000)

    def act(app, board):
        app.cal_revert()

    def check(before, store, app2, n):
        # the newer record, or the one the backup held; the backup is kept until the end
        assert _cal(store) in (before["cal"], before["bak"]), n
        assert store.read("calibration.bak") in (before["bak"], None), n

    total = _every_cut(tmp_path, prepare, act, check)
    print("CAL REVERT: %d cut points" % total)


KEYS = st.sampled_from(["detector.ch4_delay_s", "detector.hush_s", "detector.ch4.sensor.r0_ohm",
                        "app.history_period_s", "service.log_max", "detector", "x", "a.b.c",
                        "detector..x", ".", "detector.co.channel.oversample"])
VALUE_TEXT = st.one_of(st.sampled_from(["1", "20", "-1", "1e400", "null", "[]", "{}", '"x"',
                                        "true", "3.5", "NaN", "Infinity", "99999", '"', "", "{"]),
                       # (one request line: a newline in the value would make it two)
                       # (text a console line can carry: no lone surrogates, which no UTF-8
                       # line encodes; the byte level is fuzzed in test_fuzz_parsers)
                       st.text(st.characters(blacklist_characters="\r\n",
                                             blacklist_categories=("Cs",)), max_size=12))
LINES = st.one_of(
    st.builds(lambda k, v: "CFG %s %s" % (k, v), KEYS, VALUE_TEXT),
    st.builds(lambda g: "CAL ZERO %s" % g, st.sampled_from(["ch4", "co", "x", "", "ch4 co"])),
    st.builds(lambda g, p: "CAL SPAN %s %s" % (g, p), st.sampled_from(["ch4", "co", "o2"]),
              st.one_of(VALUE_TEXT, st.floats().map(repr))),
    st.builds(lambda m: "CAL COMMIT %s" % m, st.one_of(VALUE_TEXT, st.just('{"date": 20260101}'),
                                                        st.just('{"date": 1, "operator": ""}'))),
    st.sampled_from(["CAL", "CAL?", "CAL ABORT", "CAL REVERT", "CAL ZERO", "CAL SPAN ch4", "CFG",
                     "CFG?", "CFG x"]),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                   HealthCheck.too_slow])
@given(lines=st.lists(LINES, min_size=1, max_size=6))
def test_console_cfg_and_cal_arguments_fuzz(tmp_path_factory, lines):
    app, board, store = boot(tmp_path_factory.mktemp("fuzz"))
    run(app, board, 25)  # a stable reading: CAL ZERO may be accepted
    for line in lines:
        rec_before = store.read("config.rec")
        cfg_before = json.dumps(app.config, sort_keys=True)
        board.console.feed((line + "\n").encode())
        for _ in range(3):
            app.poll()
        out = board.console.take_output().decode().splitlines()
        assert len(out) == 1 and out[0].split(" ", 1)[0] in ("OK", "ERR"), (line, out)
        if line.startswith("CFG ") and out[0].startswith("ERR"):
            assert store.read("config.rec") == rec_before, line
            assert json.dumps(app.config, sort_keys=True) == cfg_before, line
