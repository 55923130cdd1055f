"""The service console (GGSP/1) on both interpreters: framing, garbage, factory mode."""

import json

from gasguard import hmac256, service_factory
from gasguard.service import Service
from simboard import SimClock, SimConsole

KEY = b"factory-key-for-tests-0123456789"


class FakeIdentity:
    def __init__(self):
        self.rec = None
        self.locked = False
        self.resets = []

    def load(self):
        return dict(self.rec) if self.rec else None

    def provision(self, fields, secret=None):
        if self.locked:
            raise ValueError("identity is locked")
        if "id" not in fields:
            raise ValueError("id: required")
        self.rec = dict(fields)

    def lock(self, expect_id=None):
        if self.rec is None:
            raise ValueError("nothing to lock")
        if expect_id is not None and expect_id != self.rec["id"]:
            raise ValueError("differs from label")
        self.locked = True

    def factory_reset(self, presence):
        if presence is not True:
            raise ValueError("factory reset needs physical presence")
        self.resets.append(1)
        self.rec = None
        self.locked = False


class FakeDevice:
    def __init__(self):
        self.identity = FakeIdentity()
        self.cfg = {"report_interval_s": 300}
        self.staged = {}
        self.committed = None
        self.calls = []
        self.key = KEY

    def info(self):
        return {"fw": "0.1.0", "kind": "detector", "tier": "M"}

    def factory_key(self):
        return self.key

    def status(self):
        return {"uptime_s": 5}

    def readings(self):
        return {"ch4": {"ppm_x10": 0, "raw_uv": 400000}}

    def events(self, n):
        return [{"event": "boot", "seq": i} for i in range(n)]

    def config_get(self, key=None):
        return dict(self.cfg)

    def config_set(self, key, value):
        if key not in self.cfg:
            from gasguard.validate import ConfigError

            raise ConfigError("%s: unknown key" % key)
        self.cfg[key] = value

    def cal_get(self):
        return {"current": self.committed, "staged": dict(self.staged)}

    def cal_zero(self, ch):
        self.staged[ch] = {"zero_uv": 400000}
        return {"ch": ch}

    def cal_span(self, ch, ppm):
        self.staged[ch]["span_uv"] = 900000
        return {"ch": ch, "ppm": ppm}

    def cal_commit(self, meta):
        self.committed = dict(self.staged)
        self.staged = {}
        return {"committed": self.committed}

    def cal_abort(self):
        self.staged = {}

    def self_test(self):
        raise RuntimeError("buzzer driver dead")

    def reboot(self):
        self.calls.append("reboot")


def make(cfg=None, button=False):
    clock = SimClock()
    con = SimConsole()
    dev = FakeDevice()
    n = [0]

    def rng(k):
        n[0] += 1
        return bytes([n[0]] * k)

    svc = Service(con, dev, clock, cfg, rng=rng, button_at_boot=button)
    return svc, con, dev, clock


def drive(svc, con, data, turns=200):
    con.feed(data)
    for _ in range(turns):
        svc.poll()
        if not con.any():
            break
    return con.take_output().decode()


def ask(svc, con, line):
    out = drive(svc, con, line + "\n")
    lines = [x for x in out.split("\n") if x]
    assert len(lines) == 1, out
    return lines[0]


def ok(svc, con, line):
    r = ask(svc, con, line)
    assert r.startswith("OK ") or (r.startswith("#") and " OK " in r), r
    return json.loads(r[r.index("OK ") + 3 :])


def err_code(reply):
    assert "ERR " in reply, reply
    return reply[reply.index("ERR ") + 4 :].split(" ")[0]


def login(svc, con):
    ch = ok(svc, con, "AUTH")
    resp = service_factory.auth_response(KEY, ch["nonce"], ch["id"])
    return ask(svc, con, "AUTH " + resp)


def test_hello_reports_protocol_version_and_tags_echo():
    svc, con, dev, clock = make()
    d = ok(svc, con, "HELLO")
    assert d["proto"] == "GGSP/1" and d["fw"] == "0.1.0" and d["factory"] is False
    r = ask(svc, con, "#a7 status?")
    assert r.startswith("#a7 OK "), r


def test_unknown_and_empty_commands():
    svc, con, dev, clock = make()
    assert err_code(ask(svc, con, "FROB")) == "E_UNKNOWN"
    assert drive(svc, con, "\n\r\n   \n") == ""  # blank lines are ignored silently
    assert err_code(ask(svc, con, "#")) == "E_SYNTAX"


def test_partial_line_is_completed_across_polls():
    svc, con, dev, clock = make()
    assert drive(svc, con, "HEL") == ""
    clock.advance(500)
    out = drive(svc, con, "LO\n")
    assert out.startswith("OK ")


