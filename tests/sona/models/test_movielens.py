from __future__ import annotations

from pathlib import Path

import pytest

from media_gateway.sona.models.movielens import MovieLensUnavailable, movielens100k_dir, read_movielens100k


def _write(folder: Path, name: str, header: str, rows: list[str]) -> None:
    (folder / name).write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


def test_reads_recbole_atomic_files_with_the_knowledge_graph(tmp_path: Path) -> None:
    folder = movielens100k_dir(tmp_path)
    assert folder == tmp_path / "datasets" / "ml-100k"
    with pytest.raises(MovieLensUnavailable):
        read_movielens100k(folder)
    folder.mkdir(parents=True)
    _write(
        folder,
        "ml-100k.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float",
        ["7\t1\t4\t881250949"],
    )
    _write(
        folder,
        "ml-100k.item",
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq",
        ["1\tToy Story\t1995\tAnimation Children's Comedy", "2\tMystery Film\t\tunknown"],
    )
    _write(folder, "ml-100k.link", "item_id:token\tentity_id:token", ["1\tm.toy"])
    _write(
        folder,
        "ml-100k.kg",
        "head_id:token\trelation_id:token\ttail_id:token",
        [
            "m.toy\tfilm.film.actor\tm.hanks",
            "m.toy\tfilm.film.directed_by\tm.lasseter",
            "m.toy\tfilm.film.subjects\tm.toys",
            "m.lasseter\tfilm.director.film\tm.toy",
        ],
    )
    _write(folder, "ml-100k.user", "user_id:token\tage:token", ["7\t30"])
    data = read_movielens100k(folder)
    assert data.users.tolist() == ["7"]
    assert data.items.tolist() == ["1"]
    assert data.ratings.tolist() == [4.0]
    toy = data.movies["1"]
    assert (toy.title, toy.year, toy.genres) == ("Toy Story", 1995, ["Animation", "Children's", "Comedy"])
    assert (toy.actors, toy.directors, toy.subjects) == (["m.hanks"], ["m.lasseter"], ["m.toys"])
    mystery = data.movies["2"]
    assert (mystery.year, mystery.genres, mystery.directors) == (None, [], [])
