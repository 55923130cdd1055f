"""The little test vocabulary portable tests may use (no pytest on MicroPython)."""


def raises(exc_type, fn, *args, **kwargs):
    """Call fn and return the exception it raised; fail if it raised nothing or another type."""
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        return e
    raise AssertionError("%s not raised by %r" % (exc_type.__name__, fn))


def tmpdir(tag):
    """A fresh, empty folder under /tmp that works on both interpreters."""
    import os

    try:
        pid = os.getpid()
    except AttributeError:
        import random

        pid = random.getrandbits(30)
    base = "/tmp/gasguard-test-%s-%d" % (tag, pid)
    _rmtree(base)
    os.mkdir(base)
    return base


def _rmtree(path):
    import os

    try:
        names = os.listdir(path)
    except OSError:
        return
    for n in names:
        p = path + "/" + n
        try:
            os.remove(p)
        except OSError:
            _rmtree(p)
    os.rmdir(path)


def allocated(fn, *args):
    """Heap bytes fn(*args) allocates (GC off meanwhile; 0 where gc.mem_alloc is missing,
    i.e. on CPython). Loop with `while` inside fn: a `for ... in range()` allocates its
    iterator."""
    import gc

    if not hasattr(gc, "mem_alloc"):
        fn(*args)
        return 0
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        fn(*args)
        return gc.mem_alloc() - before
    finally:
        gc.enable()


def full_heap_lockable():
    """True where the heap can be locked (MicroPython); CPython has no heap to lock."""
    try:
        from micropython import heap_lock  # noqa: F401
    except ImportError:
        return False
    return True


def raised_under_full_heap(fn):
    """The exception fn() lets out while no heap is left at all (heap locked: every
    allocation fails), or None. MicroPython only (see full_heap_lockable). No arguments:
    a call with *args would itself allocate under the lock."""
    from micropython import heap_lock, heap_unlock

    err = None
    heap_lock()
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the point is what escapes
        err = e
    heap_unlock()
    return err
