"""Recommendations, similar titles, the personalization score and the profile, over HTTP."""

from __future__ import annotations

import uuid

from tests.sona.conftest import SonaWorld


async def test_cold_start_with_auth_down_is_trending_and_diverse(sona_world: SonaWorld) -> None:
    w = sona_world
    _, headers = w.user()  # auth is unreachable from this SONA
    found = await w.recommend(headers, limit=6)
    assert found["cold_start"] is True
    assert w.keys(found)[0] == "P"
    assert found["recommendations"][0]["sources"] == ["trending"]
    assert "Popular in US" in found["recommendations"][0]["explanation"]
    # Diversified: the two near-identical Moon Garden cuts are not served back to back.
    keys = w.keys(found)
    if "D1" in keys and "D2" in keys:
        assert abs(keys.index("D1") - keys.index("D2")) > 1


async def test_a_watched_title_brings_its_directors_other_title_above_an_unrelated_one(
    sona_world: SonaWorld,
) -> None:
    w = sona_world
    await w.train()
    _, headers = w.user()
    await w.send(headers, w.watched("A"), {"type": "rated", "content_id": w.ids["A"], "rating": 5})
    await w.send(headers, {"type": "dismissed", "content_id": w.ids["Q"]})
    found = await w.recommend(headers, limit=20)
    assert found["cold_start"] is False
    keys = w.keys(found)
    assert "B" in keys, keys
    assert "C" not in keys or keys.index("B") < keys.index("C")
    b = found["recommendations"][keys.index("B")]
    assert "graph" in b["sources"], b
    assert "Mara Quell" in b["explanation"], b
    if "C" in keys:
        assert b["score"] > found["recommendations"][keys.index("C")]["score"]


async def test_co_viewing_surfaces_what_others_watched_next(sona_world: SonaWorld) -> None:
    w = sona_world
    for _ in range(3):
        _, viewer = w.user()
        await w.send(viewer, w.watched("X"), w.watched("Y"))
    await w.train()
    _, headers = w.user()
    await w.send(headers, w.watched("X"), {"type": "dismissed", "content_id": w.ids["Q"]})
    found = await w.recommend(headers, limit=5)
    keys = w.keys(found)
    assert "Y" in keys, keys
    y = found["recommendations"][keys.index("Y")]
    assert {"graph", "collaborative"} <= set(y["sources"]), y
    assert "iewers who liked Midnight Bakery also liked this" in y["explanation"], y


async def test_watched_and_dismissed_titles_are_never_recommended(sona_world: SonaWorld) -> None:
    w = sona_world
    await w.train()
    _, headers = w.user()
    await w.send(
        headers,
        w.watched("A"),
        {"type": "progress", "content_id": w.ids["B"], "position_seconds": 600, "duration_seconds": 6000},
        {"type": "dismissed", "content_id": w.ids["P"]},
    )
    found = await w.recommend(headers, limit=100)
    keys = w.keys(found)
    assert keys
    assert not {"A", "B", "P"} & set(keys)
    everything = await w.recommend(headers, limit=100, exclude_watched=False)
    assert "P" not in w.keys(everything)  # a dismissal is never undone by the flag
    assert {"A", "B"} & set(w.keys(everything))


async def test_mmr_demotes_a_near_duplicate(sona_world: SonaWorld) -> None:
    w = sona_world
    await w.train()
    _, headers = w.user()
    await w.send(headers, w.watched("M0"), {"type": "rated", "content_id": w.ids["M0"], "rating": 5})
    await w.send(headers, {"type": "dismissed", "content_id": w.ids["P"]})
    found = await w.recommend(headers, limit=8)
    keys = w.keys(found)
    scores = [r["score"] for r in found["recommendations"]]
    assert {"D1", "D2"} <= set(keys), keys
    first, second = sorted((keys.index("D1"), keys.index("D2")))
    # The second cut is more relevant than something MMR placed before it.
    assert second > first + 1, keys
    assert any(scores[i] < scores[second] for i in range(first + 1, second)), (keys, scores)


