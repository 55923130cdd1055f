"""The identity of a device message and the record that makes it count once.

Every event, valve and state message carries (dev, boot, seq), unique for everything a
device ever sends (docs/protocol.md#the-envelope). The notify service inserts that key into
`events` in the same transaction that queues the notifications: a second arrival — QoS 1
redelivery with DUP, the device re-sending its outbox after a reboot, the broker's retained
state after our re-subscription, a second instance of the service — finds the key and does
nothing. The MQTT PUBACK is sent only after that transaction commits, so a crash before the
commit makes the broker deliver the message again (at least once in, exactly once queued).
"""

DEDUP_KINDS = ("event", "valve", "state")


def event_key(topic_dev, msg):
    """(dev, boot, seq) of an enveloped message, or None when it lacks a usable identity."""
    if not isinstance(msg, dict):
        return None
    boot, seq, dev = msg.get("boot"), msg.get("seq"), msg.get("dev")
    if dev != topic_dev or msg.get("v") != 1:
        return None
    for n in (boot, seq):
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 2147483647:
            return None
    return dev, boot, seq


def record_once(t, key, kind, now):
    """Insert key into the dedup record; True the first time, False for a duplicate."""
    cur = t.q("INSERT INTO events (dev, boot, seq, kind, received) VALUES (?, ?, ?, ?, ?) "
              "ON CONFLICT DO NOTHING", (key[0], key[1], key[2], kind, now))
    return cur.rowcount == 1


def prune(store, older_than):
    """Forget identities received before older_than (devices re-send for minutes, not weeks)."""
    with store.tx() as t:
        return t.q("DELETE FROM events WHERE received < ?", (older_than,)).rowcount
