"""Test keys for the shared token verifier, until a test needs the real auth service: a throwaway
signing key whose JWKS is served over real HTTP, so services verify exactly as in production.

    with TestTokenIssuer() as issuer:
        settings = make_settings(auth=issuer.auth_settings())
        token = issuer.mint(user_id)
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from media_gateway.core.security.signing import (
    SigningAlgorithm,
    SigningKey,
    generate_signing_key,
    jwks_document,
)
from tests.fakes.threaded import ThreadedServer

ISSUER = "https://issuer.test"
AUDIENCE = "media-gateway"


class TestTokenIssuer(ThreadedServer):
    __test__ = False
    name = "token-issuer"

    def __init__(self, alg: SigningAlgorithm = "RS256") -> None:
        super().__init__()
        self.keys: list[SigningKey] = [generate_signing_key(alg)]
        self.jwks_requests = 0

    def app(self) -> Starlette:
        async def jwks(request: Request) -> JSONResponse:
            self.jwks_requests += 1
            return JSONResponse(jwks_document(self.keys))

        return Starlette(routes=[Route("/.well-known/jwks.json", jwks)])

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    def auth_settings(self, **overrides: Any) -> dict[str, Any]:
        values: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, "jwks_url": self.jwks_url}
        values.update(overrides)
        return values

    def rotate(self, alg: SigningAlgorithm = "RS256") -> SigningKey:
        """A new current key; the old one stays published, as during a real rotation overlap."""
        key = generate_signing_key(alg)
        self.keys.append(key)
        return key

    def mint(
        self,
        user_id: uuid.UUID | str,
        *,
        scopes: str = "openid profile",
        client_id: str = "test-client",
        ttl_sec: int = 3600,
        key: SigningKey | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(user_id),
            "iat": now,
            "exp": now + ttl_sec,
            "jti": uuid.uuid4().hex,
            "scope": scopes,
            "client_id": client_id,
        }
        body.update(claims)
        return (key or self.keys[-1]).sign(body)

    def mint_client(self, client_id: str, *, scopes: str) -> str:
        return self.mint(client_id, scopes=scopes, client_id=client_id, token_use="client")
