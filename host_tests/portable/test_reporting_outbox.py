"""The outbox: bounded, in order, removed only after ack, and power-safe at every byte."""

from gasguard.outbox import Outbox
from gasguard.store import FileStore
from ptest import raises, tmpdir
from simboard import PowerCutStore


def _msg(i, n=20):
    return (b"m%03d-" % i) + b"x" * n


def test_append_ack_reopen_keeps_order_and_forgets_acked():
    d = tmpdir("ob1")
    ob = Outbox(FileStore(d), max_bytes=4096)
    for i in range(1, 6):
        assert ob.append(7, i, 1, 0, _msg(i))
    assert ob.keys() == [(7, 1), (7, 2), (7, 3), (7, 4), (7, 5)]
    assert ob.ack(7, 2) and ob.ack(7, 4)
    assert not ob.ack(7, 99)
    ob2 = Outbox(FileStore(d), max_bytes=4096)
    assert ob2.keys() == [(7, 1), (7, 3), (7, 5)]
    assert [bytes(ob2.message(e)) for e in ob2.entries] == [_msg(1), _msg(3), _msg(5)]
    assert ob2.live_bytes == ob.live_bytes


def test_everything_acked_compacts_the_file():
    d = tmpdir("ob2")
    st = FileStore(d)
    ob = Outbox(st, max_bytes=4096)
    for i in range(1, 60):
        ob.append(1, i, 1, 0, _msg(i))
        ob.ack(1, i)
    # tombstones are appended while small; the file is emptied once it grows
    assert st.size("outbox") < 1024 + 100
    assert len(Outbox(FileStore(d))) == 0


def test_non_safety_messages_yield_to_safety_messages():
    d = tmpdir("ob3")
    ob = Outbox(FileStore(d), max_bytes=600, reserve_bytes=200)
    seq = 0
    for _ in range(10):  # fill with non-safety messages
        seq += 1
        ob.append(1, seq, 1, 1, _msg(seq, 40))
    assert ob.dropped > 0  # the oldest non-safety ones went first
    assert ob.live_bytes <= 600
    for _ in range(12):  # now safety messages push all non-safety ones out
        seq += 1
        assert ob.append(1, seq, 1, 0, _msg(seq, 40))
    prios = [e[3] for e in ob.entries]
    assert 1 not in prios
    assert ob.live_bytes <= 800
    # the outbox is full of safety messages: the first one is kept, the loss is counted
    first = ob.entries[0][1]
    lost_before = ob.lost_safety
    seq += 1
    assert ob.append(1, seq, 1, 0, _msg(seq, 40))
    assert ob.entries[0][1] == first
    assert ob.entries[-1][1] == seq
    assert ob.lost_safety == lost_before + 1
    # a non-safety message is refused (and counted) rather than pushing a safety one out
    d0 = ob.dropped
    assert not ob.append(1, seq + 1, 1, 1, _msg(seq + 1, 40))
    assert ob.dropped == d0 + 1
    # what survives a reboot is exactly what RAM holds
    assert Outbox(FileStore(d), max_bytes=600, reserve_bytes=200).keys() == ob.keys()


def test_too_large_message_is_an_error_not_a_silent_drop():
    ob = Outbox(FileStore(tmpdir("ob4")), max_bytes=256, reserve_bytes=0)
    raises(ValueError, ob.append, 1, 1, 1, 0, b"x" * 300)
    assert len(ob) == 0


def test_store_failure_keeps_the_message_in_ram_and_counts_it():
    d = tmpdir("ob5")
    st = PowerCutStore(d, budget=0)
    ob = Outbox(st, max_bytes=4096)
    assert ob.append(1, 1, 1, 0, _msg(1))
    assert ob.keys() == [(1, 1)] and ob.store_errors == 1


def _script(ob):
    """A fixed sequence of outbox operations; yields (op, key) after each completes."""
    for i in range(1, 5):
        ob.append(3, i, 1, 0 if i % 2 else 1, _msg(i, 6))
        yield "append", (3, i)
    ob.ack(3, 1)
    yield "ack", (3, 1)
    ob.ack(3, 3)
    yield "ack", (3, 3)
    for i in range(5, 8):  # small limit: these force drops and an atomic rewrite
        ob.append(3, i, 1, 0, _msg(i, 6))
        yield "append", (3, i)
    ob.ack(3, 2)
    yield "ack", (3, 2)
    ob.ack(3, 4)
    yield "ack", (3, 4)


