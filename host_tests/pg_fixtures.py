"""A real PostgreSQL server for the tests (gasguard_tools.notify.pgserver), started once per
module on a free loopback port and deleted afterwards.

Debian's postgresql package puts the server binaries in /usr/lib/postgresql/<ver>/bin
(the Makefile's `postgres` target installs it when root and missing). Without the package
the PostgreSQL tests skip with a message, except under CI (CI=true or
GASGUARD_REQUIRE_POSTGRES=1), where that is a failure.
"""

import os

import pytest

from gasguard_tools.notify import pgserver


def pg_bin():
    found = pgserver.find_bin()
    if found is None:
        msg = ("PostgreSQL is not installed (Debian: apt-get install -y postgresql, or `make "
               "postgres` as root); PostgreSQL tests skipped")
        if os.environ.get("CI") == "true" or os.environ.get("GASGUARD_REQUIRE_POSTGRES") == "1":
            pytest.fail(msg + " -- but this is CI")
        pytest.skip(msg)
    return found


@pytest.fixture(scope="module")
def postgres():
    pg = pgserver.TempPostgres(pg_bin()).start()
    yield pg
    pg.stop()
