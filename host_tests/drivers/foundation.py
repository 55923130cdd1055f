"""Differential driver: one JSON request per input line, one output line per request.

Input lines: {"key": hex, "msg": hex, "t": int, "d": int, "payload": hex}
Output: hex(hmac) hex(sealed record) ticks.add ticks.diff
"""

import sys
import json
from binascii import hexlify, unhexlify

from gasguard import hmac256, record, ticks

for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    q = json.loads(line)
    tag = hmac256.digest(unhexlify(q["key"]), unhexlify(q["msg"]))
    rec = record.seal(unhexlify(q["payload"]), q["v"])
    t2 = ticks.add(q["t"], q["d"])
    sys.stdout.write(
        "%s %s %d %d\n"
        % (hexlify(tag).decode(), hexlify(rec).decode(), t2, ticks.diff(t2, q["t"]))
    )
