"""Host tools for gasguard. The firmware's version is the tools' version."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
FIRMWARE = ROOT / "firmware"
BOARDS = ROOT / "boards"


def _firmware_version():
    text = (FIRMWARE / "gasguard" / "__init__.py").read_text()
    return re.search(r'^VERSION = "([^"]+)"', text, re.M).group(1)


VERSION = _firmware_version()
