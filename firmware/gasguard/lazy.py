"""Code that is in the heap only while it runs: load, use, release (docs/heap-budget.md).

From .mpy files a module's bytecode and globals live in the heap for as long as the module
is referenced. What a device needs only now and then (the identity store, the active
identifier's registration and heartbeats) is kept *parked*: a Parked object holds the
instance's attributes as plain data, and each method call imports the class, rebuilds the
instance around that data, runs the method, keeps the (possibly changed) attributes and
releases the module again. Interned names (qstrs) stay after a release; bytecode, function
objects and module dicts are freed (measured in host_tests/heap/test_heap_budget.py).

Never used on the alarm path: what samples, alarms and drives the relay or closes an
interlock is imported at boot and stays resident. A MemoryError while loading parked code
propagates to the caller (a poller or a console verb), which the app counts; the alarm loop
goes on.
"""

import gc
import sys

# What this module loads by name (so `gasguard package` puts it in the deploy sets).
PARKED = ("identity", "identifier", "active_id", "commands")

# Code needed only to build a device or to check a config (CFG): released once the device is
# assembled (after_boot(), called by main.py) and after each console request. Only modules
# whose objects do not outlive the call belong here: no classes whose instances are kept,
# no exception classes of their own (a re-import would make a second, different class).
BOOT_ONLY = ("profiles", "valve_cfg", "boot_select", "config_write", "calibration", "devices",
             "flash_config", "report_cfg", "sensors", "link_cfg", "boot",
             "validate", "modbus")

_depth = [0]  # nested parked calls: release only when the outermost one ends
_pending = []  # modules to release then


def release(*names):
    """Forget gasguard.<name> modules so their heap can be collected. Returns bytes freed."""
    if _depth[0]:
        for n in names:
            if n not in _pending:
                _pending.append(n)
        return 0
    mods = sys.modules
    pkg = mods.get("gasguard")
    before = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    for n in names:
        # Set, then pop: an import that failed (a MemoryError while loading, the usual
        # reason to release a module that is not loaded) leaves its half-built module in
        # the slot of sys.modules it was removed from (MicroPython's map removal keeps the
        # value, reachable until the slot is reused); dict pop clears it. Measured:
        # docs/heap-budget.md, "A failed load is not held".
        k = "gasguard." + n
        try:
            mods[k] = None
            mods.pop(k)
        except MemoryError:  # a new key the table could not grow for: nothing held it then
            pass
        # `import gasguard.x` binds x on the package too; looked up, not tried: a release
        # runs when the heap is tightest, where a raised exception is a MemoryError
        if pkg is not None and n in pkg.__dict__:
            delattr(pkg, n)
    gc.collect()
    after = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    return before - after


_PRIMED = []  # a priming that failed: its exception, for the device's error count


def prime():
    """Intern, at the very start of boot, the names of the code the device loads at boot:
    gasguard.names (generated per deploy set by `gasguard flash` and the
    bench from the compiled modules, gasguard_tools.prime) holds them in its name table;
    importing it interns them all, then it is released (its code goes, the names stay, as
    every loaded module's do). So the interpreter's name pools grow while the heap is still
    empty, not later as one contiguous block in a fragmented heap (docs/heap-budget.md,
    "Interned names"). Only names the device interns anyway: nothing more is kept.
    Never fatal: without the module (a source install, a frozen image, the host) nothing
    happens; any other failure (a MemoryError) is kept for the device's error count
    (DeviceApp) and boot goes on."""
    try:
        __import__("gasguard.names")
    except ImportError:
        pass
    except Exception as e:  # MemoryError, a damaged file: boot goes on without it
        _PRIMED.append(e)
    release("names")


def after_boot():
    """Release the boot-only code; returns the bytes freed."""
    return release(*BOOT_ONLY)


def load(name):
    """Import gasguard.<name> and return the module."""
    __import__("gasguard." + name)
    return sys.modules["gasguard." + name]


