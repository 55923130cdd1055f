"""`gasguard notify` against a real mosquitto and local receivers: what reaches people,
once, and what happens when a channel, the broker or the service itself fails."""

import time

import pytest

from gasguard_tools.notify.channels.webhook import verify
from fixtures.notify import (DEV, VALVE, NotifyProcess, Publisher, alarm, receiver,  # noqa: F401
                             state, status, valve)
from fixtures.reporting import Mosquitto, wait_for

pytestmark = pytest.mark.broker
SECRET = "test-webhook-secret"


@pytest.fixture
def broker(tmp_path):
    m = Mosquitto(tmp_path).start()
    yield m
    m.stop()


def notify(tmp_path, broker, receiver, *extra):
    return NotifyProcess(tmp_path, broker.port, ["--webhook", receiver.url, "--webhook-secret",
                                                 SECRET, "--lease", "3"] + list(extra))


def kinds(receiver):
    return sorted((b["kind"], b["event"]["boot"], b["event"]["seq"]) for b in receiver.bodies())


def test_alarm_and_valve_reach_the_webhook_once_signed_and_not_again_after_restart(
        tmp_path, broker, receiver):
    n = notify(tmp_path, broker, receiver).start()
    pub = Publisher(broker.port)
    try:
        on = alarm(DEV, 1, 4)
        pub.send(on, dup_times=3)          # QoS 1 re-sends with the same identity
        pub.send(valve(VALVE, 1, 7))
        wait_for(lambda: len(receiver.ok()) >= 2, 15, what="two notifications")
        time.sleep(1.0)
        got = receiver.ok()
        assert kinds(receiver) == [("alarm_on", 1, 4), ("valve_closed", 1, 7)]
        for r in got:
            assert verify(SECRET, r["headers"], r["body"]), r["headers"]
            assert not verify("wrong", r["headers"], r["body"])
        body = next(b for b in receiver.bodies() if b["kind"] == "alarm_on")
        assert body["device"] == DEV and body["event"] == on
        assert "甲烷" in body["text"] and "撤离" in body["text"] and body["lang"] == "zh"
        assert body["incident"] and "gasguard notify ack " + body["incident"] in body["text"]
        n.stop()
        # restarted: the retained state and redelivered messages are known; nothing again
        n.start()
        pub.send(on)
        pub.send(state(DEV, 1, 9))
        time.sleep(2.0)
        assert len(receiver.ok()) == 2
        st = status(n.db)
        assert st["queue"] == {"sent": 2}
        assert st["alerts"] == [] and "ALERT" not in n.all_logs()   # the session was kept
    finally:
        pub.stop()
        n.stop()


def test_device_offline_by_last_will_and_back_online(tmp_path, broker, receiver):
    n = notify(tmp_path, broker, receiver).start()
    pub = Publisher(broker.port)
    try:
        pub.send(state(DEV, 2, 1))                               # online: nobody told
        pub.send(state(DEV, 2, 2, online=False, reason="connection_lost"))
        wait_for(lambda: len(receiver.ok()) >= 1, 15, what="offline notice")
        pub.send(state(DEV, 3, 1))                               # back after a reboot
        wait_for(lambda: len(receiver.ok()) >= 2, 15, what="online notice")
        pub.send(state(DEV, 3, 2, online=False, reason="shutdown"))  # switched off on purpose
        time.sleep(1.0)
        assert [b["kind"] for b in receiver.bodies()] == ["offline", "online"]
        assert "离线" in receiver.bodies()[0]["text"]
    finally:
        pub.stop()
        n.stop()


def test_channel_down_is_retried_with_backoff_until_it_answers(tmp_path, broker, receiver):
    receiver.mode = "fail"
    n = notify(tmp_path, broker, receiver).start()
    pub = Publisher(broker.port)
    try:
        pub.send(alarm(DEV, 1, 4))
        wait_for(lambda: len(receiver.requests) >= 3, 30, what="three failed attempts")
        times = [r["t"] for r in receiver.requests]
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert gaps[1] > gaps[0] * 1.2, gaps                      # backoff grows
        st = status(n.db)
        assert st["queue"] == {"pending": 1}
        assert "HTTP 503" in st["recent"][0]["last_error"]
        receiver.mode = "ok"
        wait_for(lambda: len(receiver.ok()) == 1, 30, what="delivery once the channel is back")
        time.sleep(1.0)
        assert len(receiver.ok()) == 1
        ids = {r["headers"]["X-Gasguard-Delivery"] for r in receiver.requests}
        assert len(ids) == 1                                      # every attempt: same id
    finally:
        pub.stop()
        n.stop()


def test_broker_down_and_back_the_service_resubscribes_and_delivers(tmp_path, broker, receiver):
    n = notify(tmp_path, broker, receiver).start()
    try:
        broker.kill()
        time.sleep(1.0)
        broker.start()                                            # same port, no memory
        wait_for(lambda: n.log_text().count("connected to") >= 2, 20, what="reconnect")
        time.sleep(0.3)
        pub = Publisher(broker.port)
        pub.send(alarm(DEV, 1, 4))
        wait_for(lambda: len(receiver.ok()) == 1, 15, what="alarm after the broker restart")
        pub.stop()
        assert "broker connection lost" in n.log_text()
        # the restarted broker had forgotten our session (what it held for us is gone): said
        # loudly and kept for `status`, never silent
        assert "ALERT: the broker had forgotten MQTT session" in n.log_text()
        assert "forgotten MQTT session" in status(n.db)["alerts"][0]["text"]
    finally:
        n.stop()


def test_killed_mid_delivery_the_notification_is_sent_after_restart_nothing_lost(
        tmp_path, broker, receiver):
    receiver.mode = "stall"
    n = notify(tmp_path, broker, receiver).start()
    pub = Publisher(broker.port)
    try:
        pub.send(alarm(DEV, 1, 4))
        assert receiver.stalled.wait(15)
        n.kill()                                      # SIGKILL while the POST is in flight
        receiver.mode = "ok"
        receiver.release()
        pub.send(valve(VALVE, 1, 5))                  # published while the service is dead
        n.start()
        wait_for(lambda: len(receiver.ok()) >= 2, 30, what="both after the restart")
        time.sleep(1.5)
        got = receiver.bodies()
        assert sorted(b["kind"] for b in got) == ["alarm_on", "valve_closed"]
        st = status(n.db)
        assert st["queue"] == {"sent": 2}
    finally:
        pub.stop()
        n.stop()
