"""A throwaway PostgreSQL cluster for the test suite (initdb + pg_ctl, loopback, free port).

``python -m tests.pgcluster -- CMD…`` starts a cluster, exports ``CARPETA_TEST_PG_DSN`` to CMD
and always stops the cluster afterwards, whatever CMD does. The test suite's conftest uses
the same class when run without it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise RuntimeError(f"{name} not found: install PostgreSQL 15 server binaries")


class PgCluster:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="carpeta-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user = "carpeta"
        self._started = False

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def _run_as(self) -> dict[str, object]:
        # initdb refuses to run as root; drop to "nobody"-like postgres user when root.
        if os.geteuid() != 0:
            return {}
        import pwd

        for name in ("postgres", "nobody"):
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            return {"user": entry.pw_uid, "group": entry.pw_gid}
        raise RuntimeError("running as root and no unprivileged user for PostgreSQL")

    def start(self) -> None:
        extra = self._run_as()
        subprocess.run(
            [
                _binary("initdb"),
                "-D",
                str(self.data),
                "-U",
                self.user,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            **extra,  # type: ignore[arg-type]
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200 -c shared_buffers=128MB"
        )
        subprocess.run(
            [
                _binary("pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.root / "log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=True,
            capture_output=True,
            **extra,  # type: ignore[arg-type]
        )
        self._started = True
        self._extra = extra

    def stop(self) -> None:
        if self._started:
            subprocess.run(
                [_binary("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                check=False,
                capture_output=True,
                **self._extra,  # type: ignore[arg-type]
            )
            self._started = False
        shutil.rmtree(self.root, ignore_errors=True)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("usage: python -m tests.pgcluster -- CMD ...", file=sys.stderr)
        return 2
    cluster = PgCluster()
    cluster.start()
    print(f"PostgreSQL test cluster on 127.0.0.1:{cluster.port}", file=sys.stderr)
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: object) -> None:
        if child is not None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        child = subprocess.Popen(argv, env={**os.environ, "CARPETA_TEST_PG_DSN": cluster.dsn})
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                time.sleep(0.1)
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
