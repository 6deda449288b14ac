"""A small catalog, ingested through the real ingestion app, and the real SONA app over HTTP.

Titles are designed for the acceptance checks: A and B share a director, C is unrelated, X and Y are
only linked by co-viewing, D1/D2 are near-duplicates next to their sequel M0, G is only on another
platform, H only in another region, P is the most popular title.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from media_gateway.core.settings import Settings
from media_gateway.ingestion.app import create_app as create_ingestion
from media_gateway.ingestion.demo import write_feed_files
from media_gateway.sona.app import create_app as create_sona
from tests.conftest import scratch_database
from tests.fakes.token_issuer import TestTokenIssuer
from tests.support import free_port, serving, world_traversable_dir

ADMIN_TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _title(
    key: str,
    title: str,
    year: int,
    genres: list[str],
    director: str,
    cast: list[str],
    keywords: list[str],
    overview: str,
    popularity: float,
    *,
    runtime: int = 100,
    region: str = "us",
    platform: str = "tubi",
) -> dict[str, Any]:
    return {
        "id": f"sona-{key}",
        "showType": "movie",
        "title": title,
        "overview": overview,
        "releaseYear": year,
        "runtime": runtime,
        "genres": [{"id": g.lower(), "name": g} for g in genres],
        "keywords": keywords,
        "cast": cast,
        "directors": [director],
        "popularity": popularity,
        "rating": 70,
        "streamingOptions": {
            region: [
                {"service": {"id": platform}, "type": "free", "link": f"https://{platform}.example/{key}"}
            ]
        },
    }


MOON = (
    "A girl discovers that the flowers in her grandmother's moonlit garden grant wishes, and must "
    "protect the magical garden from a greedy developer."
)

TITLES: dict[str, dict[str, Any]] = {
    "A": _title(
        "a",
        "Harbor Lights",
        2011,
        ["Drama"],
        "Mara Quell",
        ["Ines Varo", "Tom Adair"],
        ["lighthouse", "family secret"],
        "A lighthouse keeper's daughter uncovers an old family "
        "secret when a storm strands a stranger on the island.",
        20,
    ),
    "B": _title(
        "b",
        "Northern Tide",
        2014,
        ["Drama", "Mystery"],
        "Mara Quell",
        ["Oskar Lind", "Rhea Moss"],
        ["fishing village"],
        "In a remote fishing village a widow searches for the truth about her husband's last voyage.",
        15,
    ),
    "C": _title(
        "c",
        "Laser Pirates",
        2018,
        ["Science Fiction", "Action"],
        "Dax Holloway",
        ["Zed Kormac"],
        ["space battle", "pirates"],
        "Space pirates with laser cannons raid a galactic freighter convoy and start an interstellar war.",
        30,
    ),
    "X": _title(
        "x",
        "Midnight Bakery",
        2016,
        ["Comedy"],
        "Lu Chen",
        ["Ana Ruiz"],
        ["baking"],
        "Two rival bakers are forced to share a tiny kitchen on the night shift.",
        10,
    ),
    "Y": _title(
        "y",
        "Desert Radio",
        2009,
        ["Western"],
        "Sam Okafor",
        ["Jon Vale"],
        ["radio", "desert"],
        "A lonely radio operator on a desert outpost hears voices from a town that vanished.",
        9,
    ),
    "D1": _title(
        "d1",
        "Moon Garden",
        2015,
        ["Fantasy", "Family"],
        "Iris Pell",
        ["Mia Sol", "Leo Hart"],
        ["moon", "garden", "magic"],
        MOON,
        12,
    ),
    "D2": _title(
        "d2",
        "Moon Garden: Extended Edition",
        2016,
        ["Fantasy", "Family"],
        "Iris Pell",
        ["Mia Sol", "Leo Hart"],
        ["moon", "garden", "magic"],
        MOON,
        11,
    ),
    "M0": _title(
        "m0",
        "Moon Garden Returns",
        2019,
        ["Fantasy", "Family"],
        "Iris Pell",
        ["Mia Sol", "Leo Hart"],
        ["moon", "garden", "magic"],
        "Years later, the girl returns to her grandmother's moonlit garden, whose wishing flowers are dying.",
        13,
    ),
    "E": _title(
        "e",
        "Clockwork Orchard",
        2017,
        ["Fantasy", "Family"],
        "Iris Pell",
        ["Nia Brook"],
        ["clock", "orchard", "magic"],
        "A boy repairs the giant clock that keeps an enchanted orchard's seasons turning.",
        10,
    ),
    "F": _title(
        "f",
        "Paper Kingdom",
        2013,
        ["Fantasy", "Animation", "Family"],
        "Noor Vance",
        ["Mia Sol"],
        ["paper", "magic"],
        "Origami animals come alive and build a kingdom in a child's bedroom.",
        14,
    ),
    "G": _title(
        "g",
        "Storm Ledger",
        2012,
        ["Thriller"],
        "Kai Brandt",
        ["Vera Holt"],
        ["bank", "heist"],
        "An accountant finds a hidden ledger that ties her bank to a ring of smugglers.",
        25,
        platform="pluto_tv",
    ),
    "H": _title(
        "h",
        "Tea and Thunder",
        2010,
        ["Comedy", "Romance"],
        "Ella Finch",
        ["Hugh Pratt"],
        ["tea shop"],
        "A storm-chasing meteorologist falls for the owner of a village tea shop.",
        40,
        region="gb",
    ),
    "P": _title(
        "p",
        "Blockbuster Anthem",
        2020,
        ["Action"],
        "Rex Dunmore",
        ["Jet Carver"],
        ["explosions", "heist"],
        "A crew of stunt drivers pulls off the loudest heist of the decade.",
        500,
    ),
    "Q": _title(
        "q",
        "Quiet Meadow",
        2008,
        ["Documentary"],
        "Ada Morrow",
        ["Narrator Ross"],
        ["nature"],
        "A year in the life of a wildflower meadow and the insects that depend on it.",
        50,
    ),
    "R": _title(
        "r",
        "Rival Comedians",
        2019,
        ["Comedy"],
        "Benny Lusk",
        ["Gus Parr", "Lola Quint"],
        ["stand-up"],
        "Two stand-up comedians compete for the same late-night slot.",
        80,
    ),
    "S": _title(
        "s",
        "Second Chances",
        2015,
        ["Romance", "Drama"],
        "Cora Vey",
        ["Ian Moor"],
        ["reunion"],
        "Former sweethearts meet again at a wedding twenty years later.",
        60,
    ),
}


@dataclass
class SonaWorld:
    client: httpx.AsyncClient
    ids: dict[str, str]
    issuer: TestTokenIssuer
    titles: dict[str, str] = field(default_factory=dict)

    def user(self, *, scopes: str = "openid profile") -> tuple[uuid.UUID, dict[str, str]]:
        user_id = uuid.uuid4()
        return user_id, {"Authorization": f"Bearer {self.issuer.mint(user_id, scopes=scopes)}"}

    def key_of(self, content_id: str) -> str:
        return next(k for k, v in self.ids.items() if v == content_id)

    async def send(self, headers: dict[str, str], *events: dict[str, Any]) -> dict[str, Any]:
        body = [{"event_id": str(uuid.uuid4()), **e} for e in events]
        response = await self.client.post("/api/v1/events", json={"events": body}, headers=headers)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def watched(self, key: str, **extra: Any) -> dict[str, Any]:
        return {"type": "completed", "content_id": self.ids[key], **extra}

    async def train(self) -> dict[str, Any]:
        response = await self.client.post("/api/v1/admin/sona/train", headers=ADMIN)
        assert response.status_code == 200, response.text
        report: dict[str, Any] = response.json()
        return report

    async def recommend(self, headers: dict[str, str], **body: Any) -> dict[str, Any]:
        response = await self.client.post("/api/v1/recommendations", json=body, headers=headers)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def keys(self, response: dict[str, Any]) -> list[str]:
        return [self.key_of(r["content"]["id"]) for r in response["recommendations"]]


async def _ingest(client: httpx.AsyncClient) -> None:
    started = await client.post(
        "/api/v1/admin/ingest", json={"source": "file", "path": "sona"}, headers=ADMIN
    )
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = (await client.get(f"/api/v1/admin/jobs/{started.json()['id']}", headers=ADMIN)).json()
        if job["status"] in ("succeeded", "failed"):
            assert job["status"] == "succeeded", job
            return
        await asyncio.sleep(0.1)
    raise AssertionError("ingest did not finish")


@pytest.fixture(scope="package")
async def sona_settings(token_issuer: TestTokenIssuer) -> AsyncIterator[Settings]:
    data_dir = world_traversable_dir("mg-sona-")
    try:
        async with scratch_database(
            data_dir=data_dir,
            admin_token=ADMIN_TOKEN,
            auth=token_issuer.auth_settings(),
            ingestion={"enrichment_interval_sec": 0},
            sona={
                "train_on_start": False,
                "retrain_interval_sec": 0,
                "retrain_after_events": 1_000_000,
                "model_poll_sec": 0,
                # A small threshold keeps the warm-path users short; the boundary is tested against it.
                "cold_start_max_interactions": 1,
                "lora_min_interactions": 2,
            },
        ) as settings:
            yield settings
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="package")
async def sona_world(sona_settings: Settings, token_issuer: TestTokenIssuer) -> AsyncIterator[SonaWorld]:
    feeds: dict[str, list[dict[str, Any]]] = {}
    for record in TITLES.values():
        platform = next(iter(record["streamingOptions"].values()))[0]["service"]["id"]
        feeds.setdefault(platform, []).append(record)
    write_feed_files(sona_settings.data_dir / "feeds" / "sona", feeds)
    async with serving(create_ingestion(sona_settings)) as url, httpx.AsyncClient(base_url=url) as client:
        await _ingest(client)
        ids: dict[str, str] = {}
        for key, record in TITLES.items():
            platform = next(iter(record["streamingOptions"].values()))[0]["service"]["id"]
            mapped = await client.get(
                "/api/v1/admin/entity-mappings",
                params={"id_type": f"platform:{platform}", "external_id": record["id"]},
                headers=ADMIN,
            )
            [mapping] = mapped.json()
            ids[key] = mapping["entity_id"]
    assert len(set(ids.values())) == len(TITLES)
    # Auth is unreachable for these users (their tokens come from the test issuer, which auth would
    # not accept anyway): cold start must proceed without onboarding. test_cold_start_with_auth.py
    # runs the real auth service.
    unreachable = f"http://127.0.0.1:{free_port()}"
    settings = sona_settings.model_copy(
        update={"service_urls": sona_settings.service_urls.model_copy(update={"auth": unreachable})}
    )
    async with serving(create_sona(settings)) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        yield SonaWorld(
            client=client, ids=ids, issuer=token_issuer, titles={k: v["title"] for k, v in TITLES.items()}
        )
