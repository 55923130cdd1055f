"""Framed records with a CRC: the one on-flash format for every persistent structure.

Errors are short codes (device-side text): "torn", "magic", "crc", "trailing",
"missing", "version N" (the version found), "too long: N".

A record is  magic(1) | version(1) | length(2, LE) | payload | crc32(4, LE)
where the CRC covers magic..payload. seal() makes one, unseal() checks one and
scan() walks an append-only log of them, stopping at the first torn or corrupt
record (a power cut can leave a partial tail; everything before it is intact).
"""

import struct

from binascii import crc32

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


MAGIC = const(0xA5)
HEADER = const(4)
TRAILER = const(4)
MAX_PAYLOAD = const(0xFFFF)


class RecordError(ValueError):
    pass


# gasguard.identity's error (also raised by gasguard.id_admin): here, below both, so neither
# imports the other back (no import cycle), and it outlives their release (gasguard.lazy)
class IdentityError(ValueError):
    pass


def seal(payload, version=1):
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise RecordError("too long: %d" % n)
    head = struct.pack("<BBH", MAGIC, version, n)
    crc = crc32(payload, crc32(head)) & 0xFFFFFFFF
    return head + bytes(payload) + struct.pack("<I", crc)


def _check(buf, pos):
    """Return (version, payload, next_pos) for the record at pos, or raise RecordError."""
    if len(buf) - pos < HEADER + TRAILER:
        raise RecordError("torn")
    magic, version, n = struct.unpack_from("<BBH", buf, pos)
    if magic != MAGIC:
        raise RecordError("magic")
    end = pos + HEADER + n
    if end + TRAILER > len(buf):
        raise RecordError("torn")
    payload = bytes(buf[pos + HEADER : end])
    want = struct.unpack_from("<I", buf, end)[0]
    got = crc32(payload, crc32(bytes(buf[pos : pos + HEADER]))) & 0xFFFFFFFF
    if want != got:
        raise RecordError("crc")
    return version, payload, end + TRAILER


def unseal(buf, version=None):
    """Check a single sealed record and return its payload; raise RecordError if bad."""
    if buf is None:
        raise RecordError("missing")
    v, payload, end = _check(buf, 0)
    if end != len(buf):
        raise RecordError("trailing")
    if version is not None and v != version:
        raise RecordError("version %d" % v)
    return payload


def scan(buf):
    """Return (payloads, good_length): every intact record from the start, in order."""
    out = []
    pos = 0
    if buf is None:
        return out, 0
    while pos < len(buf):
        try:
            _v, payload, pos2 = _check(buf, pos)
        except RecordError:
            break
        out.append(payload)
        pos = pos2
    return out, pos
