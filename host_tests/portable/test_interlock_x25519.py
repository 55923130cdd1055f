"""X25519 of the button pairing (gasguard.x25519) against the test vectors of RFC 7748
(sections 5.2 and 6.1), on CPython, the pip MicroPython and the ESP32-like interpreter
(from .mpy at the ESP32's heap): the port's long ints and 3-argument pow give the same
bytes as CPython's."""

import sys

from gasguard import x25519

H = bytes.fromhex

# RFC 7748 section 5.2: (scalar, u, output)
SINGLE = [
    ("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
     "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
     "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"),
    ("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
     "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
     "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"),
]
# section 5.2, iterated: k = u = 9, then (k, u) = (X25519(k, u), k)
ITERATED = {1: "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079",
            1000: "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"}
# section 6.1
ALICE = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
ALICE_PUB = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
BOB = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
BOB_PUB = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
SHARED = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"


def test_rfc7748_single_vectors():
    for k, u, want in SINGLE:
        assert x25519.scalarmult(H(k), H(u)) == H(want), want


def test_rfc7748_iterated_vector():
    # 1000 iterations take ~8 s on the MicroPythons: CPython runs them, the ports the first
    n = 1000 if sys.implementation.name == "cpython" else 1
    k = u = x25519.BASE
    for i in range(1, n + 1):
        k, u = x25519.scalarmult(k, u), k
        if i in ITERATED:
            assert k == H(ITERATED[i]), i


def test_rfc7748_diffie_hellman():
    assert x25519.public(H(ALICE)) == H(ALICE_PUB)
    assert x25519.public(H(BOB)) == H(BOB_PUB)
    assert x25519.scalarmult(H(ALICE), H(BOB_PUB)) == H(SHARED)
    assert x25519.scalarmult(H(BOB), H(ALICE_PUB)) == H(SHARED)


def test_the_top_bit_of_u_is_ignored():
    # RFC 7748 section 5: implementations MUST mask the most significant bit of u
    u = bytearray(H(BOB_PUB))
    u[31] |= 0x80
    assert x25519.scalarmult(H(ALICE), bytes(u)) == H(SHARED)


def test_a_low_order_point_gives_all_zero():
    # u = 0 and u = 1 are of small order: the shared value is all zero (the pairing
    # refuses it, gasguard.interlock_frame.pair_secret)
    for u in (bytes(32), b"\x01" + bytes(31)):
        assert x25519.scalarmult(H(ALICE), u) == bytes(32)