class Parked:
    """An instance of gasguard.<module>.<cls> whose code is loaded only during a call.

    state: the instance's attributes (plain data: no objects of the parked module);
    releases: the modules to forget after each call (the module itself and what only it uses).
    """

    def __init__(self, module, cls, state, releases):
        self._module = module
        self._cls = cls
        self.state = state
        self._releases = releases

    @classmethod
    def build(cls, module, clsname, args, releases, kind=None):
        """Construct the real object once (its __init__ validates), then park it."""
        p = (kind or cls)(module, clsname, None, releases)
        p._run(lambda c: c(*args), True)
        return p

    def _run(self, fn, construct=False):
        obj = c = None
        _depth[0] += 1
        try:
            c = getattr(load(self._module), self._cls)
            if construct:
                obj = fn(c)
                return None
            obj = object.__new__(c)
            for k, v in self.state.items():
                setattr(obj, k, v)
            return fn(obj)
        finally:
            if obj is not None:
                # kept even when the method raised: what it changed before is real (as
                # on a resident object), e.g. a sequence block reserved on flash
                self.state = obj.__dict__
            obj = c = None
            _depth[0] -= 1
            if not _depth[0]:
                names = tuple(self._releases) + tuple(_pending)
                del _pending[:]
                release(*names)

    def call(self, name, *args):
        """Run one method (or read one attribute) of the parked object."""

        def run(obj):
            v = getattr(obj, name)
            return v(*args) if callable(v) else v

        return self._run(run)

    def __getattr__(self, name):
        if name[:1] == "_":
            raise AttributeError(name)
        st = self.state
        if st is not None and name in st:
            return st[name]
        return lambda *args: self.call(name, *args)


# ---- the parked parts of a device -------------------------------------------------------

_IDENTITY = ("identity", "identifier", "id_admin", "canon")


class ParkedIdentity(Parked):
    """gasguard.identity.IdentityStore(store), parked: ID?/PROV/STATUS?, the boot-time
    identity_info()/device_key() and the active identifier's sequence reservations load it
    for the call. One object per device, so the cached records and sequence block are kept."""

    def __init__(self, store):
        Parked.__init__(self, "identity", "IdentityStore",
                        {"store": store, "_rec": None, "_plat": None}, _IDENTITY)

    # What IdentityStore answers from its cached record (_rec, read once at boot) is answered
    # here from the same cache, without loading the identity stack: the console's HELLO,
    # ID? and STATUS? ask for it at every request. Uncached, the real method runs.
    @property
    def locked(self):
        r = self.state.get("_rec")
        return self.call("locked") if r is None else r.get("locked") is True

    def load(self):
        r = self.state.get("_rec")
        if r is None:
            return self.call("load")
        r = dict(r)
        r.pop("locked", None)
        return r


class ParkedActiveId(Parked):
    """gasguard.active_id.ActiveId, parked: poll() decides from its plain state whether a
    registration or a heartbeat is due and only then loads the code (with the identity).
    A downlink (on_message) loads it too. Its attributes (registered, counters, ...) read
    from the state. Same decisions as ActiveId.poll(): host_tests/heap/test_heap_budget.py."""

    def __getattr__(self, name):
        st = self.state
        if name[:1] != "_" and st is not None and name in st:
            return st[name]
        raise AttributeError(name)

    def poll(self):
        st = self.state
        clock = st["clock"]
        now = clock.ticks_ms()
        if not st["registered"]:
            due = st["_next_reg"]
        else:
            due = st["_last_hb"]
            if due is not None:
                due = clock.ticks_add(due, st["hb_s"] * 1000)
        if due is not None and clock.ticks_diff(now, due) < 0:
            return None
        return self.call("poll")

    def on_message(self, payload):
        return self.call("on_message", payload)


class ParkedCommands(Parked):
    """gasguard.commands.Commands(*args), parked, and built on the first command, not at
    boot: until then nothing of it is in the heap (its counter file is read then, as its
    constructor did at boot) and it has accepted and rejected nothing. A command that
    finds no room to load it raises MemoryError to the reporter's MQTT callback, which
    counts it (rx_dropped; docs/protocol.md)."""

    def __init__(self, args):
        Parked.__init__(self, "commands", "Commands", None, ("commands",))
        self._args = args

    def __getattr__(self, name):
        if self.state is None and (name == "accepted" or name == "rejected"):
            return 0
        return Parked.__getattr__(self, name)

    def handle(self, payload, retained=False):
        if self.state is None:
            self._run(self._build, True)
        return self.call("handle", payload, retained)

    def _build(self, c):
        return c(*self._args)


def parked_active_id(args):
    return Parked.build("active_id", "ActiveId", args, ("active_id",) + _IDENTITY,
                        ParkedActiveId)
