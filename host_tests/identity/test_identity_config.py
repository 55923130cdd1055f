"""The identity section (the active identifier's timing) has one check,
gasguard.report_cfg.identity_config, run by ActiveId() at boot and by CFG (issue 15 item 3,
issue 11 item 1).

Before: CFG checked only that `identity` was a dict, so `CFG identity.heartbeat_s 10` was
stored; the next boot's ActiveId() refused it, devices.attach_active_id swallowed the
ConfigError as "not provisioned" and the device never registered again, with nothing shown.
Now:
  - CFG refuses a value the identifier refuses, naming identity.<key>, and changes nothing;
  - a stored section that is refused anyway (another firmware wrote it) is a visible refusal
    at boot (fault identity_invalid in STATUS? faults, the reason in "refused", a fault
    event) and the identifier runs on its defaults: the device still registers;
  - properties: whatever CFG accepts for identity, the next boot's identifier accepts and
    runs on exactly those values, with nothing refused; whatever it refuses, the check
    function and ActiveId refuse too (and a section the check accepts, CFG accepts).
"""

import json

from hypothesis import HealthCheck, event, example, given, settings, strategies as st

from gasguard import devices, identifier, record
from gasguard.active_id import ActiveId
from gasguard.id_platform import platform_open
from gasguard.identity import IdentityStore
from gasguard.report_cfg import IDENTITY, identity_config
from gasguard.validate import ConfigError
from reporting_fakes import AutoBroker, FakeNet
from simboard import MemStore

from fixtures.detector import DetectorBoard

KEY = bytes(range(1, 33))
DEV = identifier.make("88.118.8", "GD", "M", "261129", 7)
PLATFORM = {"net": {"ssid": "x", "password": "y"},
            "report": {"base": "gg", "mqtt": {"host": "10.0.0.9", "backoff_min_ms": 100,
                                              "backoff_max_ms": 1000}}}


def provisioned():
    store = MemStore()
    ids = IdentityStore(store)
    ids.provision({"id": DEV, "model": "GG-1", "hw_rev": "1.0"}, KEY)
    ids.lock(DEV)
    return store


def boot(store, given=None):
    """The detector as main.py builds it (devices.build), with the platform on a fake
    network; factory mode (button held) so that CFG is allowed."""
    net = FakeNet()
    board = DetectorBoard()
    app = devices.build("detector", board, store, given or {}, "sim", socket_module=net,
                        button_at_boot=True)
    return app, board, net


def identifier_of(app):
    acts = [p for p in app.pollers if type(p).__name__ == "ParkedActiveId"]
    assert len(acts) <= 1
    return acts[0] if acts else None


def ask(app, board, line):
    board.console.feed(line + "\n")
    for _ in range(5):
        app.poll()
    return board.console.take_output().decode().strip()


def status(app, board):
    r = ask(app, board, "STATUS?")
    assert r.startswith("OK "), r
    return json.loads(r[3:])


def stored(store):
    raw = store.read("config.rec")
    return None if raw is None else json.loads(record.unseal(raw))


def test_cfg_refuses_a_heartbeat_the_identifier_refuses_and_changes_nothing():
    store = provisioned()
    app, board, _ = boot(store, PLATFORM)
    before = store.read("config.rec")
    r = ask(app, board, "CFG identity.heartbeat_s 10")
    assert r.startswith("ERR "), r
    assert "identity.heartbeat_s" in r and "60..86400" in r, r
    assert store.read("config.rec") == before and "identity" not in app.config
    # the same write through the facade: ConfigError naming the key
    try:
        app.config_set("identity.heartbeat_s", 10)
        raise AssertionError("accepted")
    except ConfigError as e:
        assert str(e).startswith("identity.heartbeat_s: 10 is outside 60..86400"), e
    # a value in range is accepted and the next boot's identifier runs on it
    assert ask(app, board, "CFG identity.heartbeat_s 600").startswith("OK "), r
    again, _, _ = boot(store)
    assert again.refused == [] and identifier_of(again).hb_s == 600


def test_a_stored_identity_section_refused_at_boot_is_shown_and_the_device_registers():
    """What an older or newer firmware may have written: a CRC-valid config.rec whose
    identity section this firmware refuses. Shown, and the identifier runs on its defaults."""
    store = provisioned()
    cfg = dict(PLATFORM, identity={"heartbeat_s": 10})
    store.write("config.rec", record.seal(json.dumps(cfg).encode()))
    app, board, net = boot(store)
    assert app.config == cfg  # the rest of the stored config is in use (not a fallback)
    st_ = status(app, board)
    assert "identity_invalid" in st_["detector"]["faults"], st_["detector"]
    assert any("identity.heartbeat_s: 10 is outside 60..86400" in r for r in st_["refused"]), st_
    assert [e for e in app.events(20) if e.get("event") == "fault"
            and e.get("code") == "identity_invalid"]
    act = identifier_of(app)
    assert act is not None and act.hb_s == IDENTITY["heartbeat_s"][0]
    assert act.state["_rmin"] == IDENTITY["reg_retry_min_s"][0]
    # and it registers: the registration reaches the broker
    broker = AutoBroker(net)
    for _ in range(200):
        app.poll()
        broker.service()
        board.clock.advance(10)
    regs = [platform_open(KEY, p) for t, p, q, r, d in broker.published
            if t == "gg/" + DEV + "/identity"]
    assert regs and regs[0]["t"] == "reg" and regs[0]["id"] == DEV, broker.published


