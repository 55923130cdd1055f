"""Rate limit per endpoint that never holds back the first notification of an alarm.

At most `max` notifications reach one endpoint (a phone number, a mailbox, a robot URL) in
any `per_s` window. A notification that is the first one its recipient gets about an alarm
(or about any event) always goes at once — it still counts against the window, so the
reminders and follow-ups after it wait. A held notification is delayed, never dropped.
"""


def hold_until(first, sent_times, now, max_n, per_s):
    """None to send now, else the time at which the window has room again.

    sent_times: the send times of this endpoint's notifications in (now - per_s, now]."""
    if first:
        return None
    recent = sorted(t for t in sent_times if t > now - per_s)
    if len(recent) < max_n:
        return None
    # room again when enough of the recent ones have left the window (at least 1 ms on, so
    # float rounding at the window edge can never make a worker retry at the same instant)
    return max(recent[len(recent) - max_n] + per_s, now + 0.001)
