"""The shared token verifier, through HTTP on a real service app."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter

from media_gateway.core.app import create_service_app
from media_gateway.core.security.dependencies import CurrentUser, require_scopes
from media_gateway.core.security.tokens import Principal
from tests.conftest import make_settings
from tests.fakes.token_issuer import AUDIENCE, ISSUER, TestTokenIssuer


def _router() -> APIRouter:
    router = APIRouter()

    @router.get("/whoami")
    async def whoami(user: CurrentUser) -> dict[str, str]:
        return {"user_id": str(user.user_id)}

    @router.get("/admin-only")
    async def admin_only(principal: Principal = require_scopes("admin")) -> dict[str, str]:
        return {"subject": principal.subject}

    return router


@pytest.fixture
async def client(token_issuer: TestTokenIssuer) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(auth=token_issuer.auth_settings(jwks_refetch_min_interval_sec=0))
    app = create_service_app("sync", settings, routers=[_router()])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _b64(data: dict[str, object] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def test_a_valid_token_names_the_user(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    user = uuid.uuid4()
    response = await client.get("/whoami", headers=_bearer(token_issuer.mint(user)))
    assert response.status_code == 200
    assert response.json() == {"user_id": str(user)}


async def test_no_token_is_401_with_a_bearer_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/whoami")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_non_bearer_scheme_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/whoami", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert response.status_code == 401
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"exp": -30}, 200),  # expired 30 s ago: inside the 60 s leeway
        ({"exp": -120}, 401),
        ({"aud": "someone-else"}, 401),
        ({"iss": "https://evil.test"}, 401),
    ],
)
async def test_expiry_audience_and_issuer_are_enforced(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, claims: dict[str, object], expected: int
) -> None:
    # Expiry is given relative to now: parameters are built at collection, maybe minutes earlier.
    if isinstance(claims.get("exp"), int):
        claims = {**claims, "exp": int(time.time()) + int(claims["exp"])}  # type: ignore[call-overload]
    token = token_issuer.mint(uuid.uuid4(), **claims)
    response = await client.get("/whoami", headers=_bearer(token))
    assert response.status_code == expected


async def test_alg_none_is_rejected(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    kid = token_issuer.keys[-1].kid
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": str(uuid.uuid4()), "iat": now, "exp": now + 600}
    token = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_b64(claims)}."
    response = await client.get("/whoami", headers=_bearer(token))
    assert response.status_code == 401


async def test_hs256_keyed_with_the_public_key_is_rejected(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    key = token_issuer.keys[-1]
    public_pem = key.private_key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM, format=serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": str(uuid.uuid4()), "iat": now, "exp": now + 600}
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    signing_input = f"{_b64(header)}.{_b64(claims)}".encode()
    signature = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    token = f"{signing_input.decode()}.{_b64(signature)}"
    response = await client.get("/whoami", headers=_bearer(token))
    assert response.status_code == 401


async def test_a_tampered_payload_is_rejected(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    header, _, signature = token_issuer.mint(uuid.uuid4()).split(".")
    now = int(time.time())
    forged = {"iss": ISSUER, "aud": AUDIENCE, "sub": str(uuid.uuid4()), "iat": now, "exp": now + 600}
    response = await client.get("/whoami", headers=_bearer(f"{header}.{_b64(forged)}.{signature}"))
    assert response.status_code == 401


async def test_a_rotated_key_is_fetched_and_the_old_one_still_verifies(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    old = token_issuer.keys[-1]
    assert (await client.get("/whoami", headers=_bearer(token_issuer.mint(uuid.uuid4())))).status_code == 200
    new = token_issuer.rotate("EdDSA")
    try:
        fresh = token_issuer.mint(uuid.uuid4(), key=new)
        assert (await client.get("/whoami", headers=_bearer(fresh))).status_code == 200
        stale = token_issuer.mint(uuid.uuid4(), key=old)
        assert (await client.get("/whoami", headers=_bearer(stale))).status_code == 200
    finally:
        token_issuer.keys.remove(new)


async def test_a_key_the_issuer_never_published_is_rejected(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    from media_gateway.core.security.signing import generate_signing_key

    rogue = generate_signing_key("RS256")
    token = token_issuer.mint(uuid.uuid4(), key=rogue)
    response = await client.get("/whoami", headers=_bearer(token))
    assert response.status_code == 401


async def test_a_client_token_is_not_a_user(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    token = token_issuer.mint_client("svc-discovery", scopes="admin")
    assert (await client.get("/whoami", headers=_bearer(token))).status_code == 403
    response = await client.get("/admin-only", headers=_bearer(token))
    assert response.status_code == 200
    assert response.json() == {"subject": "svc-discovery"}


async def test_missing_scope_is_403_insufficient_scope(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.get("/admin-only", headers=_bearer(token_issuer.mint(uuid.uuid4())))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


async def test_a_remembered_token_is_never_accepted_past_its_expiry(token_issuer: TestTokenIssuer) -> None:
    import asyncio

    from media_gateway.core.security.signing import jwks_document
    from media_gateway.core.security.tokens import InvalidTokenError, JwksCache, TokenVerifier

    async def fetch() -> dict[str, object]:
        return jwks_document(token_issuer.keys)

    verifier = TokenVerifier(
        JwksCache(fetch, ttl_sec=300, refetch_min_interval_sec=0),
        issuer=ISSUER,
        audience=AUDIENCE,
        algorithms=["RS256", "EdDSA"],
        leeway_sec=60,
    )
    # Expired 58 s ago: still inside the leeway for one or two more seconds.
    token = token_issuer.mint(uuid.uuid4(), exp=int(time.time()) - 58)
    assert (await verifier.verify(token)).token == token
    assert (await verifier.verify(token)).token == token  # served from memory
    await asyncio.sleep(2.5)
    with pytest.raises(InvalidTokenError):
        await verifier.verify(token)
