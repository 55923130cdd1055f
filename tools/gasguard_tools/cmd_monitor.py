"""`gasguard monitor --broker HOST:PORT`: watch device messages as a technician would.

Subscribes (paho-mqtt, QoS 1) to <base>/# and prints one line per message, decoded:

    14:03:07 88.118.8/GDH.240915.00123F  EVENT   #1.4   ALARM ch4 level 1 ON        [up 6.5s]
    14:03:07 88.118.8/GDH.240915.00123F  VALVE   #1.5   relay on                    [up 6.5s]
    14:03:08 88.118.8/GDH.240915.00123F  STATE   online  outbox 0 ...                (retained)

Every message is validated against docs/schemas; an invalid one is flagged with
"!! INVALID" and the reasons. --json prints the decoded message as one JSON line with
"topic", "valid" and "errors" added. Duplicates (same dev, boot, seq: a QoS 1 re-send)
are marked "(dup)".
"""

import json
import sys
import time

from . import schemas
from .runtime import ToolError, UsageError


def add_arguments(p):
    p.add_argument("--broker", default="127.0.0.1:1883", help="HOST:PORT (default %(default)s)")
    p.add_argument("--base", default="gasguard", help="base topic (default %(default)s)")
    p.add_argument("--device", help="only this device id")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--strict", action="store_true",
                   help="flag fields the schemas do not name (our own tests; a platform must "
                        "accept additive fields, docs/protocol.md)")
    p.add_argument("--count", type=int, default=0, help="exit after N messages (0: run forever)")
    p.add_argument("--timeout", type=float, default=0,
                   help="exit after this many seconds (0: run forever)")


def parse_broker(s):
    host, sep, port = s.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError("--broker: expected HOST:PORT, got %r" % s)
    return host, int(port)


