"""The platform's side of the active identifier (docs/identity.md): acknowledging a
registration, sending a command, opening a device's uplink. Used by the host tools, the
platform simulator and the tests; no device imports it, so no deploy set carries it."""

from gasguard.active_id import direction_keys, open_msg, seal


def platform_ack(key, reg_payload, ts, status="registered"):
    """What the platform sends back for a registration it accepts (wire bytes)."""
    up, down = direction_keys(key)
    reg = open_msg(up, reg_payload)
    return seal(down, {"t": "reg_ack", "v": 1, "id": reg["id"], "nonce": reg["nonce"],
                       "status": status, "ts": ts})


def platform_cmd(key, device_id, seq, op, args=None):
    return seal(direction_keys(key)[1], {"t": "cmd", "v": 1, "id": device_id, "seq": seq,
                                         "op": op, "args": {} if args is None else args})


def platform_open(key, payload):
    """Authenticate a device uplink on the platform side; returns the body."""
    return open_msg(direction_keys(key)[0], payload)
