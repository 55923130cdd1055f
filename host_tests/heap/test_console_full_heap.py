"""The console answers when its code cannot load (issue 10, docs/heap-budget.md): on the
ESP32-like interpreter from .mpy, a READ? and a CAL ZERO asked with only N bytes of the
heap free, for N from 1.25 KB (below, not even the request line can be read) to 12 KB. The dispatch (service_cmds) and the verb group
load per request; a MemoryError on the way is one reply `ERR E_DEVICE MemoryError...`,
counted in the console's errors, and with room again the next request is answered as
before. Nothing of the console's per-request code stays loaded after it (when there was
not even room to release it, the next request does)."""

import json

from conftest import run_micropython

SCRIPT = r'''
import gc, json, sys
from gasguard.service import Service
from heap_fill import HeapFill
from service_facade import FacadeStub
from simboard import SimClock, SimConsole


class Console(SimConsole):
    """Replies into a preallocated buffer, as a UART's write allocates nothing."""

    def __init__(self):
        SimConsole.__init__(self)
        self.out = bytearray(4096)
        self.n = 0

    def write(self, data):
        n = self.n
        out = self.out
        for b in data:
            out[n] = b
            n += 1
        self.n = n
        return len(data)

    def take_output(self):
        b = bytes(self.out[:self.n])
        self.n = 0
        return b


class Dev(FacadeStub):
    def cal_zero(self, ch):
        return {"ch": ch, "zero_uv": 1}


con = Console()
svc = Service(con, Dev(), SimClock(), button_at_boot=True)  # factory mode: CAL writes
hf = HeapFill(600, 1 << 20)


def ask(line, left=None):
    con.feed(line + "\n")
    gc.collect()
    if left is not None:  # all but `left` bytes of the heap taken
        room = bytearray(left)
        hf.fill()
        room = None
    try:
        svc.poll()
        raised = None
    except MemoryError:
        raised = "MemoryError"
    if left is not None:
        hf.unfill()
    return raised, con.take_output().decode()


rows = []
for line in ("READ?", "CAL ZERO ch4"):
    left = 1280
    while left <= 12288:
        e0 = svc.errors
        raised, reply = ask(line, left)
        again = ask(line)[1]  # room again
        loaded = [m for m in sys.modules if m.startswith("gasguard.service_")
                  and m != "gasguard.service_proto"]
        rows.append({"line": line, "left": left, "raised": raised, "reply": reply,
                     "counted": svc.errors - e0, "loaded": loaded, "again": again})
        left += 256
print(json.dumps(rows))
'''


def test_the_console_answers_when_its_code_cannot_load(tmp_path):
    p = tmp_path / "console_full.py"
    p.write_text(SCRIPT)
    r = run_micropython([p], interp="esp32", heap="1m", compiled=True, timeout=300)
    out = r.stdout.decode() + r.stderr.decode()
    assert r.returncode == 0, out
    rows = json.loads(out.strip().splitlines()[-1])
    failed = {"READ?": 0, "CAL ZERO ch4": 0}
    for row in rows:
        assert row["raised"] is None, row  # the poll never raises: the console answers
        assert row["loaded"] == [], row
        assert row["again"].startswith("OK {"), row
        reply = row["reply"]
        assert reply.count("\n") == 1, row  # exactly one reply line
        if reply.startswith("OK "):
            assert row["counted"] == 0, row
        else:
            assert reply.startswith("ERR E_DEVICE MemoryError"), row
            assert row["counted"] == 1, row
            failed[row["line"]] += 1
    # both requests met a heap too small for their code, and a large enough one
    for line, n in failed.items():
        assert 0 < n < len([x for x in rows if x["line"] == line]), (line, rows)