def test_stale_partial_line_is_dropped_not_merged():
    svc, con, dev, clock = make()
    drive(svc, con, "CFG report_inter")
    clock.advance(11000)
    svc.poll()
    assert svc.dropped_partial == 1
    assert ask(svc, con, "HELLO").startswith("OK ")


def test_overlong_line_is_refused_and_next_line_works():
    svc, con, dev, clock = make({"line_max": 64})
    out = drive(svc, con, "CFG report_interval_s " + "9" * 500 + "\nHELLO\n")
    lines = out.strip().split("\n")
    assert len(lines) == 2, out
    assert err_code(lines[0]) == "E_TOOLONG"
    assert lines[1].startswith("OK ")
    assert dev.cfg["report_interval_s"] == 300


def test_binary_garbage_changes_nothing():
    svc, con, dev, clock = make(button=True)  # even in factory mode
    junk = bytes(range(256)) + b"CAL ZERO ch4\x00\xff\n" + b"\x03\x04\x1b[A\n"
    out = drive(svc, con, junk)
    for line in out.strip().split("\n"):
        assert line.startswith("ERR "), out
    assert dev.staged == {}
    assert ok(svc, con, "FACTORY?")["factory"] is True
    assert ask(svc, con, "HELLO").startswith("OK ")


def test_every_byte_sequence_survives():
    import random

    svc, con, dev, clock = make()
    random.seed(7)
    for _ in range(40):
        n = random.getrandbits(8)
        drive(svc, con, bytes(random.getrandbits(8) for _ in range(n)))
    drive(svc, con, "\n")
    assert ask(svc, con, "HELLO").startswith("OK ")
    assert dev.cfg == {"report_interval_s": 300} and dev.staged == {}


def test_calibration_and_config_need_factory_mode():
    svc, con, dev, clock = make()
    for cmd in ("CAL ZERO ch4", "CAL SPAN ch4 5000", "CAL COMMIT", "CFG report_interval_s 60",
                'PROV {"id": "x"}', "PROV LOCK", "MAINT"):
        assert err_code(ask(svc, con, cmd)) == "E_FACTORY", cmd
    assert dev.staged == {} and dev.cfg["report_interval_s"] == 300
    assert dev.identity.rec is None and "reboot" not in dev.calls
    # reads stay available
    ok(svc, con, "CAL?")
    ok(svc, con, "CFG?")
    ok(svc, con, "ID?")
    assert len(ok(svc, con, "LOG? 5")["events"]) == 5


def test_challenge_response_enters_factory_mode():
    svc, con, dev, clock = make()
    r = login(svc, con)
    assert r.startswith("OK "), r
    assert ok(svc, con, "FACTORY?") == {"factory": True, "via": "auth"}
    ok(svc, con, "CAL ZERO ch4")
    ok(svc, con, "CAL SPAN ch4 5000")
    assert "ch4" in ok(svc, con, "CAL COMMIT")["committed"]
    ok(svc, con, "AUTH END")
    assert err_code(ask(svc, con, "CAL ZERO ch4")) == "E_FACTORY"


def test_wrong_response_is_refused_and_nonce_is_single_use():
    svc, con, dev, clock = make()
    ch = ok(svc, con, "AUTH")
    bad = service_factory.auth_response(b"not the key", ch["nonce"], ch["id"])
    assert err_code(ask(svc, con, "AUTH " + bad)) == "E_AUTH"
    good_for_old = service_factory.auth_response(KEY, ch["nonce"], ch["id"])
    assert err_code(ask(svc, con, "AUTH " + good_for_old)) == "E_STATE"  # nonce consumed
    assert err_code(ask(svc, con, "AUTH zz")) == "E_STATE"
    assert svc.factory is False


def test_lockout_after_repeated_wrong_responses():
    svc, con, dev, clock = make({"auth_fail_limit": 2, "auth_lockout_ms": 30000})
    for _ in range(2):
        ok(svc, con, "AUTH")
        assert err_code(ask(svc, con, "AUTH " + "00" * 32)) == "E_AUTH"
    assert err_code(ask(svc, con, "AUTH")) == "E_LOCKOUT"
    clock.advance(29000)
    assert err_code(ask(svc, con, "AUTH")) == "E_LOCKOUT"
    clock.advance(2000)
    assert login(svc, con).startswith("OK ")


def test_factory_mode_expires_when_idle():
    svc, con, dev, clock = make({"factory_timeout_ms": 60000})
    login(svc, con)
    clock.advance(30000)
    ok(svc, con, "CAL ZERO ch4")  # activity keeps it alive
    clock.advance(61000)
    svc.poll()
    assert err_code(ask(svc, con, "CAL ZERO ch4")) == "E_FACTORY"


