"""Canonical JSON: the bytes the identity records are stored as and the active identifier's
HMAC covers (docs/identity.md). Compact, keys sorted by code point, pure ASCII.

Allowed: dict (str keys), list/tuple, str, int, True/False/None; floats are refused.
Strings escape '"' and '\\', and every character outside 0x20..0x7E as lower-case \\uXXXX
(UTF-16 surrogate pairs above U+FFFF). Identical bytes on both interpreters.

Its own module so that a heartbeat (gasguard.active_id) and a stored-state write
(gasguard.identity) each load only what they use (docs/heap-budget.md).
"""


def _s(s, out):
    # runs of plain characters go in as one piece (the whole str when it has no escape):
    # one list entry per character grew the list of a registration to 2 KB (issue 10)
    out.append('"')
    i = j = 0
    for c in s:
        o = ord(c)
        j += 1
        if 0x20 <= o < 0x7F and c != '"' and c != "\\":
            continue
        if i < j - 1:
            out.append(s[i : j - 1])
        i = j
        if o < 0x7F and o >= 0x20:
            out.append("\\" + c)
        else:
            if o > 0xFFFF:
                o -= 0x10000
                out.append("\\u%04x" % (0xD800 + (o >> 10)))
                o = 0xDC00 + (o & 0x3FF)
            out.append("\\u%04x" % o)
    if i < j:
        out.append(s[i:] if i else s)
    out.append('"')


def _e(o, out, n):
    if n > 8:
        raise ValueError("nested too deeply")
    if o is None or o is True or o is False:
        out.append("null" if o is None else "true" if o else "false")
    elif isinstance(o, int):
        out.append("%d" % o)
    elif isinstance(o, str):
        _s(o, out)
    elif isinstance(o, (list, tuple)):
        out.append("[")
        for i, x in enumerate(o):
            if i:
                out.append(",")
            _e(x, out, n + 1)
        out.append("]")
    elif isinstance(o, dict):
        ks = list(o)
        for k in ks:
            if not isinstance(k, str):
                raise ValueError("keys must be strings")
        ks.sort()
        out.append("{")
        for i, k in enumerate(ks):
            if i:
                out.append(",")
            _s(k, out)
            out.append(":")
            _e(o[k], out, n + 1)
        out.append("}")
    else:
        raise ValueError("%s values are not allowed" % type(o).__name__)


def canon(obj):
    """Canonical bytes of obj (ValueError for what it cannot encode)."""
    out = []
    _e(obj, out, 0)
    return "".join(out).encode()
