"""Run the portable tests on the MicroPython unix port.

    micropython host_tests/mpyrun.py test_module [test_module ...]

Imports each module (from host_tests/portable on MICROPYPATH), calls every callable
named test_*, prints one line per test and exits 1 if any failed. The same files are
collected by pytest on CPython, so every portable test runs on both interpreters.
"""

import sys
import gc


def run(modname):
    mod = __import__(modname)
    failed = 0
    names = sorted(n for n in dir(mod) if n.startswith("test_"))
    for name in names:
        fn = getattr(mod, name)
        if not callable(fn):
            continue
        gc.collect()
        try:
            fn()
            print("ok   %s.%s" % (modname, name))
        except Exception as e:  # report and go on: one run shows every failure
            failed += 1
            print("FAIL %s.%s: %s: %s" % (modname, name, type(e).__name__, e))
            sys.print_exception(e)
    return len(names), failed


def main():
    total = 0
    bad = 0
    for modname in sys.argv[1:]:
        n, f = run(modname)
        total += n
        bad += f
    print("micropython: %d passed, %d failed" % (total - bad, bad))
    sys.exit(1 if bad or not total else 0)


main()
