"""Differential driver for identity: one JSON request per line, one output line per request.

{"op": "validate", "s": str}          -> "ok" | "err <message>"
{"op": "check", "s": str}             -> check char | "err <message>"
{"op": "make", "a": [prefix, cat, tier, yymmdd, serial]} -> identifier | "err <message>"
{"op": "canon", "o": obj}             -> hex(canonical bytes)
{"op": "seal", "k": hex key, "o": {...}} -> wire bytes of an uplink sealed with K_up (ASCII)
{"op": "open", "k": hex key, "p": str} -> "ok <canon body>" | "err <message>"
Messages are printed as ASCII only (non-ASCII characters as \\uXXXX) so both stdouts compare.
"""

import sys
import json
from binascii import hexlify, unhexlify

from gasguard.identifier import IdentifierError, check_char, make, validate
from gasguard.canon import canon
from gasguard.active_id import MessageError, direction_keys, open_msg, seal


def out(s):
    sys.stdout.write(canon(s).decode()[1:-1] + "\n")


for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    q = json.loads(line)
    op = q["op"]
    try:
        if op == "validate":
            validate(q["s"])
            out("ok")
        elif op == "check":
            out(check_char(q["s"]))
        elif op == "make":
            a = q["a"]
            out(make(a[0], a[1], a[2], a[3], a[4]))
        elif op == "canon":
            out(hexlify(canon(q["o"])).decode())
        elif op == "seal":
            up, _down = direction_keys(unhexlify(q["k"]))
            out(seal(up, q["o"]).decode())
        elif op == "open":
            up, _down = direction_keys(unhexlify(q["k"]))
            out("ok " + canon(open_msg(up, q["p"])).decode())
    except (IdentifierError, MessageError) as e:
        out("err " + str(e))
