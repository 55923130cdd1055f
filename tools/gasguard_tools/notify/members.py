"""Several instances (--share GROUP): which instance holds which MQTT session of the group.

Why: the broker hands each message of `$share/GROUP/<base>/#` to one session of the group.
A clean session dies with its instance, and mosquitto 2.0 drops a QoS 1 message that was
in flight to it (it does not pass it to another member). So every member session here is
**persistent** (clean_session=False) under a stable client id `<prefix>-<slot>`: what the
broker had queued or in flight for a member that died stays in its session. And a session
is never left without a reader: the broker keeps routing a share of the traffic to a
persistent session whose client is gone, so another instance **takes it over** (connects
with the same client id) once the owner stops renewing its lease, and the broker re-sends
the unacknowledged messages (DUP) and the queued ones to the new holder. The database's
(dev, boot, seq) record makes the re-sent ones count once.

Table `members` (one row per slot of the group):

    slot         0, 1, 2...: client id <prefix>-<slot>
    owner        the instance holding it now
    kind         own (the instance's own slot) | adopt (held for an instance that went silent)
    lease_until  the owner renews it every takeover_s / 5; once it is past, anyone may adopt

A starting instance takes the lowest slot that is free (lease past) or only adopted, else a
new one; its CONNECT takes the session from an adopter, which then lets it go. An instance
stopping normally sets its leases to 0, so a survivor adopts at once. Two instances never
fight over a session: a holder that finds the slot is no longer its own in the database
stops reconnecting it.
"""

import time


class Members:
    def __init__(self, store, group, owner, takeover_s=5.0):
        self.store = store
        self.group = group
        self.owner = owner
        self.takeover_s = float(takeover_s)

    def claim(self, now=None):
        """Take a slot as this instance's own: the lowest free or adopted one, else a new one."""
        for _ in range(50):
            now = time.time() if now is None else now
            with self.store.tx() as t:
                row = t.one("SELECT slot FROM members WHERE grp=? AND (lease_until<? OR "
                            "(kind='adopt' AND owner<>?)) ORDER BY slot LIMIT 1",
                            (self.group, now, self.owner))
                if row is not None:
                    won = t.q("UPDATE members SET owner=?, kind='own', lease_until=? WHERE grp=? "
                              "AND slot=? AND (lease_until<? OR kind='adopt')",
                              (self.owner, now + self.takeover_s, self.group, row[0],
                               now)).rowcount
                    if won:
                        return row[0]
                    continue
                top = t.one("SELECT MAX(slot) FROM members WHERE grp=?", (self.group,))[0]
                slot = 0 if top is None else top + 1
                won = t.q("INSERT INTO members (grp, slot, owner, kind, lease_until) VALUES "
                          "(?, ?, ?, 'own', ?) ON CONFLICT DO NOTHING",
                          (self.group, slot, self.owner, now + self.takeover_s)).rowcount
                if won:
                    return slot
            now = None
        raise RuntimeError("could not claim a member slot in group %s" % self.group)

    def renew(self, now=None):
        """Renew every lease this instance holds; returns {slot: kind} it still holds."""
        now = time.time() if now is None else now
        with self.store.tx() as t:
            t.q("UPDATE members SET lease_until=? WHERE grp=? AND owner=?",
                (now + self.takeover_s, self.group, self.owner))
            return dict(t.all("SELECT slot, kind FROM members WHERE grp=? AND owner=?",
                              (self.group, self.owner)))

    def adopt_silent(self, now=None):
        """Take over every slot whose owner stopped renewing; returns the slots taken."""
        now = time.time() if now is None else now
        taken = []
        with self.store.tx() as t:
            rows = t.all("SELECT slot, owner FROM members WHERE grp=? AND lease_until<? ORDER BY "
                         "slot", (self.group, now))
        for slot, was in rows:
            with self.store.tx() as t:
                if t.q("UPDATE members SET owner=?, kind='adopt', lease_until=? WHERE grp=? AND "
                       "slot=? AND lease_until<?", (self.owner, now + self.takeover_s,
                                                     self.group, slot, now)).rowcount:
                    taken.append((slot, was))
        return taken

    def holds(self, slot):
        with self.store.tx() as t:
            row = t.one("SELECT owner FROM members WHERE grp=? AND slot=?", (self.group, slot))
        return row is not None and row[0] == self.owner

    def release(self):
        """Stopping: let survivors adopt this instance's sessions at once."""
        with self.store.tx() as t:
            t.q("UPDATE members SET lease_until=0 WHERE grp=? AND owner=?",
                (self.group, self.owner))


def listing(store):
    with store.tx() as t:
        return [dict(zip(("group", "slot", "owner", "kind", "lease_until"), r)) for r in t.all(
            "SELECT grp, slot, owner, kind, lease_until FROM members ORDER BY grp, slot")]
