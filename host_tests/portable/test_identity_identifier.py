"""Identifier format, check character and validation (both interpreters)."""

from ptest import raises

from gasguard.identifier import (
    IdentifierError, check_char, check_prefix, factory_serial, is_valid, make, parse, validate,
)

GOOD = "88.118.8/GDH.240915.00123F"


def test_iso7064_mod37_36_standard_vector():
    assert check_char("A12425GABC1234002") == "M"


def test_check_char_skips_separators_and_refuses_others():
    assert check_char("88.118.8/GDH.240915.00123") == check_char("881188GDH24091500123")
    raises(IdentifierError, check_char, "88.118.8/gdh")
    raises(IdentifierError, check_char, "")
    raises(IdentifierError, check_char, "./-")
    raises(IdentifierError, check_char, None)


def test_documented_vectors():
    # docs/identity.md, "Test vectors"
    assert make("88.118.8", "GD", "H", "240915", 123) == GOOD
    assert make("88.118.8", "GV", "M", "240915", 77) == "88.118.8/GVM.240915.00077G"
    assert make("88.118.8", "detector", "L", "250101", 1) == "88.118.8/GDL.250101.00001C"
    assert make("88.1021.ABC12", "GV", "H", "240229", 99999) == "88.1021.ABC12/GVH.240229.99999E"
    for s in (GOOD, "88.118.8/GVM.240915.00077G", "88.118.8/GDL.250101.00001C",
              "88.1021.ABC12/GVH.240229.99999E"):
        validate(s)
        assert is_valid(s)


def test_parse_and_factory_serial():
    p = parse(GOOD)
    assert p == {"prefix": "88.118.8", "cat": "GD", "kind": "detector", "tier": "H",
                 "date": "240915", "serial": 123, "check": "F"}
    assert factory_serial(GOOD) == "GDH24091500123"


def _msg(s):
    return str(raises(IdentifierError, validate, s))


def test_errors_name_the_problem():
    assert "upper case" in _msg("88.118.8/gdH.240915.00123F")
    assert "255" in _msg("88.118.8/" + "A" * 300)
    assert "check character" in _msg("88.118.8/GDH.240915.00123G")
    assert "no '/'" in _msg("88.118.8.GDH.240915.00123F")
    assert "2 '/'" in _msg("88.118.8/GDH/240915.00123F")
    assert "U+00E9" in _msg("88.118.8/GDH.240915.00123\u00e9")
    assert "not allowed" in _msg("88.118.8/GDH 240915.00123F")
    assert "segments" in _msg("88.118.8.9/GDH.240915.00123F")
    assert "'88.'" in _msg("86.118.8/GDH.240915.00123F")
    assert "node" in _msg("88.11.8/GDH.240915.00123F")
    assert "enterprise" in _msg("88.118./GDH.240915.00123F")
    assert "category" in _msg("88.118.8/GXH.240915.00123F")
    assert "tier" in _msg("88.118.8/GDX.240915.00123F")
    assert "month" in _msg("88.118.8/GDH.241315.00123F")
    assert "day" in _msg("88.118.8/GDH.230229.00123F")
    assert "serial" in _msg("88.118.8/GDH.240915.0012AF")
    assert "separator" in _msg("88.118.8/GDHX240915.00123F")
    assert "'-'" in _msg("88.118.8/GDH-240915.00123F")
    assert "long" in _msg("88.118.8/GDH.240915.00123")
    assert "empty" in _msg("")
    assert "string" in _msg(None)
    assert "string" in _msg(b"88.118.8/GDH.240915.00123F")


def test_leap_day():
    make("88.118.8", "GD", "H", "240229", 5)
    raises(IdentifierError, make, "88.118.8", "GD", "H", "230229", 5)


def test_make_refuses_bad_parts():
    raises(IdentifierError, make, "88.118.8", "GX", "H", "240915", 1)
    raises(IdentifierError, make, "88.118.8", "GD", "Q", "240915", 1)
    raises(IdentifierError, make, "88.118.8", "GD", "H", "2409", 1)
    raises(IdentifierError, make, "88.118.8", "GD", "H", "240915", 100000)
    raises(IdentifierError, make, "88.118.8", "GD", "H", "240915", -1)
    raises(IdentifierError, make, "88.118.8", "GD", "H", "240915", True)
    raises(IdentifierError, make, "88.118.8", "GD", "H", 240915, 1)
    raises(IdentifierError, make, "88.118", "GD", "H", "240915", 1)
    raises(IdentifierError, make, "88.118.8a", "GD", "H", "240915", 1)
    raises(IdentifierError, make, "88.118." + "A" * 21, "GD", "H", "240915", 1)
    check_prefix("88.1180." + "Z" * 20)


def test_every_single_substitution_of_an_example_fails():
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ./-a "
    for i in range(len(GOOD)):
        for c in alphabet:
            if c == GOOD[i]:
                continue
            bad = GOOD[:i] + c + GOOD[i + 1:]
            assert not is_valid(bad), bad
