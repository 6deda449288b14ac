"""Cold start against the real auth service: the onboarding answers a user saved in auth steer their
first recommendations, with auth's own access token forwarded by SONA."""

from __future__ import annotations

import uuid

import httpx

from media_gateway.auth.app import create_app as create_auth
from media_gateway.core.settings import Settings
from media_gateway.sona.app import create_app as create_sona
from tests.auth.conftest import CHEAP_ARGON2, UNLIMITED
from tests.sona.conftest import SonaWorld
from tests.support import free_port, serving

PASSWORD = "correct horse battery staple"


async def test_onboarding_from_auth_steers_cold_start_until_the_threshold(
    sona_world: SonaWorld, sona_settings: Settings
) -> None:
    w = sona_world
    port = free_port()
    # Tokens and JWKS from the real auth service this time (issuer = its URL).
    settings = sona_settings.model_copy(
        update={
            "auth": sona_settings.auth.model_validate({**CHEAP_ARGON2, **UNLIMITED}),
            "service_urls": sona_settings.service_urls.model_copy(
                update={"auth": f"http://127.0.0.1:{port}"}
            ),
        }
    )
    async with (
        serving(create_auth(settings), port=port) as auth_url,
        httpx.AsyncClient(base_url=auth_url) as auth,
        serving(create_sona(settings)) as sona_url,
        httpx.AsyncClient(base_url=sona_url, timeout=30) as sona,
    ):
        email = f"sona-{uuid.uuid4().hex[:8]}@example.test"
        registered = await auth.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert registered.status_code == 202, registered.text
        login = await auth.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        saved = await auth.patch(
            "/api/v1/users/me", json={"favourite_genres": ["Comedy"], "region": "US"}, headers=headers
        )
        assert saved.status_code == 200, saved.text

        async def recommend() -> dict[str, object]:
            found = await sona.post("/api/v1/recommendations", json={"limit": 5}, headers=headers)
            assert found.status_code == 200, found.text
            body: dict[str, object] = found.json()
            return body

        def keys(body: dict[str, object]) -> list[str]:
            return [w.key_of(r["content"]["id"]) for r in body["recommendations"]]  # type: ignore[attr-defined]

        cold = await recommend()
        assert cold["cold_start"] is True
        first = cold["recommendations"][0]  # type: ignore[index]
        assert "Comedy" in first["content"]["genres"], cold
        assert "onboarding" in first["sources"]
        assert "Comedy" in first["explanation"]
        assert "P" in keys(cold)  # the most popular title in the region still makes it
        assert "H" not in keys(cold)  # a comedy, but only watchable in GB
        assert len(set(keys(cold))) == len(keys(cold))

        # One interaction is within the (test) threshold of 1; the second one ends cold start.
        await sona.post(
            "/api/v1/events",
            json={"events": [{"event_id": str(uuid.uuid4()), "type": "completed", "content_id": w.ids["R"]}]},
            headers=headers,
        )
        still = await recommend()
        assert still["cold_start"] is True
        assert "R" not in keys(still)
        await sona.post(
            "/api/v1/events",
            json={"events": [{"event_id": str(uuid.uuid4()), "type": "completed", "content_id": w.ids["X"]}]},
            headers=headers,
        )
        warm = await recommend()
        assert warm["cold_start"] is False
