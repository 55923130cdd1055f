"""What a device message means for people: the notification kind, and the device state.

    classify(topic_kind, msg, device) -> (notice kind or None, {device field: new value})

topic_kind is the last topic level (event, valve, state); msg the decoded envelope; device
the last known state row of this device (dict, may be empty). Relay, interlock-close and
valve-closing messages change the device state the texts describe but notify nobody on
their own (the alarm and the closed valve do).
"""

# lower is sooner: the worker sends the most urgent queued notifications first
PRIORITY = {"alarm_on": 0, "interlock_failed": 0, "valve_closed": 1, "events_lost": 1,
            "offline": 2,
            "alarm_off": 2, "acked": 2, "valve_open": 3, "online": 3, "end_of_life": 3,
            "fault_on": 3, "fault_off": 4}
# kinds that open an incident that escalates until someone acknowledges it
ESCALATING = ("alarm_on",)


def classify(topic_kind, msg, device):
    data = msg.get("data") if isinstance(msg.get("data"), dict) else {}
    ev = msg.get("event")
    state = data.get("state")
    if topic_kind == "event":
        if ev == "alarm" and state in ("on", "off"):
            return "alarm_" + state, {}
        if ev == "fault" and state in ("on", "off"):
            if state == "on" and data.get("code") == "end_of_life":
                return "end_of_life", {}
            return "fault_" + state, {}
        return None, {}
    if topic_kind == "valve":
        if ev == "relay" and state in ("on", "off"):
            return None, {"relay": state}
        if ev == "interlock":
            if state == "failed":
                return "interlock_failed", {"interlock": "failed"}
            return None, {"interlock": state}
        if ev == "valve" and isinstance(state, str):
            if state == "closed":
                return "valve_closed", {"valve": "closed"}
            if state == "open":
                return "valve_open", {"valve": "open"}
            return None, {"valve": state}
        return None, {}
    if topic_kind == "state":
        online = msg.get("online")
        if online is False:
            if msg.get("reason") == "connection_lost":
                return "offline", {"online": 0, "offline_notified": 1}
            return None, {"online": 0}
        if online is True:
            if device.get("offline_notified"):
                return "online", {"online": 1, "offline_notified": 0}
            return None, {"online": 1}
    return None, {}


def _count(section, msg):
    d = msg.get(section)
    v = d.get("lost_safety") if isinstance(d, dict) else None
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def safety_lost(msg, device):
    """How many safety events the device says it dropped since we last looked, or 0.

    Two counts say it (docs/protocol.md#outbox): counters.lost_safety (since boot) and
    losses.lost_safety (kept on flash until the platform acknowledges it; absent when 0).
    The larger one is taken, so a reboot during an outage — counters back at 0, losses not —
    hides nothing. When the value went down the device restarted or was acknowledged, so
    the new value is all new."""
    counts = [v for v in (_count("counters", msg), _count("losses", msg)) if v is not None]
    if not counts:
        return 0, None
    value = max(counts)
    last = device.get("lost_safety") or 0
    return (value - last if value >= last else value), value


def unbuilt_lost(msg, device):
    """How many events the device could not even build since we last looked (its heap was
    full: counters.events_lost, docs/protocol.md; the alarm, relay and valve went on, the
    record of it is lost), and the count now (None: not reported). Counted since boot: a
    value lower than the last one means the device restarted, so it is all new."""
    d = msg.get("counters")
    v = d.get("events_lost") if isinstance(d, dict) else None
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        return 0, None
    last = device.get("events_lost") or 0
    return (v - last if v >= last else v), v


def reading(topic_kind, msg):
    """The gas readings of a telemetry message: {"ch4_ppm_x10": n, "co_ppm_x10": n} (ints only)."""
    if topic_kind != "telemetry" or not isinstance(msg.get("data"), dict):
        return None
    d = msg["data"]
    out = {}
    for k in ("ch4_ppm_x10", "co_ppm_x10"):
        v = d.get(k)
        if isinstance(v, int) and not isinstance(v, bool):
            out[k] = v
    return out or None
