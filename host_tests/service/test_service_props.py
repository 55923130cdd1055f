"""Properties of the service console (hypothesis) and the same byte streams on both interpreters.

Invariants:
  - no byte stream, however chunked, makes poll() raise;
  - without factory mode nothing that changes the device is ever called;
  - every `\\n`-terminated line that is not blank gets exactly one reply line, and the
    reply is E_TOOLONG / E_GARBAGE exactly when the line is too long / not printable;
  - replies are single lines starting with OK/ERR (after an optional tag).
"""

import json

from hypothesis import example, given, settings, strategies as st

from conftest import run_both
from gasguard.service import Service
from simboard import SimClock, SimConsole
from service_facade import FacadeStub

LINE_MAX = 64

ALPHABET = st.sampled_from(
    [b"\n", b"\r", b"\t", b" ", b"\x00", b"\x03", b"\x04", b"\xff", b"#t1 ", b"HELLO", b"CAL ZERO ch4",
     b"CFG a 2", b"LOG? 3", b"AUTH", b"AUTH 00", b"x" * 40, b"READ?", b"STATUS?", b"PROV {}",
     b"MAINT", b"REBOOT"])
stream = st.lists(st.one_of(ALPHABET, st.binary(max_size=30)), max_size=40).map(b"".join)


class Dev(FacadeStub):
    def __init__(self):
        self.changes = []

    def config_set(self, key, value):
        self.changes.append("cfg")

    def cal_zero(self, ch):
        self.changes.append("zero")

    def cal_span(self, ch, ppm):
        self.changes.append("span")

    def cal_commit(self, meta):
        self.changes.append("commit")

    def cal_abort(self):
        self.changes.append("abort")

    def reboot(self):
        self.changes.append("reboot")

    def maintenance(self):
        self.changes.append("maint")


def expected_replies(data):
    """(count, kinds) the framing rules promise for the complete lines in data."""
    segs = data.split(b"\n")[:-1]
    kinds = []
    for seg in segs:
        s = seg.replace(b"\r", b"")
        if len(s) > LINE_MAX:
            kinds.append("E_TOOLONG")
        elif any((b < 32 or b > 126) and b != 9 for b in s):
            kinds.append("E_GARBAGE")
        elif s.decode().strip():
            kinds.append("any")
    return kinds


@settings(max_examples=300, deadline=None)
@given(stream, st.lists(st.integers(1, 50), min_size=1, max_size=8))
@example(b"x" * LINE_MAX + b"\n", [16])  # the boundaries of the framing rules
@example(b"x" * (LINE_MAX + 1) + b"\n", [7])
@example(b"x" * LINE_MAX + b"\r\n", [1])
@example(b"\t\n \n\r\n", [3])
@example(b"HEL\tLO\n\x7f\n\x1f\n~\n", [2])
def test_console_invariants(data, cuts):
    clock = SimClock()
    con = SimConsole()
    dev = Dev()
    svc = Service(con, dev, clock, {"line_max": LINE_MAX, "chunk": 16}, rng=lambda n: bytes(n))
    pos = 0
    i = 0
    while pos < len(data):
        n = cuts[i % len(cuts)]
        con.feed(data[pos:pos + n])
        pos += n
        i += 1
        while con.any():
            svc.poll()
    svc.poll()
    out = con.take_output()
    lines = out.split(b"\n")
    assert lines[-1] == b""
    lines = [x.decode() for x in lines[:-1]]
    want = expected_replies(data)
    assert len(lines) == len(want), (data, lines)
    for line, kind in zip(lines, want):
        body = line.split(" ", 1)[1] if line.startswith("#") else line
        assert body.startswith("OK") or body.startswith("ERR "), line
        if kind != "any":
            assert body.startswith("ERR " + kind), (line, kind)
        else:
            assert not body.startswith(("ERR E_GARBAGE", "ERR E_TOOLONG")), (line, kind)
    # only REBOOT may act without factory mode (it changes no stored state)
    assert [c for c in dev.changes if c != "reboot"] == []
    assert svc.factory is False


request = st.fixed_dictionaries({
    "chunks": st.lists(stream.map(bytes.hex), min_size=1, max_size=6),
    "gap_ms": st.sampled_from([0, 50, 11000]),
    "button": st.booleans(),
})


@settings(max_examples=25, deadline=None)
@given(st.lists(request, min_size=1, max_size=8))
def test_console_identical_on_both_interpreters(reqs):
    stdin = "".join(json.dumps(r) + "\n" for r in reqs).encode()
    a, b = run_both("service", stdin)
    assert a == b
    assert len(a.splitlines()) == len(reqs)