def _run(d, budget, limit=256, reserve=64):
    st = PowerCutStore(d, budget=budget)
    ob = Outbox(st, max_bytes=limit, reserve_bytes=reserve)
    durable_live = []  # keys whose append completed before the cut and were not acked
    appended = []
    for op, key in _script(ob):
        if ob.store_errors:  # the power went during this operation
            break
        if op == "append":
            appended.append(key)
            if key in ob.keys():
                durable_live.append(key)
        else:
            if key in durable_live:
                durable_live.remove(key)
        # drops made for space are allowed to remove keys
        durable_live = [k for k in durable_live if k in ob.keys()]
    return st, ob, durable_live, appended


def test_power_cut_at_every_byte_loses_nothing_that_was_written():
    base = tmpdir("obcut")
    # total bytes the script writes without a cut
    d = base + "/full"
    st, ob, _, _ = _run(d, None)
    total = st.written
    assert total > 200
    for budget in range(total + 1):
        d = base + "/c%d" % budget
        st, ob, must, appended = _run(d, budget)
        re = Outbox(FileStore(d), max_bytes=256, reserve_bytes=64)
        keys = re.keys()
        # nothing corrupt, nothing invented, in order
        for k in keys:
            assert k in [(3, i) for i in range(1, 8)], (budget, keys)
        assert keys == sorted(keys), (budget, keys)
        for e in re.entries:
            assert bytes(re.message(e)) == _msg(e[1], 6), budget
        # every message that was durably appended and not acked is there
        for k in must:
            assert k in keys, (budget, k, keys)
        # the torn tail was repaired: a new append after the reboot survives the next one
        re.append(4, 1, 1, 0, b"after")
        again = Outbox(FileStore(d), max_bytes=256, reserve_bytes=64)
        assert again.keys()[-1] == (4, 1), (budget, again.keys())
        assert again.keys()[:-1] == [k for k in re.keys() if k != (4, 1)]
        _clean(d)


def _clean(d):
    import os

    for n in os.listdir(d):
        os.remove(d + "/" + n)
    os.rmdir(d)


class _NoRoomForRewrites(FileStore):
    """A store where building the one-piece rewrite runs out of heap (a fragmented ESP32
    heap has no 10 KB block): write() raises MemoryError, append() works."""

    def write(self, name, data):
        raise MemoryError("memory allocation failed")


def test_a_rewrite_without_heap_still_puts_the_message_on_flash():
    d = tmpdir("ob9")
    ob = Outbox(_NoRoomForRewrites(d), max_bytes=256, reserve_bytes=64)
    for i in range(1, 12):  # the later ones drop older ones: a rewrite each time
        assert ob.append(2, i, 1, 0, _msg(i, 6))
    assert ob.store_errors > 0 and ob.lost_safety > 0
    re = Outbox(FileStore(d), max_bytes=256, reserve_bytes=64)
    # the old log stayed whole and every new message was appended to it: nothing missing
    assert re.keys()[-1] == (2, 11) and (2, 1) in re.keys()
    assert ob.keys() == [k for k in re.keys() if k in ob.keys()]


def test_loss_counters_survive_a_reboot_until_acknowledged():
    d = tmpdir("ob10")
    ob = Outbox(FileStore(d), max_bytes=256, reserve_bytes=64)
    for i in range(1, 20):
        ob.append(1, 2 * i, 1, 1, _msg(i, 6))
        ob.append(1, 2 * i + 1, 1, 0, _msg(i, 6))
    assert ob.append(1, 99, 1, 1, _msg(99, 6)) is False  # refused: safety fills it
    lost, dropped = ob.lost_safety, ob.dropped
    assert lost > 0 and dropped > 0
    re = Outbox(FileStore(d), max_bytes=256, reserve_bytes=64)
    assert (re.unacked_lost, re.unacked_dropped) == (lost, dropped)
    assert (re.lost_safety, re.dropped) == (0, 0)  # the since-boot counters restart
    re.ack_losses(1, dropped + 5)  # never below 0
    re = Outbox(FileStore(d), max_bytes=256, reserve_bytes=64)
    assert (re.unacked_lost, re.unacked_dropped) == (lost - 1, 0)
    for k in re.keys():  # every message delivered: the log compacts, the losses stay
        re.ack(*k)
    re = Outbox(FileStore(d), max_bytes=256, reserve_bytes=64)
    assert re.keys() == [] and (re.unacked_lost, re.unacked_dropped) == (lost - 1, 0)


