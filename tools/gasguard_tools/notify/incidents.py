"""Alarm incidents: opened by an alarm, escalated until acknowledged, closed when it clears.

One incident per (device, gas) alarm episode, in the `incidents` table:

    open     -> people are told, step by step (escalation.py), until
    acked    -> someone acknowledged (link, CLI); no more reminders; a higher level, a level
                coming on again after it went off, or an alarm after a reboot reopens it
    cleared  -> the device reported the alarm off (every level); everyone told gets "cleared"

Everything here runs inside a transaction the caller holds (ingest, escalation tick, ack),
so an incident and the notifications it queues are committed together.
"""

import json
import secrets

from . import escalation
from .queue import enqueue
from .store import dumps


def new_id():
    return secrets.token_hex(6)


def notified(t, incident):
    """Everyone queued a notification about this incident so far, in order."""
    rows = t.all("SELECT recipient, MIN(id) FROM deliveries WHERE incident=? GROUP BY recipient "
                 "ORDER BY MIN(id)", (incident,))
    return [r[0] for r in rows]


def current(t, dev, gas):
    return t.one("SELECT id, levels, level, state, step FROM incidents WHERE dev=? AND gas=? AND "
                 "state<>'cleared' ORDER BY opened DESC LIMIT 1", (dev, gas))


def alarm_on(t, directory, site, origin, ctx, now):
    """An alarm-on event: open an incident or raise the level of the open one."""
    dev, gas, level = ctx["dev"], ctx["gas"], ctx["level"]
    row = current(t, dev, gas)
    tiers = site["tiers"]
    if row is None:
        iid = new_id()
        ctx["incident"] = iid
        t.q("INSERT INTO incidents (id, dev, gas, site, levels, level, state, step, next_at, "
            "opened, event) VALUES (?, ?, ?, ?, ?, ?, 'open', 0, ?, ?, ?)",
            (iid, dev, gas, site["name"], dumps([level]), level,
             now + escalation.delay_after(tiers, 0, site["escalate_after_s"], site["repeat_s"]),
             now, dumps(ctx)))
        return enqueue(t, directory, origin, iid, dev, "alarm_on",
                       escalation.recipients_at(tiers, 0), ctx, now)
    iid, levels, top, state, _step = row
    active = set(json.loads(levels))
    ctx["incident"] = iid
    opened_boot = (json.loads(t.one("SELECT event FROM incidents WHERE id=?", (iid,))[0])
                   .get("event") or {}).get("boot")
    rises = level > top
    # after an acknowledgement, an alarm that comes on again (a level that had gone off, or
    # the device alarming anew after a reboot) is news: the one who acknowledged may be gone
    again = state == "acked" and (level not in active or ctx["event"].get("boot") != opened_boot)
    levels = sorted(active | {level})
    if not (rises or again):
        # the same alarm again while people are being told: the escalation goes on as it is
        t.q("UPDATE incidents SET levels=? WHERE id=?", (dumps(levels), iid))
        return 0
    t.q("UPDATE incidents SET levels=?, level=?, state='open', event=?, next_at=CASE WHEN "
        "state='open' THEN next_at ELSE ? END WHERE id=?",
        (dumps(levels), max(level, top), dumps(ctx), now + site["escalate_after_s"], iid))
    # everyone told so far hears it first-hand, never held
    told = notified(t, iid) or [r for r in tiers[0]]
    return enqueue(t, directory, origin, iid, dev, "alarm_on", [(r, True) for r in told], ctx, now)


def alarm_off(t, directory, site, origin, ctx, now):
    """An alarm-off event: levels at and above it are over; the last one clears the incident."""
    dev, gas, level = ctx["dev"], ctx["gas"], ctx["level"]
    row = current(t, dev, gas)
    if row is None:  # we never saw it start (e.g. the service was installed mid-alarm)
        return enqueue(t, directory, origin, None, dev, "alarm_off",
                       [(r, False) for r in site["tiers"][0]], ctx, now)
    iid, levels, _top, _state, _step = row
    left = [lv for lv in json.loads(levels) if lv < level]
    ctx["incident"] = iid
    if left:
        t.q("UPDATE incidents SET levels=? WHERE id=?", (dumps(left), iid))
        return 0
    t.q("UPDATE incidents SET levels='[]', state='cleared', closed=? WHERE id=?", (now, iid))
    return enqueue(t, directory, origin, iid, dev, "alarm_off",
                   [(r, False) for r in notified(t, iid)], ctx, now)


