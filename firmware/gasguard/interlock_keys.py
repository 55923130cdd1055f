"""Interlock link construction, configuration and key provisioning: parked code
(docs/heap-budget.md).

Loaded when a link is built (setup(): the config check, the stored pairing, every
attribute of both ends) and at the end of a pairing (provision); released again by
gasguard.link_core (and listed in lazy.BOOT_ONLY), so none of it stays in the heap while the
device runs. A CFG check loads only gasguard.link_cfg. The resident side (the frame counter,
the close path) is gasguard.link_core.

Store names: "ilk_pair" (role, peer MAC, key) and "ilk_ctr" (key fingerprint and the
counter reservation), both framed by gasguard.record.
"""

import os
import struct

from gasguard import hmac256, record
from gasguard.link_cfg import LINK_DEFAULTS, link_config  # noqa: F401  (LINK_DEFAULTS: the host's)

def provision(store, role, key, peer_mac):
    """Factory provisioning (or the end of a button pairing): store the shared key.

    role: "D" (detector) or "V" (valve). Raises ValueError on a bad key or MAC.
    """
    if role not in ("D", "V"):
        raise ValueError("role must be 'D' or 'V'")
    if not isinstance(key, (bytes, bytearray)) or len(key) != 32:
        raise ValueError("key must be 32 bytes")
    if not isinstance(peer_mac, (bytes, bytearray)) or len(peer_mac) != 6:
        raise ValueError("peer MAC must be 6 bytes")
    store.write("ilk_pair", record.seal(role.encode() + bytes(peer_mac) + bytes(key), 1))


def load_pairing(store):
    """Return (role, peer_mac, key) from the store, or None when unpaired or corrupt."""
    try:
        p = record.unseal(store.read("ilk_pair"), 1)
    except (record.RecordError, OSError):
        return None
    if len(p) != 39:
        return None
    return chr(p[0]), bytes(p[1:7]), bytes(p[7:])


def _nop(ev):
    pass


def setup(l, radio, clock, store, cfg, emit, rand, reasons):
    """LinkCore.__init__ of either end (l.ROLE "D" or "V"), parked with the config check."""
    l.cfg = link_config(cfg)
    l.radio = radio
    l.clock = clock
    l.store = store
    l.emit = emit or _nop
    l.rand = rand or os.urandom
    l.rejected = {}
    for r in reasons:
        l.rejected[r] = 0
    l.sent = 0
    l.send_failures = 0
    l.accepted = 0
    l._reported_rejects = 0
    l._reject_report_at = clock.ticks_ms()
    l.pairing = False
    l._pair_until = 0
    l._cand = None  # the one pairing offer of a window
    l._spare = bytearray(l.SPARE)  # see LinkCore._mac
    if l.ROLE == "D":
        l._fc = bytearray(31)  # CLOSE: header, close_id, request, tag
        l._fh = bytearray(27)  # HEARTBEAT: header, flags, tag
        l.state = "idle"
        l._fault = None
        l.close_id = 0
        l.cause = None
        l.valve_state = "unknown"
        l.valve_cause = "none"
        l.attempts = 0
        l.last_latency_ms = None
        l._nonce = None
        l._pair_tx_at = 0
    else:
        l._fa = bytearray(32)  # ACK: header, close_id, state, cause, tag
        l._fs = bytearray(29)  # STATUS: header, state, cause, flags, tag
        l.done_close_id = 0
        l.closes_executed = 0
        l.acks_sent = 0
        l._pending = None  # (key, nonce_v) for the one detector answered (l._cand)
    l.key = None
    l.peer = None
    l.counter = None
    p = load_pairing(store)
    if p is not None and p[0] == l.ROLE:
        l._install(p[2], p[1])
    l.link = "down" if l.key is not None else "unpaired"
    now = clock.ticks_ms()
    l.last_fresh_ms = now
    l._hb_at = now  # first heartbeat on the first poll
    l._sync_at = now


def install(l, key, peer, counter):
    """LinkCore._install: use a shared key (pads once, a frame counter, fresh state).
    All or nothing: what needs memory or the flash is made first, so a MemoryError leaves
    the link as it was (a key without its counter made every later heartbeat raise)."""
    key = bytes(key)
    peer = bytes(peer)
    pads = hmac256.pads(key)
    c = counter(l.store, key, l.cfg["counter_block"])
    l.key = key
    l.peer = peer
    l._p = pads
    l.counter = c
    l.last_rx = 0  # highest peer counter accepted
    l.seen = 0  # highest authentic peer counter seen (what we echo)
    l.synced = False
    if l.ROLE == "V":
        l.done_close_id = 0  # close ids are per key


def counter_start(c, store, key, block):
    """FrameCounter.__init__: resume at the stored reservation R (every value below it may
    have been used before the reboot) and write R + block before the first frame."""
    c.store = store
    c.block = block
    c.fp = hmac256.digest(key, b"counter")[:4]
    c.writes = 0
    c.store_errors = 0
    start = 1
    try:
        p = record.unseal(store.read("ilk_ctr"), 1)
        if len(p) == 8 and p[:4] == c.fp:
            start = struct.unpack("<I", p[4:])[0]
    except (record.RecordError, OSError):
        pass
    if start < 1:
        start = 1
    c.next_value = start
    c.reserved = start
    c._reserve()
    c.floor = start  # the first counter of this boot
