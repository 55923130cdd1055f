"""Reporting benchmark: does the network ever hold up the device loop, and what does an
event cost in time, bytes and flash wear?

1. Loop health under outages: boards/sim/report_runner.py (the Reporter with real sockets
   on the MicroPython unix port) runs for a few seconds per scenario while events are
   queued every 100 ms: broker up (embedded broker), broker that accepts TCP and never
   answers, link down (connect fails, open connection silent), nothing listening.
   Reported: the longest single rep.poll() and the longest loop turn (poll + 1 ms sleep +
   command handling), number of polls, connection failures.
2. Cost per event on the MicroPython unix port: Reporter.event() (envelope, JSON, outbox
   append), Outbox.append/ack alone, poll() while connected with nothing to do; sizes:
   message bytes, outbox record bytes, MQTT PUBLISH bytes.
3. Flash budget: bytes written per day for a stated day profile, and the flash life that
   implies under stated LittleFS assumptions.
Numbers, not pass/fail; x86 timings: an ESP32 at 240 MHz is roughly 20-50x slower.
"""

import json
import os
import socket
import subprocess
import tempfile
import threading
import time

from . import BOARDS, ROOT
from .benchkit import free_port as _free_port
from .broker import Broker
from .runtime import command

SCRIPT = BOARDS / "sim" / "bench_reporting.py"


class _Stall:
    def __init__(self):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.port = self.srv.getsockname()[1]
        self.held = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            self.held.append(c)

    def close(self):
        self.srv.close()
        for c in self.held:
            c.close()


def _scenario(port, seconds, net_down_after=None, runtime="micropython"):
    store = tempfile.mkdtemp(prefix="gg-bench-")
    argv, env = command(runtime, BOARDS / "sim" / "report_runner.py",
                        ["--port", port, "--store", store, "--connect-timeout", 1000])
    p = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)

    def send(d):
        p.stdin.write((json.dumps(d) + "\n").encode())
        p.stdin.flush()

    p.stdout.readline()  # ready
    t_end = time.monotonic() + seconds
    i = 0
    if net_down_after is not None:
        time.sleep(net_down_after)
        send({"op": "net", "up": False})
    while time.monotonic() < t_end:
        send({"op": "event", "ev": {"event": "alarm", "gas": "ch4", "level": 1,
                                    "state": "on" if i % 2 == 0 else "off", "t": i}})
        i += 1
        time.sleep(0.1)
    send({"op": "status"})
    st = None
    for line in p.stdout:
        d = json.loads(line)
        if d.get("r") == "status":
            st = d
            break
    send({"op": "quit"})
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
    event_us = 0
    return st, i, event_us


def scenarios(seconds=4.0):
    b = Broker("127.0.0.1", 0)
    port = b.start_in_thread()
    stall = _Stall()
    rows = []
    try:
        for name, p, down in (("broker up (embedded broker)", port, None),
                              ("broker accepts TCP, never answers", stall.port, None),
                              ("link drops after 1 s (silent connection)", port, 1.0),
                              ("nothing listening (connection refused)", _free_port(), None)):
            st, n, _ = _scenario(p, seconds, down)
            rows.append((name, st, n))
    finally:
        stall.close()
        b.stop()
    lines = ["| scenario (MicroPython unix, real sockets) | events | poll() p99 µs (≤) | max poll() µs | max loop turn µs | polls | connects | conn. failures | outbox left | blocking calls |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, st, n in rows:
        lines.append("| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d |" % (
            name, n, st["poll_p99_us"], st["poll_max_us"], st["loop_max_us"], st["polls"],
            st["connects"], st["conn_failures"], st["outbox"], st["blocking_calls"]))
    lines.append("")
    lines.append("(wall-clock times on a shared host: the maxima include OS scheduling; the loop "
                 "turn also includes reading the harness's commands and a 1 ms sleep)")
    return "\n".join(lines), rows


def costs(runtime):
    root = tempfile.mkdtemp(prefix="gg-bench-")
    argv, env = command(runtime, SCRIPT, [root])
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    if r.returncode:
        raise RuntimeError(r.stderr[-500:])
    out = {}
    for line in r.stdout.split("\n"):
        if line.strip():
            k, v = line.split()
            out[k] = int(v)
    return out


# A day in the life, for the flash budget (documented in docs/protocol.md)
DAY = {"safety_events": 8, "other_events": 30, "commands": 2, "boots": 1}
FLASH = {"partition_bytes": 1536 * 1024, "erase_cycles": 100000, "amplification": 8}


def flash_budget(c):
    rec = c["record_bytes"]
    ack = c["ack_record_bytes"]
    ev = DAY["safety_events"] + DAY["other_events"]
    # each event: its record + a tombstone; the log is emptied (atomic rewrite, 0 bytes)
    # whenever it passes 1 KiB with nothing live, i.e. no extra data bytes
    events = ev * (rec + ack)
    results = DAY["commands"] * (rec + ack)  # the command_result message
    ctr = DAY["commands"] * 16  # sealed command counter
    boots = DAY["boots"] * 12  # sealed boot counter
    total = events + results + ctr + boots
    life_days = (FLASH["partition_bytes"] * FLASH["erase_cycles"]) / (total * FLASH["amplification"])
    return total, life_days


def latency():
    """boards/sim/report_latency.py on MicroPython: alarm latency per network condition."""
    argv, env = command("micropython", BOARDS / "sim" / "report_latency.py")
    env["MICROPYPATH"] = os.pathsep.join([env["MICROPYPATH"], str(ROOT / "host_tests" / "portable")])
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    if r.returncode:
        return "latency run failed: " + r.stderr[-300:]
    lines = ["| network (simulated clock, MicroPython) | methane step -> relay on | -> alarm event | -> interlock close | events published | left in outbox |",
             "|---|---:|---:|---:|---:|---:|"]
    for line in r.stdout.splitlines():
        d = json.loads(line)
        lines.append("| %s | %d ms | %d ms | %d ms | %d | %d |" % (
            d["mode"], d["relay_ms"], d["alarm_ms"], d["interlock_ms"], d["published"],
            d["outbox_left"]))
    return "\n".join(lines)


def main():
    print("### Reporting (bench_reporting)\n")
    print(latency())
    print()
    table, rows = scenarios()
    print(table)
    print()
    for rt in ("micropython", "cpython"):
        c = costs(rt)
        print("- %s: `Reporter.event()` %d µs (stamp and queue in RAM: what the alarm path "
              "pays), writing it to the outbox in the next poll %d µs (envelope + JSON + append), "
              "`Outbox.append` %d µs, `Outbox.ack` %d µs, `poll()` offline %d µs" % (
                  rt, c["event_us"], c["flush_us"], c["append_us"], c["ack_us"],
                  c["poll_offline_us"]))
    print("- bytes per alarm event: message %d, outbox record %d (+ %d for its ack tombstone), "
          "MQTT PUBLISH %d; telemetry message %d" % (
              c["message_bytes"], c["record_bytes"], c["ack_record_bytes"], c["publish_bytes"],
              c["telemetry_bytes"]))
    total, life = flash_budget(c)
    print("- flash budget for a day of %d safety + %d other events, %d commands, %d boot: "
          "**%d bytes/day** of application writes; with a %d KiB LittleFS partition, %d erase "
          "cycles and an assumed %dx write amplification: about %d years of flash life "
          "(telemetry never touches flash)" % (
              DAY["safety_events"], DAY["other_events"], DAY["commands"], DAY["boots"], total,
              FLASH["partition_bytes"] // 1024, FLASH["erase_cycles"], FLASH["amplification"],
              life / 365))
    print()


if __name__ == "__main__":
    main()
