"""A real PostgreSQL server for the tests: initdb into a temporary folder, start it on a
free loopback port, stop and delete it afterwards.

Debian's postgresql package puts the server binaries in /usr/lib/postgresql/<ver>/bin
(the Makefile's `postgres` target installs it when root and missing). The server refuses to
run as root, so under root it runs as the `postgres` system user the package creates.
Without the package the PostgreSQL tests skip with a message, except under CI (CI=true or
GASGUARD_REQUIRE_POSTGRES=1), where that is a failure.
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid

import pytest

from reporting_fixtures import free_port


def pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    exe = found[-1] if found else shutil.which("initdb")
    if exe is None:
        msg = ("PostgreSQL is not installed (Debian: apt-get install -y postgresql, or `make "
               "postgres` as root); PostgreSQL tests skipped")
        if os.environ.get("CI") == "true" or os.environ.get("GASGUARD_REQUIRE_POSTGRES") == "1":
            pytest.fail(msg + " -- but this is CI")
        pytest.skip(msg)
    return os.path.dirname(exe)


class Postgres:
    def __init__(self):
        self.bin = pg_bin()
        self.dir = tempfile.mkdtemp(prefix="gg-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.user = "gasguard"
        self.demote = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)

            def demote():
                os.setgid(pw.pw_gid)
                os.setuid(pw.pw_uid)

            self.demote = demote

    def _run(self, *argv):
        r = subprocess.run(argv, capture_output=True, text=True, preexec_fn=self.demote,
                           cwd=self.dir, timeout=120)
        if r.returncode:
            raise AssertionError("%s failed: %s" % (argv[0], (r.stdout + r.stderr)[-1500:]))

    def start(self):
        self._run(os.path.join(self.bin, "initdb"), "-D", self.data, "-U", self.user,
                  "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "-N")
        self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-w", "-t", "60", "-l",
                  os.path.join(self.dir, "server.log"), "-o",
                  "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
                  % (self.port, self.dir), "start")
        return self

    def url(self, db="postgres"):
        return "postgresql://%s@127.0.0.1:%d/%s" % (self.user, self.port, db)

    def new_database(self):
        import psycopg

        name = "t_" + uuid.uuid4().hex[:10]
        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute("CREATE DATABASE %s" % name)
        return self.url(name)

    def stop(self):
        try:
            self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", "immediate",
                      "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres():
    pg = Postgres().start()
    yield pg
    pg.stop()
