"""Host tools for gasguard. The firmware's version is the tools' version.

Where the tools find the firmware, the board files, the schemas and the scenarios: in a
checkout that is the repository itself (firmware/, boards/, docs/); in an installed wheel it
is the copy the build put into the package (gasguard_tools/data/, same layout, see setup.py).
Every tool takes these paths from here, never from __file__ arithmetic of its own.
"""

import os
import re
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent.parent


def _data_root():
    if (_CHECKOUT / "firmware" / "gasguard" / "__init__.py").is_file() \
            and (_CHECKOUT / "tools" / "gasguard_tools").is_dir():
        return _CHECKOUT, True
    return _PACKAGE / "data", False


ROOT, IN_CHECKOUT = _data_root()
FIRMWARE = ROOT / "firmware"
BOARDS = ROOT / "boards"
DOCS = ROOT / "docs"
SCHEMAS = DOCS / "schemas"
SCENARIOS = DOCS / "scenarios"


def work_dir(*parts):
    """A writable folder for build output: build/ in a checkout, the user's cache otherwise
    (an installed package's folder may be read-only)."""
    if IN_CHECKOUT:
        base = ROOT / "build"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gasguard"
    return base.joinpath(*parts)


def scenario_path(name):
    """A scenario as given (a path), else one shipped with the tools, by name with or
    without .csv (`gasguard replay kitchen_leak`)."""
    p = Path(name)
    if p.exists():
        return p
    for cand in (SCENARIOS / p.name, SCENARIOS / (p.name + ".csv")):
        if cand.is_file():
            return cand
    return p


def _firmware_version():
    text = (FIRMWARE / "gasguard" / "__init__.py").read_text()
    return re.search(r'^VERSION = "([^"]+)"', text, re.M).group(1)


VERSION = _firmware_version()
