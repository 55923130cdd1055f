"""`gasguard sim` (default mode): a detector and a valve controller on the real firmware.

Runs boards/sim/sim_pair.py on the MicroPython unix port: both devices' firmware in one
process, joined by the simulated ESP-NOW air (with --loss), each reporting over real
sockets to an MQTT broker — the embedded one (gasguard_tools.broker) unless --broker is
given. What the devices do is printed as it happens, then what reached the broker.
"""

import json
import queue
import subprocess
import sys
import tempfile
import threading
import time

from . import BOARDS, FIRMWARE, ROOT, SCENARIOS
from .cmd_replay import DEVICES, parse_scenario
from .runtime import ToolError, command

RUNNER = BOARDS / "sim" / "sim_pair.py"
DEFAULT_SCENARIO = SCENARIOS / "pair_leak.csv"

DEVICES.setdefault("pair", {
    "runner": "sim_pair.py",
    "numeric": ("ch4_ppm", "co_ppm", "pressure_kpa", "flow_m3h"),
    "text": {"valve_hand": ("", "reset", "close")},
    "ranges": {"ch4_ppm": (0, 1000000), "co_ppm": (0, 100000), "pressure_kpa": (-100, 1000),
               "flow_m3h": (0, 1000)},
    "actions": ("valve_hand",),
})


def add_pair_arguments(p):
    p.add_argument("--broker", metavar="HOST:PORT",
                   help="MQTT broker (numeric IPv4); default: start an embedded local broker")
    p.add_argument("--scenario", metavar="CSV", help="timeline (default docs/scenarios/pair_leak.csv)")
    p.add_argument("--loss", type=int, default=10, help="radio frame loss %% (default 10)")
    p.add_argument("--seed", type=int, default=1, help="seed of the radio and the keys' nonces")
    p.add_argument("--json", action="store_true", help="print raw JSON lines")


def describe(ev):
    kind = ev.get("event")
    dev = ev.get("dev", "?")
    if kind == "alarm":
        what = "%s ALARM level %s %s" % (ev["gas"].upper(), ev["level"], ev["state"].upper())
    elif kind == "valve":
        what = "valve %s (cause %s%s)" % (ev["state"].upper(), ev.get("cause"),
                                         ", from " + str(ev["source"]) if ev.get("source") else "")
    elif kind == "interlock":
        what = "interlock %s (%s%s)" % (ev.get("state"), ev.get("cause"),
                                        ", via " + ev["via"] if ev.get("via") else "")
    elif kind == "fault":
        what = "fault %s %s" % (ev.get("code"), ev.get("state"))
    else:
        rest = " ".join("%s=%s" % (k, ev[k]) for k in sorted(ev) if k not in ("t", "dev", "event"))
        what = "%s %s" % (kind, rest)
    return "t=%5ss  %-8s  %s" % (ev.get("t"), dev, what)


def _sim_device_key():
    """The simulated devices' key (SIMULATION ONLY), from the one place it is defined."""
    for p in (str(FIRMWARE), str(BOARDS / "sim")):
        if p not in sys.path:
            sys.path.insert(0, p)
    import sim_pair as device_side

    return device_side.DEVICE_KEY


class BrokerWatch:
    """Subscribes to <base>/# and keeps every message; plays the platform's part of the
    active identifier: a registration gets a signed acknowledgement on identity_down."""

    def __init__(self, host, port, base="gasguard"):
        import paho.mqtt.client as mqtt

        self.q = queue.Queue()
        self.messages = []
        self.base = base
        self.acks = 0
        self.key = _sim_device_key()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        c.on_connect = lambda cl, u, f, rc, p=None: cl.subscribe(base + "/#", qos=1)
        c.on_message = self._on_message
        try:
            c.connect(host, port, keepalive=30)
        except OSError as e:
            raise ToolError("cannot connect to the broker %s:%d: %s" % (host, port, e))
        c.loop_start()
        self.client = c

    def _on_message(self, client, userdata, m):
        payload = bytes(m.payload)
        self.q.put((m.topic, payload, m.retain))
        if m.topic.endswith("/identity") and b'"t":"reg"' in payload:
            from gasguard.active_id import platform_ack

            try:
                ack = platform_ack(self.key, payload, int(time.time()))
            except Exception:  # a registration we cannot verify gets no acknowledgement
                return
            client.publish(m.topic + "_down", ack, qos=1)
            self.acks += 1

    def drain(self):
        out = []
        while True:
            try:
                out.append(self.q.get_nowait())
            except queue.Empty:
                break
        self.messages.extend(out)
        return out

    def stop(self):
        self.client.loop_stop()
        self.client.disconnect()


