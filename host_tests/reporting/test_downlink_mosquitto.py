"""Hostile downlink against a real mosquitto and the firmware on the MicroPython unix port
(issue 15 findings 1-3), with real sockets (boards/sim/report_runner.py).

- Unsigned set_interval garbage on the command topic during a leak: every event arrives,
  every message is answered (finding 1).
- A 3000-byte retained message on the command topic (limit 2048): no connect/fail loop,
  the message is answered too_large and cleared from the broker (finding 2).
- A signed command published retained while the device is connected runs once; the
  broker's retained copy is cleared, so neither a reconnect nor a reboot sees it again
  (finding 3).
"""

import json
import time

import paho.mqtt.client as mqtt
import pytest

from gasguard.commands import sign
from fixtures.reporting import (  # noqa: F401
    DEV, Collector, Runner, first_occurrences, mosquitto, wait_for,
)

pytestmark = pytest.mark.broker

KEY = bytes(range(32))
TOPIC = "gasguard/%s/command" % DEV


class Platform:
    """A paho client on the broker: publishes commands, reads back retained messages."""

    def __init__(self, port):
        self.port = port
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="platform")
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def publish(self, payload, retain=False):
        self.c.publish(TOPIC, payload, qos=1, retain=retain).wait_for_publish(5)

    def retained(self, wait=1.0):
        """What a new subscriber to the command topic gets as retained, or None."""
        got = []
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="probe-%f" % time.time())
        c.on_message = lambda cl, u, m: got.append((bytes(m.payload), bool(m.retain)))
        c.connect("127.0.0.1", self.port)
        c.subscribe(TOPIC, 1)
        c.loop_start()
        time.sleep(wait)
        c.loop_stop()
        c.disconnect()
        kept = [p for p, r in got if r]
        return kept[0] if kept else None

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def _events(col):
    return col.decoded("event")  # (the command topic carries garbage: not decoded)


def _results(col):
    return [(m["ok"], m.get("reason"), m.get("detail"))
            for m in first_occurrences(col.decoded("command_result"))]


def test_unsigned_garbage_during_a_leak_costs_no_event(mosquitto, tmp_path):
    col = Collector(mosquitto.port)
    run = Runner(mosquitto.port, tmp_path / "store")
    plat = Platform(mosquitto.port)
    try:
        wait_for(lambda: run.status()["online"], 15, what="the device online")
        queued = []
        noise = ("[1]", "{}", "null", '"x"', "1e400")
        for i in range(8):
            ev = {"event": "alarm", "gas": "ch4", "level": 1, "state": "on" if i % 2 else "off",
                  "t": i}
            r = run.event(ev)
            queued.append((r["boot"], r["seq"]))
            plat.publish('{"v":1,"id":"n%d","cmd":"set_interval","args":{"seconds":%s},'
                         '"ctr":%d,"ts":1790000000,"mac":"%s"}' % (i, noise[i % 5], 50 + i, "ab" * 32))
            # paced like the campaign (one per alarm; a burst beyond the 4-slot RAM queue
            # of rejections is counted in ram_dropped instead, by design)
            wait_for(lambda: len(_results(col)) > i, 10, what="the answer to noise %d" % i)
        wait_for(lambda: {(m["boot"], m["seq"]) for m in _events(col)} >= set(queued), 20,
                 what="every event")
        keys = [(m["boot"], m["seq"]) for m in first_occurrences(_events(col))]
        assert keys == queued
        dups = len(_events(col)) - len(keys)
        assert dups <= 2, dups  # the campaign saw 732 duplicate publishes
        assert _results(col) == [(False, "bad_mac", None)] * 8
        st = run.status()
        assert st["cmd_rejected"] == 8 and st["rx_dropped"] == 0 and st["outbox"] == 0
    finally:
        plat.close()
        run.quit()
        col.close()


def test_an_oversized_retained_command_makes_no_connect_loop_and_is_cleared(mosquitto, tmp_path):
    plat = Platform(mosquitto.port)
    plat.publish("{" + "x" * 2998 + "}", retain=True)  # 3000 bytes, limit 2048
    col = Collector(mosquitto.port)
    run = Runner(mosquitto.port, tmp_path / "store")
    try:
        wait_for(lambda: _results(col), 15, what="an answer to the oversized message")
        time.sleep(3)
        st = run.status()
        # the campaign saw 4941 connect/fail cycles in 40 s
        assert st["online"] and st["connects"] == 1 and st["conn_failures"] == 0, st
        assert _results(col) == [(False, "malformed", "too_large")]
        assert st["rx_dropped"] == 1
        assert plat.retained() is None  # cleared from the broker by the device
    finally:
        plat.close()
        run.quit()
        col.close()


def test_a_retained_signed_command_runs_once_and_is_cleared(mosquitto, tmp_path):
    col = Collector(mosquitto.port)
    store = tmp_path / "store"
    run = Runner(mosquitto.port, store)
    plat = Platform(mosquitto.port)
    try:
        wait_for(lambda: run.status()["online"], 15, what="the device online")
        # published retained while the device is connected: the broker delivers it live,
        # with the retain flag cleared (MQTT 3.1.1 §3.3.1.3)
        plat.publish(json.dumps(sign(KEY, DEV, "r1", 1, 1790000000, "hush")), retain=True)
        wait_for(lambda: run.status()["handler"] == ["hush"], 15, what="the hush")
        wait_for(lambda: plat.retained(0.3) is None, 10, what="the retained copy cleared")
        run.quit()
        run = Runner(mosquitto.port, store)  # reboot: nothing retained to run again
        wait_for(lambda: run.status()["online"], 15, what="the device online again")
        time.sleep(1)
        assert run.status()["handler"] == []
        assert _results(col) == [(True, None, None)]
    finally:
        plat.close()
        run.quit()
        col.close()
