"""X25519 (RFC 7748): the key agreement of a button pairing (docs/security.md#pairing).

Parked: only gasguard.link_pair imports it, while a pairing window is open, and it is
released with link_pair afterwards (docs/heap-budget.md). Pure Python on the port's long
ints (MicroPython's mpz; 3-argument pow for the inversion): the Montgomery ladder of RFC
7748 section 5, checked against its test vectors on CPython, the pip MicroPython and the
ESP32-like interpreter (host_tests/portable/test_interlock_x25519.py).

Not constant-time (Python ints are not): each private scalar is used for one pairing
window only and never stored, so a listener gets at most one timing of each.
"""

_P = 2**255 - 19
_A24 = 121665
BASE = b"\x09" + bytes(31)  # u = 9


def scalarmult(k, u):
    """X25519(k, u): the 32-byte u-coordinate of k * u (k, u: 32 bytes each)."""
    p = _P
    s = bytearray(k)
    s[0] &= 248
    s[31] = (s[31] & 127) | 64
    n = int.from_bytes(s, "little")
    x1 = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3 = 1, 0, x1, 1
    swap = 0
    for t in range(254, -1, -1):
        bit = (n >> t) & 1
        if swap ^ bit:
            x2, x3 = x3, x2
            z2, z3 = z3, z2
        swap = bit
        a = x2 + z2
        aa = a * a % p
        b = x2 - z2
        bb = b * b % p
        e = aa - bb
        da = (x3 - z3) * a % p
        cb = (x3 + z3) * b % p
        x3 = (da + cb) ** 2 % p
        z3 = x1 * (da - cb) ** 2 % p
        x2 = aa * bb % p
        z2 = e * (aa + _A24 * e) % p
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, p - 2, p) % p).to_bytes(32, "little")


def public(k):
    """The public key of private key k."""
    return scalarmult(k, BASE)
