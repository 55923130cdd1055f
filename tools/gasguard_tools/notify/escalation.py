"""Who is told at each step of an alarm nobody has acknowledged, and when the next step is.

Sites list their contacts in tiers: [["zhang"], ["li", "ops-group"], ["building-manager"]].

    step 0            the alarm: tier 0 is told at once
    step k (k < n)    nobody acknowledged for escalate_after_s: tier k is told (its first
                      notification of this alarm); earlier tiers are not repeated yet
    step k (k >= n)   still nobody: every tier is reminded, every repeat_s

until the incident is acknowledged (signed link, `gasguard notify ack`) or the alarm clears.
These are pure functions; incidents.py applies them to the database.
"""


def recipients_at(tiers, step):
    """[(recipient, first)] told at this step; first=True for a recipient's first notification."""
    n = len(tiers)
    if step < n:
        earlier = {r for t in tiers[:step] for r in t}
        return [(r, r not in earlier) for r in _unique(tiers[step])]
    return [(r, False) for r in _unique([r for t in tiers for r in t])]


def delay_after(tiers, step, escalate_after_s, repeat_s):
    """Seconds from step `step` to the next one."""
    return escalate_after_s if step + 1 < len(tiers) else repeat_s


def _unique(names):
    seen, out = set(), []
    for r in names:
        if r not in seen:
            seen.add(r)
            out.append(r)
    return out
