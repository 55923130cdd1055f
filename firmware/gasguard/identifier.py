"""Industrial-internet identifiers: 88.<node>.<enterprise>/<CAT><TIER>.<YYMMDD>.<SERIAL5><CHK>.

The prefix (e.g. the placeholder 88.118.8) is configuration; the suffix encodes the
product category (GD detector, GV valve), the tier (L/M/H), the production date and a
five-digit serial within that day, and ends in one ISO/IEC 7064 MOD 37,36 check
character computed over every alphanumeric of prefix and suffix (separators skipped).

Validation is hand-written (MicroPython's re has no counted repetition) and strict:
the prefix has exactly three segments and the suffix has a fixed shape, so every
single-character substitution of a valid identifier is refused (separators by shape,
alphanumerics by the check character). Errors are IdentifierError with a message that
names what is wrong; characters outside printable ASCII are shown as U+XXXX so the
messages are identical on CPython and MicroPython. See docs/identity.md.
"""

ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MDAYS = b"\x1f\x1c\x1f\x1e\x1f\x1e\x1f\x1f\x1e\x1f\x1e\x1f"  # days per month


class IdentifierError(ValueError):
    pass


def show(c):
    """One character for an error message, the same on both interpreters."""
    o = ord(c)
    return "'%s'" % c if 0x20 < o < 0x7F else "U+%04X" % o


def _q(s):
    return "'" + "".join(c if 0x20 <= ord(c) < 0x7F else "U+%04X" % ord(c) for c in s) + "'"


def _is_digits(s):
    if not s:
        return False
    for c in s:
        if not "0" <= c <= "9":
            return False
    return True


def check_char(s):
    """ISO/IEC 7064 MOD 37,36 (hybrid) check character over the alphanumerics of s.

    '.', '/' and '-' are skipped; any other character (lower case included) raises
    IdentifierError. check_char("A12425GABC1234002") == "M".
    """
    if not isinstance(s, str):
        raise IdentifierError("check_char needs a string")
    p = 36
    n = 0
    for c in s:
        v = ALNUM.find(c)
        if v < 0:
            if c in "./-":
                continue
            raise IdentifierError("character %s cannot be checked (0-9 A-Z only)" % show(c))
        n += 1
        p = (((p + v) % 36 or 36) * 2) % 37
    if not n:
        raise IdentifierError("nothing to check: no alphanumeric characters")
    return ALNUM[(37 - p) % 36]


def _chars(s, where, allowed, what):
    for i in range(len(s)):
        c = s[i]
        if "a" <= c <= "z":
            raise IdentifierError("%slower case %s at position %d; identifiers are upper case"
                                  % (where, show(c), i))
        if c not in allowed:
            raise IdentifierError("%scharacter %s at position %d is not allowed (%s)"
                                  % (where, show(c), i, what))


def check_prefix(prefix):
    """Raise IdentifierError unless prefix is 88.<node 3-4 digits>.<enterprise 1-20 alnum>."""
    if not isinstance(prefix, str):
        raise IdentifierError("prefix must be a string")
    if not prefix:
        raise IdentifierError("prefix is empty")
    if len(prefix) > 40:
        raise IdentifierError("prefix is %d characters long; at most 40" % len(prefix))
    _chars(prefix, "prefix: ", ALNUM + ".", "0-9 A-Z .")
    segs = prefix.split(".")
    if len(segs) != 3:
        raise IdentifierError("prefix %s has %d segments; expected 3: 88.<node>.<enterprise>"
                              % (_q(prefix), len(segs)))
    if segs[0] != "88":
        raise IdentifierError("prefix must start with '88.', got %s" % _q(segs[0]))
    if not (3 <= len(segs[1]) <= 4) or not _is_digits(segs[1]):
        raise IdentifierError("prefix: node segment %s must be 3-4 digits" % _q(segs[1]))
    if not segs[2]:
        raise IdentifierError("prefix: enterprise segment is empty")
    if len(segs[2]) > 20:
        raise IdentifierError("prefix: enterprise segment is %d characters long; at most 20"
                              % len(segs[2]))


def _check_date(d):
    """d: 6 digits YYMMDD (20YY). Raise IdentifierError when it is not a real date."""
    if len(d) != 6 or not _is_digits(d):
        raise IdentifierError("date %s must be 6 digits YYMMDD" % _q(d))
    mm = int(d[2:4])
    dd = int(d[4:6])
    if not 1 <= mm <= 12:
        raise IdentifierError("date %s: month %02d is not 01..12" % (d, mm))
    # 2000..2099: every 4th year is a leap year
    last = 29 if mm == 2 and int(d[0:2]) % 4 == 0 else _MDAYS[mm - 1]
    if not 1 <= dd <= last:
        raise IdentifierError("date %s: day %02d is not 01..%02d" % (d, dd, last))


