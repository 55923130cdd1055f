"""docs/security.md claims only tests that exist: every `path::test` it names (and every
`::test` following a path in the same cell) is a test function in that file."""

import re

from conftest import ROOT


def test_every_test_named_in_the_threat_model_exists():
    text = (ROOT / "docs" / "security.md").read_text()
    missing = []
    n = 0
    for cell in re.split(r"[|\n]", text):
        path = None
        for m in re.finditer(r"`((?:host_tests/)?[\w/]*test_\w+\.py)?(::(\w+))?", cell):
            if m.group(1):
                path = m.group(1)
            name = m.group(3)
            if not name or not path:
                continue
            p = ROOT / path if path.startswith("host_tests/") else next(ROOT.joinpath("host_tests").rglob(path), None)
            n += 1
            if p is None or not p.exists() or not re.search(r"^def %s\(" % name, p.read_text(), re.M):
                missing.append("%s::%s" % (path, name))
    assert n > 20 and not missing, missing
