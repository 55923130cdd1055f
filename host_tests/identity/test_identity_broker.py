"""Registration and heartbeat round trip through a real MQTT broker.

Device: IdentityStore + ActiveId + the real Reporter/MQTT client on a real TCP socket.
Platform: a paho-mqtt client that verifies uplinks with the device key, first answers a
registration with a FORGED acknowledgement (wrong key; must be rejected), then with the
genuine one, and later replays it (must be rejected too). Runs against mosquitto (the
reporting fixtures' Mosquitto: skipped when it is not installed, a failure in CI) and
against gasguard's embedded broker; the device runs in-process on CPython and, in the last
test, as a real MicroPython process (host_tests/drivers/identity_device.py).
"""

import json
import socket
import subprocess
import threading
import time

import paho.mqtt.client as paho
import pytest

from gasguard import ticks
from gasguard.active_id import ActiveId, attach_reporter, direction_keys, seal
from gasguard.id_platform import platform_ack, platform_open
from gasguard.identity import IdentityStore
from gasguard.reporter import Reporter
from gasguard.store import FileStore
from conftest import ROOT, micropath, micropython_exe
from fixtures.reporting import Mosquitto

pytestmark = pytest.mark.broker

ID = "88.118.8/GDH.240915.00123F"
KEY = bytes(range(7, 39))
FORGER = bytes(range(9, 41))


@pytest.fixture(params=["mosquitto", "embedded"])
def broker_port(request, tmp_path):
    if request.param == "mosquitto":
        m = Mosquitto(tmp_path).start()  # skips (or fails under GASGUARD_REQUIRE_BROKER=1)
        try:
            yield m.port
        finally:
            m.stop()
        return
    from gasguard_tools.broker import Broker

    b = Broker("127.0.0.1", 0)
    port = b.start_in_thread()
    try:
        yield port
    finally:
        b.stop()


class JumpClock:
    """Real milliseconds (so the network works in real time) plus jumps for long waits."""

    def __init__(self):
        self.offset = 0

    def ticks_ms(self):
        return (int(time.monotonic() * 1000) + self.offset) & (ticks.ESP32_TICKS_PERIOD - 1)

    def ticks_diff(self, a, b):
        return ticks.diff(a, b)

    def ticks_add(self, t, d):
        return ticks.add(t, d)

    def jump(self, ms):
        self.offset += ms


class Platform:
    def __init__(self, port):
        self.msgs = []
        self.raw = []
        self.lock = threading.Lock()
        self.acks = []
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="platform")
        self.c.on_message = self._on_message
        subscribed = threading.Event()
        self.c.on_subscribe = lambda *a: subscribed.set()
        self.c.connect("127.0.0.1", port, 30)
        self.c.subscribe("gg/#", 1)
        self.c.loop_start()
        # the device must not publish its registration before the platform listens
        assert subscribed.wait(10), "platform did not subscribe"

    def _on_message(self, client, userdata, m):
        if not m.topic.endswith("/identity"):
            return
        body = platform_open(KEY, m.payload)  # raises on a bad MAC: the test would fail
        with self.lock:
            self.msgs.append(body)
            self.raw.append(m.payload)
        if body["t"] == "reg":
            down = m.topic + "_down"
            # first a forged acknowledgement (an attacker without the key), then the real one
            forged = platform_ack(FORGER, seal(direction_keys(FORGER)[0], body), 1726400000)
            self.c.publish(down, forged, 1)
            ack = platform_ack(KEY, m.payload, 1726400002)
            self.acks.append((down, ack))
            self.c.publish(down, ack, 1)

    def kinds(self):
        with self.lock:
            return [m["t"] for m in self.msgs]

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def _run_until(cond, act, rep, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        act.poll()
        rep.poll()
        if cond():
            return True
        time.sleep(0.005)
    return False


def test_registration_heartbeat_round_trip_with_forged_ack_rejected(broker_port, tmp_path):
    store = FileStore(str(tmp_path / "flash"))
    ids = IdentityStore(store)
    ids.provision({"id": ID, "model": "GG-200", "hw_rev": "1.2"}, KEY)
    ids.lock()
    clock = JumpClock()
    cfg = {"base": "gg", "commands": False,
           "mqtt": {"host": "127.0.0.1", "port": broker_port, "keepalive_s": 600,
                    "backoff_min_ms": 100, "backoff_max_ms": 1000}}
    platform = Platform(broker_port)
    try:
        rep = Reporter(clock, store, ids.identity_info("0.1.0"), cfg, socket)
        act = ActiveId(clock, ids, {"heartbeat_s": 60, "reg_retry_min_s": 5}, None, "0.1.0")
        attach_reporter(act, rep)
        assert _run_until(lambda: act.registered, act, rep), (rep.status(), act.counters)
        assert act.counters["rejected"] >= 1 and ids.platform()["reg_ts"] == 1726400002
        assert platform.kinds()[0] == "reg"
        # the forged ack was handled (rejected) before the genuine one registered the device
        assert act.last_reject == "bad mac"
        # the genuine ack replayed: rejected
        down, ack = platform.acks[-1]
        n = act.counters["rejected"]
        platform.c.publish(down, ack, 1)
        assert _run_until(lambda: act.counters["rejected"] > n, act, rep, 5.0)
        assert act.last_reject == "no registration pending"
        # an hour in a moment: the heartbeat goes out and verifies on the platform
        clock.jump(61000)
        assert _run_until(lambda: "hb" in platform.kinds(), act, rep, 5.0), platform.kinds()
        hb = [m for m in platform.msgs if m["t"] == "hb"][0]
        assert hb["id"] == ID and hb["fw"] == "0.1.0" and hb["up"] >= 61
        seqs = [m["seq"] for m in platform.msgs]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        rep.close()
        for _ in range(20):
            rep.poll()
    finally:
        platform.close()
    assert json.loads(platform.raw[0])["t"] == "reg"


def test_round_trip_with_the_device_on_micropython(broker_port, tmp_path):
    platform = Platform(broker_port)
    try:
        env = dict(__import__("os").environ, MICROPYPATH=micropath())
        r = subprocess.run([micropython_exe(), str(ROOT / "host_tests" / "drivers" / "identity_device.py"),
                            str(broker_port), str(tmp_path / "flash"), KEY.hex()],
                           capture_output=True, timeout=60, env=env, cwd=str(ROOT))
        assert r.returncode == 0, r.stderr.decode()
        lines = [json.loads(x) for x in r.stdout.decode().splitlines()]
        byr = {m["r"]: m for m in lines}
        assert byr["registered"]["last_reject"] == "bad mac"  # the forged ack came first
        assert byr["registered"]["rejected"] == 1
        assert byr["hb"]["hb_sent"] >= 1 and byr["bye"]["registered"] is True
        deadline = time.monotonic() + 5
        while "hb" not in platform.kinds() and time.monotonic() < deadline:
            time.sleep(0.02)
        kinds = platform.kinds()
        assert kinds[0] == "reg" and "hb" in kinds
        hb = [m for m in platform.msgs if m["t"] == "hb"][0]
        assert hb["st"] == {"alarm": 0, "fault": 0} and hb["up"] >= 61
    finally:
        platform.close()
    # the registration survived on flash: a restarted device sends heartbeats, no registration
    assert IdentityStore(FileStore(str(tmp_path / "flash"))).platform()["registered"] is True
