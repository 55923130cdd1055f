"""One device message in, notifications queued: the ingest transaction.

    Ingestor(store, directory_fn, base, log).handle(topic, payload) -> outcome string

Outcomes: "queued" (notifications queued), "recorded" (new, nobody to tell), "duplicate",
"reading" (telemetry: latest gas reading kept), "ignored" (a kind we do not act on),
"invalid" (no usable identity or fields; logged and dropped).

Messages are checked against docs/schemas. A message that fails the schema but still has
what we act on (identity, event name, data/state) is acted on and logged: the protocol's
versioning rule lets devices add fields, and a missed alarm is worse than a lax check.
"""

import json
import time

from . import incidents
from .dedup import DEDUP_KINDS, event_key, record_once
from .events import classify, reading, safety_lost, unbuilt_lost
from .queue import enqueue
from .. import schemas

DEVICE_FIELDS = ("online", "offline_notified", "relay", "valve", "interlock", "lost_safety",
                 "events_lost")


def usable(kind, msg):
    if kind in ("event", "valve"):
        return isinstance(msg.get("event"), str) and isinstance(msg.get("data"), dict)
    if kind == "state":
        return isinstance(msg.get("online"), bool)
    return False


class Ingestor:
    def __init__(self, store, directory_fn, base="gasguard", log=None):
        self.store = store
        self.directory_fn = directory_fn
        self.base = base
        self.log = log or (lambda *a, **k: None)
        self.schema_warned = set()

    def handle(self, topic, payload, now=None):
        now = time.time() if now is None else now
        kind, dev, msg, errs = schemas.check_topic(topic, payload, self.base)
        if kind == "telemetry" and isinstance(msg, dict) and msg.get("dev") == dev:
            r = reading(kind, msg)
            if r:
                self._reading(dev, r, msg, now)
                return "reading"
            return "ignored"
        if kind not in DEDUP_KINDS:
            return "ignored"
        key = event_key(dev, msg)
        if key is None or not usable(kind, msg):
            self.log("invalid %s message on %s dropped: %s" % (kind, topic, "; ".join(errs) or
                                                               "no usable identity"))
            return "invalid"
        if errs and (dev, kind) not in self.schema_warned:
            self.schema_warned.add((dev, kind))
            self.log("note: %s from %s does not match the schema (%s); acting on it anyway"
                     % (kind, dev, "; ".join(errs)))
        directory = self.directory_fn()
        with self.store.tx() as t:
            if not record_once(t, key, kind, now):
                return "duplicate"
            device = self._device(t, dev, now)
            notice, updates = classify(kind, msg, device)
            lost = unbuilt = 0
            if kind == "state":
                lost, value = safety_lost(msg, device)
                if value is not None:
                    updates["lost_safety"] = value
                unbuilt, value = unbuilt_lost(msg, device)
                if value is not None:
                    updates["events_lost"] = value
            if updates:
                cols = [k for k in DEVICE_FIELDS if k in updates]
                t.q("UPDATE devices SET %s, updated=? WHERE dev=?" % ", ".join(
                    "%s=?" % c for c in cols), tuple(updates[c] for c in cols) + (now, dev))
            site = directory.site_for(dev)
            n = 0
            if (lost or unbuilt) and site is not None and "events_lost" in site["kinds"]:
                # alarms may have happened that never reached us: as urgent as an alarm
                ctx = self._context(t, "events_lost", dev, msg, site, now)
                ctx["lost"] = lost
                ctx["unbuilt"] = unbuilt  # events its full heap kept it from recording
                n += self._tell(t, directory, site, "lost:%s:%d:%d" % key, dev, "events_lost",
                                ctx, now, urgent=True)
            if notice is None or site is None or notice not in site["kinds"]:
                return "queued" if n else "recorded"
            ctx = self._context(t, notice, dev, msg, site, now)
            origin = "ev:%s:%d:%d" % key
            if notice == "alarm_on":
                n += incidents.alarm_on(t, directory, site, origin, ctx, now)
            elif notice == "alarm_off":
                n += incidents.alarm_off(t, directory, site, origin, ctx, now)
            else:
                # a valve that did not close is an alarm
                n += self._tell(t, directory, site, origin, dev, notice, ctx, now,
                                urgent=notice == "interlock_failed")
        return "queued" if n else "recorded"

    def _tell(self, t, directory, site, origin, dev, notice, ctx, now, urgent):
        """A one-off notice: tier 0 and everyone following an open alarm at the site."""
        told = list(site["tiers"][0])
        told += [r for r in incidents.open_at_site(t, site["name"]) if r not in told]
        return enqueue(t, directory, origin, None, dev, notice, [(r, urgent) for r in told],
                       ctx, now)

    def _device(self, t, dev, now):
        # the device's row, locked until the commit: instances sharing a database handle one
        # device's messages one at a time (else an alarm's level 1 and level 2, taken by two
        # instances at once, could each open an incident). SQLite: BEGIN IMMEDIATE already.
        t.q("INSERT INTO devices (dev, updated) VALUES (?, ?) ON CONFLICT (dev) DO NOTHING",
            (dev, now))
        row = t.one("SELECT %s FROM devices WHERE dev=? {FOR_UPDATE}" % ", ".join(DEVICE_FIELDS),
                    (dev,))
        return dict(zip(DEVICE_FIELDS, row))

    def _reading(self, dev, r, msg, now):
        up = msg.get("up_ms") if isinstance(msg.get("up_ms"), int) else None
        with self.store.tx() as t:
            t.q("INSERT INTO devices (dev, updated) VALUES (?, ?) ON CONFLICT (dev) DO NOTHING",
                (dev, now))
            t.q("UPDATE devices SET ch4_ppm_x10=?, co_ppm_x10=?, reading_at=?, reading_boot=?, "
                "reading_up_ms=?, updated=? WHERE dev=?",
                (r.get("ch4_ppm_x10"), r.get("co_ppm_x10"), now, msg.get("boot"), up, now, dev))

    def _context(self, t, notice, dev, msg, site, now):
        data = msg.get("data") if isinstance(msg.get("data"), dict) else {}
        ctx = {"kind": notice, "dev": dev, "site": site["name"], "address": site["address"],
               "emergency_phone": site["emergency_phone"], "event": msg}
        for k in ("gas", "level", "code", "cause"):
            if k in data:
                ctx[k] = data[k]
        if notice == "offline":
            ctx["reason"] = msg.get("reason")
        ctx.update(incidents.device_context(t, dev, ctx.get("gas"), now, msg))
        return json.loads(json.dumps(ctx))
