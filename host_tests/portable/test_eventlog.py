"""The event log on both interpreters: no flash write inside emit once the loop runs, the
loop turn writes, bounded flash by renaming (never a whole-file read on the alarm path),
recent() read back from the end of the file, and power cuts at every byte of the writes."""

from ptest import full_heap_lockable, raised_under_full_heap, tmpdir

from gasguard.eventlog import EventLog
from gasguard.store import FileStore
from simboard import MemStore, PowerCutStore


class CountingStore(FileStore):
    """A FileStore that counts the calls that touch flash."""

    def __init__(self, root):
        FileStore.__init__(self, root)
        self.appends = 0
        self.reads = 0

    def append(self, name, data):
        self.appends += 1
        FileStore.append(self, name, data)

    def read(self, name):
        self.reads += 1
        return FileStore.read(self, name)


def test_add_writes_nothing_once_the_loop_flushes():
    store = CountingStore(tmpdir("evl1"))
    log = EventLog(store)
    log.add({"event": "boot"}, 0)  # the boot: no alarm path yet, written at once
    assert store.appends == 1
    log.flush()  # the first loop turn
    for i in range(5):
        log.add({"event": "alarm", "i": i}, i)
    assert store.appends == 1 and store.reads == 1  # inside emit: no flash at all
    assert [e["i"] for e in log.recent(3)] == [2, 3, 4]  # pending events are seen
    log.flush()
    assert store.appends == 6
    assert [e.get("i") for e in EventLog(store).recent(6)] == [None, 0, 1, 2, 3, 4]


def test_many_events_in_one_turn_are_written_not_queued_without_bound():
    store = CountingStore(tmpdir("evl2"))
    log = EventLog(store, ram=4)
    log.flush()
    for i in range(10):
        log.add({"event": "x", "i": i}, i)
    assert len(log._pending) <= 4 and store.appends >= 6
    log.flush()
    assert [e["i"] for e in log.persisted()] == list(range(10))


def test_bounded_by_renaming_and_recent_reads_the_end():
    for store in (FileStore(tmpdir("evl3")), MemStore()):
        log = EventLog(store, max_bytes=1024)
        log.flush()
        for i in range(300):
            log.add({"event": "x", "i": i, "pad": "p" * (i % 50)}, i)
            log.flush()
            assert store.size("events.log") + store.size("events.log.1") <= 1024 + 200
        got = [e["i"] for e in log.recent(32)]
        p = [e["i"] for e in log.persisted()]
        assert p[-1] == 299 and got == p[-len(got):] and len(got) == min(32, len(p)), (got, p)
        assert EventLog(store).seq == 300


def test_recent_skips_a_record_torn_by_a_failed_write():
    store = FileStore(tmpdir("evl4"))
    log = EventLog(store)
    log.flush()
    log.add({"event": "a"}, 0)
    log.flush()
    store.append("events.log", b"\xa5\x01\x30\x00torn")  # a write that died midway
    log.add({"event": "b"}, 1)
    log.flush()
    assert [e["event"] for e in log.recent(1)] == ["b"]


def _events(root):
    return EventLog(FileStore(root)).persisted()


def test_power_cut_at_every_byte_of_the_writes_and_a_rotation():
    """A power cut at any byte of a loop turn's writes (appends and the rename of a
    rotation): after the reboot every event written before the cut is there (or was
    dropped by the bound, oldest first), the one in flight is whole or absent, and the
    log goes on with new sequence numbers."""
    def fill(store):
        log = EventLog(store, max_bytes=1024)
        log.flush()
        for i in range(8):
            log.add({"event": "fault", "code": "x", "state": "on", "i": i}, i)
        log.flush()
        return log

    probe = PowerCutStore(tmpdir("evl5-probe"))
    fill(probe)
    w0 = probe.written
    log = EventLog(probe, max_bytes=1024)
    log.flush()
    for i in range(8, 16):
        log.add({"event": "alarm", "i": i}, i)
    log.flush()
    total = probe.written - w0
    assert probe.size("events.log.1") > 0  # the turn's writes include a rotation
    for budget in range(0, total + 2):
        root = tmpdir("evl5-%d" % budget)
        fill(FileStore(root))
        store = PowerCutStore(root, budget)
        log = EventLog(store, max_bytes=1024)
        log.flush()
        for i in range(8, 16):
            log.add({"event": "alarm", "i": i}, i)
        log.flush()  # never raises: a dead flash is counted
        done = [e["i"] for e in _events(root)]
        assert done == list(range(done[0], done[-1] + 1)), (budget, done)  # no hole
        assert done[-1] >= 7 and (done[-1] == 15 or log.write_errors), (budget, done)
        again = EventLog(FileStore(root), max_bytes=1024)
        assert again.seq == done[-1] + 1  # event i has seq i: numbering goes on
        again.add({"event": "boot"}, 0)
        after = _events(root)
        assert after[-1]["event"] == "boot" and after[-1]["seq"] == done[-1] + 1
        assert [e["i"] for e in after[:-1]] == done[len(done) - len(after) + 1:]


def test_flush_under_a_full_heap_counts_and_never_raises():
    """The loop turn flushes in a `finally` after the safety path: with no heap left at all
    (heap locked: every allocation fails), pending events are counted as write errors and
    nothing escapes (a MemoryError there would leave the loop turn). MicroPython only."""
    if not full_heap_lockable():
        return
    store = CountingStore(tmpdir("evl-full"))
    log = EventLog(store)
    log.flush()
    for i in range(3):
        log.add({"event": "alarm", "i": i}, i)
    before = log.write_errors
    err = raised_under_full_heap(log.flush)
    assert err is None, repr(err)
    assert log.write_errors - before == 3  # each counted, none silently gone
    log.flush()  # nothing left pending: nothing written twice
    assert store.appends == 0
