"""`media-gateway up`: cold and warm start to every service ready, and idle memory of the whole stack.

Baseline, measured in the same run: the embedded PostgreSQL + Valkey started alone (EmbeddedStack), so
the cost of our own layer (imports, migrations, eight apps) is the difference."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.stack import StackProcess
from tests.support import free_port, world_traversable_dir

from media_gateway.core.embedded import EmbeddedStack
from media_gateway.core.settings import Settings


def _tree_pss_mb(pid: int) -> dict[str, float]:
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    by_kind: dict[str, float] = {"python": 0.0, "postgres": 0.0, "valkey": 0.0}
    for proc in procs:
        try:
            # PSS, not RSS: PostgreSQL's backends share their buffers, and RSS would count them N times.
            rss = proc.memory_full_info().pss / 2**20
            name = proc.name()
        except psutil.NoSuchProcess:
            continue
        kind = "postgres" if "postgres" in name else "valkey" if "valkey" in name else "python"
        by_kind[kind] += rss
    by_kind["total"] = sum(by_kind.values())
    return {k: round(v, 1) for k, v in by_kind.items()}


async def _embedded_only() -> dict[str, float]:
    data_dir = world_traversable_dir("mg-bench-embedded-")
    settings = Settings(
        data_dir=data_dir,
        embedded={"postgres_port": free_port(), "redis_port": free_port()},  # type: ignore[arg-type]
    )
    try:
        out = {}
        for phase in ("cold", "warm"):
            started = time.perf_counter()
            stack = EmbeddedStack(settings)
            await stack.start()
            out[f"{phase}_s"] = round(time.perf_counter() - started, 3)
            await stack.stop()
        return out
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    baseline = asyncio.run(_embedded_only())
    base = world_traversable_dir("mg-bench-up-")
    stack = StackProcess.fresh(base / "data")
    results: dict[str, object] = {"baseline_embedded_servers_only": baseline}
    try:
        for phase in ("cold", "warm"):
            started = time.perf_counter()
            stack.start()
            stack.wait_ready(timeout=120)
            results[f"up_{phase}_to_all_ready_s"] = round(time.perf_counter() - started, 3)
            if phase == "warm":
                time.sleep(3)  # idle: let start-up garbage settle
                assert stack.process is not None
                results["idle_pss_mb"] = _tree_pss_mb(stack.process.pid)
            stack.stop()
    finally:
        if stack.process and stack.process.poll() is None:
            stack.stop()
        shutil.rmtree(base, ignore_errors=True)
    results["targets"] = {"cold_s": 10, "warm_s": 5, "idle_pss_mb": 1536}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