def test_ram_holds_an_index_and_delivery_reads_the_log():
    d = tmpdir("ob11")
    st = FileStore(d)
    ob = Outbox(st, max_bytes=4096)
    for i in range(1, 4):
        assert ob.append(5, i, 1, 0, _msg(i))
    # no message bytes in RAM: each entry holds its record's offset in the log
    assert all(isinstance(e[4], int) for e in ob.entries)
    assert [bytes(ob.message(e)) for e in ob.entries] == [_msg(1), _msg(2), _msg(3)]
    ob.ack(5, 2)
    assert [bytes(ob.message(e)) for e in ob.entries] == [_msg(1), _msg(3)]
    # a log that no longer holds what the index says gives nothing (counted), never garbage
    errs = ob.store_errors
    st.write("outbox", b"\x00" * st.size("outbox"))
    first = ob.entries[0]
    assert ob.message(first) is None and ob.store_errors == errs + 1
    # ... and that entry is gone, counted as a lost safety message (it can never be sent)
    assert ob.keys() == [(5, 3)] and (ob.lost_safety, ob.unacked_lost) == (1, 1)


def test_a_record_corrupted_on_flash_is_counted_lost_and_blocks_nothing():
    """One message's record on flash no longer holds what the index says (a bit flipped in
    its message number): that message can never be sent, so it is dropped and counted
    (never sent as another message, never left in front of the others); the messages
    behind it are delivered, and after the next write and a reboot the log holds them and
    the loss counter."""
    d = tmpdir("ob13")
    st = FileStore(d)
    ob = Outbox(st, max_bytes=4096)
    for i in range(1, 5):
        assert ob.append(8, i, 1, 0 if i == 2 else 1, _msg(i))
    data = bytearray(st.read("outbox"))
    at = ob.entries[1][4] + 9  # message 2's seq in its header (a safety message)
    data[at] ^= 0x01
    st.write("outbox", bytes(data))
    got = []
    for e in list(ob.entries):
        m = ob.message(e)
        if m is not None:
            got.append(bytes(m))
    assert got == [_msg(1), _msg(3), _msg(4)]
    assert ob.keys() == [(8, 1), (8, 3), (8, 4)]
    assert (ob.lost_safety, ob.unacked_lost, ob.dropped) == (1, 1, 0)
    assert ob.append(8, 5, 1, 1, _msg(5))
    re = Outbox(FileStore(d), max_bytes=4096)
    assert re.keys() == [(8, 1), (8, 3), (8, 4), (8, 5)] and re.unacked_lost == 1
    assert [bytes(re.message(e)) for e in re.entries] == [_msg(i) for i in (1, 3, 4, 5)]


class _ReadFails(FileStore):
    def read_at(self, name, pos, n):
        raise OSError(5)


def test_a_read_that_fails_keeps_the_message_for_the_next_try():
    d = tmpdir("ob14")
    ob = Outbox(FileStore(d), max_bytes=4096)
    assert ob.append(9, 1, 1, 0, _msg(1))
    bad = Outbox(_ReadFails(d), max_bytes=4096)
    assert bad.message(bad.entries[0]) is None and bad.store_errors == 1
    assert bad.keys() == [(9, 1)] and bad.lost_safety == 0  # a flash error is not a loss
    assert bytes(ob.message(ob.entries[0])) == _msg(1)


class _TearsOneAppend(FileStore):
    """A store whose n-th append writes half its record and fails (a flash error), then
    works again."""

    def __init__(self, root, n):
        FileStore.__init__(self, root)
        self.n = n

    def append(self, name, data):
        self.n -= 1
        if self.n == 0:
            FileStore.append(self, name, data[: len(data) // 2])
            raise OSError(5)
        FileStore.append(self, name, data)


def test_a_failed_append_keeps_the_message_in_ram_and_the_next_write_repairs_the_log():
    d = tmpdir("ob12")
    ob = Outbox(_TearsOneAppend(d, 2), max_bytes=4096)
    for i in range(1, 5):
        assert ob.append(6, i, 1, 0, _msg(i))
    assert ob.store_errors == 1
    assert [bytes(ob.message(e)) for e in ob.entries] == [_msg(i) for i in range(1, 5)]
    # the torn record was rewritten away: after a reboot every message is there, in order
    re = Outbox(FileStore(d), max_bytes=4096)
    assert re.keys() == [(6, i) for i in range(1, 5)]
    assert [bytes(re.message(e)) for e in re.entries] == [_msg(i) for i in range(1, 5)]