def test_button_factory_mode_expires_when_idle_across_the_ticks_wrap():
    # issue 15 finding 9: factory mode entered by the button never timed out.
    svc, con, dev, clock = make(button=True)  # default 15 min; SimClock wraps after 10 min
    clock.advance(600000)
    ok(svc, con, "CAL ZERO ch4")  # a request restarts the idle time
    clock.advance(899000)
    svc.poll()
    assert svc.factory is True and ok(svc, con, "FACTORY?")["via"] == "button"
    clock.advance(900001)
    svc.poll()
    assert svc.factory is False and svc.factory_via is None
    assert err_code(ask(svc, con, "CAL ZERO ch4")) == "E_FACTORY"
    dev.identity.rec = {"id": "a"}
    assert err_code(ask(svc, con, "PROV RESET")) == "E_FACTORY"  # the presence proof is gone too
    assert dev.identity.rec == {"id": "a"}


def test_no_factory_key_means_button_only():
    svc, con, dev, clock = make()
    dev.key = None
    assert err_code(ask(svc, con, "AUTH")) == "E_UNSUPPORTED"
    svc, con, dev, clock = make(button=True)
    assert ok(svc, con, "FACTORY?")["via"] == "button"


def test_provisioning_and_lock():
    svc, con, dev, clock = make(button=True)
    d = ok(svc, con, 'PROV {"id": "88.1.2/X", "tier": "M", "secret": "0102"}')
    assert d["provisioned"] is True and d["id"] == "88.1.2/X" and "secret" not in d
    assert err_code(ask(svc, con, 'PROV {"tier": "M"}')) == "E_IDENTITY"
    assert dev.identity.rec["id"] == "88.1.2/X"
    assert err_code(ask(svc, con, "PROV LOCK 88.1.2/Y")) == "E_IDENTITY"
    assert ok(svc, con, "PROV LOCK 88.1.2/X")["locked"] is True
    assert err_code(ask(svc, con, 'PROV {"id": "other"}')) == "E_IDENTITY"
    assert dev.identity.rec["id"] == "88.1.2/X"


def test_factory_reset_needs_the_button_not_the_key():
    svc, con, dev, clock = make()
    login(svc, con)
    dev.identity.rec = {"id": "a"}
    assert err_code(ask(svc, con, "PROV RESET")) == "E_IDENTITY"
    assert dev.identity.rec == {"id": "a"}
    svc, con, dev, clock = make(button=True)
    dev.identity.rec = {"id": "a"}
    ok(svc, con, "PROV RESET")
    assert dev.identity.rec is None


def test_bad_arguments_have_codes():
    svc, con, dev, clock = make(button=True)
    assert err_code(ask(svc, con, "CAL ZERO h2s")) == "E_ARG"
    assert err_code(ask(svc, con, "CAL SPAN ch4 lots")) == "E_ARG"
    assert err_code(ask(svc, con, "CAL SPAN ch4 -5")) == "E_ARG"
    assert err_code(ask(svc, con, "CFG report_interval_s sixty")) == "E_ARG"
    assert err_code(ask(svc, con, "CFG nope 1")) == "E_CONFIG"
    assert err_code(ask(svc, con, "LOG? 0")) == "E_ARG"
    assert err_code(ask(svc, con, "LOG? x")) == "E_ARG"
    ok(svc, con, "CFG report_interval_s 60")
    assert dev.cfg["report_interval_s"] == 60


def test_device_failure_is_reported_and_console_survives():
    svc, con, dev, clock = make()
    r = ask(svc, con, "SELFTEST")
    assert err_code(r) == "E_DEVICE" and "buzzer driver dead" in r
    assert err_code(ask(svc, con, "ITEST")) == "E_UNSUPPORTED"
    assert ask(svc, con, "HELLO").startswith("OK ")


def test_reboot_happens_after_the_reply():
    svc, con, dev, clock = make()
    order = []
    orig_write = con.write

    def write(b):
        order.append("reply")
        return orig_write(b)

    con.write = write
    dev.reboot = lambda: order.append("reboot")
    ok(svc, con, "REBOOT")
    assert order == ["reply", "reboot"]


def test_poll_reads_a_bounded_chunk():
    svc, con, dev, clock = make({"chunk": 8})
    con.feed("HELLO\nHELLO\n")
    assert svc.poll() == 1  # first 8 bytes hold one line
    assert con.any() == 4


def test_extra_handlers_for_simulation():
    svc, con, dev, clock = make()
    svc.handlers["SIM"] = lambda s, rest: {"echo": rest}
    assert ok(svc, con, "SIM GAS ch4 5000") == {"echo": "GAS ch4 5000"}


def test_auth_response_matches_documented_construction():
    nonce = "00112233445566778899aabbccddeeff"
    msg = ("GGSP1-FACTORY:%s:%s" % (nonce, "88.1/X")).encode()
    want = "".join("%02x" % b for b in hmac256.digest(KEY, msg))
    assert service_factory.auth_response(KEY, nonce, "88.1/X") == want