def validate(identifier):
    """Return None when identifier is valid; raise IdentifierError naming what is wrong."""
    s = identifier
    if not isinstance(s, str):
        raise IdentifierError("identifier must be a string")
    n = len(s)
    if n == 0:
        raise IdentifierError("identifier is empty")
    if n > 255:
        raise IdentifierError("identifier is %d characters long; at most 255" % n)
    _chars(s, "", ALNUM + "./-", "0-9 A-Z . - /")
    slashes = s.count("/")
    if slashes == 0:
        raise IdentifierError("no '/' between prefix and suffix")
    if slashes != 1:
        raise IdentifierError("%d '/' separators; exactly one expected" % slashes)
    cut = s.find("/")
    check_prefix(s[:cut])
    suf = s[cut + 1:]
    if not suf:
        raise IdentifierError("suffix is empty")
    if "-" in suf:
        raise IdentifierError("suffix: '-' is not used in this scheme")
    if len(suf) != 17:  # CAT(2) TIER(1) . YYMMDD . SERIAL5 CHK
        raise IdentifierError(
            "suffix %s is %d characters long; expected 17: CAT TIER.YYMMDD.SERIAL5 CHECK"
            % (_q(suf), len(suf)))
    if suf[0:2] not in ("GD", "GV"):
        raise IdentifierError("category %s is not GD (detector) or GV (valve)" % _q(suf[0:2]))
    if suf[2] not in "LMH":
        raise IdentifierError("tier %s is not L, M or H" % show(suf[2]))
    if suf[3] != "." or suf[10] != ".":
        raise IdentifierError("suffix %s: separators '.' expected at positions 3 and 10" % _q(suf))
    _check_date(suf[4:10])
    if not _is_digits(suf[11:16]):
        raise IdentifierError("serial %s must be 5 digits" % _q(suf[11:16]))
    if suf[16] not in ALNUM:
        raise IdentifierError("check character %s must be 0-9 or A-Z" % show(suf[16]))
    want = check_char(s[:-1])
    if s[-1] != want:
        raise IdentifierError("check character is %s, expected %s" % (show(s[-1]), show(want)))


def is_valid(identifier):
    try:
        validate(identifier)
    except IdentifierError:
        return False
    return True


def make(prefix, cat, tier, yymmdd, serial):
    """Build an identifier: make("88.118.8", "GD", "H", "240915", 123) -> "88.118.8/GDH.240915.00123F".

    cat: "GD"/"GV" (or the kind "detector"/"valve"); yymmdd: str of 6 digits; serial: int 0..99999.
    """
    check_prefix(prefix)
    cat = {"detector": "GD", "valve": "GV"}.get(cat, cat) if isinstance(cat, str) else cat
    if cat not in ("GD", "GV"):
        raise IdentifierError("category %r is not GD (detector) or GV (valve)" % (cat,))
    if not isinstance(tier, str) or len(tier) != 1 or tier not in "LMH":
        raise IdentifierError("tier %r is not L, M or H" % (tier,))
    if not isinstance(yymmdd, str):
        raise IdentifierError("date must be a string YYMMDD")
    _check_date(yymmdd)
    if isinstance(serial, bool) or not isinstance(serial, int) or not 0 <= serial <= 99999:
        raise IdentifierError("serial %r is not an integer 0..99999" % (serial,))
    body = "%s/%s%s.%s.%05d" % (prefix, cat, tier, yymmdd, serial)
    return body + check_char(body)


def parse(identifier):
    """Validate and split: {"prefix","cat","kind","tier","date","serial"(int),"check"}."""
    validate(identifier)
    cut = identifier.find("/")
    suf = identifier[cut + 1:]
    return {"prefix": identifier[:cut], "cat": suf[0:2],
            "kind": "detector" if suf[1] == "D" else "valve", "tier": suf[2],
            "date": suf[4:10], "serial": int(suf[11:16]), "check": suf[16]}


def factory_serial(identifier):
    """The compact factory serial number of a valid identifier: CAT TIER YYMMDD SERIAL5."""
    p = parse(identifier)
    return "%s%s%s%05d" % (p["cat"], p["tier"], p["date"], p["serial"])
