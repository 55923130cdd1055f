"""Property tests for identifiers, canonical encoding and the active identifier."""

import json
import shutil
import tempfile

from hypothesis import HealthCheck, example, given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from conftest import run_both
from gasguard.active_id import MAX_PENDING, ActiveId, direction_keys, open_msg, seal
from gasguard.id_platform import platform_ack, platform_cmd, platform_open
from gasguard.identifier import ALNUM, IdentifierError, check_char, make, parse, validate
from gasguard.canon import canon
from gasguard.identity import IdentityStore
from gasguard.store import FileStore
from simboard import SimClock

DIGITS = "0123456789"

prefixes = st.builds(
    lambda node, ent: "88.%s.%s" % (node, ent),
    st.text(DIGITS, min_size=3, max_size=4),
    st.text(ALNUM, min_size=1, max_size=20),
)


@st.composite
def dates(draw):
    yy = draw(st.integers(0, 99))
    mm = draw(st.integers(1, 12))
    last = [31, 29 if yy % 4 == 0 else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mm - 1]
    dd = draw(st.integers(1, last))
    return "%02d%02d%02d" % (yy, mm, dd)


identifiers = st.builds(make, prefixes, st.sampled_from(["GD", "GV"]),
                        st.sampled_from(["L", "M", "H"]), dates(), st.integers(0, 99999))

# substitutes: every allowed character, lower case, space, and arbitrary code points
substitutes = st.one_of(st.sampled_from(ALNUM + "./-abz _"), st.characters(codec="utf-8"))


def verifies(s):
    """ISO/IEC 7064 hybrid verification, written independently of check_char:
    run the recursion over every alphanumeric including the check character; the last
    intermediate value (P + a) mod 36 must be 1."""
    p = 36
    s9 = 0
    for ch in s:
        if ch in "./-":
            continue
        s9 = (p + ALNUM.index(ch)) % 36
        p = ((s9 or 36) * 2) % 37
    return s9 == 1


@settings(deadline=None)  # timing is not under test; CI machines are shared
@given(identifiers)
def test_every_generated_identifier_validates(ident):
    validate(ident)
    assert verifies(ident)
    p = parse(ident)
    assert make(p["prefix"], p["cat"], p["tier"], p["date"], p["serial"]) == ident
    assert len(ident) <= 255 and ident == ident.upper()


@settings(max_examples=60, deadline=None)
@given(identifiers, st.data())
def test_every_single_substitution_fails(ident, data):
    # every position against the whole allowed alphabet, plus random code points
    for i in range(len(ident)):
        for c in ALNUM + "./-a ":
            if c != ident[i]:
                bad = ident[:i] + c + ident[i + 1:]
                try:
                    validate(bad)
                except IdentifierError:
                    continue
                raise AssertionError("substitution accepted: %r" % bad)
    i = data.draw(st.integers(0, len(ident) - 1))
    c = data.draw(substitutes)
    if c != ident[i]:
        try:
            validate(ident[:i] + c + ident[i + 1:])
            raise AssertionError("accepted")
        except IdentifierError:
            pass


@settings(deadline=None)  # timing is not under test; CI machines are shared
@given(st.one_of(st.text(), st.text(ALNUM + "./-", max_size=40),
                 st.binary(), st.integers(), st.none(), st.text(min_size=250, max_size=300)))
def test_random_input_never_crashes_the_validator(s):
    try:
        validate(s)
    except IdentifierError as e:
        assert str(e)
        return
    assert isinstance(s, str) and verifies(s)


@settings(deadline=None)  # timing is not under test; CI machines are shared
@given(identifiers, st.integers(0, 30), st.sampled_from(["insert", "delete", "swap"]), st.data())
def test_edits_never_crash(ident, i, how, data):
    i = i % len(ident)
    if how == "insert":
        s = ident[:i] + data.draw(substitutes) + ident[i:]
    elif how == "delete":
        s = ident[:i] + ident[i + 1:]
    else:
        j = min(i + 1, len(ident) - 1)
        s = ident[:i] + ident[j] + ident[i] + ident[j + 1:] if j > i else ident
    try:
        validate(s)
        assert s == ident or verifies(s)
    except IdentifierError:
        pass


