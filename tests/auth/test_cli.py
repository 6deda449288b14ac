"""`media-gateway auth create-client` and `media-gateway auth rotate-keys` against the real database."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json

import pytest

from media_gateway.cli import main
from tests.auth.conftest import AuthApi


async def _run_cli(monkeypatch: pytest.MonkeyPatch, api: AuthApi, argv: list[str]) -> tuple[int, str]:
    monkeypatch.setenv("MG_DATABASE_URL", str(api.settings.database_url))
    monkeypatch.setenv("MG_DATA_DIR", str(api.settings.data_dir))
    out = io.StringIO()

    def run() -> int:
        with contextlib.redirect_stdout(out):
            return main(argv)

    # The CLI runs its own event loop.
    code = await asyncio.to_thread(run)
    return code, out.getvalue()


async def test_create_client_then_use_it(monkeypatch: pytest.MonkeyPatch, auth_api: AuthApi) -> None:
    code, out = await _run_cli(
        monkeypatch,
        auth_api,
        [
            "auth",
            "create-client",
            "--name",
            "Reporting job",
            "--grant",
            "client_credentials",
            "--scope",
            "reports",
        ],
    )
    assert code == 0
    client = json.loads(out)
    assert client["confidential"] is True
    assert client["scopes"] == ["reports"]
    r = await auth_api.token(
        {"grant_type": "client_credentials"}, auth=(client["client_id"], client["client_secret"])
    )
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "reports"


async def test_create_client_rejects_bad_input(monkeypatch: pytest.MonkeyPatch, auth_api: AuthApi) -> None:
    code, _ = await _run_cli(
        monkeypatch,
        auth_api,
        ["auth", "create-client", "--name", "x", "--redirect-uri", "http://evil.example/cb"],
    )
    assert code == 2
    code, _ = await _run_cli(
        monkeypatch,
        auth_api,
        ["auth", "create-client", "--name", "x", "--public", "--grant", "client_credentials"],
    )
    assert code == 2


async def test_rotate_keys_keeps_the_previous_key_published(
    monkeypatch: pytest.MonkeyPatch, auth_api: AuthApi
) -> None:
    before = {k["kid"] for k in (await auth_api.http.get("/.well-known/jwks.json")).json()["keys"]}
    code, out = await _run_cli(monkeypatch, auth_api, ["auth", "rotate-keys"])
    assert code == 0
    rotation = json.loads(out)
    assert rotation["current_kid"] not in before
    assert before <= set(rotation["published_kids"])