async def test_region_and_platform_filters(sona_world: SonaWorld) -> None:
    w = sona_world
    await w.train()
    _, headers = w.user()
    await w.send(headers, w.watched("S"), w.watched("R"))
    gb = await w.recommend(headers, region="GB", limit=10)
    assert w.keys(gb) == ["H"]
    assert gb["recommendations"][0]["content"]["region"] == "GB"
    assert [o["platform"] for o in gb["recommendations"][0]["content"]["offers"]] == ["tubi"]
    pluto = await w.recommend(headers, platforms=["pluto_tv"], limit=10)
    assert w.keys(pluto) == ["G"]
    context = await w.recommend(
        headers, limit=10, context={"time_of_day": "late_night", "device_type": "mobile", "mood": "happy"}
    )
    assert context["recommendations"]
    assert any("context" in r["sources"] for r in context["recommendations"])


async def test_similar_titles(sona_world: SonaWorld) -> None:
    w = sona_world
    await w.train()
    _, headers = w.user()
    response = await w.client.get(
        f"/api/v1/content/{w.ids['A']}/similar", params={"limit": 5}, headers=headers
    )
    assert response.status_code == 200, response.text
    similar = [w.key_of(s["content"]["id"]) for s in response.json()["similar"]]
    assert similar[0] == "B"
    assert "A" not in similar
    assert "graph" in response.json()["similar"][0]["sources"]
    missing = await w.client.get(f"/api/v1/content/{uuid.uuid4()}/similar", headers=headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_personalization_score_varies_with_content_and_user(sona_world: SonaWorld) -> None:
    w = sona_world
    await w.train()
    _, drama = w.user()
    await w.send(drama, w.watched("A"), w.watched("S"))
    _, fantasy = w.user()
    await w.send(fantasy, w.watched("M0"), w.watched("F"))
    unknown = str(uuid.uuid4())
    ids = [w.ids["B"], w.ids["C"], w.ids["E"], unknown]
    first = await w.client.post("/api/v1/personalization/score", json={"content_ids": ids}, headers=drama)
    second = await w.client.post("/api/v1/personalization/score", json={"content_ids": ids}, headers=fantasy)
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    a, b = first.json(), second.json()
    assert set(a["scores"]) == set(ids)
    assert all(0.0 <= s <= 1.0 for s in a["scores"].values())
    assert a["scores"][w.ids["B"]] > a["scores"][w.ids["C"]]
    assert b["scores"][w.ids["E"]] > b["scores"][w.ids["B"]]
    assert a["scores"] != b["scores"]
    assert a["scores"][unknown] == 0.0
    assert a["components"][unknown] == {"collaborative": 0.0, "content": 0.0, "graph": 0.0}
    assert set(a["components"][w.ids["B"]]) == {"collaborative", "content", "graph"}
    assert a["weight"] is None
    assert a["experiment"] is None


async def test_profile_reports_affinities_counts_and_cold_start(sona_world: SonaWorld) -> None:
    w = sona_world
    await w.train()
    user_id, headers = w.user()
    empty = (await w.client.get("/api/v1/profile", headers=headers)).json()
    assert empty["cold_start"] == {"cold_start": True, "interactions": 0, "threshold": 1}
    assert empty["genre_affinities"] == []
    assert empty["interaction_counts"] == {}
    await w.send(
        headers,
        {"type": "started", "content_id": w.ids["A"]},
        w.watched("A"),
        w.watched("B"),
        {"type": "rated", "content_id": w.ids["C"], "rating": 1},
        {"type": "watchlist_added", "content_id": w.ids["S"]},
    )
    profile = (await w.client.get("/api/v1/profile", headers=headers)).json()
    assert profile["user_id"] == str(user_id)
    assert profile["genre_affinities"][0]["name"] == "Drama"
    assert profile["genre_affinities"][0]["score"] == 1.0
    assert "Science Fiction" not in [g["name"] for g in profile["genre_affinities"]]
    assert profile["top_people"][0]["name"] == "Mara Quell"
    assert profile["interaction_counts"] == {"started": 1, "completed": 2, "rated": 1, "watchlist_added": 1}
    assert profile["titles"] == 4
    assert profile["cold_start"]["cold_start"] is False