def _up(m):
    ms = m.get("up_ms")
    if not isinstance(ms, int):
        return ""
    if ms < 60000:
        return "up %.1fs" % (ms / 1000.0)
    if ms < 3600000:
        return "up %dm%02ds" % (ms // 60000, ms // 1000 % 60)
    return "up %dh%02dm" % (ms // 3600000, ms // 60000 % 60)


def _when(m):
    ts = m.get("ts")
    if isinstance(ts, int):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + "Z"
    return "(no clock)"


def describe(kind, m):
    """A short human line for one decoded message."""
    if not isinstance(m, dict):
        return repr(m)
    if kind in ("event", "valve"):
        d = m.get("data") or {}
        ev = m.get("event", "?")
        if ev == "alarm":
            text = "ALARM %s level %s %s" % (d.get("gas"), d.get("level"), str(d.get("state")).upper())
        elif ev == "fault":
            text = "FAULT %s %s" % (d.get("code"), str(d.get("state")).upper())
        else:
            rest = " ".join("%s=%s" % (k, d[k]) for k in sorted(d) if k not in ("state", "t"))
            text = ("%s %s %s" % (ev, d.get("state", ""), rest)).strip()
        return text
    if kind == "telemetry":
        d = m.get("data") or {}
        parts = []
        for k in sorted(d):
            v = d[k]
            if k.endswith("_ppm_x10") and isinstance(v, int):
                parts.append("%s %.1f ppm" % (k[: -len("_ppm_x10")], v / 10.0))
            else:
                parts.append("%s %s" % (k, v))
        if m.get("dropped"):
            parts.append("(%d dropped)" % m["dropped"])
        return ", ".join(parts) or "(empty)"
    if kind == "state":
        c = m.get("counters") or {}
        s = "online" if m.get("online") else "OFFLINE (%s)" % m.get("reason")
        extra = ["outbox %s" % c.get("outbox", "?")]
        for k in ("lost_safety", "dropped_events", "store_errors", "telemetry_dropped"):
            if c.get(k):
                extra.append("%s %d" % (k, c[k]))
        st = m.get("status") or {}
        if st:
            extra.append("status " + json.dumps(st, sort_keys=True))
        return "%s  %s" % (s, ", ".join(extra))
    if kind == "command_result":
        if m.get("ok"):
            return "command %s (%s) accepted" % (m.get("cmd"), m.get("id"))
        return "command %s (%s) REJECTED: %s %s" % (m.get("cmd"), m.get("id"), m.get("reason"),
                                                   m.get("detail", ""))
    if kind == "command":
        return "command %s id=%s ctr=%s args=%s" % (m.get("cmd"), m.get("id"), m.get("ctr"),
                                                    json.dumps(m.get("args", {})))
    if kind in ("identity", "identity_down"):
        return "identity %s %s" % (m.get("t"), " ".join(
            "%s=%s" % (k, m[k]) for k in sorted(m) if k not in ("t", "v", "id", "mac")))
    return json.dumps(m, sort_keys=True)


class Printer:
    def __init__(self, base, device=None, as_json=False, out=None, strict=False):
        self.base = base
        self.strict = strict
        self.device = device
        self.as_json = as_json
        self.out = out or sys.stdout
        self.seen = set()
        self.count = 0
        self.invalid = 0

    def handle(self, topic, payload, retain=False):
        kind, dev, msg, errs = schemas.check_topic(topic, payload, self.base, self.strict)
        if self.device and dev != self.device:
            return
        self.count += 1
        if errs:
            self.invalid += 1
        dup = False
        if isinstance(msg, dict) and "boot" in msg and "seq" in msg and kind != "state":
            key = (dev, msg["boot"], msg["seq"])
            dup = key in self.seen
            self.seen.add(key)
        if self.as_json:
            d = dict(msg) if isinstance(msg, dict) else {"raw": payload.decode("utf-8", "replace")}
            d["topic"] = topic
            d["valid"] = not errs
            d["retained"] = bool(retain)
            d["duplicate"] = dup
            if errs:
                d["errors"] = errs
            self.out.write(json.dumps(d, sort_keys=True) + "\n")
        else:
            seqs = "#%s.%s" % (msg.get("boot"), msg.get("seq")) if isinstance(msg, dict) and "boot" in msg else ""
            line = "%s %-28s %-8s %-7s %s" % (
                time.strftime("%H:%M:%S"), dev or topic, (kind or "?").upper(), seqs,
                describe(kind, msg) if msg is not None else payload[:80])
            tail = []
            if isinstance(msg, dict) and kind not in ("command", "identity", "identity_down"):
                tail.append(_up(msg))
                tail.append(_when(msg))
                if msg.get("q"):
                    tail.append("q=" + ",".join(msg["q"]))
            if retain:
                tail.append("retained")
            if dup:
                tail.append("dup")
            tail = "; ".join(t for t in tail if t)
            self.out.write(line + ("  [" + tail + "]" if tail else "") + "\n")
            if errs:
                self.out.write("    !! INVALID: %s\n" % "; ".join(errs))
        self.out.flush()


def run(args):
    import paho.mqtt.client as mqtt

    host, port = parse_broker(args.broker)
    pr = Printer(args.base, args.device, args.json, strict=args.strict)
    done = {"stop": False}

    def on_connect(client, userdata, flags, rc, props=None):
        client.subscribe(args.base + "/#", qos=1)

    def on_message(client, userdata, m):
        pr.handle(m.topic, bytes(m.payload), m.retain)
        if args.count and pr.count >= args.count:
            done["stop"] = True

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_connect = on_connect
    c.on_message = on_message
    try:
        c.connect(host, port, keepalive=30)
    except OSError as e:
        raise ToolError("cannot connect to %s:%d: %s" % (host, port, e))
    c.loop_start()
    end = time.monotonic() + args.timeout if args.timeout else None
    try:
        while not done["stop"] and (end is None or time.monotonic() < end):
            time.sleep(0.05)
    finally:
        c.loop_stop()
        c.disconnect()
    return 1 if pr.invalid else 0
