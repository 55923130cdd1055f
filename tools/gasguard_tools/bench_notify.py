"""Notify benchmark: an alarm storm through a real broker to a real webhook receiver.

Every device of a simulated district alarms at once: DEVICES detectors publish their CH4
alarm event (QoS 1, a tenth of them twice, as QoS 1 re-sends do) through mosquitto on
loopback, from a few publisher connections as fast as the broker takes them.
`gasguard notify --db FILE --webhook URL` runs as its own process (as deployed) and POSTs
each notification to a local receiver that records its arrival. Reported: event-to-
notification latency (publish call -> webhook request received) p50/p99/max, throughput
(notifications per second from the first publish to the last arrival), the service's
peak resident memory (VmHWM), and the check that matters most: every alarm told exactly
once (nothing lost, nothing twice). Bounded: at most TIMEOUT_S for the storm.

Run alone: python -m gasguard_tools.bench_notify [DEVICES]
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import ROOT
from .benchkit import free_port as _free_port

DEVICES = 3000
PUBLISHERS = 4
TIMEOUT_S = 120


def _mosquitto(tmp):
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists(
        "/usr/sbin/mosquitto") else None)
    if exe is None:
        raise RuntimeError("mosquitto is not installed (make broker)")
    port = _free_port()
    conf = os.path.join(tmp, "m.conf")
    with open(conf, "w") as f:
        # a storm queues thousands of QoS 1 messages for the notify session: the broker's
        # default limit (1000 queued per client) would drop the rest (docs/notify.md)
        f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
                "log_dest none\nmax_queued_messages 0\nmax_inflight_messages 0\n" % port)
    proc = subprocess.Popen([exe, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mosquitto did not start")


class Receiver:
    def __init__(self, delay_s=0.0):
        self.arrivals = []
        self.ids = set()  # (device, delivery id): a repeat under the same id is one notice
        self.lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                t = time.time()
                m = json.loads(body)
                with outer.lock:
                    outer.arrivals.append((m["device"], m["event"]["seq"], t))
                    outer.ids.add((m["device"], m["id"]))
                if delay_s:
                    time.sleep(delay_s)  # a far-away API answers in this long
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.httpd.request_queue_size = 256
        self.url = "http://127.0.0.1:%d/hook" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _alarm(dev, seq):
    return json.dumps({"v": 1, "kind": "event", "dev": dev, "fw": "0.1.0", "boot": 1, "seq": seq,
                       "up_ms": 360000, "ts": int(time.time()), "event": "alarm",
                       "data": {"gas": "ch4", "level": 1, "state": "on", "t": 360}},
                      separators=(",", ":"))


def _vm_hwm_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def storm(devices=DEVICES, workers=4, delay_s=0.0, db=None, instances=1, kill=False):
    """kill: SIGKILL the first instance when a third of the storm is published (--share)."""
    import paho.mqtt.client as mqtt

    tmp = tempfile.mkdtemp(prefix="gg-bench-notify-")
    broker, port = _mosquitto(tmp)
    rx = Receiver(delay_s)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "tools") + os.pathsep + env.get("PYTHONPATH", "")
    logs, svcs = [], []
    for k in range(instances):
        log = open(os.path.join(tmp, "notify-%d.log" % k), "w+")
        argv = [sys.executable, "-m", "gasguard_tools.cli", "notify", "--broker",
                "127.0.0.1:%d" % port, "--db", db or os.path.join(tmp, "notify.db"),
                "--webhook", rx.url, "--webhook-secret", "bench", "--quiet",
                "--workers", str(workers)]
        if instances > 1:
            argv += ["--share", "bench"]
        svcs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     cwd=tmp))
        logs.append(log.name)
    try:
        end = time.time() + 30
        for svc, name in zip(svcs, logs):
            while "connected to" not in open(name).read():
                if time.time() > end or svc.poll() is not None:
                    raise RuntimeError("notify did not start: " + open(name).read()[-500:])
                time.sleep(0.05)
        time.sleep(0.5)
        devs = ["88.118.%d/GDH.261201.%05dX" % (i % 10, i) for i in range(devices)]
        published = {}
        clients = []
        for k in range(PUBLISHERS):
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="storm-%d" % k)
            c.max_inflight_messages_set(200)
            c.max_queued_messages_set(0)
            c.connect("127.0.0.1", port, keepalive=60)
            c.loop_start()
            clients.append(c)
        t0 = time.time()
        infos = []
        killed = None
        for i, d in enumerate(devs):
            if kill and i == devices // 3:
                svcs[0].kill()
                killed = time.time() - t0
            c = clients[i % PUBLISHERS]
            payload = _alarm(d, 5)
            published[d] = time.time()
            infos.append(c.publish("gasguard/%s/event" % d, payload, qos=1))
            if i % 10 == 0:  # a QoS 1 re-send of the same event
                infos.append(c.publish("gasguard/%s/event" % d, payload, qos=1))
        for info in infos:
            info.wait_for_publish(30)
        t_pub = time.time() - t0
        deadline = time.time() + TIMEOUT_S
        while time.time() < deadline:
            with rx.lock:
                n = len({a[0] for a in rx.arrivals})
            if n >= devices:
                break
            time.sleep(0.1)
        time.sleep(1.0)  # anything sent twice would arrive now
        if killed is not None:  # and what the killed one had claimed, once its lease ran out
            time.sleep(max(0.0, t0 + killed + 62.0 - time.time()))
        hwm = max((_vm_hwm_kb(svc.pid) or 0) for svc in svcs if svc.poll() is None)
        for c in clients:
            c.loop_stop()
            c.disconnect()
    finally:
        for svc in svcs:
            svc.terminate()
        for svc in svcs:
            try:
                svc.wait(20)
            except subprocess.TimeoutExpired:
                svc.kill()
        broker.kill()
        broker.wait()
        rx.stop()
    with rx.lock:
        arrivals = list(rx.arrivals)
    takeovers = sum(open(name).read().count("taking over session") for name in logs)
    shutil.rmtree(tmp, ignore_errors=True)
    with rx.lock:
        ids = set(rx.ids)
    per_dev = Counter(a[0] for a in arrivals)
    per_id = Counter(d for d, _i in ids)
    first = {}
    for d, _s, t in arrivals:  # a notice sent again under its id: the first arrival counts
        first[d] = min(t, first.get(d, t))
    lat = sorted((t - published[d]) * 1000.0 for d, t in first.items() if d in published)
    last = max(first.values(), default=t0)  # the last device told (repeats not counted)

    def pct(p):
        return lat[min(len(lat) - 1, int(round(p / 100.0 * (len(lat) - 1))))] if lat else float("nan")

    return {"devices": devices, "published": len(infos), "publish_s": t_pub,
            "delivered": len(per_dev), "lost": devices - len(per_dev),
            "twice": sum(1 for v in per_id.values() if v > 1),
            "again": sum(v - 1 for v in per_dev.values() if v > 1), "killed_s": killed,
            "takeovers": takeovers,
            "p50_ms": pct(50),
            "p99_ms": pct(99), "min_ms": lat[0] if lat else float("nan"), "max_ms": lat[-1] if lat else float("nan"),
            "throughput": len(first) / max(1e-9, last - t0), "total_s": last - t0,
            "hwm_mb": hwm / 1024.0 if hwm else float("nan"), "workers": workers,
            "delay_s": delay_s, "db": "PostgreSQL" if db else "SQLite", "instances": instances}


def _pg_storm(devices):
    from .notify import pgserver

    bin_dir = pgserver.find_bin()
    if bin_dir is None:
        return []
    pg = pgserver.TempPostgres(bin_dir).start()
    try:
        return [storm(devices, db=pg.new_database(), instances=2),
                storm(devices, db=pg.new_database(), instances=2, kill=True)]
    finally:
        pg.stop()


def main(devices=DEVICES):
    runs = [storm(devices)]
    slow = max(200, devices // 6)
    runs += [storm(slow, workers=w, delay_s=0.1) for w in (4, 16)]
    runs += _pg_storm(devices)
    r = runs[0]
    print("### Alarm storm (bench_notify)\n")
    print("Simulated detectors alarm at once: one CH4 alarm event each, QoS 1, every tenth "
          "event published twice (as QoS 1 re-sends are), through mosquitto on loopback from "
          "%d connections. `gasguard notify` (its own process) POSTs every notification to a "
          "local webhook receiver that answers at once or, in two runs, after 100 ms like a "
          "far-away API. The PostgreSQL run (when the server is installed) is two instances "
          "sharing one database and a `$share` subscription, all on this one machine.\n"
          % PUBLISHERS)
    print("| storm | delivered | lost / twice (sent again, same id) | latency min / p50 / p99 / "
          "max | throughput | published in / all told after | notify peak memory |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print("| %d devices, %s, %d instance%s x %d workers, receiver %d ms%s | %d of %d | "
              "**%d / %d** (%d) | %.0f / %.0f / %.0f / %.0f ms | %.0f /s | %.1f s / %.1f s | "
              "%.1f MB |" % (
                  r["devices"], r["db"], r["instances"], "s" if r["instances"] > 1 else "",
                  r["workers"], r["delay_s"] * 1000,
                  ", one SIGKILLed at %.2f s (sessions taken over: %d)" % (
                      r["killed_s"], r["takeovers"]) if r["killed_s"] is not None else "",
                  r["delivered"], r["devices"], r["lost"], r["twice"], r["again"], r["min_ms"],
                  r["p50_ms"], r["p99_ms"], r["max_ms"], r["throughput"], r["publish_s"],
                  r["total_s"], r["hwm_mb"]))
    print()
    print("Latency is event (publish call) to notification (request at the receiver). In a "
          "storm it is mostly queueing: the whole district arrives within a second; each event "
          "is recorded in one SQLite transaction (PUBACK after the commit, schema check "
          "included) and each notification sent in turn, most urgent kind first. On this "
          "2-core machine more workers do not help a receiver that answers at once (they "
          "contend for the interpreter and the database), but they do when every request "
          "waits on a slow far end: `--workers` is the knob for real channels. Peak memory "
          "is the service's resident set (VmHWM; the larger instance when there are two). "
          "Two instances on one 2-core host with the database server beside them are not "
          "faster than one on SQLite (every statement is a round trip, and all three share the "
          "cores): the PostgreSQL set-up is for several hosts and for carrying on when one "
          "instance dies, which loses nothing: in the last run one of the two is SIGKILLed a "
          "third of the way through publishing; its share of the storm waits in its persistent "
          "session until the survivor takes the session over (`--takeover`, 5 s; hence the "
          "higher p50), and anything it had claimed waits for the delivery lease (`--lease`, "
          "60 s) and is sent again under the same delivery id (the count in brackets). "
          "'Twice' counts devices told under two different delivery ids, which must be 0; "
          "latency counts each notice's first arrival.")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else DEVICES)
