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
