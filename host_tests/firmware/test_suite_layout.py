"""The test suite's own layout (host_tests/README.md, issue 11 item 5): every CPython test in
a topic folder the README lists, file names unique across folders (pytest imports them by
basename), and no test file importing another test file but one of portable/ (what several
test files share lives in fixtures/, or in portable/ for the portable suite)."""

import ast
import re

from conftest import ROOT

HOST = ROOT / "host_tests"
NOT_TOPICS = {"portable", "fixtures", "drivers", "board_fakes"}


def _test_files():
    return sorted(HOST.rglob("test_*.py"))


def test_no_test_file_sits_outside_a_folder():
    assert sorted(p.name for p in HOST.glob("test_*.py")) == []


def test_every_topic_folder_is_in_the_readme():
    listed = set(re.findall(r"^\| `(\w+)/` \|", (HOST / "README.md").read_text(), re.M))
    folders = {p.parent.name for p in _test_files() if p.parent != HOST} - NOT_TOPICS
    assert folders - listed == set(), "add the folder to host_tests/README.md"
    assert listed - folders == set(), "host_tests/README.md lists a folder with no tests"


def test_test_file_names_are_unique():
    seen = {}
    for p in _test_files():
        seen.setdefault(p.name, []).append(str(p.relative_to(HOST)))
    assert {n: ps for n, ps in seen.items() if len(ps) > 1} == {}


def test_a_test_file_imports_no_other_test_file_but_portable_ones():
    where = {p.stem: p.parent for p in _test_files()}
    wrong = []
    for p in _test_files():
        for node in ast.walk(ast.parse(p.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for n in names:
                if n in where and where[n] != HOST / "portable":
                    wrong.append("%s imports %s" % (p.relative_to(HOST), n))
    assert wrong == []
