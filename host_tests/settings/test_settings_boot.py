"""A setting cannot brick a device (issue 15 finding 6): CFG validates every key the way boot
uses it (gasguard.config_write.validate: the parts' own config checks, the detector's
channels and supply monitor built on the board as Detector() builds them).

Properties, over any dotted key and any JSON value, in factory mode:
  - a CFG write that is accepted is persisted, and the next boot builds on exactly that
    config: nothing refused, no fallback (and the optional parts main.py attaches --
    link, platform -- validate too);
  - a CFG write that is refused raises ConfigError (a clear error), and changes nothing:
    neither the stored record nor the running config.
Plus the issue's examples pinned (detector.ch4.sensor.r0_ohm 12000, a non-numeric
app.history_period_s), each of which was saved and then made every boot raise.
"""

import json
import sys

import pytest
from hypothesis import HealthCheck, event, example, given, settings, strategies as st

from gasguard import boot_select, interlock_keys, profiles, record
from gasguard.app import DetectorApp
from gasguard.report_cfg import DEFAULTS as REPORT_DEFAULTS
from gasguard.sensors import CHANNEL_KEYS, CO_KEYS, MOS_KEYS, SUPPLY_KEYS
from gasguard.validate import ConfigError
from gasguard.valve_app import ValveApp
from gasguard.valve_cfg import DEFAULTS as VALVE_DEFAULTS
from simboard import MemStore, SimClock, SimConsole, SimPin
from simvalve import SimValveBoard

from fixtures.detector import DetectorBoard


class ValveBoard(SimValveBoard):
    def __init__(self):
        SimValveBoard.__init__(self, SimClock(), None, None)
        self.console = SimConsole()
        self.button = SimPin("button", SimPin.IN)

    def reset_cause(self):
        return "power_on"


def boot(kind, store, given):
    if kind == "detector":
        return DetectorApp(DetectorBoard(), store, given, button_at_boot=True)
    return ValveApp(ValveBoard(), store, given, button_at_boot=True)


def _leaves(prefix, keys):
    return [prefix + k for k in keys]


DETECTOR_KEYS = (
    _leaves("detector.", [k for k in profiles.KNOWN if k not in ("ch4", "co", "supply")])
    + _leaves("detector.ch4.sensor.", MOS_KEYS) + _leaves("detector.ch4.channel.", CHANNEL_KEYS)
    + _leaves("detector.co.sensor.", CO_KEYS) + _leaves("detector.co.channel.", CHANNEL_KEYS)
    + _leaves("detector.supply.", SUPPLY_KEYS)
    + ["app.history_period_s", "board.x", "detector.ch4.x", "x.y", "detector"]
    + _leaves("service.", boot_select.SERVICE_DEFAULTS) + _leaves("link.", interlock_keys.LINK_DEFAULTS)
    + ["net.ssid", "net.password"] + _leaves("report.", REPORT_DEFAULTS)
)
VALVE_KEYS = (
    _leaves("valve.", [k for k in VALVE_DEFAULTS if k != "link"]) + _leaves("valve.link.", interlock_keys.LINK_DEFAULTS)
    + ["app.history_period_s", "button.hold_ms", "button.debounce_ms", "x.y", "valve"]
    + _leaves("service.", boot_select.SERVICE_DEFAULTS) + ["net.ssid"] + _leaves("report.", REPORT_DEFAULTS)
)

values = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10), st.integers(-2**31, 2**31),
    st.sampled_from([0, 1, 2, 3, 5, 15, 45, 60, 100, 300, 1000, 12000, 100000, 3300000, 99999]),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(["x", "", "mq4", "ec_co", "en", "ul", "cn", "low", "mid", "high", "none", "any",
                     "analog", "pulse", "L", "M", "H", "report", "close"]),
    st.lists(st.integers(0, 3), max_size=2),
)


def _stored(store):
    raw = store.read("config.rec")
    return None if raw is None else json.loads(record.unseal(raw))


def check_write(kind, writes):
    store = MemStore()
    app = boot(kind, store, {})
    for key, value in writes:
        before_rec = store.read("config.rec")
        before_cfg = json.dumps(app.config, sort_keys=True)
        try:
            app.config_set(key, value)
        except ConfigError:
            event("refused")
            assert store.read("config.rec") == before_rec  # a refused write changes nothing
            assert json.dumps(app.config, sort_keys=True) == before_cfg
            continue
        event("accepted")
        # accepted: the next boot builds on exactly this config, nothing refused
        again = boot(kind, store, {})
        assert again.refused == [], (key, value, again.refused)
        assert again.config == _stored(store) == app.config
        link = again.config.get("link") if kind == "detector" else None
        if link is not None:  # what main.py attaches from the same config
            interlock_keys.link_config(link)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(writes=st.lists(st.tuples(st.sampled_from(DETECTOR_KEYS), values), min_size=1, max_size=3))