def test_a_stored_section_that_is_not_a_dict_is_refused_too():
    store = provisioned()
    store.write("config.rec", record.seal(json.dumps(dict(PLATFORM, identity=[1])).encode()))
    app, board, _ = boot(store)
    assert "identity_invalid" in app.faults_refused
    assert identifier_of(app).hb_s == 3600


# ---------------------------------------------------------------- properties

KEYS = tuple(IDENTITY) + ("hb", "heartbeat")
values = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10), st.integers(-2**31, 2**31),
    st.sampled_from([4, 5, 6, 29, 30, 59, 60, 61, 3599, 3600, 3601, 86399, 86400, 86401]),
    st.floats(allow_nan=False, allow_infinity=False, width=32), st.sampled_from(["60", "", "x"]),
    st.lists(st.integers(0, 100), max_size=2),
)


def _expected(section):
    """What the identifier must run on for an accepted section."""
    out = {}
    for k in IDENTITY:
        out[k] = section.get(k, IDENTITY[k][0])
    return out


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(writes=st.lists(st.tuples(st.sampled_from(KEYS), values), min_size=1, max_size=4))
@example(writes=[("heartbeat_s", 10)])
@example(writes=[("reg_retry_min_s", 3600), ("reg_retry_max_s", 60)])
@example(writes=[("reg_retry_max_s", 60), ("reg_retry_min_s", 61)])
@example(writes=[("heartbeat_s", True)])
def test_what_cfg_accepts_for_identity_the_next_boot_runs_on_and_what_it_refuses_changes_nothing(
        writes):
    store = provisioned()
    app, board, _ = boot(store, PLATFORM)
    for key, value in writes:
        before_rec = store.read("config.rec")
        before = json.dumps(app.config, sort_keys=True)
        section = dict(app.config.get("identity", {}))
        section[key] = value
        try:
            app.config_set("identity." + key, value)
        except ConfigError as e:
            event("refused")
            assert str(e).startswith("identity"), e
            assert store.read("config.rec") == before_rec
            assert json.dumps(app.config, sort_keys=True) == before
            # the check function and the identifier refuse it too
            try:
                identity_config(section)
                raise AssertionError("CFG refused what identity_config accepts: %r" % section)
            except ConfigError:
                pass
            continue
        event("accepted")
        assert identity_config(section) == _expected(section)
        again, _, _ = boot(store)
        assert again.refused == [], again.refused
        assert again.config == stored(store) == app.config
        act = identifier_of(again)
        assert act is not None
        exp = _expected(section)
        assert (act.hb_s, act.state["_rmin"], act.state["_rmax"]) == (
            exp["heartbeat_s"], exp["reg_retry_min_s"], exp["reg_retry_max_s"])


class _Clock:
    def ticks_ms(self):
        return 0


@settings(max_examples=300, deadline=None)
@given(section=st.one_of(
    st.dictionaries(st.sampled_from(KEYS), values, max_size=4),
    st.sampled_from([None, [], 3600, "x"])))
def test_the_check_function_accepts_exactly_what_the_identifier_and_cfg_accept(section):
    """identity_config(s) accepts <=> ActiveId(cfg=s) builds <=> CFG's validator accepts a
    config holding s; accepted, the identifier runs on the normalised values (defaults
    filled in), and normalising is idempotent."""
    from gasguard import config_write

    store = provisioned()
    ids = IdentityStore(store)
    try:
        norm = identity_config(section)
    except ConfigError:
        norm = None
    try:
        act = ActiveId(_Clock(), ids, section, None, "0.1.0")
    except ConfigError:
        act = None

    class App:  # what config_write.validate reads of a detector app
        KIND = "detector"
        SECTIONS = ("net", "report", "identity")
        _validate_detector = staticmethod(lambda d: None)
        board = None

    try:
        config_write.validate(App, dict(PLATFORM, identity=section))
        cfg_ok = True
    except ConfigError:
        cfg_ok = False
    assert (norm is not None) == (act is not None) == cfg_ok, (section, norm, act, cfg_ok)
    if norm is not None:
        assert identity_config(norm) == norm
        assert (act.hb_s, act._rmin, act._rmax) == (
            norm["heartbeat_s"], norm["reg_retry_min_s"], norm["reg_retry_max_s"])
