"""HMAC-SHA256 (RFC 2104) on top of hashlib, because MicroPython has no hmac module.

micropython-lib's hmac is not installable from the registries this project can reach
(docs/dependencies.md), and the device needs only this one construction. Tested against
CPython's hmac on both interpreters (host_tests/portable/test_foundation.py).

pads(key) once per key, then mac(pads, msg) per message: what the interlock link does, so
a frame's tag costs two hash objects and two digests, nothing else (no per-frame pads).
"""

import hashlib

_BLOCK = 64


def pads(key):
    """(ipad, opad) of a key: the state mac() starts from."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    ipad = bytearray(_BLOCK)
    opad = bytearray(_BLOCK)
    for i in range(len(key)):
        ipad[i] = key[i] ^ 0x36
        opad[i] = key[i] ^ 0x5C
    for i in range(len(key), _BLOCK):
        ipad[i] = 0x36
        opad[i] = 0x5C
    return bytes(ipad), bytes(opad)


def mac(p, msg):
    """The 32-byte HMAC-SHA256 of msg (bytes-like) under the key whose pads() are p."""
    inner = hashlib.sha256(p[0])
    inner.update(msg)
    outer = hashlib.sha256(p[1])
    outer.update(inner.digest())
    return outer.digest()


def digest(key, msg):
    """Return the 32-byte HMAC-SHA256 of msg under key (both bytes-like)."""
    return mac(pads(key), msg)


def equal(a, b):
    """Compare two tags in time independent of where they differ."""
    if len(a) != len(b):
        return False
    acc = 0
    for i in range(len(a)):
        acc |= a[i] ^ b[i]
    return acc == 0
