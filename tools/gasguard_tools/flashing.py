"""The board-side steps of `gasguard flash` that keep a device safe across a deploy.

- CHIPS: one table of what differs per ESP32 family member (where the MicroPython image
  goes, which native architecture mpy-cross compiles for).
- backup_records / restore_records: the device's records (identity, calibration, keys,
  counters, event log: everything under :data/, and :config.json) saved to the host before
  `esptool erase-flash` and written back after the new image boots, checked byte for byte.
- copy_with_progress: mpremote's copy, one line per file with its size, as it happens.
- check_files: the files on the board are the ones we built (names and sizes).
- version_on_flash: the version the files on the board hold, read in a fresh import (the
  REPL of a board whose main.py imported the old gasguard still has it in sys.modules).
"""

import hashlib
import json
import os
import shlex
import subprocess
from pathlib import Path

from .runtime import ToolError

# Offsets: MicroPython's own ESP32 port docs (the bootloader sits at 0x1000 on the ESP32 and
# the S2, at 0x0 on the S3 and the RISC-V parts). Architectures: mpy-cross -march.
CHIPS = {
    "esp32": {"offset": "0x1000", "arch": "xtensawin"},
    "esp32s2": {"offset": "0x1000", "arch": "xtensawin"},
    "esp32s3": {"offset": "0x0", "arch": "xtensawin"},
    "esp32c3": {"offset": "0x0", "arch": "rv32imc"},
    "esp32c6": {"offset": "0x0", "arch": "rv32imc"},
}

# what a device keeps on its flash that no deploy can recreate
RECORDS_DIR = "data"
RECORDS_EXTRA = ("config.json",)
LOST_WITHOUT_BACKUP = ("the locked identity, the calibration, the factory and device keys, "
                       "the counters and the event log")

# Board-side listing of the records: names, sizes and a SHA-256 of each file (hashlib is in
# every MicroPython port we deploy to), one JSON line.
LIST_RECORDS = (
    "import os, json\n"
    "try:\n    import hashlib\nexcept ImportError:\n    hashlib = None\n"
    "def _h(p):\n"
    "    if hashlib is None:\n        return None\n"
    "    h = hashlib.sha256()\n"
    "    with open(p, 'rb') as f:\n"
    "        while True:\n"
    "            b = f.read(512)\n"
    "            if not b:\n                break\n"
    "            h.update(b)\n"
    "    return ''.join('%%02x' %% x for x in h.digest())\n"
    "out = {}\n"
    "for p in [%r + '/' + n for n in (os.listdir(%r) if %r in os.listdir() else [])] + %r:\n"
    "    try:\n"
    "        st = os.stat(p)\n"
    "    except OSError:\n        continue\n"
    "    if st[0] & 0x4000:\n        continue\n"
    "    out[p] = [st[6], _h(p)]\n"
    "print('RECORDS ' + json.dumps(out))\n"
) % (RECORDS_DIR, RECORDS_DIR, RECORDS_DIR, list(RECORDS_EXTRA))

LIST_FILES = (
    "import os, json\n"
    "print('FILES ' + json.dumps(dict((n, os.stat(%r + '/' + n)[6]) for n in os.listdir(%r))))\n"
)

# A fresh import of the package from the flash: drop every gasguard module the running
# interpreter holds, then import (what a reset would do, without leaving the REPL).
FRESH_VERSION = (
    "import sys\n"
    "for k in list(sys.modules):\n"
    "    if k == 'gasguard' or k.startswith('gasguard.'):\n"
    "        del sys.modules[k]\n"
    "import gasguard\n"
    "print('VERSION', gasguard.VERSION)\n"
)


LIST_TIMEOUT_S = 20


def script(runner, folder, name, text):
    """A board-side script as a file in the build folder, run with `mpremote run FILE`, so
    the command printed (and in --dry-run) is exactly the command run."""
    path = Path(folder) / name
    if not runner.dry_run:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path


def chip(name):
    try:
        return CHIPS[name]
    except KeyError:
        raise ToolError("unknown chip %r (known: %s)" % (name, ", ".join(CHIPS)))


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _marked(out, mark):
    for line in out.splitlines():
        if line.startswith(mark + " "):
            return json.loads(line[len(mark) + 1:])
    return None


def list_records(runner, mpremote, scripts):
    # a board in the REPL answers in well under a second; one that does not is not there
    out = runner.run(mpremote("run", script(runner, scripts, "list_records.py", LIST_RECORDS)),
                     quiet=True, timeout=LIST_TIMEOUT_S)
    if runner.dry_run:
        return {}
    found = _marked(out, "RECORDS")
    if found is None:
        raise ToolError("the board did not list its records: %r" % out[-300:])
    return found


