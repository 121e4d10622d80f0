"""A real PostgreSQL server for the tests: Debian's ``postgresql`` package,
started in a temporary folder on a free loopback port, with password
authentication (SCRAM). PostgreSQL refuses to run as root, so as root (CI)
the server runs as the ``postgres`` user that Debian's package creates."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from helpers import free_port

USER = "llmapp"
PASSWORD = "Sup3r-s3cret-pw"


def bin_dir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl`` (Debian keeps them out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class PostgresServer:
    """A running server: ``url(dbname)`` gives a psycopg URL with the password."""

    port: int
    folder: Path
    bin: Path
    as_user: list[str]

    def url(self, dbname: str = "postgres", password: str = PASSWORD) -> str:
        return f"postgresql+psycopg://{USER}:{password}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A new, empty database; returns its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, password=PASSWORD,
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast",
                  "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


def start() -> PostgresServer:
    """initdb a new cluster in a temporary folder and start it.

    Raises:
        RuntimeError: Debian's postgresql package is not installed, or (as
            root) its ``postgres`` user is missing.
    """
    where = bin_dir()
    if where is None:
        raise RuntimeError("PostgreSQL is missing: apt-get install postgresql")
    folder = Path(tempfile.mkdtemp(prefix="llmapp-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError("PostgreSQL refuses to run as root, and there is no "
                               "'postgres' user: apt-get install postgresql") from None
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
        uid, gid = owner.pw_uid, owner.pw_gid
    else:
        uid, gid = os.getuid(), os.getgid()
    (folder / "pw").write_text(PASSWORD + "\n")
    os.chown(folder / "pw", uid, gid)
    server = PostgresServer(free_port(), folder, where, as_user)
    server._run(str(where / "initdb"), "-D", str(folder / "data"), "-U", USER,
                f"--pwfile={folder / 'pw'}", "--auth=scram-sha-256", "-E", "UTF8",
                "--no-locale")
    options = (f"-p {server.port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off")
    server._run(str(where / "pg_ctl"), "-D", str(folder / "data"), "-o", options,
                "-l", str(folder / "server.log"), "-w", "-t", "60", "start")
    return server
