"""A throwaway PostgreSQL server for the notify tests and benchmark (not for production).

    pg = TempPostgres(bin_dir).start(); url = pg.new_database(); ...; pg.stop()

initdb into a temporary folder, trust authentication for one user, a free loopback port,
fsync off (the data is thrown away). The server refuses to run as root, so under root it
runs as the `postgres` system user that Debian's package creates.
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid

from ..benchkit import free_port


def find_bin():
    """The folder of initdb/pg_ctl (Debian: /usr/lib/postgresql/<version>/bin), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    exe = found[-1] if found else shutil.which("initdb")
    return os.path.dirname(exe) if exe else None


class TempPostgres:
    def __init__(self, bin_dir):
        self.bin = bin_dir
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
            raise RuntimeError("%s failed: %s" % (argv[0], (r.stdout + r.stderr)[-1500:]))

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