@settings(deadline=None)  # timing is not under test; CI machines are shared
@given(st.text(ALNUM + "./-", min_size=1).filter(lambda s: any(c in ALNUM for c in s)))
def test_check_char_makes_the_string_verify(s):
    assert verifies(s + check_char(s))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2 ** 40), 2 ** 40) | st.text(st.characters(codec="utf-8")),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@settings(deadline=None)  # timing is not under test; CI machines are shared
@given(json_values)
def test_canon_round_trips_and_ignores_insertion_order(o):
    b = canon(o)
    assert max(b, default=0) < 0x80
    assert json.loads(b) == o
    if isinstance(o, dict):
        rev = dict(reversed(list(o.items())))
        assert canon(rev) == b


@settings(deadline=None)  # timing is not under test; CI machines are shared
@given(st.dictionaries(st.text(max_size=6).filter(lambda k: k != "mac"), json_values, max_size=5),
       st.binary(min_size=32, max_size=32), st.integers(0, 200), st.integers(0, 7))
def test_any_changed_byte_breaks_the_mac(body, key, pos, bit):
    body = dict(body, v=1)
    wire = seal(direction_keys(key)[0], body)
    assert open_msg(direction_keys(key)[0], wire) == body
    bad = bytearray(wire)
    bad[pos % len(bad)] ^= 1 << bit
    try:
        got = open_msg(direction_keys(key)[0], bytes(bad))
    except ValueError:
        return
    # a flip that still parses to the same body (e.g. inside whitespace) is fine; any other is not
    assert got == body


# ---- differential: identical bytes on both interpreters --------------------------------------

requests = st.one_of(
    st.builds(lambda s: {"op": "validate", "s": s}, st.one_of(
        identifiers, st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60),
        st.text(ALNUM + "./-ab", max_size=40))),
    st.builds(lambda s: {"op": "check", "s": s}, st.text(ALNUM + "./-a", max_size=30)),
    st.builds(lambda a: {"op": "make", "a": list(a)},
              st.tuples(st.one_of(prefixes, st.text(ALNUM + ".", max_size=12)),
                        st.sampled_from(["GD", "GV", "GX", "detector", "valve"]),
                        st.sampled_from(["L", "M", "H", "X"]),
                        st.one_of(dates(), st.text(DIGITS, max_size=7)),
                        st.integers(-5, 100005))),
    st.builds(lambda o: {"op": "canon", "o": o}, json_values),
    st.builds(lambda k, o: {"op": "seal", "k": k.hex(), "o": dict(o, v=1)},
              st.binary(min_size=32, max_size=32),
              st.dictionaries(st.text("abct", max_size=3).filter(lambda k: k != "mac"), json_values,
                              max_size=4)),
    st.builds(lambda k, p: {"op": "open", "k": k.hex(), "p": p},
              st.binary(min_size=32, max_size=32),
              st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80)),
)


@settings(max_examples=10, deadline=None)
@given(st.lists(requests, min_size=1, max_size=40))
# b"00" / b"1 2": JSON to MicroPython (0, 1), an error to CPython; both refuse it the same way
@example(reqs=[{"op": "open", "k": "00" * 32, "p": "00"}, {"op": "open", "k": "00" * 32, "p": "1 2"}])
def test_identity_identical_on_both_interpreters(reqs):
    # raw UTF-8 on stdin: MicroPython's json.loads does not join \ud83d\ude00 escape pairs
    stdin = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in reqs).encode()
    a, b = run_both("identity", stdin)
    assert a == b
    assert len(a.splitlines()) == len(reqs)