def run_pair(args, out=None):
    out = out or sys.stdout
    scenario = args.scenario or str(DEFAULT_SCENARIO)
    rows, end_ms = parse_scenario(scenario, "pair")
    broker = None
    if args.broker:
        try:
            host, port = args.broker.rsplit(":", 1)
            port = int(port)
        except ValueError:
            raise ToolError("--broker must be HOST:PORT, got %r" % args.broker)
    else:
        from .broker import Broker

        broker = Broker("127.0.0.1", 0)
        host, port = "127.0.0.1", broker.start_in_thread()
        out.write("embedded MQTT broker on %s:%d\n" % (host, port))
    watch = BrokerWatch(host, port)
    from .cmd_monitor import Printer

    printer = Printer("gasguard", out=out)
    state = tempfile.mkdtemp(prefix="gasguard-sim-")
    argv, env = command("micropython", RUNNER, ["--state", state, "--broker", "%s:%d" % (host, port),
                                                "--speed", args.speed, "--loss", args.loss,
                                                "--seed", args.seed],
                        micropython=getattr(args, "micropython", None))
    stdin = "".join(json.dumps(r) + "\n" for r in rows)
    out.write("running the detector + valve firmware on MicroPython (%s, %gx real time, %d%% radio loss)\n"
              % (scenario, args.speed, args.loss))
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=str(ROOT))
    proc.stdin.write(stdin)
    proc.stdin.close()
    events, summary = [], None
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout] + [lines.put(None)],
                     daemon=True).start()
    try:
        while True:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                line = ""
            for topic, payload, retain in watch.drain():
                # telemetry is counted in the summary; events and state are shown
                if not args.json and not topic.endswith("/telemetry"):
                    out.write("   broker <- ")
                    printer.handle(topic, payload, retain)
            if line is None:
                break
            if not line.strip():
                continue
            ev = json.loads(line)
            if ev.get("sim") == "end":
                summary = ev
            elif ev.get("sim") == "device":
                out.write("%s device %s\n" % (ev["dev"], ev["id"]))
            else:
                events.append(ev)
            out.write((line if args.json else describe(ev) + "\n") if "sim" not in ev else "")
            out.flush()
        rc = proc.wait(timeout=30)
        time.sleep(0.5)
        watch.drain()
    finally:
        if proc.poll() is None:
            proc.kill()
        watch.stop()
        if broker is not None:
            broker.stop()
    if rc != 0 or summary is None:
        raise ToolError("the simulated devices stopped (exit %s): %s" % (rc, proc.stderr.read()[-2000:]))
    args.result = {"events": events, "summary": summary, "messages": watch.messages,
                   "invalid": printer.invalid}
    return report(events, summary, watch.messages, out)


def report(events, summary, messages, out):
    kinds = {}
    for topic, _p, _r in messages:
        k = topic.rsplit("/", 1)[-1]
        kinds[k] = kinds.get(k, 0) + 1
    alarm = next((e for e in events if e.get("event") == "alarm" and e.get("state") == "on"), None)
    closed = next((e for e in events if e.get("event") == "valve" and e.get("state") == "closed"), None)
    out.write("\nsummary\n")
    out.write("  first alarm      %s\n" % (describe(alarm) if alarm else "none"))
    out.write("  valve closed     %s\n" % (describe(closed) if closed else "no"))
    out.write("  valve at the end %s (cause %s), link %s\n" % (summary["valve"], summary["cause"], summary["link"]))
    out.write("  radio            %s\n" % summary.get("radio"))
    out.write("  broker received  %d messages: %s\n" % (len(messages), ", ".join(
        "%s %d" % kv for kv in sorted(kinds.items()))))
    out.write("  outbox left      %s (0 = every event delivered)\n" % summary.get("outbox_left"))
    out.write("  active identity  %s\n" % ", ".join(
        "%s %s" % (d, "registered" if r else "not registered")
        for d, r in sorted((summary.get("registered") or {}).items())))
    return 0