def open_at_site(t, site_name):
    """Recipients told about incidents still open or acknowledged at this site."""
    rows = t.all("SELECT DISTINCT d.recipient FROM deliveries d JOIN incidents i ON "
                 "d.incident=i.id WHERE i.site=? AND i.state<>'cleared'", (site_name,))
    return [r[0] for r in rows]


def escalate_due(store, directory, now, limit=200):
    """Run every escalation step that is due; returns the number of notifications queued."""
    with store.tx() as t:
        due = t.all("SELECT id, step, site, event FROM incidents WHERE state='open' AND "
                    "next_at<=? ORDER BY next_at LIMIT ?", (now, limit))
    queued = 0
    for iid, step, site_name, event in due:
        site = directory.site(site_name) or directory.site_for(json.loads(event)["dev"])
        if site is None:
            continue
        tiers = site["tiers"]
        nxt = step + 1
        with store.tx() as t:
            won = t.q("UPDATE incidents SET step=?, next_at=? WHERE id=? AND step=? AND "
                      "state='open'", (nxt, now + escalation.delay_after(
                          tiers, nxt, site["escalate_after_s"], site["repeat_s"]),
                                       iid, step)).rowcount
            if not won:  # another instance ran this step
                continue
            ctx = json.loads(event)
            ctx["step"] = nxt
            ctx.update(device_context(t, ctx["dev"], ctx.get("gas"), now, ctx.get("event")))
            queued += enqueue(t, directory, "inc:%s:%d" % (iid, nxt), iid, ctx["dev"], "alarm_on",
                              escalation.recipients_at(tiers, nxt), ctx, now)
    return queued


def acknowledge(store, directory, iid, by, now):
    """Acknowledge an incident. Returns (result, incident row dict or None).

    result: "acked", "already_acked", "cleared" or "unknown"."""
    with store.tx() as t:
        row = t.one("SELECT id, dev, gas, state, acked_by, event FROM incidents WHERE id=?", (iid,))
        if row is None:
            return "unknown", None
        info = {"id": row[0], "dev": row[1], "gas": row[2], "state": row[3], "acked_by": row[4]}
        if row[3] == "cleared":
            return "cleared", info
        if row[3] == "acked":
            return "already_acked", info
        t.q("UPDATE incidents SET state='acked', acked_by=? WHERE id=? AND state='open'", (by, iid))
        ctx = json.loads(row[5])
        ctx["acked_by"] = by
        ctx["kind"] = "acked"
        others = [(r, False) for r in notified(t, iid) if r != by]
        enqueue(t, directory, "ack:%s" % iid, iid, row[1], "acked", others, ctx, now)
        info["state"] = "acked"
        info["acked_by"] = by
        return "acked", info


def device_context(t, dev, gas, now, msg=None):
    """What the texts say about the device now: latest reading (and how long before the
    event the device took it) and what the device did."""
    row = t.one("SELECT relay, valve, interlock, ch4_ppm_x10, co_ppm_x10, reading_at, "
                "reading_boot, reading_up_ms FROM devices WHERE dev=?", (dev,))
    if row is None:
        return {"status": {}, "reading": None}
    status = {k: v for k, v in zip(("relay", "valve", "interlock"), row[:3]) if v is not None}
    reading = None
    if row[5] is not None:
        reading = {"ch4_ppm_x10": row[3], "co_ppm_x10": row[4], "age_s": int(now - row[5])}
        msg = msg or {}
        if row[6] is not None and row[6] == msg.get("boot") and row[7] is not None and \
                isinstance(msg.get("up_ms"), int):
            # device time is exact where our clock only knows when the messages arrived
            reading["before_event_s"] = (msg["up_ms"] - row[7]) // 1000
    return {"status": status, "reading": reading}