def test_differential_sealed_message_is_accepted_on_cpython():
    key = bytes(range(32))
    stdin = (json.dumps({"op": "seal", "k": key.hex(), "o": {"t": "hb", "v": 1, "n": "\u00e9"}})
             + "\n").encode()
    a, b = run_both("identity", stdin)
    assert a == b
    wire = json.loads('"' + a.decode().strip() + '"').encode()
    assert platform_open(key, wire) == {"t": "hb", "v": 1, "n": "\u00e9"}


# ---- the active identifier as a state machine ---------------------------------------------

KEY = bytes(range(1, 33))
OTHER = bytes(range(5, 37))
ID = "88.118.8/GDH.240915.00123F"


class ActiveMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self):
        self.dir = tempfile.mkdtemp(prefix="gg-act-")
        self.ids = IdentityStore(FileStore(self.dir))
        self.rec = {"id": ID, "serial": "GDH24091500123", "model": "GG-200", "tier": "H",
                    "kind": "detector", "hw_rev": "1.2", "mfg_date": "2024-09-15",
                    "qr_template": "{id}"}
        self.ids.provision(self.rec, KEY)
        self.ids.lock()
        self.clock = SimClock()
        self.sent = []
        self.a = ActiveId(self.clock, self.ids, {"heartbeat_s": 60}, self._send, "1.0")
        self.regs = []
        self.acks = []
        self.cmd_seq = 0
        self.seqs = []
        self.accepted_registration = False

    def teardown(self):
        shutil.rmtree(getattr(self, "dir", "/nonexistent"), ignore_errors=True)

    def _send(self, kind, payload):
        body = platform_open(KEY, payload)
        self.seqs.append(body["seq"])
        self.sent.append((kind, payload))
        if kind == "reg":
            self.regs.append(payload)
        return True

    @rule(ms=st.integers(0, 200000))
    def advance_and_poll(self, ms):
        self.clock.advance(ms)
        self.a.poll()

    @rule()
    def genuine_ack_for_latest(self):
        if not self.regs:
            return
        ack = platform_ack(KEY, self.regs[-1], 1700000000)
        self.acks.append(ack)
        was_pending = bool(self.a.pending)
        ok, _ = self.a.on_message(ack)
        assert ok == was_pending
        if ok:
            self.accepted_registration = True

    @rule(i=st.integers(0, 50))
    def replay_old_ack(self, i):
        if self.acks:
            assert self.a.on_message(self.acks[i % len(self.acks)])[0] is False

    @rule(i=st.integers(0, 50))
    def ack_for_an_older_registration(self, i):
        # accepted only while it is among the last MAX_PENDING attempts and none was acked
        if len(self.regs) > 1:
            j = i % (len(self.regs) - 1)
            fresh = bool(self.a.pending) and len(self.regs) - j <= MAX_PENDING
            ok, _ = self.a.on_message(platform_ack(KEY, self.regs[j], 5))
            assert ok == fresh
            if ok:
                self.accepted_registration = True

    @rule()
    def forged_ack(self):
        if self.regs:
            body = platform_open(KEY, self.regs[-1])
            forged = platform_ack(OTHER, seal(direction_keys(OTHER)[0], body), 1)
            assert self.a.on_message(forged) == (False, "bad mac")

    @rule(field=st.sampled_from(["site_ref", "installer", "model", "tier", "id"]),
          value=st.text("ABC12 -", max_size=10), fresh=st.booleans())
    def command(self, field, value, fresh):
        if fresh or self.cmd_seq == 0:
            fresh = True
            self.cmd_seq += 1
        seq = self.cmd_seq
        ok, why = self.a.on_message(platform_cmd(KEY, ID, seq, "set_attr", {field: value}))
        if not fresh:
            assert not ok and "replayed" in why
        elif field in ("model", "tier", "id"):
            assert not ok and "locked" in why

    @invariant()
    def factory_record_never_changes(self):
        if hasattr(self, "ids"):
            assert self.ids.load() == self.rec

    @invariant()
    def registered_only_after_a_genuine_ack(self):
        if hasattr(self, "ids"):
            assert self.a.registered == self.accepted_registration

    @invariant()
    def uplink_seq_strictly_increases(self):
        if hasattr(self, "seqs"):
            assert all(a < b for a, b in zip(self.seqs, self.seqs[1:]))


ActiveMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None,
                                           suppress_health_check=[HealthCheck.too_slow])
TestActiveMachine = ActiveMachine.TestCase


# ---- the identity record as a state machine -------------------------------------------------

field_values = st.fixed_dictionaries({
    "model": st.one_of(st.sampled_from(["GG-200", "GV-50"]), st.text(max_size=40)),
    "hw_rev": st.one_of(st.sampled_from(["1.2", "2.0b"]), st.text(max_size=20)),
}, optional={
    "tier": st.sampled_from(["L", "M", "H", "X"]),
    "qr_template": st.sampled_from(["{id}", "https://s.example/id/{id}", "https://x/", "{id}{id}"]),
    "serial": st.text(ALNUM + "-a", max_size=34),
})


class RecordMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self):
        self.dir = tempfile.mkdtemp(prefix="gg-rec-")
        self.st = FileStore(self.dir)
        self.ids = IdentityStore(self.st)
        self.model = None  # what the flash must hold: None or (record, key, locked)

    def teardown(self):
        shutil.rmtree(getattr(self, "dir", "/nonexistent"), ignore_errors=True)

    def _snapshot(self):
        return {n: self.st.read(n) for n in self.st.names() if n != "id_audit"}

    @rule(ident=identifiers, f=field_values, key=st.one_of(st.none(), st.binary(min_size=31, max_size=33)),
          good=st.booleans(), good_key=st.binary(min_size=32, max_size=32))
    def provision(self, ident, f, key, good, good_key):
        fields = dict(f, id=ident)
        if good:  # half the attempts are well-formed, so locking and resetting get exercised
            fields = {"id": ident, "model": "GG-200", "hw_rev": "1.2"}
            key = None if parse(ident)["tier"] == "L" else good_key
        before = self._snapshot()
        try:
            rec = self.ids.provision(fields, key)
        except Exception as e:
            assert type(e).__name__ == "IdentityError", repr(e)
            assert self._snapshot() == before  # a refused write changes nothing
            return
        assert self.model is None or not self.model[2]
        self.model = (rec, key, False)

    @rule(label_matches=st.booleans())
    def lock(self, label_matches):
        rec = self.ids.load()
        label = rec["id"] if (rec and label_matches) else "88.118.8/GDH.240915.00123F"
        try:
            self.ids.lock(label)
        except Exception as e:
            assert type(e).__name__ == "IdentityError", repr(e)
            if self.model is not None and self.model[2] is False and label == rec["id"]:
                raise AssertionError("lock of a provisioned identity with its own label refused")
            return
        assert self.model is not None and label == self.model[0]["id"]
        self.model = (self.model[0], self.model[1], True)

    @rule(proof=st.sampled_from([True, False, None, 1, "yes"]))
    def factory_reset(self, proof):
        before = self._snapshot()
        try:
            self.ids.factory_reset(proof)
        except Exception as e:
            assert proof is not True and type(e).__name__ == "IdentityError"
            assert self._snapshot() == before
            return
        assert proof is True
        self.model = None

    @invariant()
    def flash_matches_the_model(self):
        if not hasattr(self, "ids"):
            return
        fresh = IdentityStore(self.st)  # as after a reboot
        if self.model is None:
            assert fresh.status() == "blank"
        else:
            rec, key, locked = self.model
            assert fresh.status() == ("locked" if locked else "provisioned")
            assert fresh.load() == rec and fresh.device_key() == key


RecordMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=20, deadline=None,
                                           suppress_health_check=[HealthCheck.too_slow])
TestRecordMachine = RecordMachine.TestCase
