"""The SNTP exchange (RFC 4330) of gasguard.reporter.WallTime, parked: WallTime.poll()
imports it when a request is due and releases it when the exchange is over (a few ms to
3 s, once an hour; never loaded without an ntp_server). Non-blocking: one UDP request to a
numeric server address, the reply read without waiting on later polls."""

import struct


def step(w, now):
    """Send the request, or read the reply, for WallTime w. True when the exchange is over
    (time set, or failed: retried later)."""
    c = w.clock
    s = w._sock
    if s is None:
        m = w.sock_mod
        try:
            s = w._sock = m.socket(m.AF_INET, m.SOCK_DGRAM)
            s.setblocking(False)
            r = w._rand
            w._nonce = struct.pack("!II", r(1 << 30), r(1 << 30)) if r else __import__(
                "os").urandom(8)
            req = bytearray(48)
            req[0] = 0x1B  # LI 0, version 3, mode 3 (client)
            req[40:48] = w._nonce  # our transmit timestamp: the reply must echo it
            s.sendto(req, m.getaddrinfo(w.server, w.port)[0][-1])
        except OSError:
            return _done(w, now, w._t[2], 1)
        w._sent = now
        return False
    try:
        data = s.recv(64)
    except OSError as e:
        if (e.args and e.args[0] in (11, 35, 115, 119)  # EAGAIN: nothing yet, no wait
                and c.ticks_diff(now, w._sent) < w._t[1]):
            return False
        return _done(w, now, w._t[2], 1)
    t = parse_reply(data, w._nonce)
    if t is None:
        return False  # not our answer: keep waiting until the timeout
    w.set(t + c.ticks_diff(now, w._sent) // 2000, now)
    return _done(w, now, w._t[0], 0)


def _done(w, now, wait, failed):
    w.failures += failed
    try:
        w._sock.close()
    except Exception:
        pass
    w._sock = w._nonce = None
    w._next = w.clock.ticks_add(now, wait)
    return True


def parse_reply(data, nonce):
    """Unix seconds from an SNTP reply, or None if it is not a valid answer to nonce."""
    if data is None or len(data) < 48:
        return None
    if data[0] & 7 != 4 or not 1 <= data[1] <= 15 or data[0] >> 6 == 3:
        return None  # not a server reply, kiss-o'-death, or unsynchronised
    if nonce is not None and bytes(data[24:32]) != bytes(nonce):
        return None
    t = struct.unpack_from("!I", data, 40)[0] - 2208988800  # NTP era 1900 -> unix
    return t if t >= 1672531200 else None
