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
DIGITS = "0123456789"
SEPARATORS = "./-"
MAX_LEN = 255
MAX_PREFIX = 40
CATEGORIES = {"GD": "detector", "GV": "valve"}
KIND_TO_CAT = {"detector": "GD", "valve": "GV"}
TIERS = "LMH"
SUFFIX_LEN = 17  # CAT(2) TIER(1) . YYMMDD . SERIAL5 CHK
_MDAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class IdentifierError(ValueError):
    pass


def show(c):
    """One character for an error message, the same on both interpreters."""
    o = ord(c)
    if 0x20 < o < 0x7F:
        return "'%s'" % c
    return "U+%04X" % o


def _show_str(s):
    out = []
    for c in s:
        o = ord(c)
        out.append(c if 0x20 <= o < 0x7F else "U+%04X" % o)
    return "'" + "".join(out) + "'"


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
            if c in SEPARATORS:
                continue
            raise IdentifierError("character %s cannot be checked (0-9 A-Z only)" % show(c))
        n += 1
        t = (p + v) % 36
        if t == 0:
            t = 36
        p = (t * 2) % 37
    if n == 0:
        raise IdentifierError("nothing to check: no alphanumeric characters")
    return ALNUM[(37 - p) % 36]


def _all_in(s, allowed):
    for c in s:
        if c not in allowed:
            return False
    return True


def _is_digits(s):
    return len(s) > 0 and _all_in(s, DIGITS)


def check_prefix(prefix):
    """Raise IdentifierError unless prefix is 88.<node 3-4 digits>.<enterprise 1-20 alnum>."""
    if not isinstance(prefix, str):
        raise IdentifierError("prefix must be a string")
    if not prefix:
        raise IdentifierError("prefix is empty")
    if len(prefix) > MAX_PREFIX:
        raise IdentifierError("prefix is %d characters long; at most %d" % (len(prefix), MAX_PREFIX))
    for i in range(len(prefix)):
        c = prefix[i]
        if "a" <= c <= "z":
            raise IdentifierError("prefix: lower case %s at position %d; identifiers are upper case" % (show(c), i))
        if c != "." and c not in ALNUM:
            raise IdentifierError("prefix: character %s at position %d is not allowed (0-9 A-Z .)" % (show(c), i))
    segs = prefix.split(".")
    if len(segs) != 3:
        raise IdentifierError("prefix %s has %d segments; expected 3: 88.<node>.<enterprise>" % (_show_str(prefix), len(segs)))
    if segs[0] != "88":
        raise IdentifierError("prefix must start with '88.', got %s" % _show_str(segs[0]))
    node = segs[1]
    if not (3 <= len(node) <= 4) or not _is_digits(node):
        raise IdentifierError("prefix: node segment %s must be 3-4 digits" % _show_str(node))
    ent = segs[2]
    if not ent:
        raise IdentifierError("prefix: enterprise segment is empty")
    if len(ent) > 20:
        raise IdentifierError("prefix: enterprise segment is %d characters long; at most 20" % len(ent))


def _check_date(d):
    """d: 6 digits YYMMDD (20YY). Raise IdentifierError when it is not a real date."""
    if len(d) != 6 or not _is_digits(d):
        raise IdentifierError("date %s must be 6 digits YYMMDD" % _show_str(d))
    yy = int(d[0:2])
    mm = int(d[2:4])
    dd = int(d[4:6])
    if not 1 <= mm <= 12:
        raise IdentifierError("date %s: month %02d is not 01..12" % (d, mm))
    last = _MDAYS[mm - 1]
    if mm == 2 and yy % 4 == 0:  # 2000..2099: every 4th year is a leap year
        last = 29
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
    if n > MAX_LEN:
        raise IdentifierError("identifier is %d characters long; at most %d" % (n, MAX_LEN))
    slashes = 0
    for i in range(n):
        c = s[i]
        if c == "/":
            slashes += 1
        elif "a" <= c <= "z":
            raise IdentifierError("lower case %s at position %d; identifiers are upper case" % (show(c), i))
        elif c not in ALNUM and c not in SEPARATORS:
            raise IdentifierError("character %s at position %d is not allowed (0-9 A-Z . - /)" % (show(c), i))
    if slashes != 1:
        if slashes == 0:
            raise IdentifierError("no '/' between prefix and suffix")
        raise IdentifierError("%d '/' separators; exactly one expected" % slashes)
    cut = s.find("/")
    prefix = s[:cut]
    suffix = s[cut + 1:]
    check_prefix(prefix)
    _check_suffix(suffix)
    want = check_char(s[:-1])
    if s[-1] != want:
        raise IdentifierError("check character is %s, expected %s" % (show(s[-1]), show(want)))


def _check_suffix(suf):
    if not suf:
        raise IdentifierError("suffix is empty")
    if "-" in suf:
        raise IdentifierError("suffix: '-' is not used in this scheme")
    if len(suf) != SUFFIX_LEN:
        raise IdentifierError(
            "suffix %s is %d characters long; expected %d: CAT TIER.YYMMDD.SERIAL5 CHECK"
            % (_show_str(suf), len(suf), SUFFIX_LEN))
    cat = suf[0:2]
    if cat not in CATEGORIES:
        raise IdentifierError("category %s is not GD (detector) or GV (valve)" % _show_str(cat))
    if suf[2] not in TIERS:
        raise IdentifierError("tier %s is not L, M or H" % show(suf[2]))
    if suf[3] != "." or suf[10] != ".":
        raise IdentifierError("suffix %s: separators '.' expected at positions 3 and 10" % _show_str(suf))
    _check_date(suf[4:10])
    if not _is_digits(suf[11:16]):
        raise IdentifierError("serial %s must be 5 digits" % _show_str(suf[11:16]))
    if suf[16] not in ALNUM:
        raise IdentifierError("check character %s must be 0-9 or A-Z" % show(suf[16]))


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
    cat = KIND_TO_CAT.get(cat, cat)
    if cat not in CATEGORIES:
        raise IdentifierError("category %r is not GD (detector) or GV (valve)" % (cat,))
    if not isinstance(tier, str) or len(tier) != 1 or tier not in TIERS:
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
    return {
        "prefix": identifier[:cut],
        "cat": suf[0:2],
        "kind": CATEGORIES[suf[0:2]],
        "tier": suf[2],
        "date": suf[4:10],
        "serial": int(suf[11:16]),
        "check": suf[16],
    }


def factory_serial(identifier):
    """The compact factory serial number of a valid identifier: CAT TIER YYMMDD SERIAL5."""
    p = parse(identifier)
    return "%s%s%s%05d" % (p["cat"], p["tier"], p["date"], p["serial"])
