"""Starting `media-gateway up` as a real subprocess, the way an operator would."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from media_gateway.core.settings import SERVICE_NAMES
from tests.support import free_port

CLI = shutil.which("media-gateway") or str(Path(sys.executable).with_name("media-gateway"))


@dataclass
class StackProcess:
    data_dir: Path
    ports: dict[str, int]
    embedded_ports: dict[str, int]
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[str] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-up.log"

    @classmethod
    def fresh(cls, data_dir: Path, extra_env: dict[str, str] | None = None) -> StackProcess:
        return cls(
            data_dir=data_dir,
            ports={name: free_port() for name in SERVICE_NAMES},
            embedded_ports={"postgres": free_port(), "redis": free_port()},
            extra_env=extra_env or {},
        )

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MG_")}
        env["MG_DATA_DIR"] = str(self.data_dir)
        env["MG_LOG_LEVEL"] = "INFO"
        # The demo catalog has its own test; elsewhere it would only slow start-up checks down.
        env["MG_INGESTION__DEMO_ON_START"] = "false"
        env["MG_EMBEDDED__POSTGRES_PORT"] = str(self.embedded_ports["postgres"])
        env["MG_EMBEDDED__REDIS_PORT"] = str(self.embedded_ports["redis"])
        for name, port in self.ports.items():
            env[f"MG_PORTS__{name.upper()}"] = str(port)
        env.update(self.extra_env)
        return env

    def start(self, *args: str) -> None:
        """`media-gateway up`, or another subcommand given as `args`."""
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [CLI, *(args or ("up",))], env=self.env(), stdout=log, stderr=subprocess.STDOUT, text=True
            )

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def wait_ready(self, timeout: float = 90.0, services: tuple[str, ...] = SERVICE_NAMES) -> float:
        """Seconds until every service answers 200 on /health/ready."""
        assert self.process is not None
        started = time.perf_counter()
        pending = set(services)
        with httpx.Client(timeout=2.0) as client:
            while pending:
                if self.process.poll() is not None:
                    raise AssertionError(f"`up` exited with {self.process.returncode}:\n{self.log()}")
                if time.perf_counter() - started > timeout:
                    raise AssertionError(f"not ready after {timeout}s: {sorted(pending)}\n{self.log()}")
                for service in sorted(pending):
                    try:
                        if client.get(self.url(service) + "/health/ready").status_code == 200:
                            pending.discard(service)
                    except httpx.HTTPError:
                        pass
                if pending:
                    time.sleep(0.05)
        return time.perf_counter() - started

    def descendants(self) -> list[psutil.Process]:
        assert self.process is not None
        return psutil.Process(self.process.pid).children(recursive=True)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""
