"""Stubs for the DetectorApp portable tests (not a test module: shared by test_service_app
and test_service_loop, kept small so each test module compiles within a 112k heap)."""

from gasguard.store import FileStore
from simboard import SimClock, SimConsole, SimPin


class StubChannel:
    def __init__(self, gas):
        self.gas = gas
        self.ppm_x10 = 0
        self.raw_uv = 400000
        self.fault = None
        self.warming_up = False


def _validate(cfg):
    for k in cfg:
        if k not in ("sample_period_ms", "tier", "profile"):
            raise ValueError("detector config: unknown key %r" % k)


class StubDetector:
    validate_config = staticmethod(_validate)

    def __init__(self, board, config, store, emit):
        self.emit = emit
        self.channels = [StubChannel("ch4"), StubChannel("co")]
        self.polls = 0
        self.interlocks = []

    def poll(self):
        self.polls += 1

    def status(self):
        return {"alarm": {"ch4": 0, "co": 0}}

    def self_test(self):
        self.emit({"event": "self_test_done"})
        return {"ok": True}

    def hush(self):
        pass


class Board:
    def __init__(self):
        self.clock = SimClock()
        self.console = SimConsole()
        self.button = SimPin("button", SimPin.IN)
        self.reboots = 0

    def reboot(self):
        self.reboots += 1


class StubIdentity:
    locked = False

    def load(self):
        return {"id": "88.9/TEST", "tier": "M"}


def _app():
    # imported on first use, after this module is compiled: a 112k heap is too fragmented
    # to compile app + service from source behind a big test module
    import gc

    gc.collect()
    from gasguard import app

    return app


def boot_mode(store):
    from gasguard.boot import boot_mode as b

    return b(store)


def EventLog(*a, **k):
    from gasguard.eventlog import EventLog as E

    return E(*a, **k)


def make(root, board=None, config=None):
    board = board or Board()
    store = FileStore(root)
    a = _app().DetectorApp(board, store, config or {"detector": {}, "app": {"history_period_s": 1}},
                           identity=StubIdentity(), detector_factory=StubDetector,
                           reset_cause="power_on")
    return a, board, store
