"""What the Reporter tests (test_reporting_delivery, _command_and_config, _sequence_and_polls,
_identity_passthrough) share: the device, the alarm sequence, a Reporter on the strict fake
network (reporting_fakes.FakeNet) with a SimClock and a FileStore, and the loop that runs it
against the test's broker."""

from gasguard.reporter import Reporter
from gasguard.store import FileStore
from ptest import tmpdir
from reporting_fakes import FakeNet
from simboard import SimClock

DEV = "88.118.8/GDH.240915.00123F"
IDENT = {"device_id": DEV, "fw": "0.1.0", "tier": "M", "kind": "detector"}
ALARMS = [
    {"event": "alarm", "gas": "ch4", "level": 1, "state": "on"},
    {"event": "alarm", "gas": "ch4", "level": 2, "state": "on"},
    {"event": "relay", "state": "on"},
    {"event": "alarm", "gas": "ch4", "level": 2, "state": "off"},
]


def reporter(tag, cfg, net=None, clock=None, d=None, **kw):
    """(reporter, clock, net, folder): a new clock, network and folder (tmpdir(tag)) unless
    given; kw go to Reporter."""
    clock = clock or SimClock()
    net = net or FakeNet()
    d = d or tmpdir(tag)
    r = Reporter(clock, FileStore(d), IDENT, cfg, net, rand=lambda n: 0, **kw)
    return r, clock, net, d


def run(r, clock, broker, ms=1000, step=10):
    """ms of simulated time: the reporter polls, the broker answers, every step ms."""
    for _ in range(ms // step):
        r.poll()
        broker.service()
        clock.advance(step)