@example(writes=[("detector.ch4.sensor.r0_ohm", 12000)])
@example(writes=[("app.history_period_s", "x")])
@example(writes=[("detector.co.sensor.range_ppm", 10)])
@example(writes=[("detector.supply.divider", 1.0)])
def test_any_accepted_detector_cfg_write_boots_and_a_refused_one_changes_nothing(writes):
    check_write("detector", writes)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(writes=st.lists(st.tuples(st.sampled_from(VALVE_KEYS), values), min_size=1, max_size=3))
@example(writes=[("app.history_period_s", "x")])
@example(writes=[("valve.link.heartbeat_ms", 1)])
def test_any_accepted_valve_cfg_write_boots_and_a_refused_one_changes_nothing(writes):
    check_write("valve", writes)


@pytest.mark.parametrize("key,value", [("app.history_period_s", "x"),
                                       ("detector.ch4.channel.oversample", 99),
                                       ("detector.supply.low_mv", 1)])
def test_the_issue_examples_are_refused_with_the_key_named(key, value):
    app = boot("detector", MemStore(), {})
    with pytest.raises(ConfigError) as e:
        app.config_set(key, value)
    assert key.split(".")[-1] in str(e.value)


def test_one_sensor_leaf_keeps_the_default_model_and_boots_with_it():
    """detector.ch4.sensor.r0_ohm 12000 (plausible) was saved as a sensor without a model and
    bricked every boot; now the default model is kept and the value is used."""
    store = MemStore()
    boot("detector", store, {}).config_set("detector.ch4.sensor.r0_ohm", 12000)
    again = boot("detector", store, {})
    assert again.refused == []
    m = again.detector.channels["ch4"].model
    assert m.name == "mq4" and again.config["detector"]["ch4"]["sensor"] == {"r0_ohm": 12000}


# ---- one check at a time (docs/heap-budget.md, "A CFG write on a full heap") ------------------

CHECKS = ("report_cfg", "profiles", "sensors", "valve_cfg", "link_cfg", "boot_select", "modbus")


def _spy_checks(monkeypatch):
    """Each config_write check as it starts: its module, and which other checks' modules are
    loaded at that moment."""
    from gasguard import config_write, lazy

    lazy.release(*CHECKS)  # (another test's import does not count as the write's)
    seen = []
    real = config_write._check

    def check(name, fn, *args):
        seen.append((name, [m for m in CHECKS if m != name and "gasguard." + m in sys.modules]))
        return real(name, fn, *args)

    monkeypatch.setattr(config_write, "_check", check)
    return seen


@pytest.mark.parametrize("kind,key,value,runs,skips", [
    ("detector", "detector.hush_s", 240, {"profiles", "sensors", "boot_select"}, {"report_cfg"}),
    ("detector", "report.interval_s", 120, {"report_cfg", "boot_select"}, {"profiles", "sensors"}),
    ("valve", "valve.link.heartbeat_ms", 2000, {"valve_cfg", "link_cfg"}, {"report_cfg"}),
    ("valve", "app.history_period_s", 120, {"boot_select"}, {"valve_cfg", "report_cfg"}),
])
def test_a_cfg_write_runs_its_sections_checks_one_at_a_time(monkeypatch, kind, key, value, runs,
                                                            skips):
    """The written section's checks run (the rest of the config is what the device booted
    on), each alone in the heap, and none stays loaded after the write."""
    seen = _spy_checks(monkeypatch)
    store = MemStore()
    app = boot(kind, store, {})
    app.config_set(key, value)
    names = {n for n, _ in seen}
    assert runs <= names and not (skips & names), seen
    assert all(others == [] for _, others in seen), seen
    assert [m for m in CHECKS if "gasguard." + m in sys.modules] == []
    assert boot(kind, store, {}).refused == []  # and the write boots


def test_a_refused_write_releases_the_check_that_refused_it(monkeypatch):
    seen = _spy_checks(monkeypatch)
    app = boot("detector", MemStore(), {})
    with pytest.raises(ConfigError):
        app.config_set("detector.ch4.channel.oversample", 99)
    assert "sensors" in {n for n, _ in seen} or "profiles" in {n for n, _ in seen}, seen
    assert [m for m in CHECKS if "gasguard." + m in sys.modules] == []
