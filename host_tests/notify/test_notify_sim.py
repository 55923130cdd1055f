"""End to end: mosquitto, a webhook receiver, `gasguard notify --broker --webhook --db` and
`gasguard sim --broker` running the leak: the person behind the webhook hears of the CH4
alarm of the simulated detector and of the valve closing, each once, and a restart of the
service sends nothing again."""

import os
import re
import subprocess
import sys
import time
from collections import Counter

import pytest

from conftest import ROOT
from fixtures.notify import NotifyProcess, receiver, status  # noqa: F401
from fixtures.reporting import Mosquitto, wait_for

pytestmark = pytest.mark.broker


def test_sim_leak_ends_with_a_person_told_once(tmp_path, receiver):
    broker = Mosquitto(tmp_path).start()
    n = NotifyProcess(tmp_path, broker.port, ["--webhook", receiver.url]).start()
    try:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT / "tools") + os.pathsep + env.get("PYTHONPATH", "")
        sim = subprocess.run([sys.executable, "-m", "gasguard_tools.cli", "sim", "--broker",
                              "127.0.0.1:%d" % broker.port, "--speed", "200"],
                             capture_output=True, text=True, env=env, timeout=240)
        assert sim.returncode == 0, sim.stderr[-2000:]
        detector = re.search(r"detector device (\S+)", sim.stdout).group(1)
        valve = re.search(r"valve device (\S+)", sim.stdout).group(1)
        wait_for(lambda: any(b["kind"] == "valve_closed" for b in receiver.bodies()), 30,
                 what="the valve closure at the webhook")
        wait_for(lambda: status(n.db)["queue"].get("pending", 0) == 0, 30, what="queue empty")
        bodies = receiver.bodies()
        alarms = [b for b in bodies if b["kind"] == "alarm_on"]
        assert [(b["device"], b["event"]["data"]["gas"], b["event"]["data"]["level"])
                for b in alarms] == [(detector, "ch4", 1), (detector, "ch4", 2)]
        closed = [b for b in bodies if b["kind"] == "valve_closed"]
        assert [b["device"] for b in closed] == [valve]
        assert closed[0]["event"]["data"]["state"] == "closed"
        # each device message told once, whatever QoS 1 re-sent
        ids = Counter((b["device"], b["event"]["boot"], b["event"]["seq"]) for b in bodies)
        assert max(ids.values()) == 1, ids
        assert "切断阀已关闭" in closed[0]["text"]
        before = len(receiver.ok())
        n.stop()
        n.start()
        time.sleep(3.0)
        assert len(receiver.ok()) == before
    finally:
        n.stop()
        broker.stop()