def backup_records(runner, mpremote, scripts, dest, say):
    """Copy the board's records into dest (a new folder); return {board path: (size, sha)}.
    Raises ToolError when any file does not arrive intact."""
    found = list_records(runner, mpremote, scripts)
    if not runner.dry_run and not found:
        say("no records on the board (a board without the app): nothing to keep")
        return found
    if not runner.dry_run:
        (Path(dest) / RECORDS_DIR).mkdir(parents=True, exist_ok=True)
    names = sorted(found) if found else ["%s/..." % RECORDS_DIR] + list(RECORDS_EXTRA)
    for name in names:
        runner.run(mpremote("fs", "cp", ":" + name, str(Path(dest) / name)))
    if runner.dry_run:
        return found
    for name, (size, sha) in sorted(found.items()):
        local = Path(dest) / name
        if not local.is_file() or local.stat().st_size != size or (sha and _sha256(local) != sha):
            raise ToolError("backup of %s did not arrive intact; nothing was erased" % name)
        say("  kept %-24s %6d B" % (name, size))
    (Path(dest) / "records.json").write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    say("records saved in %s (%d files)" % (dest, len(found)))
    return found


MKDIR_RECORDS = "import os\ntry:\n    os.mkdir(%r)\nexcept OSError:\n    pass\n" % RECORDS_DIR


def restore_records(runner, mpremote, scripts, src, expected, say):
    """Write the backup back onto the (freshly erased) board and check every byte."""
    if not runner.dry_run and not expected:
        return
    runner.run(mpremote("run", script(runner, scripts, "mkdir_records.py", MKDIR_RECORDS)))
    names = sorted(expected) if expected else ["%s/..." % RECORDS_DIR] + list(RECORDS_EXTRA)
    for name in names:
        runner.run(mpremote("fs", "cp", str(Path(src) / name), ":" + name))
    if runner.dry_run:
        return
    back = list_records(runner, mpremote, scripts)
    bad = [n for n, v in expected.items() if list(back.get(n) or ()) != list(v)]
    if bad:
        raise ToolError("restoring the records failed for %s; the backup is kept in %s"
                        % (", ".join(sorted(bad)), src))
    say("records restored and verified (%d files)" % len(expected))


def copy_with_progress(runner, argv, files, say):
    """Run one mpremote copy of many files, printing each file with its size as it goes."""
    sizes = {}
    for f in files:
        sizes[str(f)] = Path(f).stat().st_size if Path(f).exists() else 0
    total = sum(sizes.values())
    say("$ " + " ".join(shlex.quote(str(a)) for a in argv))
    if runner.dry_run:
        return
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # mpremote is Python: line by line, not at exit
    p = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    n = 0
    done = 0
    for line in p.stdout:
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "cp" and parts[1] in sizes:
            n += 1
            done += sizes[parts[1]]
            say("  [%d/%d] %-28s %7d B   (%d of %d B)" % (n, len(files), Path(parts[1]).name,
                                                        sizes[parts[1]], done, total))
    err = p.stderr.read()
    if p.wait() != 0:
        raise ToolError("copy to the board failed (exit %d): %s" % (p.returncode, err[-600:]))


def check_files(runner, mpremote, scripts, folder, files):
    """The board's :folder holds exactly the built files, with their sizes."""
    out = runner.run(mpremote("run", script(runner, scripts, "list_app.py",
                                            LIST_FILES % (folder, folder))), quiet=True)
    if runner.dry_run:
        return
    on_board = _marked(out, "FILES") or {}
    want = {Path(f).name: Path(f).stat().st_size for f in files}
    wrong = sorted(n for n in want if on_board.get(n) != want[n])
    extra = sorted(n for n in on_board if n not in want and (n.endswith(".py") or n.endswith(".mpy")))
    if wrong or extra:
        raise ToolError("the files on the board are not the ones built: %s%s"
                        % (", ".join(wrong) or "-", (" (stale: %s)" % ", ".join(extra)) if extra else ""))


def version_on_flash(runner, mpremote, scripts):
    out = runner.run(mpremote("run", script(runner, scripts, "fresh_version.py", FRESH_VERSION)),
                     quiet=True)
    if runner.dry_run:
        return None
    for line in out.splitlines():
        if line.startswith("VERSION "):
            return line.split(" ", 1)[1].strip()
    raise ToolError("the board could not import the deployed gasguard: %r" % out[-300:])


