"""A throw-away PostgreSQL server for the tests: Debian's binaries (``make postgres``), ``initdb`` in a
temporary folder, trust authentication, a Unix socket in that folder and no TCP port at all.

PostgreSQL refuses to run as root, so as root (containers, CI) the server runs as ``nobody``
(``setpriv``), in a folder that user owns; otherwise as the caller. Starting and stopping are
bounded (``pg_ctl -w -t``); the server is stopped with ``pg_ctl stop -m immediate`` and its folder
removed however the ``with`` block ends.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SECONDS = 60  # the most a start or a stop may take
SUPERUSER = "postgres"


def bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with ``initdb``, else PATH's, else None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.parent.name)])
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


@dataclass(frozen=True)
class Server:
    folder: Path  # the data folder is folder/data; the socket lives in folder itself
    bin: Path
    prefix: tuple[str, ...]  # runs a command as the server's user

    def url(self, database: str, driver: str = "postgresql+psycopg2") -> str:
        """SQLAlchemy's URL of ``database`` over the server's socket."""
        return f"{driver}://{SUPERUSER}@/{database}?host={self.folder}"

    def run(self, *args: str, timeout: float = SECONDS + 30) -> str:
        """A PostgreSQL program as the server's user; its output (an error says what it printed)."""
        done = subprocess.run([*self.prefix, str(self.bin / args[0]), *args[1:]], cwd=self.folder,
                              env={"PATH": os.defpath, "LC_ALL": "C"}, capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode != 0:
            log = self.folder / "server.log"
            raise RuntimeError(f"{args[0]} exited with {done.returncode}:\n{done.stdout}{done.stderr}"
                               + (log.read_text(errors="replace")[-3000:] if log.exists() else ""))
        return done.stdout

    def pg_ctl(self, *args: str) -> str:
        """``pg_ctl`` on the server's data folder, waiting at most SECONDS."""
        return self.run("pg_ctl", "-D", str(self.folder / "data"), "-w", "-t", str(SECONDS), *args)

    def stop(self) -> None:
        """``pg_ctl stop -m immediate``; an error only if a server is still running."""
        try:
            self.pg_ctl("-m", "immediate", "stop")
        except RuntimeError:
            if (self.folder / "data" / "postmaster.pid").exists():
                raise

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        self.run("createdb", "-h", str(self.folder), "-U", SUPERUSER, name)
        return self.url(name)


def _as_unprivileged(folder: Path) -> tuple[str, ...]:
    """As root: give ``folder`` to ``nobody`` and return the command prefix that runs as it."""
    if os.geteuid() != 0:
        return ()
    user = pwd.getpwnam("nobody")
    os.chown(folder, user.pw_uid, user.pw_gid)
    if shutil.which("setpriv"):
        return ("setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups")
    return ("runuser", "-u", user.pw_name, "--")


@contextmanager
def server(binaries: Path) -> Iterator[Server]:
    """A running server; stopped (immediate mode) and removed when the block ends."""
    folder = Path(tempfile.mkdtemp(prefix="pgtest-"))  # short: a socket path has at most 107 bytes
    started = False
    try:
        srv = Server(folder, binaries, _as_unprivileged(folder))
        srv.run("initdb", "-D", str(folder / "data"), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8",
                "--no-locale", "--no-sync")
        with open(folder / "data" / "postgresql.conf", "a") as conf:  # nbgrader's files are the server's own
            conf.write(f"listen_addresses = ''\nunix_socket_directories = '{folder}'\nfsync = off\n"
                       "synchronous_commit = off\nfull_page_writes = off\n")
        started = True
        srv.pg_ctl("-l", str(folder / "server.log"), "start")
        yield srv
    finally:
        try:
            if started:
                srv.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
