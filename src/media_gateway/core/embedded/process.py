"""Child processes of the embedded servers: spawning them with a parent-death signal (and, as root,
as an unprivileged account), port checks, stopping what an earlier run left behind, and the
start/stop plumbing both servers share.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil

logger = logging.getLogger("media_gateway.embedded")

LOOPBACK = "127.0.0.1"
STOP_TIMEOUT_SEC = 10.0
_POLL_SEC = 0.03
_PR_SET_PDEATHSIG = 1
_MAX_LOG_BYTES = 16 * 1024 * 1024


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be prepared, started or stopped; the message says what to do."""


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
