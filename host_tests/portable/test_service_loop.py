"""DetectorApp loop behaviour with a stub detector (split from test_service_app so each
module compiles within the 112k heap): parts in status, a flooded console."""

from service_stubs import make
from ptest import tmpdir


def test_status_collects_the_parts_and_the_outbox_depth():
    a, board, store = make(tmpdir("app11"))

    class Reporter:
        def poll(self):
            pass

        def event(self, ev):
            pass

        def status(self):
            return {"outbox": 3, "online": False}

    r = Reporter()
    a.pollers.append(r)
    a.sinks.append(r)
    st = a.status()
    assert st["outbox_depth"] == 3
    assert st["parts"] == {"reporter": {"outbox": 3, "online": False}}


def test_the_alarm_path_runs_every_turn_while_the_console_floods():
    a, board, store = make(tmpdir("app12"))
    board.console.feed(b"\xff" * 1000 + b"HELLO\n" * 60)
    before = a.detector.polls
    for _ in range(10):
        a.poll()
        board.clock.advance(10)
    assert a.detector.polls - before == 10  # one detector step per loop turn, never starved
    assert board.console.any() > 0  # the console took a bounded bite per turn
    oks = 0
    errs = []
    for _ in range(200):
        a.poll()
        for line in board.console.take_output().decode().split("\n"):
            if line.startswith("OK "):
                oks += 1
            elif line:
                errs.append(line[:13])
    assert board.console.any() == 0
    assert errs == ["ERR E_TOOLONG"] and oks == 59  # garbage+first HELLO is one overlong line
